"""The caller's login sessions and password: log out, list and revoke
sessions, change the password."""

from flask import after_this_request, request
from flask_jwt_extended import get_current_user, get_jwt, unset_jwt_cookies
from flask_smorest import abort

from api import limits, sessions, users
from api.auth import token_required
from api.extensions import db
from api.json_http import AUTH_DOC, READ_AUTH_DOC, Blueprint
from api.schemas import PasswordChangeSchema, SessionSchema

blp = Blueprint("account", __name__, url_prefix="/api", description="Sessions and password")

JWT_COOKIES = ("access_token_cookie", "refresh_token_cookie")


@blp.post("/auth/logout")
@blp.doc(**AUTH_DOC)
@blp.response(204)
@token_required()
def logout():
    """End this token's session; clears the cookies it came with."""
    sessions.revoke([get_jwt()["sid"]], reason="logout")
    clear_cookies_if_sent()


def clear_cookies_if_sent():
    if any(name in request.cookies for name in JWT_COOKIES):
        after_this_request(clear_cookies)


def clear_cookies(response):
    unset_jwt_cookies(response)
    return response


@blp.get("/auth/sessions")
@blp.doc(**READ_AUTH_DOC)
@blp.response(200, SessionSchema(many=True))
@token_required()
def list_sessions():
    """The caller's live sessions, most recently used first."""
    current = get_jwt()["sid"]
    return [
        {
            "id": s.id,
            "created_at": s.created_at,
            "last_used_at": s.last_used_at,
            "user_agent": s.user_agent,
            "ip": s.ip,
            "current": s.id == current,
        }
        for s in sessions.live_sessions(get_current_user().id)
    ]


@blp.delete("/auth/sessions/<string:session_id>")
@blp.doc(**AUTH_DOC)
@blp.response(204)
@token_required()
def revoke_session(session_id):
    """Revoke one of the caller's sessions."""
    sessions.revoke_one(get_current_user().id, session_id)
    if session_id == get_jwt()["sid"]:
        clear_cookies_if_sent()


@blp.delete("/auth/sessions")
@blp.doc(**AUTH_DOC)
@blp.response(204)
@token_required()
def revoke_all_sessions():
    """Revoke all of the caller's sessions, this one included."""
    sessions.revoke_all(get_current_user().id, reason="user")
    clear_cookies_if_sent()


@blp.put("/me/password")
@blp.doc(**AUTH_DOC)
@token_required(fresh=True)
@limits.per_address
@blp.arguments(PasswordChangeSchema)
@blp.response(204)
def change_password(data):
    """Change the password (fresh token only); every other session ends."""
    user = db.session.get(users.User, get_current_user().id)
    if not users.check_password(user, data["current_password"]):
        abort(
            422,
            message="The request body is not valid.",
            messages={"json": {"current_password": ["Wrong password."]}},
        )
    users.set_password(user, data["new_password"])
    # One commit: the new password and the end of the other sessions land together.
    sessions.revoke_all(user.id, reason="password_change", keep=get_jwt()["sid"])
