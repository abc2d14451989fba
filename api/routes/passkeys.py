"""Passkeys: `/api/me/passkeys` (register, list, remove) and the login
without a password, `/api/auth/passkey/*` and `/api/auth/cookie/passkey/login`
(api/auth/passkeys.py does the work)."""

from flask_jwt_extended import get_current_user, get_jwt

from api.auth import passkeys, sessions
from api.auth.claims import passkey_amr
from api.auth.cookies import cookie_session
from api.auth.identity import changes_factors, token_required
from api.routes import groups
from api.schemas import (
    MAX_ID,
    CookieSessionSchema,
    PasskeyChallengeSchema,
    PasskeyCreateSchema,
    PasskeyCreationOptionsSchema,
    PasskeyLoginOptionsSchema,
    PasskeyLoginSchema,
    PasskeySchema,
    TokenPairSchema,
)
from api.web import limits
from api.web.openapi import AUTH_DOC, READ_AUTH_DOC

blp = groups.passkeys


@blp.post("/api/me/passkeys/options")
@blp.doc(**AUTH_DOC)
@token_required(fresh=True)
@changes_factors
@blp.response(200, PasskeyCreationOptionsSchema)
def registration_options():
    """Start registering a passkey (fresh token): options for navigator.credentials.create().

    They are for this login session only, for 5 minutes; asking again replaces them.
    """
    return passkeys.registration_options(get_current_user(), get_jwt()["sid"])


@blp.post("/api/me/passkeys")
@blp.doc(**AUTH_DOC)
@token_required()
@changes_factors
@blp.arguments(PasskeyCreateSchema)
@blp.response(201, PasskeySchema)
def add_passkey(data):
    """Finish registering: the browser's credential, from the session that asked for the options.

    400 `webauthn_failed`: no options pending in this session (or used, or
    older than 5 minutes), a wrong origin or RP id, no user verification,
    or a credential registered already.
    """
    user_id, sid = get_current_user().id, get_jwt()["sid"]
    return passkeys.register(user_id, sid, data["name"], data["credential"])


@blp.get("/api/me/passkeys")
@blp.doc(**READ_AUTH_DOC)
@token_required()
@blp.response(200, PasskeySchema(many=True))
def list_passkeys():
    """The caller's passkeys, oldest first."""
    return passkeys.listing(get_current_user().id)


@blp.delete(f"/api/me/passkeys/<int(max={MAX_ID}):passkey_id>")
@blp.doc(**AUTH_DOC)
@token_required(fresh=True)
@changes_factors
@blp.response(204)
def remove_passkey(passkey_id):
    """Remove a passkey (fresh token): it logs in no more. 404 if it is not the caller's."""
    passkeys.remove(get_current_user().id, passkey_id, get_jwt()["sid"])


@blp.post("/api/auth/passkey/options")
@blp.arguments(PasskeyLoginOptionsSchema)
@blp.response(200, PasskeyChallengeSchema)
@limits.per_address
def login_options(_data):
    """Start a login with a passkey: options for navigator.credentials.get(), and a challenge_id.

    Any passkey of this site may answer, user verification required. The
    challenge works once, within 5 minutes.
    """
    return passkeys.login_options()


@blp.post("/api/auth/passkey/login")
@blp.arguments(PasskeyLoginSchema)
@blp.response(200, TokenPairSchema)
@limits.per_address
def passkey_login(data):
    """Log in with a passkey; the token pair comes in the body, as /api/auth/login's.

    400 `webauthn_failed`: the challenge unknown, used or expired, a wrong
    origin or RP id, a bad signature, no user verification, an unknown
    passkey, a sign counter gone back, or a disabled account.
    """
    user, synced = passkeys.authenticate(data["challenge_id"], data["credential"])
    return _start(user, synced, cookies=False)


@blp.post("/api/auth/cookie/passkey/login")
@blp.arguments(PasskeyLoginSchema)
@blp.response(200, CookieSessionSchema)
@limits.per_address
def cookie_passkey_login(data):
    """Log in with a passkey; the tokens come in httpOnly cookies, as /api/auth/cookie/login's.

    Refusals as /api/auth/passkey/login's.
    """
    user, synced = passkeys.authenticate(data["challenge_id"], data["credential"])
    return cookie_session(user, _start(user, synced, cookies=True))


def _start(user, synced, cookies):
    return sessions.start(user, cookies=cookies, amr=passkey_amr(synced), method="passkey")
