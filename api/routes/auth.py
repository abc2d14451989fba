"""`/api/auth/*`: register, log in (tokens in the body for mobile apps and
Postman, or in cookies for browsers), refresh, log out, and the presented
token's claims. The sessions list is in api/routes/sessions.py."""

from flask_jwt_extended import get_current_user, get_jwt, get_jwt_request_location
from flask_smorest import abort

from api.accounts import events, users
from api.auth import mfa_challenges, sessions
from api.auth.cookies import clear_cookies_if_sent, cookie_session
from api.auth.identity import token_required
from api.extensions import db
from api.routes import groups
from api.schemas import (
    CookieSessionSchema,
    LoginSchema,
    RegisterSchema,
    TokenClaimsSchema,
    TokenPairSchema,
    UserSchema,
)
from api.web import limits, metrics
from api.web.openapi import AUTH_DOC, READ_AUTH_DOC, REFRESH_AUTH_DOC


@groups.login.post("/api/auth/register")
@groups.login.arguments(RegisterSchema)
@groups.login.response(201, UserSchema)
@limits.credentials
@limits.mail_sending(limits.body_email)
def register(data):
    """Create a user account (role `user`); an email, if given, gets a verification link."""
    return users.register(data["username"], data["password"], data.get("email"))


@groups.login.post("/api/auth/login")
@groups.login.arguments(LoginSchema)
@groups.login.response(200, TokenPairSchema)
@limits.credentials
def login(credentials):
    """Log in with a password; the token pair comes in the body. With TOTP on:
    `401 mfa_required` and an `mfa_token` for /api/auth/mfa."""
    return sessions.start(check_credentials(credentials, cookies=False), cookies=False)


@groups.login.post("/api/auth/cookie/login")
@groups.login.arguments(LoginSchema)
@groups.login.response(200, CookieSessionSchema)
@limits.credentials
def cookie_login(credentials):
    """Log in with a password; the tokens come in httpOnly cookies. With TOTP
    on: `401 mfa_required` and an `mfa_token` for /api/auth/mfa."""
    user = check_credentials(credentials, cookies=True)
    return cookie_session(user, sessions.start(user, cookies=True))


def check_credentials(credentials, cookies):
    attempt = users.locked_attempt(
        users.authenticate(credentials["username"], credentials["password"])
    )
    metrics.LOGINS.labels("failed" if attempt.user is None else "ok").inc()
    if attempt.user is None:
        events.record_alone("login_failed", attempt.account_id, reason=attempt.failure)
        abort(401, error="invalid_credentials", message="Wrong username or password.")
    if attempt.user.mfa_enabled:
        mfa_challenges.demand(attempt.user, cookies)
    return attempt.user


@groups.refresh.post("/api/auth/refresh")
@groups.refresh.doc(**REFRESH_AUTH_DOC)
@groups.refresh.doc(responses={"200": {
    "description": "A new pair: in the body (header mode), or as cookies (cookie mode)",
    "content": {"application/json": {"schema": {"oneOf": [
        {"$ref": "#/components/schemas/TokenPair"},
        {"$ref": "#/components/schemas/CookieSession"},
    ]}}},
}})  # fmt: skip
@token_required(refresh=True)
@limits.refresh_per_address
def refresh():
    """Swap a refresh token for a new pair (rotation); cookie mode answers with new cookies."""
    user = get_current_user()
    in_cookies = get_jwt_request_location() == "cookies"
    pair = sessions.refresh(user, get_jwt(), cookies=in_cookies)
    if in_cookies:
        return CookieSessionSchema().dump(cookie_session(user, pair))
    return TokenPairSchema().dump(pair)


@groups.account.post("/api/auth/logout")
@groups.account.doc(**AUTH_DOC)
@token_required()
@groups.account.response(204)
def logout():
    """End this token's session; clears the cookies it came with."""
    user_id, sid = get_current_user().id, get_jwt()["sid"]
    events.record("logout", user_id, sid)
    sessions.revoke([sid], reason="logout")
    db.session.commit()
    clear_cookies_if_sent()


@groups.resources.get("/api/auth/token")
@groups.resources.doc(**READ_AUTH_DOC)
@token_required(user=False)
@groups.resources.response(200, TokenClaimsSchema)
def token_claims():
    """The presented access token's claims (the tutorial's "Show details")."""
    return get_jwt()
