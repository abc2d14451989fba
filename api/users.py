"""Users: the model, password hashing and the credential check."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_smorest import abort
from sqlalchemy import JSON, DateTime, Index, String, bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import db
from api.reads import read_row

# Ids are 32-bit integers in PostgreSQL: a larger id in a URL matches no route (404).
MAX_ID = 2**31 - 1


def utcnow():
    return datetime.now(UTC)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["user"])
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # Usernames are unique whatever their case: "Bob" cannot shadow "bob".
    __table_args__ = (Index("uq_users_username_lower", func.lower(username), unique=True),)


class Passwords:
    """argon2id with the configured cost, plus a dummy hash for unknown users."""

    def __init__(self, config):
        self.hasher = PasswordHasher(
            time_cost=config["ARGON2_TIME_COST"],
            memory_cost=config["ARGON2_MEMORY_COST"],
            parallelism=config["ARGON2_PARALLELISM"],
            type=Type.ID,
        )
        self.dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password):
        return self.hasher.hash(password)

    def verify(self, password_hash, password):
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def init_app(app):
    app.extensions["passwords"] = Passwords(app.config)


def passwords():
    return current_app.extensions["passwords"]


def find_by_username(username):
    return db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))


def parse_user_id(sub):
    """A token's `sub` as an id, or None: int() would take "²" or 5,000 digits."""
    digits = sub.isascii() and sub.isdigit() and len(sub) <= len(str(MAX_ID))
    return int(sub) if digits and int(sub) <= MAX_ID else None


@dataclass(frozen=True)
class TokenUser:
    """The user a verified token speaks for, as the database had them when
    the request was authenticated. Read-only: a view that changes the user
    loads the model (`db.session.get(User, id)`).

    A plain row, not the model: every authenticated request loads one, and
    SQLAlchemy's ORM costs more than the rest of the token check together.
    """

    id: int
    username: str
    roles: list[str]
    created_at: datetime


# What TokenUser needs, plus `disabled`: selected with SQLAlchemy Core, by
# statements built once (building one costs more than running it).
USER_COLUMNS = tuple(User.__table__.c[name] for name in ("id", "username", "roles", "created_at"))
USER_COLUMNS += (User.__table__.c.disabled,)
USER_BY_ID = select(*USER_COLUMNS).where(User.__table__.c.id == bindparam("user_id"))


def token_user(row):
    """A TokenUser from a row of USER_COLUMNS, or None when gone or disabled."""
    if row is None or row.disabled:
        return None
    return TokenUser(row.id, row.username, row.roles, row.created_at)


def active_user(sub):
    """The user a token names (a TokenUser), or None when gone or disabled."""
    user_id = parse_user_id(sub)
    if user_id is None:
        return None
    return token_user(read_row(USER_BY_ID, {"user_id": user_id}))


def register(username, password):
    if find_by_username(username) is not None:
        abort_username_taken()
    user = User(username=username, password_hash=passwords().hash(password))
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # lost a race with a registration of the same name
        db.session.rollback()
        abort_username_taken()
    return user


def abort_username_taken():
    abort(409, error="username_taken", message="That username is already taken.")


def authenticate(username, password):
    """The user for these credentials, or None.

    An unknown user is checked against a dummy hash, so that the answer and its
    timing are the same whether the username exists or not.
    """
    user = find_by_username(username)
    hasher = passwords()
    if user is None:
        hasher.verify(hasher.dummy_hash, password)
        return None
    if not hasher.verify(user.password_hash, password) or user.disabled:
        return None
    if hasher.hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
        db.session.commit()
    return user


def check_password(user, password):
    return passwords().verify(user.password_hash, password)


def set_password(user, password):
    """Pending until the caller commits (with the sessions it ends)."""
    user.password_hash = passwords().hash(password)
