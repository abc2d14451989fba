"""The only place that mints tokens, and the checks every presented token passes.

Tokens are signed here with PyJWT, so that the claims are exactly the
contract's: flask-jwt-extended's create_*_token would add `csrf` to every token
and `fresh` to refresh tokens. flask-jwt-extended does all the verifying
(headers, cookies, CSRF double submit, expiry, token type), with the key
objects and the extra checks below.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt as pyjwt
from flask import current_app, g
from flask_jwt_extended.exceptions import JWTDecodeError

from api import token_parsing, users
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
    # For the session's bookkeeping (api/sessions.py); never sent.
    refresh_jti: str = ""
    refresh_exp: int = 0
    # The double-submit values, in cookie mode only.
    csrf_access_token: str | None = None
    csrf_refresh_token: str | None = None


def lifetimes():
    config = current_app.config
    return {
        "access": int(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
        "refresh": int(config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds()),
    }


def new_session_id():
    return uuid.uuid4().hex


def issue_pair(user, sid, fresh, cookies=False):
    """An access and a refresh token for one login session (`sid`).

    `cookies`: the tokens will travel in cookies, so they carry the `csrf`
    value that unsafe requests must echo in X-CSRF-TOKEN.
    """
    seconds = lifetimes()
    now = int(datetime.now(UTC).timestamp())
    csrf = (str(uuid.uuid4()), str(uuid.uuid4())) if cookies else (None, None)
    access = {"fresh": fresh, "roles": list(user.roles)}
    refresh = _claims(user, sid, "refresh", now, seconds["refresh"], {}, csrf[1])
    return TokenPair(
        access_token=_sign(_claims(user, sid, "access", now, seconds["access"], access, csrf[0])),
        refresh_token=_sign(refresh),
        expires_in=seconds["access"],
        refresh_expires_in=seconds["refresh"],
        refresh_jti=refresh["jti"],
        refresh_exp=refresh["exp"],
        csrf_access_token=csrf[0],
        csrf_refresh_token=csrf[1],
    )


def _claims(user, sid, token_type, now, lifetime, extra_claims, csrf):
    config = current_app.config
    claims = {
        "iss": config["JWT_ISSUER"],
        "aud": config["JWT_AUDIENCE"],
        "sub": str(user.id),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        "type": token_type,
        "sid": sid,
        **extra_claims,
    }
    if csrf:
        claims["csrf"] = csrf
    return claims


def _sign(claims):
    key = current_app.extensions["keyring"].signer()
    headers = {"typ": TYP_BY_TYPE[claims["type"]]}
    if key.kid:
        headers["kid"] = key.kid
    return pyjwt.encode(claims, key.signing_key, algorithm=key.algorithm, headers=headers)


def check_token_shape(header, claims):
    """Refuse a token whose header or claims are not what this API mints.

    Runs on the unverified token before its signature is checked; every check
    only refuses, so a token that passes is then verified as usual.
    """
    if any(name in header for name in FORBIDDEN_HEADERS):
        raise JWTDecodeError("key-location headers are not accepted")
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise JWTDecodeError(f"missing claims: {', '.join(missing)}")
    token_type = claims["type"]
    expected_typ = TYP_BY_TYPE.get(token_type) if isinstance(token_type, str) else None
    if expected_typ is None or header.get("typ") != expected_typ:
        raise JWTDecodeError("unknown token type, or a header typ that does not fit it")
    exp, iat = claims["exp"], claims["iat"]
    if not (_is_int(exp) and _is_int(iat)) or exp - iat > lifetimes()[token_type]:
        raise JWTDecodeError("token lives longer than this API issues")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def init_app(app):
    token_parsing.install()

    # The key is chosen by kid and pinned to its one algorithm (api/keyring.py).
    @jwt.decode_key_loader
    def verification_key(header, claims):
        check_token_shape(header, claims)
        return current_app.extensions["keyring"].verifier(header).verification_key

    # Every token names a live user: a deleted or disabled one is refused.
    @jwt.user_lookup_loader
    def load_user(_header, claims):
        # The database store's revocation check brought the user already.
        if "token_user" in g:
            return g.token_user
        return users.active_user(claims["sub"])

    config = app.config
    config["JWT_DECODE_ALGORITHMS"] = app.extensions["keyring"].decode_algorithms
    config["JWT_DECODE_ISSUER"] = config["JWT_ISSUER"]
    config["JWT_DECODE_AUDIENCE"] = config["JWT_AUDIENCE"]
