"""The database: its engines, the one read of an authenticated request, and a
request's end that survives a dropped connection.

Every authenticated request reads its token's user (and, with the database as
revocation store, its session) before anything else. Through the ORM session
that read would cost a Session, a transaction (BEGIN and ROLLBACK on
PostgreSQL) and a liveness ping of the pooled connection; `read_row` makes it
one statement on a pooled connection in autocommit mode.

There is no ping before each checkout (config.py turns pool_pre_ping off: it
would double the round trips). A connection the server dropped meanwhile
(a restart, a failover) fails on use instead; SQLAlchemy then discards every
older connection in the pool, and a read, being read-only, tries once more on
a new one. Writes answer 503 once and the client retries.
"""

import os
from collections import namedtuple

from flask import current_app
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session

from api.extensions import db, migrate
from config import ConfigError

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")
SELECT_ONE = text("SELECT 1")


def init_app(app):
    config = app.config
    if not config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Not SQLite's: an in-memory database lives only as long as its connection.
        options = config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        options.setdefault("pool_recycle", 1800)
    try:
        db.init_app(app)  # builds the engine: a bad URL or a missing driver fails here
        _add_read_engine(app)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"DATABASE_URL cannot be used: {exc}") from exc
    _end_sessions_whatever_the_connection(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)


def _add_read_engine(app):
    """PostgreSQL: a second pool on the same server, for read_row alone, in
    autocommit (no BEGIN, no ROLLBACK) and with no reset when a connection
    goes back, which in autocommit has no transaction to end. SQLite: the
    app's own engine; there are no round trips to save, and an in-memory
    database lives in one connection."""
    config = app.config
    uri = config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        return
    app.extensions["read_engine"] = create_engine(
        uri,
        **config["SQLALCHEMY_ENGINE_OPTIONS"],
        isolation_level="AUTOCOMMIT",
        pool_reset_on_return=None,
    )


def _end_sessions_whatever_the_connection(app):
    """Flask-SQLAlchemy ends each request's session after the answer is made,
    with a ROLLBACK. Should the server have dropped the connection meanwhile
    (a restart, pg_terminate_backend), that ROLLBACK fails, and the failure
    would escape Flask and replace an answer already decided (a login, its
    session committed) with a lost connection. The session is discarded
    instead, and SQLAlchemy has discarded the dead connection.
    (A reach into Flask-SQLAlchemy's internals: api/internals.py.)"""
    funcs = app.teardown_appcontext_funcs
    funcs[:] = [func for func in funcs if func != db._teardown_session]

    @app.teardown_appcontext
    def end_session(_exc):
        try:
            db.session.remove()
        except DBAPIError as error:
            db.session.registry.clear()
            app.logger.warning(
                "session ended on a dropped connection: %s", type(error.orig).__name__
            )


def engines(app):
    """Every engine of `app`, for whoever must dispose of them (a fork)."""
    with app.app_context():
        found = list(db.engines.values())
    read_engine = app.extensions.get("read_engine")
    return [*found, read_engine] if read_engine is not None else found


def read_row(statement, params):
    """The first row of `statement` (a Core select built once), or None."""
    engine = current_app.extensions.get("read_engine") or db.engine
    read = _compiled(engine, statement)
    try:
        return read.first(engine, params)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return read.first(engine, params)


_COMPILED = {}


def _compiled(engine, statement):
    dialect = engine.dialect
    key = (statement, dialect.name, dialect.driver, dialect.paramstyle)
    read = _COMPILED.get(key)
    if read is None:
        read = _COMPILED.setdefault(key, DirectRead(statement, engine.dialect))
    return read


class DirectRead:
    """A select compiled once for a dialect and run on a pooled DBAPI
    connection: SQLAlchemy's pool, SQL, type conversions and error classes,
    without building a Connection and an execution context on each request
    (three quarters of the read's time on SQLite). Rows come as named tuples
    holding what SQLAlchemy's Core would give. Being beneath the Connection,
    the read fires no engine event (before_cursor_execute, handle_error) and
    is not echoed by SQLALCHEMY_ECHO; a failed connect is not tried again."""

    def __init__(self, statement, dialect):
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names = compiled.positiontup  # None: the driver takes names
        for name, bind in compiled.binds.items():
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise ValueError(f"{name}: a parameter that needs converting is not supported")
        columns = getattr(statement, "selected_columns", ())
        self.converters = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        names = [column.key for column in columns]
        self.row = namedtuple("Row", names) if names else tuple  # noqa: PYI024

    def first(self, engine, params):
        values = tuple(params[n] for n in self.names) if self.names is not None else params
        try:
            connection = engine.raw_connection()
        except engine.dialect.loaded_dbapi.Error as error:  # no connection to be had
            raise self._as_sqlalchemy_error(engine, None, None, error, values) from error
        cursor = None
        try:
            cursor = connection.cursor()
            cursor.execute(self.sql, values)
            row = cursor.fetchone()
            cursor.close()
        except engine.dialect.loaded_dbapi.Error as error:
            raise self._as_sqlalchemy_error(engine, connection, cursor, error, values) from error
        finally:
            connection.close()  # back to the pool
        return None if row is None else self._convert(row)

    def _convert(self, row):
        if self.row is tuple:
            return tuple(row)
        return self.row(*(c(v) if c else v for c, v in zip(self.converters, row, strict=True)))

    def _as_sqlalchemy_error(self, engine, connection, cursor, error, values):
        """The error SQLAlchemy's Core would raise (a 503 by api/web/errors.py);
        a connection the server dropped is discarded, with every other
        pooled one (they are as old)."""
        dbapi_connection = connection.dbapi_connection if connection is not None else None
        dropped = connection is not None and engine.dialect.is_disconnect(
            error, dbapi_connection, cursor
        )
        if dropped:
            connection.invalidate(error)
            engine.dispose()  # closes the idle ones; those checked out go when returned
        return DBAPIError.instance(
            self.sql,
            values,
            error,
            engine.dialect.loaded_dbapi.Error,
            connection_invalidated=dropped,
            dialect=engine.dialect,
        )


def ping():
    read_row(SELECT_ONE, {})


# What must happen only once the change it follows is committed (a metric, a
# wake-up): a change that fails, rolled back, takes it along.
_AFTER_COMMIT = "after_commit_callbacks"


def after_commit(callback):
    """Call `callback()` once db.session's current transaction commits; never if it rolls back."""
    db.session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session):
    for callback in session.info.pop(_AFTER_COMMIT, ()):
        callback()


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session):
    session.info.pop(_AFTER_COMMIT, None)
