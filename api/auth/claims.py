"""What a token of this API looks like: its claims, its header's `typ`, its
lifetime. Minting (api/auth/minting.py) writes tokens of this shape and
verifying (api/auth/identity.py) refuses any other.
"""

from flask import current_app
from flask_jwt_extended.exceptions import JWTDecodeError

# RFC 9068 / RFC 8725 §3.11: explicit typing keeps one kind of token from
# being replayed as the other.
TYP_BY_TYPE = {"access": "at+jwt", "refresh": "JWT"}
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type", "sid")
# A client's token (POST /oauth/token, RFC 9068): no user, no session; its
# `sub` and `client_id` are the client's id. An access token all the same.
CLIENT_REQUIRED_CLAIMS = (
    *(name for name in REQUIRED_CLAIMS if name != "sid"),
    "client_id",
    "scope",
)
# Headers that point at keys elsewhere; nothing here should ever follow them.
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c")


# RFC 8176 authentication methods, as the access tokens' `amr` says them.
AMR_PASSWORD = ("pwd",)
AMR_PASSWORD_AND_OTP = ("pwd", "otp", "mfa")
# A passkey with user verification: a key held by hardware ("hwk") or synced
# by software ("swk"), unlocked by its user ("user": PIN or biometrics).
PASSKEY_USER_VERIFIED = "user"


def passkey_amr(synced):
    return ("swk" if synced else "hwk", PASSKEY_USER_VERIFIED)


def is_multi_factor(amr):
    """Two factors proved this login: password and code, or a passkey that
    is something held and was unlocked by something known or inherent."""
    methods = set(amr or ())
    return "mfa" in methods or (PASSKEY_USER_VERIFIED in methods and bool(methods & {"hwk", "swk"}))


def is_client_token(claims):
    return "client_id" in claims


# Each kind of token's lifetime, by the setting that gives it.
LIFETIME_SETTINGS = {
    "access": "JWT_ACCESS_TOKEN_EXPIRES",
    "refresh": "JWT_REFRESH_TOKEN_EXPIRES",
    "client": "OAUTH_TOKEN_EXPIRES",
}


def lifetime(kind):
    """Seconds a token of `kind` lives (access, refresh, client)."""
    return int(current_app.config[LIFETIME_SETTINGS[kind]].total_seconds())


def lifetimes():
    return {kind: lifetime(kind) for kind in LIFETIME_SETTINGS}


def check_token_shape(header, claims):
    """Refuse a token whose header or claims are not what this API mints.

    Runs on the unverified token before its signature is checked; every check
    only refuses, so a token that passes is then verified as usual.
    """
    if any(name in header for name in FORBIDDEN_HEADERS):
        raise JWTDecodeError("key-location headers are not accepted")
    client = is_client_token(claims)
    missing = [
        name
        for name in (CLIENT_REQUIRED_CLAIMS if client else REQUIRED_CLAIMS)
        if name not in claims
    ]
    if missing:
        raise JWTDecodeError(f"missing claims: {', '.join(missing)}")
    token_type = claims["type"]
    expected_typ = TYP_BY_TYPE.get(token_type) if isinstance(token_type, str) else None
    if expected_typ is None or header.get("typ") != expected_typ:
        raise JWTDecodeError("unknown token type, or a header typ that does not fit it")
    if client and token_type != "access":  # noqa: S105 - a token kind, not a secret
        raise JWTDecodeError("a client's token is an access token")
    exp, iat = claims["exp"], claims["iat"]
    # Only the one that applies: this runs on every request.
    longest = lifetime("client" if client else token_type)
    if not (_is_int(exp) and _is_int(iat)) or exp - iat > longest:
        raise JWTDecodeError("token lives longer than this API issues")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)
