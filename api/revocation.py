"""The revocation store: asked on every authenticated request whether the
token's login session has been revoked.

The database is the record (login_sessions.revoked_at) and serves by default.
With REDIS_URL set, Redis answers instead: a revoked session id is kept there
only as long as an access token can live, since refresh tokens are checked
against the database when they are used (api/sessions.py).
"""

from contextlib import contextmanager

import redis
from flask import current_app
from sqlalchemy import select, text

from api.extensions import db, jwt

# Access tokens must be refused until they expire; a little over covers clock steps.
TTL_MARGIN_SECONDS = 5


class StoreUnavailable(Exception):
    """The store cannot be reached: the request is refused (503), never let through."""


class DatabaseStore:
    name = "database"

    def revoke(self, session_ids):
        pass  # login_sessions.revoked_at, written by api/sessions.py, is the record

    def is_revoked(self, session_id):
        from api.sessions import LoginSession

        row = db.session.execute(
            select(LoginSession.revoked_at).where(LoginSession.id == session_id)
        ).first()
        return row is None or row.revoked_at is not None

    def ping(self):
        db.session.execute(text("SELECT 1"))


class RedisStore:
    name = "redis"

    def __init__(self, url, prefix, ttl_seconds):
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        self.prefix = f"{prefix}revoked:"
        self.ttl = ttl_seconds

    def revoke(self, session_ids):
        if not session_ids:
            return
        with unavailable_on_error():
            pipe = self.client.pipeline(transaction=False)
            for session_id in session_ids:
                pipe.set(self.prefix + session_id, 1, ex=self.ttl)
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
        ttl = int(config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()) + TTL_MARGIN_SECONDS
        app.extensions["revocation_store"] = RedisStore(
            config["REDIS_URL"], config["REDIS_KEY_PREFIX"], ttl
        )
    else:
        app.extensions["revocation_store"] = DatabaseStore()

    # Every token, access or refresh, from every worker and instance.
    @jwt.token_in_blocklist_loader
    def session_revoked(_header, claims):
        return store().is_revoked(claims["sid"])
