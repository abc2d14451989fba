"""The step between a right password and a second factor: the mfa token.

A password login of a user with TOTP on answers `401 mfa_required` with an
mfa token instead of tokens (CONTRACT.md). The token is 256 random bits,
opaque (not a JWT, so no route takes it as a bearer token), kept only as its
SHA-256, and says which login it finishes (body or cookies). It lives five
minutes, works once (taken by deleting its row: of two concurrent uses, one
wins), and dies after five wrong codes, so that a stolen password buys at
most five guesses per login, within the login's rate limits.
"""

import hashlib
import secrets
from datetime import datetime, timedelta

from flask_smorest import abort
from sqlalchemy import DateTime, ForeignKey, Integer, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from api.accounts import users
from api.auth import totp
from api.clock import as_utc, utcnow
from api.extensions import db

LIFETIME = timedelta(minutes=5)
MAX_FAILURES = 5


class MfaChallenge(db.Model):
    __tablename__ = "mfa_challenges"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The login it finishes answers in cookies (True) or in the body.
    cookies: Mapped[bool]
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


def demand(user, cookies):
    """Answer a right password with `401 mfa_required`, a new mfa token, and
    the kinds of code the user has left."""
    methods = totp.methods(user.id)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        MfaChallenge(
            token_hash=token_hash(token),
            user_id=user.id,
            cookies=cookies,
            failures=0,
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    db.session.commit()
    abort(
        401,
        error="mfa_required",
        message="A second factor is needed: send a code with the mfa token to /api/auth/mfa.",
        extra={"mfa_token": token, "methods": methods},
    )


def token_hash(token):
    return hashlib.sha256(token.encode()).hexdigest()


def username_of(token):
    """The username an mfa token was issued to, or None: the key of the
    account's rate limit (api/web/limits.py)."""
    return db.session.scalar(
        select(users.User.username)
        .join(MfaChallenge, MfaChallenge.user_id == users.User.id)
        .where(MfaChallenge.token_hash == token_hash(token))
    )


def finish(token, code):
    """The user and transport of the login that `token` started, once `code`
    is a right second factor: (user, cookies, method). The token is used up
    in the caller's transaction, which opens the session; a wrong code is
    recorded and refused."""
    key = token_hash(token)
    user_id, cookies = _spend_attempt(key)
    user = users.lock(user_id)
    if user is None or user.disabled:
        _refuse_token()
    method = totp.check_code(user.id, code)
    if method is None:
        totp.refuse_code(user.id, None, "login", code)
    taken = db.session.execute(delete(MfaChallenge).where(MfaChallenge.token_hash == key))
    if taken.rowcount != 1:  # another request's right code used it meanwhile
        db.session.rollback()
        _refuse_token()
    totp.count_success(method)
    return user, cookies, method


def _spend_attempt(key):
    """Count an attempt before its code is checked, committed at once: of
    any number of concurrent attempts, at most MAX_FAILURES are checked.
    (user id, cookies) of the token; else 401."""
    spent = db.session.execute(
        update(MfaChallenge)
        .where(
            MfaChallenge.token_hash == key,
            MfaChallenge.failures < MAX_FAILURES,
            MfaChallenge.expires_at > utcnow(),
        )
        .values(failures=MfaChallenge.failures + 1)
        .returning(MfaChallenge.user_id, MfaChallenge.cookies)
    ).first()
    db.session.commit()
    if spent is None:
        _refuse_spent(key)
    return spent.user_id, spent.cookies


def _refuse_spent(key):
    challenge = db.session.get(MfaChallenge, key)
    alive = challenge is not None and challenge.failures < MAX_FAILURES
    if alive and as_utc(challenge.expires_at) <= utcnow():
        abort(401, error="token_expired", message="The mfa token has expired; log in again.")
    _refuse_token()


def _refuse_token():
    # One message for every such refusal: which of them it was would tell a
    # guesser racing its own attempts whether a code was right.
    abort(
        401,
        error="invalid_token",
        message="The mfa token is unknown, used, or dead after 5 wrong codes; log in again.",
    )


def revoke_all(user_id):
    """The user's pending mfa tokens die (a new password, factors reset);
    pending until the caller commits."""
    db.session.execute(delete(MfaChallenge).where(MfaChallenge.user_id == user_id))


def prune():
    """Forget expired mfa tokens (pending until the caller commits); how many."""
    gone = db.session.execute(delete(MfaChallenge).where(MfaChallenge.expires_at < utcnow()))
    return gone.rowcount
