"""Marshmallow schemas for every request and response body.

Request schemas reject unknown fields (marshmallow's default), so nothing like
`roles` or `id` can be smuggled in from outside, and take every string as a
`Text` (no NUL character).
"""

import re
from datetime import UTC

from marshmallow import Schema, ValidationError, fields, post_dump, validate

from api.auth.scopes import ALL as SCOPE_NAMES

# ^…$ in the OpenAPI document, which JavaScript clients read; single_line()
# closes the gap that "$" leaves before a final newline ("bob\n" is not "bob").
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"


def single_line(value):
    if "\n" in value:
        raise ValidationError("3 to 64 letters, digits, '_', '.' or '-'.")


UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# PostgreSQL text cannot hold NUL (psycopg raises, a 500) and SQLite can: so
# that a client's text answers alike on every backend, none may carry one.
NO_NUL_PATTERN = r"^[^\u0000]*$"


class Text(fields.String):
    """Every string a request schema takes, in a body or a query: refuses NUL
    (a 422 naming the field), and its OpenAPI `pattern` says so."""

    default_error_messages = {"nul": "Must not contain the NUL character (U+0000)."}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # apispec documents one Regexp (as `pattern`) or OneOf (as `enum`) of
        # the field's own instead; those refuse NUL too (tests/web/test_openapi.py).
        if not any(isinstance(v, validate.Regexp | validate.OneOf) for v in self.validators):
            self.metadata = {"pattern": NO_NUL_PATTERN, **self.metadata}

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in value:
            raise self.make_error("nul")
        return value


EMAIL_MAX = 254  # RFC 5321's limit on a path: longer cannot be delivered


def no_line_break(value):
    # CR or LF in an address would start a new mail header (header injection).
    if "\r" in value or "\n" in value:
        raise ValidationError("Must not contain a line break.")


def printable_name(value):
    """A name for the user's own list: something to read, on one line, with no
    control or direction-changing character (U+202E would show it backwards)."""
    if not value.strip() or not value.isprintable():
        raise ValidationError("Give a name of printable characters on one line.")


# RFC 5322's dot-atom, ASCII: no quoted local part ("bob"@ is bob@ to a mail
# server, and would let two accounts share one mailbox), no control character.
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


class Email(Text):
    """An address of at most 254 characters, in one spelling per mailbox: an
    ASCII dot-atom before the "@", the domain in ASCII (IDNA) and lower case.
    So "Bob@München.de" and "Bob@xn--mnchen-3ya.de" are one address, and
    the database's lower() and Python's agree on it."""

    default_error_messages = {"invalid": "Not a valid email address."}

    def __init__(self, **kwargs):
        validators = [no_line_break, validate.Length(max=EMAIL_MAX), validate.Email()]
        metadata = {"format": "email", "example": "bob@example.com", **kwargs.pop("metadata", {})}
        super().__init__(validate=validators, metadata=metadata, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        address = canonical_email(super()._deserialize(value, attr, data, **kwargs))
        if address is None:
            raise self.make_error("invalid")
        return address


def canonical_email(value):
    """The one spelling of an address (see Email), or None if it has none."""
    local, at, domain = value.rpartition("@")
    if not at or not DOT_ATOM.match(local):
        return None
    try:
        return f"{local}@{domain.encode('idna').decode('ascii').lower()}"
    except UnicodeError:
        return None


class RegisterSchema(Schema):
    username = Text(
        required=True,
        validate=[
            validate.Regexp(USERNAME_PATTERN, error="3 to 64 letters, digits, '_', '.' or '-'."),
            single_line,
        ],
    )
    password = Text(required=True, validate=validate.Length(min=8, max=256))
    email = Email(metadata={"description": "Optional; a verification mail is sent to it"})


class LoginSchema(Schema):
    # Lengths only: a malformed username is simply an unknown one.
    username = Text(required=True, validate=validate.Length(min=1, max=64))
    password = Text(required=True, validate=validate.Length(min=1, max=256))


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
    email = fields.String(allow_none=True)
    email_verified = fields.Boolean(
        metadata={"description": "A link mailed to `email` was opened (or a reset link)"}
    )
    mfa_enabled = fields.Boolean()


class EmailSchema(Schema):
    email = Email(required=True)


# Long enough for any token this API makes (43 characters), short enough to hash cheaply.
LINK_TOKEN = validate.Length(min=1, max=256)


class TotpEnrolmentSchema(Schema):
    secret = fields.String(metadata={"description": "Base32, for typing into an authenticator app"})
    otpauth_uri = fields.String(metadata={"description": "otpauth://totp/…, in the QR code"})
    qr_svg = fields.String(metadata={"description": "The QR code, an SVG document"})


class CodeSchema(Schema):
    code = Text(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Six digits from the app, or a recovery code"},
    )


class RecoveryCodesSchema(Schema):
    recovery_codes = fields.List(
        fields.String(), metadata={"description": "Ten codes, each works once; shown this once"}
    )


class MfaLoginSchema(CodeSchema):
    mfa_token = Text(
        required=True,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "From the login's 401 mfa_required answer"},
    )


