"""Rate-limit counters in the app's own database (`database://`): one budget
for every worker of an instance, and for every instance on one PostgreSQL,
without Redis.

A storage for the `limits` library (Flask-Limiter's backend), for the
fixed-window strategy, the one this app uses (check_usable refuses the
others at start): a key's hits and the end of its window, one row per key.
A hit is one statement, an UPSERT that starts a new window when the old one
has ended and returns the new count (SQLite 3.35+, PostgreSQL): atomic
across threads, workers and instances. Every statement runs on a
connection of its own from the app's pool, in autocommit, so a count is never
part of the request's db.session transaction, and a rollback of the request
does not undo it. (Flask-Limiter counts before the view, when the session has
written nothing: on SQLite a count made while the same request held an
uncommitted write would wait for it, up to the busy timeout.)

Flask-Limiter keeps one storage per process, made by the last app it was
bound to; this one asks the request's app for its database at every call.

Ended windows are deleted now and then by a hit (one in PRUNE_ONE_IN), so the
table holds about one window's keys. A database error propagates: before the
view the request is refused with 503 (api/web/errors.py), after it the view's
answer goes out without the rate-limit headers (api/web/limits.py).
"""

import hashlib
import secrets
import sqlite3
import time
from functools import cache

from flask import g
from limits.storage import Storage
from sqlalchemy import Double, String, bindparam, case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column

from api.extensions import db
from config import ConfigError

SCHEME = "database"
KEY_LENGTH = 255
PRUNE_ONE_IN = 100
DIALECTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class RateLimitCounter(db.Model):
    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    hits: Mapped[int]
    # When the window ends, in seconds since the epoch (time.time(), as `limits` counts).
    expires_at: Mapped[float] = mapped_column(Double, index=True)


COUNTERS = RateLimitCounter.__table__


def check_usable(config):
    """Stop the start (rather than fail each request) where this storage cannot work."""
    strategy = config.get("RATELIMIT_STRATEGY", "fixed-window")
    if strategy != "fixed-window":
        raise ConfigError(
            f"RATELIMIT_STRATEGY={strategy!r} needs REDIS_URL: "
            "the database counts fixed windows only"
        )
    backend = make_url(config["SQLALCHEMY_DATABASE_URI"]).get_backend_name()
    if backend not in DIALECTS:
        raise ConfigError(f"rate limits in the database need SQLite or PostgreSQL, not {backend}")
    if backend == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise ConfigError(
            f"rate limits in SQLite need SQLite 3.35 or later, not {sqlite3.sqlite_version}"
        )


def is_in_memory_sqlite(uri):
    """An in-memory SQLite lives in one process (in one connection): nothing to share."""
    url = make_url(uri)
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


@cache
def upsert(dialect):
    """One hit: a new window (count = amount) if there is none or it has ended,
    else count + amount in the same window; the new count is returned."""
    insert = DIALECTS[dialect](COUNTERS).values(
        key=bindparam("key"), hits=bindparam("amount"), expires_at=bindparam("expires_at")
    )
    ended, new = COUNTERS.c.expires_at <= bindparam("now"), insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[COUNTERS.c.key],
        set_={
            "hits": case((ended, new.hits), else_=COUNTERS.c.hits + new.hits),
            "expires_at": case((ended, new.expires_at), else_=COUNTERS.c.expires_at),
        },
    ).returning(COUNTERS.c.hits)


CURRENT = select(COUNTERS.c.hits, COUNTERS.c.expires_at).where(
    COUNTERS.c.key == bindparam("key"), COUNTERS.c.expires_at > bindparam("now")
)
PRUNE = delete(COUNTERS).where(COUNTERS.c.expires_at <= bindparam("now"))
CLEAR = delete(COUNTERS).where(COUNTERS.c.key == bindparam("key"))


def stored_key(key):
    """The key as stored; one too long for its column by its digest, still one key."""
    if len(key) <= KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def on_own_connection(work):
    """`work(connection)` on a pooled connection in autocommit: each statement
    is its own transaction. A connection the server dropped meanwhile is tried
    once more on a new one (a hit counted twice then is the safe side)."""
    for attempt in (1, 2):
        try:
            with db.engine.connect() as connection:
                return work(connection.execution_options(isolation_level="AUTOCOMMIT"))
        except DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise
    return None  # not reached


class DatabaseStorage(Storage):
    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri=None, wrap_exceptions=False, **_options):
        # _options: Flask-Limiter hands every storage the options of the
        # ones made before it (Redis timeouts); none concern this one.
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self):
        return DBAPIError

    def incr(self, key, expiry, amount=1):
        g.pop("rate_limit_row", None)
        now = time.time()
        params = {"key": stored_key(key), "amount": amount, "expires_at": now + expiry, "now": now}

        def hit(connection):
            hits = connection.execute(upsert(connection.dialect.name), params).scalar_one()
            if secrets.randbelow(PRUNE_ONE_IN) == 0:
                connection.execute(PRUNE, {"now": now})
            return hits

        return on_own_connection(hit)

    def _current(self, key):
        params = {"key": stored_key(key), "now": time.time()}
        return on_own_connection(lambda connection: connection.execute(CURRENT, params).first())

    # For the headers, Flask-Limiter asks get(key) then get_expiry(key): one
    # read answers both (kept in flask.g for the get_expiry that follows,
    # unless a hit or a clear comes between).

    def get(self, key):
        row = self._current(key)
        g.rate_limit_row = (key, row)
        return row.hits if row else 0

    def get_expiry(self, key):
        read_for, row = g.pop("rate_limit_row", (None, None))
        if read_for != key:
            row = self._current(key)
        return row.expires_at if row else time.time()

    def clear(self, key):
        g.pop("rate_limit_row", None)
        on_own_connection(lambda connection: connection.execute(CLEAR, {"key": stored_key(key)}))

    def reset(self):
        return on_own_connection(lambda connection: connection.execute(delete(COUNTERS)).rowcount)

    def prune(self):
        """Delete every ended window; how many."""
        now = {"now": time.time()}
        return on_own_connection(lambda connection: connection.execute(PRUNE, now).rowcount)

    def check(self):
        try:
            on_own_connection(lambda connection: connection.execute(select(1)))
        except DBAPIError:
            return False
        return True
