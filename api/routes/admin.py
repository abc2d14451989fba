"""`/api/admin/users`: user administration, for the role `admin` (OWASP API5:
function-level authorization is checked on every route, from the stored roles)."""

from flask_jwt_extended import get_current_user, get_jwt
from flask_smorest import abort
from sqlalchemy import func, select

from api.accounts import events, users
from api.accounts.users import User
from api.auth import mfa_challenges, passkeys, personal_tokens, sessions, totp
from api.auth.identity import roles_required
from api.extensions import db
from api.routes import groups
from api.schemas import (
    MAX_ID,
    AdminEventQuerySchema,
    AdminSecurityEventSchema,
    AdminUserPatchSchema,
    AdminUserSchema,
    UserQuerySchema,
)
from api.web.openapi import AUTH_DOC, READ_AUTH_DOC
from api.web.pagination import PageQuerySchema, paginate

# ADMIN_MFA_REQUIRED: administrators must have logged in with a second factor.
admin_required = roles_required("admin", mfa_setting="ADMIN_MFA_REQUIRED")


@groups.admin.get("/api/admin/users")
@groups.admin.doc(**READ_AUTH_DOC)
@admin_required
@groups.admin.arguments(UserQuerySchema, location="query", as_kwargs=True)
@groups.admin.arguments(PageQuerySchema, location="query", as_kwargs=True)
@groups.admin.response(200, AdminUserSchema(many=True))
def list_users(page, per_page, username=None):
    """Users, by id; `username` filters by prefix, whatever the case."""
    query = select(User).order_by(User.id)
    if username:
        # LIKE's wildcards in a prefix are plain characters.
        escaped = username.lower().replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(User.username).like(f"{escaped}%", escape="\\"))
    return paginate(query, page, per_page)


@groups.admin.patch(f"/api/admin/users/<int(max={MAX_ID}):user_id>")
@groups.admin.doc(**AUTH_DOC)
@admin_required
@groups.admin.arguments(AdminUserPatchSchema)
@groups.admin.response(200, AdminUserSchema)
def update_user(data, user_id):
    """Set a user's roles or disable them; either that takes something away
    ends all of their sessions at once."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, message="No such user.")
    check_admins_remain(user, data)
    lost_roles = "roles" in data and not set(user.roles) <= set(data["roles"])
    disabling = data.get("disabled") is True and not user.disabled
    # As a password reset does: whoever is shut out keeps no way back in.
    tokens_revoked = personal_tokens.remove_all(user.id) if disabling else 0
    record_changes(user, data, tokens_revoked)
    for field, value in data.items():
        setattr(user, field, sorted(set(value)) if field == "roles" else value)
    if lost_roles or disabling:
        sessions.revoke_all(user.id, reason="admin")
    # One commit: the change, its events and the end of the user's sessions and tokens.
    db.session.commit()
    return user


@groups.admin.delete(f"/api/admin/users/<int(max={MAX_ID}):user_id>/mfa")
@groups.admin.doc(**AUTH_DOC)
@admin_required
@groups.admin.response(204)
def reset_factors(user_id):
    """Turn every factor of a user off (TOTP, recovery codes, passkeys), for
    one who lost them; ends all of their sessions at once."""
    user = users.lock(user_id)
    if user is None:
        abort(404, message="No such user.")
    totp.turn_off(user)
    removed = passkeys.remove_all(user.id)
    mfa_challenges.revoke_all(user.id)
    ended = sessions.revoke_all(user.id, reason="mfa_reset")
    events.record(
        "mfa_disabled",
        user.id,
        get_jwt()["sid"],
        by=get_current_user().id,
        passkeys_removed=removed,
        sessions_revoked=len(ended),
    )
    db.session.commit()


def record_changes(user, data, tokens_revoked):
    """The target user's events, naming the administrator who acted (and,
    for a disabled account, how many personal access tokens it lost)."""
    admin, sid = get_current_user().id, get_jwt()["sid"]
    roles = sorted(set(data.get("roles", user.roles)))
    if roles != sorted(user.roles):
        events.record("roles_changed", user.id, sid, by=admin, old=sorted(user.roles), new=roles)
    if data.get("disabled", user.disabled) != user.disabled:
        if data["disabled"]:
            events.record("user_disabled", user.id, sid, by=admin, tokens_revoked=tokens_revoked)
        else:
            events.record("user_enabled", user.id, sid, by=admin)


@groups.admin.get("/api/admin/events")
@groups.admin.doc(**READ_AUTH_DOC)
@admin_required
@groups.admin.arguments(AdminEventQuerySchema, location="query", as_kwargs=True)
@groups.admin.arguments(PageQuerySchema, location="query", as_kwargs=True)
@groups.admin.response(200, AdminSecurityEventSchema(many=True))
def list_events(page, per_page, user_id=None, type=None):  # noqa: A002 (the query parameter)
    """Everyone's security events, newest first; filter by `user_id` and `type`."""
    return paginate(events.listing(user_id=user_id, type_=type), page, per_page)


def check_admins_remain(user, data):
    """No administrator disables themselves, nor removes the last administrator."""
    stays_admin = "admin" in data.get("roles", user.roles) and not data.get(
        "disabled", user.disabled
    )
    if "admin" not in user.roles or user.disabled or stays_admin:
        return
    if user.id == get_current_user().id and data.get("disabled"):
        invalid("disabled", "You cannot disable yourself.")
    others = db.session.scalars(select(User).where(User.id != user.id, User.disabled.is_(False)))
    if not any("admin" in other.roles for other in others):
        invalid("roles" if "roles" in data else "disabled", "The last administrator must remain.")


def invalid(field, message):
    abort(422, message="The request body is not valid.", messages={"json": {field: [message]}})
