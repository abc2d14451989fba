"""The revocation store: asked on every authenticated request whether the
token's login session has been revoked.

The database is the record (login_sessions.revoked_at) and serves by default.
With REDIS_URL set, Redis answers instead: a revoked session id is kept there
until the session would have ended (its refresh token's expiry), which bounds
every token of the session, whatever instance minted it with whatever lifetime.
Refresh tokens are also checked against the database when used (api/sessions.py).
"""

from contextlib import contextmanager
from functools import cache

import redis
from flask import current_app, g
from sqlalchemy import bindparam, select, text

from api.extensions import jwt
from api.reads import read_row
from api.users import parse_user_id, token_user

SELECT_ONE = text("SELECT 1")
# Kept a little past the session's end, for instances whose clocks differ.
EXPIRY_MARGIN_SECONDS = 300


class StoreUnavailable(Exception):
    """The store cannot be reached: the request is refused (503), never let through."""


class DatabaseStore:
    name = "database"

    def revoke(self, expiries):
        pass  # login_sessions.revoked_at, written by api/sessions.py, is the record

    def is_revoked(self, session_id, user_id):
        uid = parse_user_id(user_id)
        if uid is None:
            return False  # no such user: the user lookup refuses it, invalid_token
        params = {"user_id": uid, "session_id": session_id}
        row = read_row(_user_and_session(), params)
        g.token_user = token_user(row)  # None: gone or disabled, invalid_token
        if row is None:
            return False
        return row.sid is None or row.revoked_at is not None

    def ping(self):
        read_row(SELECT_ONE, {})


@cache
def _user_and_session():
    """The token's user and its session, in one query, built once: this runs
    on every request, and building a statement costs more than running it.
    Core, not the ORM, for the same reason; the user lookup that follows takes
    the user from here (g.token_user) instead of asking again."""
    from api.sessions import LoginSession
    from api.users import USER_COLUMNS, User

    users, login_sessions = User.__table__, LoginSession.__table__
    session_matches = (login_sessions.c.user_id == users.c.id) & (
        login_sessions.c.id == bindparam("session_id")
    )
    return (
        select(*USER_COLUMNS, login_sessions.c.id.label("sid"), login_sessions.c.revoked_at)
        .select_from(users.outerjoin(login_sessions, session_matches))
        .where(users.c.id == bindparam("user_id"))
    )


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
