"""The database (api/database.py) on the real PostgreSQL (psycopg 3), schema
built by the migrations: the same flows as on SQLite, and the one read per
authenticated request (autocommit, and connections the server dropped)."""

from datetime import UTC, datetime, timedelta

import pytest
from flask_migrate import upgrade
from sqlalchemy import make_url, text

from api import create_app
from api.database import engines
from api.extensions import db
from tests.helpers import (
    PASSWORD,
    POSTGRES_ADMIN_URL,
    AuthActions,
    assert_error,
    bearer,
    terminate_backends,
)


@pytest.fixture
def pg_app(postgres_url):
    # A session time zone other than UTC: timestamps must still come out in UTC.
    app = create_app(
        {
            "APP_CONFIG": "testing",
            "SQLALCHEMY_DATABASE_URI": postgres_url,
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "connect_args": {"options": "-c timezone=America/New_York"}
            },
        }
    )
    with app.app_context():
        upgrade()
    yield app
    for engine in engines(app):
        engine.dispose()


def test_flow_on_postgres(pg_app):
    client = pg_app.test_client()
    auth = AuthActions(client)
    user = auth.register("Bob")
    conflict = client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    assert_error(conflict, 409, "username_taken")
    pair = auth.login("BOB")
    assert client.get("/api/me", headers=bearer(pair["access_token"])).json == user
    refreshed = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert refreshed.status_code == 200
    auth.cookie_login("bob")
    assert client.get("/api/me").json["username"] == "Bob"


def test_created_at_is_utc_whatever_the_session_time_zone(pg_app):
    client = pg_app.test_client()
    with pg_app.app_context():
        zone = db.session.execute(db.text("SHOW timezone")).scalar()
    assert zone == "America/New_York"
    created = AuthActions(client).register()["created_at"]
    stamp = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=1)


def test_overlong_username_on_postgres_is_a_validation_error(pg_app):
    response = pg_app.test_client().post(
        "/api/auth/register", json={"username": "a" * 64 + "\n", "password": PASSWORD}
    )
    assert_error(response, 422, "validation_error")


@pytest.fixture
def pg_store_app(make_app, postgres_url):
    from flask_migrate import upgrade

    from api.extensions import db

    app = make_app(SQLALCHEMY_DATABASE_URI=postgres_url)
    with app.app_context():
        db.drop_all()
        upgrade()
    return app


def terminate_app_connections(app):
    """pg_terminate_backend on every connection of `app`'s database."""
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    return terminate_backends(POSTGRES_ADMIN_URL, database)


def test_a_connection_the_server_dropped_is_replaced_without_an_error(pg_store_app):
    """No ping before each use: a dropped pooled connection fails on use, and
    the read, being read-only, tries once more on a new one."""
    client = pg_store_app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    assert terminate_app_connections(pg_store_app) >= 1
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    assert terminate_app_connections(pg_store_app) >= 1
    # A write on a dropped connection is refused once (503), never half-done...
    dropped = client.post("/api/auth/logout", headers=bearer(token))
    assert dropped.status_code in (204, 503)
    # ...and the pool, invalidated, serves the retry.
    if dropped.status_code == 503:
        assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    assert_error(client.get("/api/me", headers=bearer(token)), 401, "token_revoked")


def test_the_read_runs_in_autocommit_on_postgres(pg_store_app):
    """One round trip: no BEGIN before the read and no ROLLBACK after it. The
    read's pool alone serves it, on a connection in autocommit that it leaves
    with no transaction open (a BEGIN would leave one: that pool never rolls
    back)."""
    from psycopg.pq import TransactionStatus
    from sqlalchemy import event

    client = pg_store_app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    with pg_store_app.app_context():
        orm_engine = db.engine
    reads = pg_store_app.extensions["read_engine"]
    reads.dispose()
    seen = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(orm_engine, "before_cursor_execute", record)
    try:
        assert client.get("/api/me", headers=bearer(token)).status_code == 200
    finally:
        event.remove(orm_engine, "before_cursor_execute", record)
    assert seen == []
    assert reads.pool.checkedin() == 1
    connection = reads.raw_connection()
    try:
        assert connection.dbapi_connection.autocommit is True
        assert connection.dbapi_connection.info.transaction_status == TransactionStatus.IDLE
    finally:
        connection.close()


def test_readiness_after_a_dropped_connection_is_not_an_outage(pg_store_app):
    client = pg_store_app.test_client()
    assert client.get("/api/health/ready").status_code == 200
    assert terminate_app_connections(pg_store_app) >= 1
    ready = client.get("/api/health/ready")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"] == {"database": "ok", "revocation_store": "ok"}


def test_a_connection_dropped_before_the_session_ends_costs_no_answer(pg_store_app):
    """The answer is made; then the server drops the connection; the ROLLBACK
    that ends the session fails. That must not escape (under gunicorn it cost
    the client its answer: a closed connection), and the next request works."""
    from api.extensions import db

    client = pg_store_app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    with pg_store_app.app_context():
        db.session.execute(text("SELECT 1"))  # the session holds a connection
        assert terminate_app_connections(pg_store_app) >= 1
    # The app context's teardown ran on leaving the block, without raising.
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
