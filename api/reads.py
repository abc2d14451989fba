"""The one database read of an authenticated request, kept to one round trip.

Every authenticated request reads its token's user (and, with the database as
revocation store, its session) before anything else. Through the ORM session
that read would cost a Session, a transaction (BEGIN and ROLLBACK on
PostgreSQL) and a liveness ping of the pooled connection; here it is one
statement on a pooled connection in autocommit mode.

There is no ping before each checkout (config.py turns pool_pre_ping off: it
would double the round trips). A connection the server dropped meanwhile
(a restart, a failover) fails on use instead; SQLAlchemy then discards every
older connection in the pool, and this read, being read-only, tries once more
on a new one. Writes answer 503 once and the client retries.
"""

from flask import current_app
from sqlalchemy.exc import DBAPIError

from api.extensions import db


def read_row(statement, params):
    """The first row of `statement` (a Core select built once), or None."""
    engine = _engine()
    try:
        return _first(engine, statement, params)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return _first(engine, statement, params)


def _first(engine, statement, params):
    with engine.connect() as connection:
        return connection.execute(statement, params).first()


def _engine():
    """PostgreSQL: autocommit (no BEGIN/ROLLBACK round trips); SQLite has no
    round trips to save and its in-memory databases live in one connection."""
    engines = current_app.extensions.setdefault("read_engines", {})
    engine = db.engine
    if engine not in engines:
        autocommit = engine.dialect.name != "sqlite"
        engines[engine] = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
        )
    return engines[engine]
