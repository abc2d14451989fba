"""The only place that mints tokens, and the checks every presented token passes.

flask-jwt-extended signs and verifies; this module decides the claims and the
JWT header, hands it the key objects, and refuses tokens it would otherwise
accept with defaults (no `type` means "access" to it, for instance).
"""

import uuid
from dataclasses import dataclass

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_jwt_extended.exceptions import JWTDecodeError

from api import users
from api.extensions import jwt

# RFC 9068 / RFC 8725 §3.11: explicit typing keeps one kind of token from
# being replayed as the other.
TYP_BY_TYPE = {"access": "at+jwt", "refresh": "JWT"}
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type", "sid")
# Headers that point at keys elsewhere; nothing here should ever follow them.
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


def lifetimes():
    config = current_app.config
    return {
        "access": int(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        "refresh": int(config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds()),
    }


def new_session_id():
    return uuid.uuid4().hex


def issue_pair(user, sid, fresh):
    """An access and a refresh token for one login session (`sid`)."""
    seconds = lifetimes()
    return TokenPair(
        access_token=access_token(user, sid, fresh),
        refresh_token=refresh_token(user, sid),
        expires_in=seconds["access"],
        refresh_expires_in=seconds["refresh"],
    )


def access_token(user, sid, fresh):
    return create_access_token(
        identity=str(user.id),
        fresh=fresh,
        additional_claims={"sid": sid, "roles": list(user.roles)},
        additional_headers={"typ": TYP_BY_TYPE["access"]},
    )


def refresh_token(user, sid):
    return create_refresh_token(
        identity=str(user.id),
        additional_claims={"sid": sid},
        additional_headers={"typ": TYP_BY_TYPE["refresh"]},
    )


def check_token_shape(header, claims):
    """Refuse a token whose header or claims are not what this API mints.

    Runs on the unverified token before its signature is checked; every check
    only refuses, so a token that passes is then verified as usual.
    """
    keys = current_app.extensions["signing_keys"]
    if header.get("alg") != keys.algorithm:
        raise JWTDecodeError("algorithm not allowed")
    if any(name in header for name in FORBIDDEN_HEADERS):
        raise JWTDecodeError("key-location headers are not accepted")
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise JWTDecodeError(f"missing claims: {', '.join(missing)}")
    token_type = claims["type"]
    if not isinstance(token_type, str) or header.get("typ") != TYP_BY_TYPE.get(token_type):
        raise JWTDecodeError("token type and header typ do not match")
    exp, iat = claims["exp"], claims["iat"]
    if not (_is_int(exp) and _is_int(iat)) or exp - iat > lifetimes()[token_type]:
        raise JWTDecodeError("token lives longer than this API issues")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def init_app(app):
    @jwt.encode_key_loader
    def signing_key(_identity):
        return current_app.extensions["signing_keys"].signing_key

    @jwt.decode_key_loader
    def verification_key(header, claims):
        check_token_shape(header, claims)
        return current_app.extensions["signing_keys"].verification_key

    # Every token names a live user: a deleted or disabled one is refused.
    @jwt.user_lookup_loader
    def load_user(_header, claims):
        return users.active_user(claims["sub"])

    config = app.config
    config["JWT_DECODE_ALGORITHMS"] = [config["JWT_ALGORITHM"]]
    config["JWT_ENCODE_ISSUER"] = config["JWT_DECODE_ISSUER"] = config["JWT_ISSUER"]
    config["JWT_ENCODE_AUDIENCE"] = config["JWT_DECODE_AUDIENCE"] = config["JWT_AUDIENCE"]
