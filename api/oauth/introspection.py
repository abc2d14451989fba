"""What POST /oauth/introspect (RFC 7662) says about a token: active, with
its claims, or `{"active": false}` and nothing else.

A resource server asks because a signature that verifies against the JWKS
does not say the session behind it is still open. So every answer here
comes from the same checks this API's own routes make, read now:

- a user's access token: its signature, shape and lifetime
  (flask_jwt_extended.decode_token), then its session and user
  (api.auth.identity.look_up): a logged-out session is inactive at once;
- a client's token: the same verification, then its client, which must
  still exist and not have been given a new secret since;
- a personal access token: api.auth.personal_tokens.find, as on a request.

Inactive, and told apart from nothing else: anything expired, revoked,
forged, unknown or garbled, and refresh tokens. A refresh token is never
active here: resource servers take access tokens only, and a refresh token
shown to one has leaked (RFC 7662 lets a server answer only about the
tokens it chooses to).
"""

from dataclasses import dataclass

from flask import current_app
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import InvalidTokenError

from api.auth import identity, personal_tokens, scopes
from api.auth.claims import is_client_token
from api.clock import as_utc
from api.oauth import clients

TOKEN_TYPE = "Bearer"  # noqa: S105 - RFC 7662 §2.2: the type of token it is, as RFC 6749 §7.1 names them
# The claims an active JWT's answer repeats as they are in the token.
JWT_CLAIMS = ("sub", "exp", "iat", "iss", "aud", "jti")


@dataclass(frozen=True)
class Active:
    """A token found live: what RFC 7662 §2.2 answers about it. Authlib's
    IntrospectionEndpoint asks whether it expired or was revoked; both were
    decided when it was found."""

    answer: dict

    def is_expired(self):
        return False

    def is_revoked(self):
        return False


def describe(text):
    """An Active for a live token of this API, else None (inactive)."""
    if personal_tokens.looks_like_one(text):
        return _personal(text)
    try:
        claims = decode_token(text)
    except (InvalidTokenError, JWTExtendedException):
        return None  # forged, garbled, expired, another issuer's, another key's…
    if claims["type"] != "access":
        return None  # a refresh token: see the module's docstring
    return _client(claims) if is_client_token(claims) else _user(claims)


def _user(claims):
    found = identity.look_up(claims)
    if found.revoked or found.user is None:
        return None
    return Active(
        {
            "active": True,
            "scope": scopes.joined(scopes.ALL),  # a user's own login may do everything
            "username": found.user.username,
            "token_type": TOKEN_TYPE,
            **{name: claims[name] for name in JWT_CLAIMS},
        }
    )


def _client(claims):
    client = clients.find(claims["client_id"])
    if client is None or claims["sub"] != client.client_id:
        return None
    # A new secret is for a leaked one: what the old one minted until then
    # dies with it, to the second (`iat` has no finer grain, so a token the
    # new secret got within that very second dies too; it asks again).
    rotated = client.secret_rotated_at
    if rotated is not None and claims["iat"] <= int(as_utc(rotated).timestamp()):
        return None
    return Active(
        {
            "active": True,
            "scope": claims["scope"],
            "client_id": client.client_id,
            "token_type": TOKEN_TYPE,
            **{name: claims[name] for name in JWT_CLAIMS},
        }
    )


def _personal(text):
    found = personal_tokens.find(text)
    if found is None or found.expired:
        return None
    personal_tokens.touch(found)  # a use like any other: last_used_at says so
    return Active(
        {
            "active": True,
            "scope": scopes.joined(found.scopes),
            "sub": str(found.user.id),
            "username": found.user.username,
            "token_type": TOKEN_TYPE,
            "exp": int(found.expires_at.timestamp()),
            "iat": int(found.created_at.timestamp()),
            "iss": current_app.config["JWT_ISSUER"],
        }
    )
