"""Marshmallow schemas for every request and response body.

Request schemas reject unknown fields (marshmallow's default), so nothing like
`roles` or `id` can be smuggled in from outside.
"""

from datetime import UTC

from marshmallow import Schema, ValidationError, fields, validate

# ^…$ in the OpenAPI document, which JavaScript clients read; single_line()
# closes the gap that "$" leaves before a final newline ("bob\n" is not "bob").
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"


def single_line(value):
    if "\n" in value:
        raise ValidationError("3 to 64 letters, digits, '_', '.' or '-'.")


UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class RegisterSchema(Schema):
    username = fields.String(
        required=True,
        validate=[
            validate.Regexp(USERNAME_PATTERN, error="3 to 64 letters, digits, '_', '.' or '-'."),
            single_line,
        ],
    )
    password = fields.String(required=True, validate=validate.Length(min=8, max=256))


class LoginSchema(Schema):
    # Lengths only: a malformed username is simply an unknown one.
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class UTCDateTime(fields.String):
    """`2026-11-28T13:00:00Z`, whatever time zone the database session uses.

    A String to apispec, with format date-time: it cannot describe the strftime
    format a DateTime field would take. For responses only.
    """

    def __init__(self, metadata=None, **kwargs):
        metadata = {"format": "date-time", "example": "2026-11-28T13:00:00Z", **(metadata or {})}
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC)  # SQLite hands back naive UTC as stored
        return value.strftime(UTC_FORMAT)


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    roles = fields.List(fields.String())
    created_at = UTCDateTime()


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=256))
    new_password = fields.String(required=True, validate=validate.Length(min=8, max=256))


class SessionSchema(Schema):
    id = fields.String()
    created_at = UTCDateTime()
    last_used_at = UTCDateTime(metadata={"description": "Login or last refresh"})
    user_agent = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    current = fields.Boolean(metadata={"description": "The session of the token presented"})


class LivenessSchema(Schema):
    status = fields.String(metadata={"example": "ok"})


class HealthSchema(LivenessSchema):
    checks = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"example": {"database": "ok", "revocation_store": "ok"}},
    )


class TokenPairSchema(Schema):
    access_token = fields.String()
    refresh_token = fields.String()
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "Access token lifetime, seconds"})
    refresh_expires_in = fields.Integer(metadata={"description": "Refresh token lifetime, seconds"})


class CookieSessionSchema(Schema):
    user = fields.Nested(UserSchema)
    expires_in = fields.Integer()
    refresh_expires_in = fields.Integer()
    # For SPAs on another site, which cannot read this API's csrf cookies.
    csrf_access_token = fields.String()
    csrf_refresh_token = fields.String()


class TokenClaimsSchema(Schema):
    iss = fields.String()
    aud = fields.Raw(metadata={"description": "A string or a list of strings"})
    sub = fields.String()
    iat = fields.Integer()
    nbf = fields.Integer()
    exp = fields.Integer()
    jti = fields.String()
    type = fields.String()
    sid = fields.String()
    fresh = fields.Boolean()
    roles = fields.List(fields.String())
    csrf = fields.String(metadata={"description": "Present in cookie mode"})


class NoteSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    body = fields.String()
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class NoteCreateSchema(Schema):
    # Only these: owner, id and timestamps are the server's (unknown fields: 422).
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(required=True, validate=validate.Length(max=10_000))


class NotePatchSchema(Schema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    body = fields.String(validate=validate.Length(max=10_000))


ROLES = ("user", "admin")


class StrictBoolean(fields.Boolean):
    """JSON true or false only: not "yes", "on", 1 or 0."""

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not bool:
            raise self.make_error("invalid")
        return value


class AdminUserSchema(UserSchema):
    disabled = fields.Boolean()


class AdminUserPatchSchema(Schema):
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        validate=validate.Length(min=1, max=len(ROLES)),
    )
    disabled = StrictBoolean()


class UserQuerySchema(Schema):
    username = fields.String(
        validate=validate.Length(min=1, max=64), metadata={"description": "Username prefix"}
    )


class JWKSchema(Schema):
    kty = fields.String(metadata={"example": "EC"})
    kid = fields.String(metadata={"description": "RFC 7638 thumbprint"})
    alg = fields.String(metadata={"example": "ES256"})
    use = fields.String(metadata={"example": "sig"})
    n = fields.String()
    e = fields.String()
    crv = fields.String()
    x = fields.String()
    y = fields.String()


class JWKSetSchema(Schema):
    keys = fields.List(fields.Nested(JWKSchema))


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"example": "token_expired"})
    message = fields.String(required=True)
    details = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={
            "description": "Validation errors by field: a list of messages, or for "
            "list and nested fields, messages by item index or name"
        },
    )
