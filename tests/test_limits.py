"""Abuse limits: 429 rate_limited with Retry-After, per address and per username,
counted in memory or in Redis."""

import pytest

from tests.conftest import PASSWORD, assert_error, bearer


@pytest.fixture(params=["memory", "redis"])
def limited_app(request, make_app, tmp_path):
    settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/app.db"}
    if request.param == "redis":
        settings.update(request.getfixturevalue("redis_settings"))
    return make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="3 per minute",
        RATELIMIT_REFRESH="2 per minute",
        **settings,
    )


def login(client, username="bob", password="wrong password", address="10.0.0.1"):
    return client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_login_attempts_per_address(limited_app):
    client = limited_app.test_client()
    for _ in range(3):
        assert_error(login(client), 401, "invalid_credentials")
    limited = login(client)
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    # Another address still gets through.
    assert login(client, username="alice", address="10.0.0.2").status_code == 401


def test_login_attempts_per_username_across_addresses(limited_app):
    client = limited_app.test_client()
    for i in range(3):
        login(client, address=f"10.0.1.{i}")
    assert_error(login(client, address="10.0.1.99"), 429, "rate_limited")
    assert login(client, username="carol", address="10.0.1.98").status_code == 401


def test_username_budget_is_case_insensitive(limited_app):
    client = limited_app.test_client()
    for i, name in enumerate(["bob", "BOB", "Bob"]):
        login(client, username=name, address=f"10.0.2.{i}")
    assert_error(login(client, username="bOb", address="10.0.2.99"), 429, "rate_limited")


def test_login_cookie_login_and_register_share_a_budget(limited_app):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": "10.0.3.1"}
    body = {"username": "dave", "password": PASSWORD}
    assert client.post("/api/auth/register", json=body, environ_base=env).status_code == 201
    assert client.post("/api/auth/login", json=body, environ_base=env).status_code == 200
    assert client.post("/api/auth/cookie/login", json=body, environ_base=env).status_code == 200
    limited = client.post("/api/auth/login", json=body, environ_base=env)
    assert_error(limited, 429, "rate_limited")


def test_refresh_is_limited_per_address(limited_app):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": "10.0.4.1"}
    body = {"username": "erin", "password": PASSWORD}
    client.post("/api/auth/register", json=body, environ_base=env)
    token = client.post("/api/auth/login", json=body, environ_base=env).json["refresh_token"]
    for _ in range(2):
        response = client.post("/api/auth/refresh", headers=bearer(token), environ_base=env)
        assert response.status_code == 200
        token = response.json["refresh_token"]
    limited = client.post("/api/auth/refresh", headers=bearer(token), environ_base=env)
    assert_error(limited, 429, "rate_limited")


def test_limits_are_off_when_disabled(make_app):
    client = make_app(RATELIMIT_ENABLED=False, RATELIMIT_LOGIN="1 per minute").test_client()
    for _ in range(5):
        assert login(client).status_code == 401
