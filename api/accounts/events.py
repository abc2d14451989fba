"""Security events: what happened to an account, when, from where.

`record()` adds an event to the request's pending changes, so it commits with
the act it describes (a new session, a new password, a revocation) or not at
all; `record_alone()` is for acts that change nothing else, such as a failed
login. An event's `details` are a few fixed keys chosen by its caller: never a
password, token, code or secret.
"""

import ipaddress
from datetime import datetime

from flask import current_app, request
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    String,
    delete,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.clock import utcnow
from api.database import after_commit
from api.extensions import db
from api.schemas import EVENT_TYPES
from api.web.metrics import SECURITY_EVENTS


class SecurityEvent(db.Model):
    __tablename__ = "security_events"
    __table_args__ = (
        db.Index("ix_security_events_user_id_id", "user_id", "id"),
        db.Index("ix_security_events_type_id", "type", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    # None for a failed login with a username no account has.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    # The login session the act was done in (or, for a login, opened).
    session_id: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict] = mapped_column(JSON)


def client():
    """The caller's address (after ProxyFix) and user agent, cut to their columns.

    An address that is not one (a forwarded header as a client wrote it) is
    not kept. The agent is decoded as UTF-8, which browsers send and WSGI hands
    over as latin-1, without NUL, which PostgreSQL's text cannot hold (gunicorn
    refuses it in a header; other servers may not).
    """
    address = request.remote_addr or ""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        address = ""
    agent = request.user_agent.string or ""
    agent = agent.encode("latin-1", "replace").decode("utf-8", "replace").replace("\x00", "")
    return address[:45] or None, agent[:256] or None


def record(type_, user_id, session_id=None, **details):
    """Pending until the caller commits the act it describes."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown security event type {type_!r}")
    ip, user_agent = client()
    db.session.add(
        SecurityEvent(
            user_id=user_id,
            type=type_,
            at=utcnow(),
            ip=ip,
            user_agent=user_agent,
            session_id=session_id,
            details=details,
        )
    )
    # Counted in /metrics once committed: an act that fails takes its event with it.
    after_commit(SECURITY_EVENTS.labels(type_).inc)


def record_alone(type_, user_id, session_id=None, **details):
    """For an act that changes nothing else: committed at once, on its own."""
    record(type_, user_id, session_id, **details)
    db.session.commit()


def listing(user_id=None, type_=None):
    """Newest first, optionally one user's or one type's."""
    query = select(SecurityEvent).order_by(SecurityEvent.id.desc())
    if user_id is not None:
        query = query.where(SecurityEvent.user_id == user_id)
    if type_ is not None:
        query = query.where(SecurityEvent.type == type_)
    return query


def prune():
    """Forget events older than SECURITY_EVENTS_RETENTION; returns how many."""
    cutoff = utcnow() - current_app.config["SECURITY_EVENTS_RETENTION"]
    deleted = db.session.execute(delete(SecurityEvent).where(SecurityEvent.at < cutoff))
    db.session.commit()
    return deleted.rowcount
