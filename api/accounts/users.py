"""Users: the model, registration and the credential check."""

from datetime import datetime
from typing import NamedTuple

from flask_smorest import abort
from sqlalchemy import JSON, DateTime, Index, String, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from api.accounts import mails
from api.accounts.passwords import passwords
from api.clock import utcnow
from api.extensions import db


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["user"])
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The account's address (optional), and whether a link sent to it was opened.
    email: Mapped[str | None] = mapped_column(String(254))
    email_verified: Mapped[bool] = mapped_column(default=False)
    # An address asked for by PUT /api/me/email: it replaces `email` only once
    # its link is opened, so a typo or a stolen session cannot take the account's mail.
    pending_email: Mapped[str | None] = mapped_column(String(254))
    # TOTP is on (api/auth/totp.py): a password login then needs a code too.
    # Kept here, not derived, so that the token check reads it with the user.
    mfa_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())

    # Usernames and addresses are unique whatever their case: "Bob" cannot shadow "bob".
    __table_args__ = (
        Index("uq_users_username_lower", func.lower(username), unique=True),
        Index("uq_users_email_lower", func.lower(email), unique=True),
    )


def find_by_username(username):
    return db.session.scalar(select(User).where(func.lower(User.username) == username.lower()))


def find_by_email(address, lock=False):
    query = select(User).where(func.lower(User.email) == address.lower())
    return db.session.scalar(locked(query) if lock else query)


def lock(user_id):
    """The user, read afresh and locked until the caller commits: flows that
    change an account's password, address or links run one at a time per
    account (on PostgreSQL; SQLite has one writer at a time anyway)."""
    return db.session.scalar(locked(select(User).where(User.id == user_id)))


def locked(query):
    # FOR NO KEY UPDATE on PostgreSQL: lockers of an account still run one at
    # a time, but a row that only refers to it (a security event of a wrong
    # code) is not held up, which deadlocked two requests of one login.
    return query.with_for_update(key_share=True).execution_options(populate_existing=True)


def register(username, password, email=None):
    """A new account; an address given gets its verification mail, in the same commit."""
    if find_by_username(username) is not None:
        abort_username_taken()
    if email is not None and find_by_email(email) is not None:
        abort_email_taken()
    user = User(username=username, password_hash=passwords().hash(password), email=email)
    db.session.add(user)
    try:
        if email is not None:
            db.session.flush()  # the id its link names
            mails.send_verification(user, email)
        db.session.commit()
    except IntegrityError:  # lost a race with a registration of the same name or address
        db.session.rollback()
        if email is not None and find_by_email(email) is not None:
            abort_email_taken()
        abort_username_taken()
    return user


def abort_username_taken():
    abort(409, error="username_taken", message="That username is already taken.")


def abort_email_taken():
    abort(409, error="email_taken", message="That email address belongs to another account.")


class Attempt(NamedTuple):
    """A password login's outcome: the user, or why not (for the security
    events only, never for the caller) and whose account was tried."""

    user: User | None
    failure: str | None = None  # "unknown_user", "wrong_password" or "disabled"
    account_id: int | None = None


def authenticate(username, password):
    """An unknown user is checked against a dummy hash, so that the answer and
    its timing are the same whether the username exists or not."""
    user = find_by_username(username)
    hasher = passwords()
    if user is None:
        hasher.verify(hasher.dummy_hash, password)
        return Attempt(None, "unknown_user")
    if not hasher.verify(user.password_hash, password):
        return Attempt(None, "wrong_password", user.id)
    if user.disabled:
        return Attempt(None, "disabled", user.id)
    if hasher.needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
        db.session.commit()
    return Attempt(user, account_id=user.id)


def locked_attempt(attempt):
    """A right password's user read again and locked until the caller
    commits (the session it opens): TOTP turned on, or the account disabled,
    while the slow hash was being checked counts; and turning TOTP on, which
    ends every other session, waits for this one to exist and ends it too."""
    if attempt.user is None:
        return attempt
    user = lock(attempt.user.id)
    if user is None or user.disabled:
        return Attempt(None, "disabled", attempt.account_id)
    return Attempt(user, account_id=user.id)


def check_password(user, password):
    return passwords().verify(user.password_hash, password)


def set_password(user, password):
    """Pending until the caller commits (with the sessions it ends)."""
    user.password_hash = passwords().hash(password)
