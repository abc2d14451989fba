"""The only place that signs tokens.

Tokens are signed here with PyJWT, so that the claims are exactly the
contract's (api/auth/claims.py): flask-jwt-extended's create_*_token would add
`csrf` to every token and `fresh` to refresh tokens. The key is the key ring's
current signer (api/auth/keyring.py).
"""

import uuid
from dataclasses import dataclass

import jwt as pyjwt
from flask import current_app

from api.auth.claims import AMR_PASSWORD, TYP_BY_TYPE, lifetimes
from api.clock import utcnow


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
    # For the session's bookkeeping (api/auth/sessions.py); never sent.
    refresh_jti: str = ""
    refresh_exp: int = 0
    # The double-submit values, in cookie mode only.
    csrf_access_token: str | None = None
    csrf_refresh_token: str | None = None


def new_session_id():
    return uuid.uuid4().hex


def issue_pair(user, sid, fresh, cookies=False, amr=AMR_PASSWORD):
    """An access and a refresh token for one login session (`sid`).

    `cookies`: the tokens will travel in cookies, so they carry the `csrf`
    value that unsafe requests must echo in X-CSRF-TOKEN. `amr`: how the
    login proved who the user is (RFC 8176); the refresh token keeps it for
    the access tokens its rotations mint.
    """
    seconds = lifetimes()
    now = int(utcnow().timestamp())
    csrf = (str(uuid.uuid4()), str(uuid.uuid4())) if cookies else (None, None)
    amr = list(amr)
    access = {"fresh": fresh, "roles": list(user.roles), "amr": amr}
    refresh = _claims(user, sid, "refresh", now, seconds["refresh"], {"amr": amr}, csrf[1])
    return TokenPair(
        access_token=sign(_claims(user, sid, "access", now, seconds["access"], access, csrf[0])),
        refresh_token=sign(refresh),
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


def sign(claims):
    key = current_app.extensions["keyring"].signer()
    headers = {"typ": TYP_BY_TYPE[claims["type"]]}
    if key.kid:
        headers["kid"] = key.kid
    return pyjwt.encode(claims, key.signing_key, algorithm=key.algorithm, headers=headers)
