"""The revocation store: Redis entries, and refusal (503) when a store is down."""

import pytest
import redis

from deploy.processes import free_port
from tests.helpers import AuthActions, assert_error, bearer, claims_of


@pytest.fixture
def redis_app(make_app, redis_settings):
    return make_app(**redis_settings)


def test_redis_entry_lives_until_the_session_would_have_ended(redis_app, redis_settings):
    """Not the access lifetime of this instance: another instance, or one with a
    longer lifetime or a clock ahead, may have minted the session's tokens."""
    client = redis_app.test_client()
    pair = AuthActions(client).registered_pair()
    client.post("/api/auth/logout", headers=bearer(pair["access_token"]))
    sid = claims_of(pair["access_token"])["sid"]
    server = redis.Redis.from_url(redis_settings["REDIS_URL"])
    key = f"{redis_settings['REDIS_KEY_PREFIX']}revoked:{sid}"
    assert server.exists(key) == 1
    fourteen_days = 14 * 24 * 3600
    assert fourteen_days < server.ttl(key) <= fourteen_days + 300
    server.close()


def test_refresh_of_a_revoked_session_is_refused_by_the_database(redis_app, redis_settings):
    """Even if Redis forgot the revocation (a restart, a flush), the database
    still refuses the session's refresh token."""
    client = redis_app.test_client()
    pair = AuthActions(client).registered_pair()
    client.post("/api/auth/logout", headers=bearer(pair["access_token"]))
    server = redis.Redis.from_url(redis_settings["REDIS_URL"])
    server.delete(
        f"{redis_settings['REDIS_KEY_PREFIX']}revoked:{claims_of(pair['access_token'])['sid']}"
    )
    server.close()
    response = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert_error(response, 401, "token_revoked")


def test_revocation_in_redis_is_seen_by_another_app(make_app, redis_settings, tmp_path):
    """Two apps (as two instances) sharing one database and one Redis."""
    database = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/shared.db"}
    first = make_app(**redis_settings, **database)
    second = make_app(**redis_settings, **database)
    pair = AuthActions(first.test_client()).registered_pair()
    second.test_client().post("/api/auth/logout", headers=bearer(pair["access_token"]))
    response = first.test_client().get("/api/me", headers=bearer(pair["access_token"]))
    assert_error(response, 401, "token_revoked")


@pytest.fixture
def redis_down(make_app, tmp_path):
    """An app whose REDIS_URL points at a closed port, after a login made while
    the store was not needed (rate limits off, login does not ask it)."""
    return make_app(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )


@pytest.mark.parametrize("path", ["/api/me", "/api/auth/token", "/api/auth/sessions"])
def test_store_down_refuses_authenticated_requests(redis_down, path):
    client = redis_down.test_client()
    pair = AuthActions(client).registered_pair()
    response = client.get(path, headers=bearer(pair["access_token"]))
    assert_error(response, 503, "service_unavailable")


def test_store_down_refuses_refresh_and_logout_leaves_nothing_half_done(redis_down):
    from api.auth.sessions import LoginSession
    from api.extensions import db

    client = redis_down.test_client()
    pair = AuthActions(client).registered_pair()
    assert_error(
        client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"])),
        503,
        "service_unavailable",
    )
    response = client.post("/api/auth/logout", headers=bearer(pair["access_token"]))
    assert_error(response, 503, "service_unavailable")
    with redis_down.app_context():
        session = db.session.get(LoginSession, claims_of(pair["access_token"])["sid"])
        assert session.revoked_at is None  # the caller was told it failed, and it did


def test_store_down_with_rate_limits_in_redis_refuses_login(make_app, tmp_path):
    app = make_app(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        RATELIMIT_ENABLED=True,
    )
    response = app.test_client().post(
        "/api/auth/login", json={"username": "bob", "password": "whatever1"}
    )
    assert_error(response, 503, "service_unavailable")


@pytest.mark.parametrize("store", ["database", "redis"])
@pytest.mark.parametrize("path", ["/api/me", "/api/auth/token"])
def test_database_down_refuses_authenticated_requests(make_app, tmp_path, request, store, path):
    """Whatever the store: the route that needs the claims alone checks the
    account in the database too, and refuses when it cannot."""
    import os

    database = tmp_path / "app.db"
    settings = request.getfixturevalue("redis_settings") if store == "redis" else {}
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}", **settings)
    client = app.test_client()
    pair = AuthActions(client).registered_pair()
    with app.app_context():
        from api.extensions import db

        db.engine.dispose()
    os.remove(database)
    os.mkdir(database)  # the file is now a directory: SQLite cannot open it
    response = client.get(path, headers=bearer(pair["access_token"]))
    assert_error(response, 503, "service_unavailable")


def test_password_change_with_store_failing_on_write_changes_nothing(make_app, tmp_path):
    """Redis going away between the request's check and its write cannot be
    timed for real: a store whose writes fail stands in for that moment."""
    from api.accounts import users
    from tests.helpers import PASSWORD, StoreWritesFail

    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db")
    client = app.test_client()
    auth = AuthActions(client)
    other = auth.registered_pair()
    current = auth.login()
    app.extensions["revocation_store"] = StoreWritesFail()
    body = {"current_password": PASSWORD, "new_password": "a new password"}
    response = client.put("/api/me/password", json=body, headers=bearer(current["access_token"]))
    assert_error(response, 503, "service_unavailable")
    with app.app_context():
        assert users.check_password(users.find_by_username("bob"), PASSWORD)
    assert client.get("/api/me", headers=bearer(other["access_token"])).status_code == 200
