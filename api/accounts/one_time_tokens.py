"""One-time tokens: the secret in a verification or reset link.

A token is 256 random bits, handed out once (in a mail) and kept only as its
SHA-256: whoever reads the database cannot use a link. A fast hash is enough
for a secret that long (nothing to guess); a slow one would only slow the
lookup. Each is single-use (taken by deleting its row, so of two concurrent
uses one wins), dies when a newer one of its kind is issued to the user or
the password changes, and expires: verification after 24 hours, reset after
30 minutes (CONTRACT.md).
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from flask_smorest import abort
from sqlalchemy import DateTime, ForeignKey, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from api.clock import as_utc, utcnow
from api.extensions import db

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 (a kind of link, not a password)
LIFETIMES = {VERIFY_EMAIL: timedelta(hours=24), RESET_PASSWORD: timedelta(minutes=30)}
# Expired tokens are kept this long, so that their link says "expired" rather
# than "invalid", then pruned (`flask links prune`).
KEEP_EXPIRED = timedelta(days=7)


class OneTimeToken(db.Model):
    __tablename__ = "one_time_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The address the link was mailed to: the one it proves.
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Link(NamedTuple):
    id: int
    user_id: int
    email: str


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def issue(user_id, kind, email):
    """A new token of `kind` for the user; any older one of that kind dies.
    Pending until the caller commits (with the mail that carries it)."""
    revoke_kind(user_id, kind)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        OneTimeToken(
            user_id=user_id,
            kind=kind,
            token_hash=digest(token),
            email=email,
            created_at=now,
            expires_at=now + LIFETIMES[kind],
        )
    )
    return token


def find(token, kind):
    """The live link of this token, or a refusal: `400 link_invalid` (unknown,
    used, tampered, superseded, another kind) or `400 link_expired`. Nothing
    is used up: a refused token stays as it was."""
    row = db.session.execute(
        select(OneTimeToken.id, OneTimeToken.kind, OneTimeToken.user_id, OneTimeToken.email,
               OneTimeToken.expires_at).where(OneTimeToken.token_hash == digest(token))
    ).first()  # fmt: skip
    if row is None or row.kind != kind:
        abort_link_invalid()
    if as_utc(row.expires_at) <= utcnow():
        abort(400, error="link_expired", message="This link has expired: ask for a new one.")
    return Link(row.id, row.user_id, row.email)


def use_up(link):
    """Take the link (gone once the caller commits, back if it rolls back).
    Callers lock its user first, so that links and locks are taken in one
    order by every flow (a password change locks the user, then ends links)."""
    taken = db.session.execute(delete(OneTimeToken).where(OneTimeToken.id == link.id))
    if taken.rowcount != 1:  # a concurrent use took it first
        abort_link_invalid()


def abort_link_invalid():
    abort(400, error="link_invalid", message="This link is not valid: it may have been used.")


def revoke_kind(user_id, kind):
    db.session.execute(
        delete(OneTimeToken).where(OneTimeToken.user_id == user_id, OneTimeToken.kind == kind)
    )


def revoke_all(user_id):
    """Every link of the user dies (a password change); pending until committed."""
    db.session.execute(delete(OneTimeToken).where(OneTimeToken.user_id == user_id))


def prune():
    """Forget tokens expired more than KEEP_EXPIRED ago; returns how many."""
    cutoff = utcnow() - KEEP_EXPIRED
    deleted = db.session.execute(delete(OneTimeToken).where(OneTimeToken.expires_at < cutoff))
    db.session.commit()
    return deleted.rowcount
