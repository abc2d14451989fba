"""Registration and password login, in the body (mobile, Postman) or in cookies (browsers)."""

from flask_smorest import abort

from api import limits, metrics, sessions, tokens, users
from api.cookies import cookie_session
from api.json_http import Blueprint
from api.schemas import (
    CookieSessionSchema,
    LoginSchema,
    RegisterSchema,
    TokenPairSchema,
    UserSchema,
)

blp = Blueprint("login", __name__, url_prefix="/api/auth", description="Register and log in")


@blp.post("/register")
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
@limits.per_address
@limits.per_username
def register(data):
    """Create a user account (role `user`)."""
    return users.register(data["username"], data["password"])


@blp.post("/login")
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
@limits.per_address
@limits.per_username
def login(credentials):
    """Log in with a password; the token pair comes in the body."""
    return start_session(check_credentials(credentials), cookies=False)


@blp.post("/cookie/login")
@blp.arguments(LoginSchema)
@blp.response(200, CookieSessionSchema)
@limits.per_address
@limits.per_username
def cookie_login(credentials):
    """Log in with a password; the tokens come in httpOnly cookies."""
    user = check_credentials(credentials)
    return cookie_session(user, start_session(user, cookies=True))


def start_session(user, cookies):
    """A new login session and its first, fresh, token pair."""
    sid = tokens.new_session_id()
    pair = tokens.issue_pair(user, sid, fresh=True, cookies=cookies)
    sessions.open_session(user, sid, pair)
    return pair


def check_credentials(credentials):
    user = users.authenticate(credentials["username"], credentials["password"])
    metrics.LOGINS.labels("failed" if user is None else "ok").inc()
    if user is None:
        abort(401, error="invalid_credentials", message="Wrong username or password.")
    return user
