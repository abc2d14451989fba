"""Registration and password login, in the body (mobile, Postman) or in cookies (browsers)."""

from flask_smorest import abort

from api import tokens, users
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
def register(data):
    """Create a user account (role `user`)."""
    return users.register(data["username"], data["password"])


@blp.post("/login")
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
def login(credentials):
    """Log in with a password; the token pair comes in the body."""
    user = check_credentials(credentials)
    return tokens.issue_pair(user, tokens.new_session_id(), fresh=True)


@blp.post("/cookie/login")
@blp.arguments(LoginSchema)
@blp.response(200, CookieSessionSchema)
def cookie_login(credentials):
    """Log in with a password; the tokens come in httpOnly cookies."""
    user = check_credentials(credentials)
    pair = tokens.issue_pair(user, tokens.new_session_id(), fresh=True, cookies=True)
    return cookie_session(user, pair)


def check_credentials(credentials):
    user = users.authenticate(credentials["username"], credentials["password"])
    if user is None:
        abort(401, error="invalid_credentials", message="Wrong username or password.")
    return user