class VerifyEmailSchema(Schema):
    token = Text(required=True, validate=LINK_TOKEN, metadata={"description": "From the link"})


class PasswordResetSchema(Schema):
    token = Text(required=True, validate=LINK_TOKEN, metadata={"description": "From the link"})
    new_password = Text(required=True, validate=validate.Length(min=8, max=256))


class AcceptedSchema(Schema):
    message = fields.String(metadata={"description": "What happens next, for people"})


class PasswordChangeSchema(Schema):
    current_password = Text(required=True, validate=validate.Length(min=1, max=256))
    new_password = Text(required=True, validate=validate.Length(min=8, max=256))


class SessionSchema(Schema):
    id = fields.String()
    created_at = UTCDateTime()
    last_used_at = UTCDateTime(metadata={"description": "Login or last refresh"})
    user_agent = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    current = fields.Boolean(metadata={"description": "The session of the token presented"})
    expires_at = UTCDateTime(
        metadata={
            "description": "When the session ends unless it is revoked first: SESSION_MAX_AGE "
            "after the login, SESSION_IDLE_TIMEOUT after its last use, or with its refresh "
            "token, whichever comes first"
        }
    )


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
    amr = fields.List(
        fields.String(),
        metadata={"description": "How the login proved who the user is (RFC 8176)"},
    )
    csrf = fields.String(metadata={"description": "Present in cookie mode"})


class NoteSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    body = fields.String()
    created_at = UTCDateTime()
    updated_at = UTCDateTime()


class NoteCreateSchema(Schema):
    # Only these: owner, id and timestamps are the server's (unknown fields: 422).
    title = Text(required=True, validate=validate.Length(min=1, max=200))
    body = Text(required=True, validate=validate.Length(max=10_000))


class NotePatchSchema(Schema):
    title = Text(validate=validate.Length(min=1, max=200))
    body = Text(validate=validate.Length(max=10_000))


# Passkeys (api/routes/passkeys.py). The WebAuthn objects travel in
# py_webauthn's JSON encoding: binary fields as base64url strings.
CREDENTIAL_DOC = (
    "The PublicKeyCredential the browser answered, as its toJSON() gives it "
    "(binary fields base64url)"
)


class PasskeySchema(Schema):
    id = fields.Integer()
    name = fields.String()
    created_at = UTCDateTime()
    last_used_at = UTCDateTime(
        allow_none=True, metadata={"description": "The last login with it; null before the first"}
    )


class PasskeyCreateSchema(Schema):
    name = Text(
        required=True,
        validate=[validate.Length(min=1, max=64), printable_name],
        metadata={"description": "For the user's own list, such as 'Phone'"},
    )
    credential = fields.Dict(
        required=True, metadata={"description": "navigator.credentials.create(): " + CREDENTIAL_DOC}
    )


