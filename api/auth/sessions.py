"""Login sessions: one per password login (the tokens' `sid`), refresh-token
rotation with reuse detection, and revocation.

Every refresh replaces the session's current refresh token in one conditional
UPDATE (compare-and-swap on the current `jti`), so of N concurrent refreshes
with one token exactly one wins. A rotated-out token is remembered until it
expires: presented again within the grace window it is "superseded" (a tab or
a retry racing); after it, it is "reused" and the whole session is revoked,
the newest tokens included, as Auth0's and SuperTokens' theft detection do.

A session also ends SESSION_MAX_AGE after its login however it is used, and
when it has not been used (logged in or refreshed) for SESSION_IDLE_TIMEOUT:
its refresh is then `session_expired`.
"""

from datetime import datetime, timedelta

from flask import current_app
from flask_smorest import abort
from sqlalchemy import DateTime, ForeignKey, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from api.accounts import events
from api.auth import minting
from api.auth.claims import AMR_PASSWORD
from api.auth.revocation import store
from api.clock import as_utc, from_timestamp, utcnow
from api.extensions import db
from api.web.errors import bearer_challenge
from api.web.metrics import REFRESHES, REUSE_DETECTIONS, REVOCATIONS


class LoginSession(db.Model):
    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    ip: Mapped[str | None] = mapped_column(String(45))
    refresh_jti: Mapped[str] = mapped_column(String(36))
    # The current refresh token's expiry: the session ends with it.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RotatedRefreshToken(db.Model):
    """A refresh token that a rotation replaced, kept until it expires."""

    __tablename__ = "rotated_refresh_tokens"

    jti: Mapped[str] = mapped_column(String(36), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("login_sessions.id", ondelete="CASCADE"), index=True
    )
    rotated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def start(user, cookies, amr=AMR_PASSWORD, method="password"):
    """A new login session and its first, fresh, token pair. `amr`: how the
    user proved who they are; `method`: the login event's name for it."""
    sid = minting.new_session_id()
    pair = minting.issue_pair(user, sid, fresh=True, cookies=cookies, amr=amr)
    _open(user, sid, pair, method)
    return pair


def refresh(user, claims, cookies):
    """The next pair of the presented refresh token's session (`claims`), in
    place of it. The session carries on: only a login is fresh. Refresh
    tokens minted before `amr` existed came from password logins."""
    amr = claims.get("amr") or AMR_PASSWORD
    pair = minting.issue_pair(user, claims["sid"], fresh=False, cookies=cookies, amr=amr)
    _rotate(claims, pair)
    REFRESHES.labels("ok").inc()
    return pair


def _open(user, sid, pair, method):
    now = utcnow()
    ip, user_agent = events.client()
    db.session.add(
        LoginSession(
            id=sid,
            user_id=user.id,
            created_at=now,
            last_used_at=now,
            user_agent=user_agent,
            ip=ip,
            refresh_jti=pair.refresh_jti,
            expires_at=from_timestamp(pair.refresh_exp),
        )
    )
    events.record("login", user.id, sid, method=method)
    db.session.commit()


def lifetimes():
    """(SESSION_MAX_AGE, SESSION_IDLE_TIMEOUT) as timedeltas."""
    config = current_app.config
    return config["SESSION_MAX_AGE"], (
        config["SESSION_IDLE_TIMEOUT"] or config["JWT_REFRESH_TOKEN_EXPIRES"]
    )


def ends_at(session):
    """When a session ends if nothing revokes it: at its age limit, when it
    has been idle too long, or with its refresh token, whichever comes first."""
    max_age, idle = lifetimes()
    return min(
        as_utc(session.created_at) + max_age,
        as_utc(session.last_used_at) + idle,
        as_utc(session.expires_at),
    )


def _within_lifetimes(now):
    """SQL: the session is neither too old nor idle too long at `now`."""
    max_age, idle = lifetimes()
    return (LoginSession.created_at > now - max_age) & (LoginSession.last_used_at > now - idle)


def _rotate(claims, pair):
    """Make `pair` the session's current tokens in place of the presented
    refresh token (`claims`), or refuse with the contract's error."""
    now = utcnow()
    swapped = db.session.execute(
        update(LoginSession)
        .where(
            LoginSession.id == claims["sid"],
            LoginSession.refresh_jti == claims["jti"],
            LoginSession.revoked_at.is_(None),
            _within_lifetimes(now),
        )
        .values(
            refresh_jti=pair.refresh_jti,
            last_used_at=now,
            expires_at=from_timestamp(pair.refresh_exp),
        )
    )
    if swapped.rowcount == 1:
        db.session.add(
            RotatedRefreshToken(
                jti=claims["jti"],
                session_id=claims["sid"],
                rotated_at=now,
                expires_at=from_timestamp(claims["exp"]),
            )
        )
        db.session.commit()
        return
    db.session.rollback()
    _refuse_rotation(claims, now)


