"""`/api/me/tokens`: personal access tokens (api/auth/personal_tokens.py does
the work). Made from a fresh login, with its second factor when the user has
one; the token is in the creation's answer only."""

from flask_jwt_extended import get_current_user, get_jwt

from api.auth import personal_tokens
from api.auth.identity import second_factor_if_enrolled, token_required
from api.routes import groups
from api.schemas import (
    MAX_ID,
    NewPersonalTokenSchema,
    PersonalTokenCreateSchema,
    PersonalTokenSchema,
)
from api.web.openapi import AUTH_DOC, READ_AUTH_DOC

blp = groups.tokens


@blp.post("/api/me/tokens")
@blp.doc(**AUTH_DOC)
@token_required(fresh=True)
@second_factor_if_enrolled
@blp.arguments(PersonalTokenCreateSchema)
@blp.response(201, NewPersonalTokenSchema)
def create_token(data):
    """A new personal access token (fresh token; a two-factor login when the
    user has a second factor). The answer's `token` is shown this once.

    Send it as `Authorization: Bearer pat_…`; it works on the routes whose
    scope it holds, until it expires or is deleted.
    """
    token, text = personal_tokens.create(
        get_current_user().id,
        data["name"],
        data["scopes"],
        data["expires_in_days"],
        get_jwt()["sid"],
    )
    shown = ("id", "name", "scopes", "created_at", "expires_at", "last_used_at")
    return {name: getattr(token, name) for name in shown} | {"token": text}


@blp.get("/api/me/tokens")
@blp.doc(**READ_AUTH_DOC)
@token_required()
@blp.response(200, PersonalTokenSchema(many=True))
def list_tokens():
    """The caller's personal access tokens, newest first (never the tokens themselves)."""
    return personal_tokens.listing(get_current_user().id)


@blp.delete(f"/api/me/tokens/<int(max={MAX_ID}):token_id>")
@blp.doc(**AUTH_DOC)
@token_required()
@blp.response(204)
def delete_token(token_id):
    """Delete one of the caller's tokens: refused from the next request on,
    on every instance."""
    personal_tokens.remove(get_current_user().id, token_id, get_jwt()["sid"])
