"""The revocation store: where a revoked login session is recorded so that
its tokens are refused on every worker and instance at once.

The database is the record (login_sessions.revoked_at) and serves by default:
nothing is written beside it, and api/auth/identity.py reads the session
together with the token's user. With REDIS_URL set, Redis answers instead: a
revoked session id is kept there until the session would have ended (its
refresh token's expiry), which bounds every token of the session, whatever
instance minted it with whatever lifetime. Refresh tokens are also checked
against the database when used (api/auth/sessions.py).

Either way an unreachable store refuses (503), never lets a token through.
"""

from contextlib import contextmanager

import redis
from flask import current_app

from api import database

# Kept a little past the session's end, for instances whose clocks differ.
EXPIRY_MARGIN_SECONDS = 300


class StoreUnavailable(Exception):
    """The store cannot be reached: the request is refused (503), never let through."""


class DatabaseStore:
    name = "database"
    # The session's row is the record: identity reads it with the user.
    in_database = True

    def revoke(self, expiries):
        pass  # login_sessions.revoked_at, written by api/auth/sessions.py, is the record

    def ping(self):
        database.ping()


class RedisStore:
    name = "redis"
    in_database = False

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

    def is_revoked(self, session_id):
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
