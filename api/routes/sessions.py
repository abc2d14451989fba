"""`/api/auth/sessions`: the caller's login sessions, listed and revoked."""

from flask_jwt_extended import get_current_user, get_jwt

from api.accounts import events
from api.auth import sessions
from api.auth.cookies import clear_cookies_if_sent
from api.auth.identity import token_required
from api.extensions import db
from api.routes import groups
from api.schemas import SessionSchema
from api.web.openapi import AUTH_DOC, READ_AUTH_DOC


@groups.account.get("/api/auth/sessions")
@groups.account.doc(**READ_AUTH_DOC)
@token_required()
@groups.account.response(200, SessionSchema(many=True))
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
            "expires_at": sessions.ends_at(s),
        }
        for s in sessions.live_sessions(get_current_user().id)
    ]


@groups.account.delete("/api/auth/sessions/<string:session_id>")
@groups.account.doc(**AUTH_DOC)
@token_required()
@groups.account.response(204)
def revoke_session(session_id):
    """Revoke one of the caller's sessions."""
    user_id = get_current_user().id
    record_revoked(user_id, sessions.revoke_one(user_id, session_id))
    if session_id == get_jwt()["sid"]:
        clear_cookies_if_sent()


@groups.account.delete("/api/auth/sessions")
@groups.account.doc(**AUTH_DOC)
@token_required()
@groups.account.response(204)
def revoke_all_sessions():
    """Revoke all of the caller's sessions, this one included."""
    user_id = get_current_user().id
    record_revoked(user_id, sessions.revoke_all(user_id, reason="user"))
    clear_cookies_if_sent()


def record_revoked(user_id, revoked):
    """The revocation and its event, in one commit."""
    events.record("session_revoked", user_id, get_jwt()["sid"], sessions=revoked)
    db.session.commit()