class PasskeyCreationOptionsSchema(Schema):
    """navigator.credentials.create()'s publicKey (PublicKeyCredentialCreationOptionsJSON)."""

    rp = fields.Dict()
    user = fields.Dict(metadata={"description": "`id`: the user handle, base64url"})
    challenge = fields.String()
    pubKeyCredParams = fields.List(fields.Dict())
    timeout = fields.Integer()
    excludeCredentials = fields.List(fields.Dict())
    authenticatorSelection = fields.Dict()
    attestation = fields.String()


class PasskeyRequestOptionsSchema(Schema):
    """navigator.credentials.get()'s publicKey (PublicKeyCredentialRequestOptionsJSON)."""

    challenge = fields.String()
    timeout = fields.Integer()
    rpId = fields.String()
    allowCredentials = fields.List(fields.Dict())
    userVerification = fields.String()


class PasskeyLoginOptionsSchema(Schema):
    """No field: any passkey of this site may answer."""


class PasskeyChallengeSchema(Schema):
    challenge_id = fields.String(metadata={"description": "Send it back with the credential"})
    options = fields.Nested(PasskeyRequestOptionsSchema)


class PasskeyLoginSchema(Schema):
    challenge_id = Text(required=True, validate=validate.Length(min=1, max=64))
    credential = fields.Dict(
        required=True, metadata={"description": "navigator.credentials.get(): " + CREDENTIAL_DOC}
    )


ROLES = ("user", "admin")
# Ids are 32-bit integers in PostgreSQL: a larger id in a URL matches no route (404).
MAX_ID = 2**31 - 1
# The security events this version records (api/accounts/events.py); the
# contract's other types arrive with their features.
EVENT_TYPES = (
    "login",
    "login_failed",
    "logout",
    "refresh_reused",
    "session_revoked",
    "password_changed",
    "user_disabled",
    "user_enabled",
    "roles_changed",
    "email_verified",
    "email_changed",
    "password_reset_requested",
    "password_reset",
    "mfa_enabled",
    "mfa_disabled",
    "mfa_failed",
    "passkey_added",
    "passkey_removed",
    "token_created",
    "token_revoked",
)


# Personal access tokens (api/routes/tokens.py).
def unique_items(values):
    if len(set(values)) != len(values):
        raise ValidationError("Name each scope once.")


class PersonalTokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    scopes = fields.List(fields.String(), metadata={"description": "What the token may do"})
    created_at = UTCDateTime()
    expires_at = UTCDateTime()
    last_used_at = UTCDateTime(
        allow_none=True,
        metadata={"description": "Its last use, to the minute; null before the first"},
    )


class NewPersonalTokenSchema(PersonalTokenSchema):
    token = fields.String(
        metadata={"description": "The token (pat_…): shown this once, kept only as a hash"}
    )


class PersonalTokenCreateSchema(Schema):
    name = Text(
        required=True,
        validate=[validate.Length(min=1, max=64), printable_name],
        metadata={"description": "For the user's own list, such as 'CI job'"},
    )
    scopes = fields.List(
        Text(validate=validate.OneOf(SCOPE_NAMES)),
        required=True,
        validate=[validate.Length(min=1, max=len(SCOPE_NAMES)), unique_items],
        metadata={"description": "What the token may do: one or more scopes", "uniqueItems": True},
    )
    expires_in_days = fields.Integer(
        strict=True,
        load_default=30,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "Its lifetime in days (1-365; default 30)"},
    )


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
        Text(validate=validate.OneOf(ROLES)),
        validate=validate.Length(min=1, max=len(ROLES)),
    )
    disabled = StrictBoolean()


class UserQuerySchema(Schema):
    username = Text(
        validate=validate.Length(min=1, max=64), metadata={"description": "Username prefix"}
    )


class SecurityEventSchema(Schema):
    id = fields.Integer()
    type = fields.String(metadata={"enum": list(EVENT_TYPES)})
    at = UTCDateTime()
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    session_id = fields.String(
        allow_none=True, metadata={"description": "The login session the act was done in"}
    )
    details = fields.Dict(
        metadata={"description": "What the type needs, such as a reason; never a secret"}
    )


