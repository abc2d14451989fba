"""`/api/me/mfa/*` and `/api/auth/mfa`: TOTP with recovery codes, the second
factor after a password (api/auth/totp.py), and the login's second step
(api/auth/mfa_challenges.py). Passkeys are in api/routes/passkeys.py."""

from flask_jwt_extended import get_current_user, get_jwt
from flask_smorest import abort

from api.accounts import events
from api.auth import mfa_challenges, sessions, totp
from api.auth.claims import AMR_PASSWORD_AND_OTP
from api.auth.cookies import cookie_session
from api.auth.identity import changes_factors, lock_current_user, token_required
from api.extensions import db
from api.routes import groups
from api.schemas import (
    CodeSchema,
    CookieSessionSchema,
    MfaLoginSchema,
    RecoveryCodesSchema,
    TokenPairSchema,
    TotpEnrolmentSchema,
)
from api.web import limits
from api.web.openapi import AUTH_DOC

LOGIN_ANSWER_DOC = {"responses": {"200": {
    "description": "As the login that started it: a pair in the body, or cookies",
    "content": {"application/json": {"schema": {"oneOf": [
        {"$ref": "#/components/schemas/TokenPair"},
        {"$ref": "#/components/schemas/CookieSession"},
    ]}}},
}}}  # fmt: skip


@groups.mfa.post("/api/me/mfa/totp")
@groups.mfa.doc(**AUTH_DOC)
@token_required(fresh=True)
@changes_factors
@groups.mfa.response(200, TotpEnrolmentSchema)
def start_totp():
    """Start turning TOTP on (fresh token): a new secret, its otpauth URI and
    QR code. It counts once a code of it is sent to /confirm from this session."""
    lock_current_user()  # one enrolment at a time: a double click must not race
    return totp.start_enrolment(get_current_user(), get_jwt()["sid"])


@groups.mfa.post("/api/me/mfa/totp/confirm")
@groups.mfa.doc(**AUTH_DOC)
@token_required()
@changes_factors
@groups.mfa.arguments(CodeSchema)
@groups.mfa.response(200, RecoveryCodesSchema)
@limits.second_factor(lambda: get_current_user().username)
def confirm_totp(data):
    """Turn TOTP on with a first code from the app (a token of the session
    that started it); answers the ten recovery codes, this once."""
    user, sid = lock_current_user(), get_jwt()["sid"]
    if totp.pending_secret(user.id, sid) is None:
        _nothing_to_confirm()
    codes = totp.confirm(user, sid, data["code"])
    if codes is None:
        totp.refuse_code(user.id, sid, "confirm", data["code"])
    if codes == totp.NOTHING_PENDING:
        _nothing_to_confirm()
    # Sessions opened with the password alone end: from now on a login
    # needs a code, and a thief's earlier login must not outlive that.
    ended = sessions.revoke_all(user.id, reason="mfa_enabled", keep=sid)
    events.record("mfa_enabled", user.id, sid, method=totp.TOTP, sessions_revoked=len(ended))
    totp.count_success(totp.TOTP)
    db.session.commit()
    return {"recovery_codes": codes}


def _nothing_to_confirm():
    abort(
        409,
        error="nothing_to_confirm",
        message="No TOTP enrolment is pending in this session: start one first.",
    )


@groups.mfa.delete("/api/me/mfa/totp")
@groups.mfa.doc(**AUTH_DOC)
@token_required(fresh=True)
@changes_factors
@groups.mfa.arguments(CodeSchema)
@groups.mfa.response(204)
@limits.second_factor(lambda: get_current_user().username)
def turn_off_totp(data):
    """Turn TOTP off (fresh token), with a code from the app or a recovery code."""
    user, sid = _user_with_totp()
    method = totp.check_code(user.id, data["code"])
    if method is None:
        totp.refuse_code(user.id, sid, "disable", data["code"])
    totp.turn_off(user)
    mfa_challenges.revoke_all(user.id)
    events.record("mfa_disabled", user.id, sid, method=method)
    totp.count_success(method)
    db.session.commit()


@groups.mfa.post("/api/me/mfa/recovery-codes")
@groups.mfa.doc(**AUTH_DOC)
@token_required(fresh=True)
@changes_factors
@groups.mfa.response(200, RecoveryCodesSchema)
def new_recovery_codes():
    """A new set of ten recovery codes (fresh token); the old set stops working."""
    user, _sid = _user_with_totp()
    codes = totp.replace_recovery_codes(user.id)
    db.session.commit()
    return {"recovery_codes": codes}


def _user_with_totp():
    user = lock_current_user()
    if not user.mfa_enabled:
        abort(409, error="mfa_not_enabled", message="TOTP is not on for this account.")
    return user, get_jwt()["sid"]


@groups.login.post("/api/auth/mfa")
@groups.login.doc(**LOGIN_ANSWER_DOC)
@groups.login.arguments(MfaLoginSchema)
@limits.second_factor(lambda: mfa_challenges.username_of(limits.body_field("mfa_token") or ""))
def finish_login(data):
    """The login's second step: the `mfa_token` of a `401 mfa_required` and a
    code from the app (or a recovery code) answer as that login would have."""
    user, cookies, method = mfa_challenges.finish(data["mfa_token"], data["code"])
    pair = sessions.start(
        user, cookies=cookies, amr=AMR_PASSWORD_AND_OTP, method=f"password+{method}"
    )
    if cookies:
        return CookieSessionSchema().dump(cookie_session(user, pair))
    return TokenPairSchema().dump(pair)