def _refuse_rotation(claims, now):
    session = db.session.get(LoginSession, claims["sid"])
    rotated = db.session.get(RotatedRefreshToken, claims["jti"])
    if session is None or session.revoked_at is not None:
        REFRESHES.labels("revoked").inc()
        _abort_token(401, "token_revoked", "The token's session has ended.")
    grace = timedelta(seconds=current_app.config["JWT_REFRESH_GRACE_SECONDS"])
    if rotated is not None and now - as_utc(rotated.rotated_at) > grace:
        # Someone holds a refresh token that was already used: end the
        # session, even one past its lifetime (its last access token lives on).
        events.record("refresh_reused", session.user_id, session.id)
        revoke([session.id], reason="reuse")
        db.session.commit()
        REFRESHES.labels("reused").inc()
        REUSE_DETECTIONS.inc()
        _abort_token(
            401, "refresh_token_reused", "This refresh token was used before; log in again."
        )
    if ends_at(session) <= now:
        REFRESHES.labels("expired").inc()
        _abort_token(401, "session_expired", "This login session has expired; log in again.")
    if rotated is None:
        REFRESHES.labels("revoked").inc()
        _abort_token(401, "token_revoked", "The token's session has ended.")
    REFRESHES.labels("superseded").inc()
    _abort_token(
        401,
        "refresh_token_superseded",
        "This refresh token was just replaced; retry with the newer one.",
    )


def _abort_token(status, error, message):
    abort(status, error=error, message=message, headers=bearer_challenge())


def revoke(session_ids, reason):
    """Revoke sessions at once on every worker and instance; returns the ids of
    those this call ended (not those another request ended first).

    The store first: if it cannot be reached the caller gets a 503 and nothing
    has changed. The database's record is pending until the caller commits it,
    with the act that ends the sessions (a new password) and its security event.
    """
    if not session_ids:
        return []
    ends = db.session.execute(
        select(LoginSession.id, LoginSession.expires_at).where(LoginSession.id.in_(session_ids))
    )
    store().revoke({row.id: as_utc(row.expires_at) for row in ends})
    ended = db.session.scalars(
        update(LoginSession)
        .where(LoginSession.id.in_(session_ids), LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(LoginSession.id)
    ).all()
    REVOCATIONS.labels(reason).inc(len(ended))
    return ended


def live_sessions(user_id):
    """The user's sessions that can still be refreshed, most recently used first."""
    now = utcnow()
    return db.session.scalars(
        select(LoginSession)
        .where(_open_sessions_of(user_id, now), _within_lifetimes(now))
        .order_by(LoginSession.last_used_at.desc())
    ).all()


def _open_sessions_of(user_id, now):
    return (
        (LoginSession.user_id == user_id)
        & LoginSession.revoked_at.is_(None)
        & (LoginSession.expires_at > now)
    )


def _with_live_tokens(user_id):
    """The user's sessions whose tokens may still be accepted: the live ones,
    and those past a lifetime whose last access token has not yet expired."""
    now = utcnow()
    minted_lately = LoginSession.last_used_at > now - current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    query = select(LoginSession.id).where(
        _open_sessions_of(user_id, now), _within_lifetimes(now) | minted_lately
    )
    return db.session.scalars(query).all()


def is_open(session_id):
    """Read in the caller's transaction: after a lock, it sees a revocation
    committed while the request waited for it."""
    query = select(LoginSession.id).where(
        LoginSession.id == session_id, LoginSession.revoked_at.is_(None)
    )
    return db.session.scalar(query) is not None


def revoke_all(user_id, reason, keep=None):
    """Every session of the user whose tokens may still be accepted, but
    `keep`; pending until committed."""
    return revoke([sid for sid in _with_live_tokens(user_id) if sid != keep], reason)


def revoke_one(user_id, session_id):
    """Someone else's session, or one whose tokens can no longer be accepted,
    is 404: as if it did not exist. One past its lifetime whose last access
    token still lives can be revoked, though the list no longer shows it.
    Pending until committed."""
    if session_id not in _with_live_tokens(user_id):
        abort(404, message="No such session.")
    return revoke([session_id], reason="user")


def prune():
    """Forget what has ended: rotated tokens and sessions past their expiry,
    whose tokens can no longer be presented. Returns (tokens, sessions)."""
    now = utcnow()
    ended = select(LoginSession.id).where(LoginSession.expires_at < now)
    tokens = db.session.execute(
        delete(RotatedRefreshToken).where(
            (RotatedRefreshToken.expires_at < now) | RotatedRefreshToken.session_id.in_(ended)
        )
    ).rowcount
    sessions = db.session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    db.session.commit()
    return tokens, sessions.rowcount
