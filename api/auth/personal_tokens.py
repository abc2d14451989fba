"""Personal access tokens: a long-lived credential a user makes for a script,
a CI job or Postman, that can do only what its scopes name and is revoked
alone (CONTRACT.md, "Machine access").

- The text is `pat_`, 30 random base62 characters (178 bits) and a 6-character
  base62 CRC32 of what comes before it, as GitHub's tokens are made: a secret
  scanner can tell a real token from a look-alike without asking us, and a
  mistyped one is refused without a database read.
- Only its SHA-256 is kept: a fast hash is enough for a secret that long
  (nothing to guess), and a slow one would slow every request that uses it.
- Each use reads the token with its user, so a deleted token, a disabled user
  or a token past its expiry is refused at once on every worker and instance.
  `last_used_at` is written at most once a minute per token, not on every use.
- A password reset deletes every token of the user, as it ends every session;
  so does disabling the account.
"""

import zlib
from datetime import datetime, timedelta
from typing import NamedTuple

from flask_smorest import abort
from sqlalchemy import JSON, DateTime, ForeignKey, String, bindparam, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from api.accounts import events, users
from api.accounts.users import User
from api.auth import token_user
from api.auth.scopes import ALL as ALL_SCOPES
from api.auth.secret_text import BASE62, random_base62, stored_hash
from api.clock import as_utc, utcnow
from api.database import after_commit, read_row
from api.extensions import db
from api.web.metrics import PERSONAL_TOKENS

PREFIX = "pat_"
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
# last_used_at is this precise: a busy token costs one write a minute, not one a request.
TOUCH_INTERVAL = timedelta(minutes=1)
# Enough for every script and job a person runs; a bound on rows one account adds.
MAX_PER_USER = 100


class PersonalAccessToken(db.Model):
    __tablename__ = "personal_access_tokens"
    # Ids are never handed out again (SQLite would reuse a deleted highest
    # one): the security events name tokens by id.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Found(NamedTuple):
    """A token of a live user, as one read found it; perhaps expired."""

    token_id: int
    user: token_user.TokenUser
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None

    @property
    def expired(self):
        return self.expires_at <= utcnow()


def _by_hash():
    tokens = PersonalAccessToken.__table__
    return (
        select(
            *token_user.COLUMNS,
            tokens.c.id.label("token_id"),
            tokens.c.scopes,
            tokens.c.created_at.label("token_created_at"),
            tokens.c.expires_at,
            tokens.c.last_used_at,
        )
        .join(User.__table__, User.__table__.c.id == tokens.c.user_id)
        .where(tokens.c.token_hash == bindparam("token_hash"))
    )


BY_HASH = _by_hash()  # built once: it runs on every request a token makes


def _checksum(text):
    number = zlib.crc32(text.encode())
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def new_text():
    body = PREFIX + random_base62(RANDOM_LENGTH)
    return body + _checksum(body)


def is_well_formed(text):
    """The prefix, the length, base62 and a checksum that fits."""
    if len(text) != LENGTH or not text.startswith(PREFIX):
        return False
    rest = text[len(PREFIX) :]
    if not (rest.isascii() and rest.isalnum()):
        return False
    return _checksum(text[:-CHECKSUM_LENGTH]) == text[-CHECKSUM_LENGTH:]


def looks_like_one(text):
    """A bearer token meant as a personal access token (well formed or not)."""
    return text.startswith(PREFIX)


def find(text):
    """The token `text` names, or None: malformed, unknown, deleted, or its
    user gone or disabled. Whether it has expired is the caller's to ask
    (`Found.expired`): a request says so, introspection does not."""
    if not is_well_formed(text):
        return None
    row = read_row(BY_HASH, {"token_hash": stored_hash(text)})
    user = token_user.from_row(row)
    if user is None:
        return None
    return Found(
        row.token_id,
        user,
        tuple(row.scopes),
        as_utc(row.token_created_at),
        as_utc(row.expires_at),
        row.last_used_at and as_utc(row.last_used_at),
    )


def touch(found):
    """Note that the token was used, unless that was noted within
    TOUCH_INTERVAL; the condition is in the UPDATE, so of many workers
    using it at once, one writes."""
    now = utcnow()
    if found.last_used_at is not None and now - found.last_used_at < TOUCH_INTERVAL:
        return
    stale = PersonalAccessToken.last_used_at.is_(None) | (
        PersonalAccessToken.last_used_at < now - TOUCH_INTERVAL
    )
    db.session.execute(
        update(PersonalAccessToken)
        .where(PersonalAccessToken.id == found.token_id, stale)
        .values(last_used_at=now)
    )
    db.session.commit()


def create(user_id, name, scopes, days, session_id):
    """A new token of the user's; returns (row, text). The text is shown
    this once: only its hash is kept."""
    # Concurrent creations count one at a time: the account's row is locked
    # on PostgreSQL, and on SQLite the insert, made before the count, waits
    # for the other writer.
    users.lock(user_id)
    text, now = new_text(), utcnow()
    token = PersonalAccessToken(
        user_id=user_id,
        name=name,
        token_hash=stored_hash(text),
        scopes=[scope for scope in ALL_SCOPES if scope in scopes],
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    db.session.add(token)
    db.session.flush()
    count = db.session.scalar(select(func.count()).where(PersonalAccessToken.user_id == user_id))
    if count > MAX_PER_USER:
        db.session.rollback()
        abort(
            409,
            error="too_many_tokens",
            message=f"You have {MAX_PER_USER} tokens; delete one you no longer use first.",
        )
    events.record(
        "token_created", user_id, session_id, token_id=token.id, name=name, scopes=token.scopes
    )
    db.session.commit()
    PERSONAL_TOKENS.labels("created").inc()
    return token, text


def listing(user_id):
    """The user's tokens, newest first, expired ones included (until pruned)."""
    query = select(PersonalAccessToken).where(PersonalAccessToken.user_id == user_id)
    return db.session.scalars(
        query.order_by(PersonalAccessToken.created_at.desc(), PersonalAccessToken.id.desc())
    ).all()


def remove(user_id, token_id, session_id):
    """Delete one of the user's tokens: refused from the next request on.
    Someone else's is 404, as a missing one."""
    removed = db.session.execute(
        delete(PersonalAccessToken)
        .where(PersonalAccessToken.id == token_id, PersonalAccessToken.user_id == user_id)
        .returning(PersonalAccessToken.name)
    ).first()
    if removed is None:
        db.session.rollback()
        abort(404, message="No such token.")
    events.record("token_revoked", user_id, session_id, token_id=token_id, name=removed.name)
    db.session.commit()
    PERSONAL_TOKENS.labels("revoked").inc()


def remove_all(user_id):
    """Every token of the user, pending until the caller commits the act
    (a password reset, a disabled account); returns how many."""
    removed = db.session.execute(
        delete(PersonalAccessToken).where(PersonalAccessToken.user_id == user_id)
    ).rowcount
    after_commit(lambda: PERSONAL_TOKENS.labels("revoked").inc(removed))
    return removed


# Expired tokens stay listed (as expired) this long, then `flask sessions prune` forgets them.
KEEP_EXPIRED = timedelta(days=30)


def prune():
    """Forget tokens expired more than KEEP_EXPIRED ago; returns how many."""
    cutoff = utcnow() - KEEP_EXPIRED
    deleted = db.session.execute(
        delete(PersonalAccessToken).where(PersonalAccessToken.expires_at < cutoff)
    )
    db.session.commit()
    return deleted.rowcount
