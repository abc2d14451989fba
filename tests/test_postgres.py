"""The same flows on the real PostgreSQL (psycopg 3), schema built by the migrations."""

from datetime import UTC, datetime, timedelta

import pytest
from flask_migrate import upgrade

from api import create_app
from api.database import engines
from api.extensions import db
from tests.conftest import PASSWORD, AuthActions, assert_error, bearer


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