class OwnSecurityEventSchema(SecurityEventSchema):
    """A user's own events: an act by someone else (an administrator) says
    what was done and by whom (`details.by`), not their address, browser or
    session."""

    @post_dump(pass_original=True)
    def hide_other_actors(self, data, event, **_kwargs):
        if data["details"].get("by", event.user_id) != event.user_id:
            data.update(ip=None, user_agent=None, session_id=None)
        return data


class AdminSecurityEventSchema(SecurityEventSchema):
    user_id = fields.Integer(
        allow_none=True, metadata={"description": "None for a login with an unknown username"}
    )


class EventQuerySchema(Schema):
    type = Text(validate=validate.OneOf(EVENT_TYPES))


class AdminEventQuerySchema(EventQuerySchema):
    user_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))


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
    mfa_token = fields.String(
        metadata={"description": "With `mfa_required` only: send it to /api/auth/mfa with a code"}
    )
    methods = fields.List(
        fields.String(),
        metadata={"description": "With `mfa_required` only: the second factors the user has"},
    )


# OAuth 2.0 for other services (api/routes/oauth.py). Only documented:
# Authlib reads these form bodies, and shapes the answers.


class ClientTokenRequestSchema(Schema):
    grant_type = Text(required=True, validate=validate.OneOf(["client_credentials"]))
    scope = Text(
        metadata={
            "description": "Space-separated: some of the client's scopes (default: all).",
            "example": "notes:read",
        }
    )
    client_id = Text(metadata={"description": "client_secret_post only (else HTTP Basic)"})
    client_secret = Text(metadata={"description": "client_secret_post only (else HTTP Basic)"})


class ClientTokenSchema(Schema):
    access_token = fields.String(
        metadata={"description": "A JWT (typ at+jwt); verify it with the JWKS"}
    )
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"example": 300})
    scope = fields.String(metadata={"example": "notes:read profile:read"})


class IntrospectionRequestSchema(Schema):
    token = Text(
        required=True,
        metadata={
            "description": "An access token (a user's or a client's) or a personal access token"
        },
    )
    token_type_hint = Text(metadata={"description": "Ignored: every kind is looked for"})
    client_id = Text(metadata={"description": "client_secret_post only (else HTTP Basic)"})
    client_secret = Text(metadata={"description": "client_secret_post only (else HTTP Basic)"})


class IntrospectionSchema(Schema):
    active = fields.Boolean(
        required=True,
        metadata={"description": "False, and nothing else, for a token that is not live"},
    )
    scope = fields.String(metadata={"example": "notes:read notes:write profile:read"})
    client_id = fields.String(metadata={"description": "A client's token only"})
    username = fields.String(metadata={"description": "A user's token only"})
    token_type = fields.String(metadata={"example": "Bearer"})
    sub = fields.String()
    exp = fields.Integer()
    iat = fields.Integer()
    iss = fields.String()
    aud = fields.String(metadata={"description": "JWTs only, not personal access tokens"})
    jti = fields.String(metadata={"description": "JWTs only, not personal access tokens"})


class AuthorizationServerMetadataSchema(Schema):
    issuer = fields.String()
    token_endpoint = fields.String()
    jwks_uri = fields.String()
    introspection_endpoint = fields.String()
    grant_types_supported = fields.List(fields.String())
    token_endpoint_auth_methods_supported = fields.List(fields.String())
    introspection_endpoint_auth_methods_supported = fields.List(fields.String())
    scopes_supported = fields.List(fields.String())
    response_types_supported = fields.List(fields.String())


class OAuthErrorSchema(Schema):
    error = fields.String(required=True, metadata={"example": "invalid_client"})
    error_description = fields.String(required=True)
    message = fields.String(
        required=True, metadata={"description": "The same as error_description"}
    )
