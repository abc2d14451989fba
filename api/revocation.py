"""The revocation store: asked on every authenticated request whether the
token's login session has been revoked.

The database is the record (login_sessions.revoked_at) and serves by default.
With REDIS_URL set, Redis answers instead: a revoked session id is kept there
until the session would have ended (its refresh token's expiry), which bounds
every token of the session, whatever instance minted it with whatever lifetime.
Refresh tokens are also checked against the database when used (api/sessions.py).
"""

from contextlib import contextmanager

import redis
from flask import current_app, g
from sqlalchemy import select, text

from api.extensions import db, jwt

# Kept a little past the session's end, for instances whose clocks differ.
EXPIRY_MARGIN_SECONDS = 300


class StoreUnavailable(Exception):
    """The store cannot be reached: the request is refused (503), never let through."""


class DatabaseStore:
    name = "database"

    def revoke(self, expiries):
        pass  # login_sessions.revoked_at, written by api/sessions.py, is the record

    def is_revoked(self, session_id, user_id):
        from api.sessions import LoginSession
        from api.users import User, parse_user_id

        uid = parse_user_id(user_id)
        if uid is None:
            return False  # no such user: the user lookup refuses it, invalid_token
        # The user and their session in one query: the user lands in the
        # session's identity map, where the user lookup that follows finds it
        # without a second round trip (one query per authenticated request).
        row = db.session.execute(
            select(User, LoginSession.id, LoginSession.revoked_at)
            .outerjoin(
                LoginSession, (LoginSession.user_id == User.id) & (LoginSession.id == session_id)
            )
            .where(User.id == uid)
        ).first()
        if row is None:
            return False  # user gone: invalid_token from the user lookup
        g.token_user = row.User  # the identity map holds objects only weakly
        return row.id is None or row.revoked_at is not None

    def ping(self):
        db.session.execute(text("SELECT 1"))


class RedisStore:
    name = "redis"

    def __init__(self, url, prefix):
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.prefix = f"{prefix}revoked:"

    def revoke(self, expiries):
        """`expiries`: session id -> when the session would have ended."""
        if not expiries:
            return
        with unavailable_on_error():
            pipe = self.client.pipeline(transaction=False)
            for session_id, ends in expiries.items():
                until = int(ends.timestamp()) + EXPIRY_MARGIN_SECONDS
                pipe.set(self.prefix + session_id, 1, exat=until)
            pipe.execute()

    def is_revoked(self, session_id, user_id):
        with unavailable_on_error():
            return self.client.exists(self.prefix + session_id) == 1

    def ping(self):
        with unavailable_on_error():
            self.client.ping()


@contextmanager
def unavailable_on_error():
    try:
        yield
    except redis.RedisError as exc:
        raise StoreUnavailable(type(exc).__name__) from exc


def store():
    return current_app.extensions["revocation_store"]


def init_app(app):
    config = app.config
    if config.get("REDIS_URL"):
        app.extensions["revocation_store"] = RedisStore(
            config["REDIS_URL"], config["REDIS_KEY_PREFIX"]
        )
    else:
        app.extensions["revocation_store"] = DatabaseStore()

    # Every token, access or refresh, from every worker and instance.
    @jwt.token_in_blocklist_loader
    def session_revoked(_header, claims):
        return store().is_revoked(claims["sid"], claims["sub"])
