"""The challenges of passkey ceremonies (api/auth/passkeys.py): random bytes
the authenticator signs, kept in the database so that every worker and
instance knows them, for five minutes, each good for one answer.

A challenge is taken by deleting its row and committing before its answer is
checked: of two concurrent uses one wins, and a failed attempt uses it up
too. A registration's belongs to the login session that asked for it (a new
one replaces it); a login's to nobody, found by its random id. Expired ones
go whenever a new one is kept, and with `flask sessions prune`.
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import DateTime, ForeignKey, LargeBinary, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from api.clock import as_utc, utcnow
from api.extensions import db

LIFETIME = timedelta(minutes=5)
REGISTER, LOGIN = "register", "login"


class WebAuthnChallenge(db.Model):
    __tablename__ = "webauthn_challenges"

    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(8))
    # A registration's: whose, and the login session that may finish it
    # (one pending per session). A login's: None, None.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    challenge: Mapped[bytes] = mapped_column(LargeBinary(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def keep(purpose, challenge, user_id=None, session_id=None):
    """Store a challenge (a registration's in place of its session's older
    one) and forget expired ones; committed. Returns its id."""
    row = {
        "id": secrets.token_urlsafe(32),
        "purpose": purpose,
        "user_id": user_id,
        "session_id": session_id,
        "challenge": challenge,
        "expires_at": utcnow() + LIFETIME,
    }
    try:
        _save(row)
    except IntegrityError:  # the same session asked twice at once: replace the other's
        db.session.rollback()
        _save(row)
    return row["id"]


def _save(row):
    prune()
    if row["session_id"] is not None:
        db.session.execute(
            delete(WebAuthnChallenge).where(WebAuthnChallenge.session_id == row["session_id"])
        )
    db.session.add(WebAuthnChallenge(**row))
    db.session.commit()


def take(*where):
    """Delete the challenge and commit, whatever comes next: it works once.
    Its bytes, or None when there is none or it has expired."""
    row = db.session.execute(
        delete(WebAuthnChallenge)
        .where(*where)
        .returning(WebAuthnChallenge.challenge, WebAuthnChallenge.expires_at)
    ).first()
    db.session.commit()
    if row is None or as_utc(row.expires_at) <= utcnow():
        return None
    return row.challenge


def forget_all(user_id):
    """The user's pending registrations; pending until the caller commits."""
    db.session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.user_id == user_id))


def prune():
    """Forget expired challenges (pending until the caller commits); how many."""
    gone = db.session.execute(
        delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= utcnow())
    )
    return gone.rowcount
