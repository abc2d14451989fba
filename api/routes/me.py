"""`/api/me`: the user an access token speaks for, their password, and what
happened to their account (security events)."""

from flask_jwt_extended import get_current_user, get_jwt
from flask_smorest import abort

from api.accounts import email_flows, events, users
from api.auth import sessions
from api.auth.identity import lock_current_user, token_required
from api.auth.scopes import PROFILE_READ
from api.extensions import db
from api.routes import groups
from api.schemas import (
    EventQuerySchema,
    OwnSecurityEventSchema,
    PasswordChangeSchema,
    UserSchema,
)
from api.web import limits
from api.web.openapi import AUTH_DOC, READ_AUTH_DOC
from api.web.pagination import PageQuerySchema, paginate


@groups.resources.get("/api/me")
@groups.resources.doc(**READ_AUTH_DOC)
@token_required(scope=PROFILE_READ)
@groups.resources.response(200, UserSchema)
def me():
    """The user the access token belongs to."""
    return get_current_user()


@groups.account.put("/api/me/password")
@groups.account.doc(**AUTH_DOC)
@token_required(fresh=True)
@groups.account.arguments(PasswordChangeSchema)
@groups.account.response(204)
@limits.per_address
def change_password(data):
    """Change the password (fresh token only); every other session ends."""
    user = lock_current_user()
    if not users.check_password(user, data["current_password"]):
        abort(
            422,
            message="The request body is not valid.",
            messages={"json": {"current_password": ["Wrong password."]}},
        )
    users.set_password(user, data["new_password"])
    email_flows.forget_links(user)
    sid = get_jwt()["sid"]
    ended = sessions.revoke_all(user.id, reason="password_change", keep=sid)
    events.record("password_changed", user.id, sid, sessions_revoked=len(ended))
    # One commit: the new password, the end of the other sessions and links, the event.
    db.session.commit()


@groups.account.get("/api/me/events")
@groups.account.doc(**READ_AUTH_DOC)
@token_required()
@groups.account.arguments(EventQuerySchema, location="query", as_kwargs=True)
@groups.account.arguments(PageQuerySchema, location="query", as_kwargs=True)
@groups.account.response(200, OwnSecurityEventSchema(many=True))
def my_events(page, per_page, type=None):  # noqa: A002 (the query parameter's name)
    """What happened to the caller's account, newest first."""
    query = events.listing(user_id=get_current_user().id, type_=type)
    return paginate(query, page, per_page)
