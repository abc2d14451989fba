"""Abuse limits: 429 rate_limited with Retry-After, per address and per username,
counted in memory or in Redis.

Counts in Redis outlive a test (a minute), so every test uses addresses and
usernames of its own: a rerun within the minute starts from zero.
"""

import secrets
import uuid

import pytest

from tests.helpers import PASSWORD, assert_error, bearer


class Fresh:
    """Addresses and usernames no other test (or earlier run) has used."""

    def __init__(self):
        self.net = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
        self.tag = uuid.uuid4().hex[:8]

    def addr(self, host=1):
        return f"{self.net}.{host}"

    def name(self, base="bob"):
        return f"{base}_{self.tag}"


@pytest.fixture
def fresh():
    return Fresh()


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


def login(client, username, address, password="wrong password"):
    return client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_login_attempts_per_address(limited_app, fresh):
    client = limited_app.test_client()
    for i in range(3):
        assert_error(login(client, fresh.name(f"u{i}"), fresh.addr()), 401, "invalid_credentials")
    limited = login(client, fresh.name("u9"), fresh.addr())
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    # Another address still gets through.
    assert login(client, fresh.name("alice"), fresh.addr(2)).status_code == 401


def test_login_attempts_per_username_across_addresses(limited_app, fresh):
    client = limited_app.test_client()
    for host in range(3):
        login(client, fresh.name(), fresh.addr(host))
    assert_error(login(client, fresh.name(), fresh.addr(99)), 429, "rate_limited")
    assert login(client, fresh.name("carol"), fresh.addr(98)).status_code == 401


def test_username_budget_is_case_insensitive(limited_app, fresh):
    client = limited_app.test_client()
    for host, name in enumerate(["bob", "BOB", "Bob"]):
        login(client, fresh.name(name), fresh.addr(host))
    assert_error(login(client, fresh.name("bOb"), fresh.addr(99)), 429, "rate_limited")


def test_login_cookie_login_and_register_share_a_budget(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    body = {"username": fresh.name("dave"), "password": PASSWORD}
    assert client.post("/api/auth/register", json=body, environ_base=env).status_code == 201
    assert client.post("/api/auth/login", json=body, environ_base=env).status_code == 200
    assert client.post("/api/auth/cookie/login", json=body, environ_base=env).status_code == 200
    limited = client.post("/api/auth/login", json=body, environ_base=env)
    assert_error(limited, 429, "rate_limited")


def test_one_username_budget_across_routes_and_addresses(limited_app, fresh):
    client = limited_app.test_client()
    body = {"username": fresh.name("frank"), "password": PASSWORD}
    for host, path in enumerate(
        ["/api/auth/register", "/api/auth/login", "/api/auth/cookie/login"]
    ):
        response = client.post(path, json=body, environ_base={"REMOTE_ADDR": fresh.addr(host)})
        assert response.status_code in (200, 201)
    for path in ("/api/auth/login", "/api/auth/cookie/login", "/api/auth/register"):
        limited = client.post(path, json=body, environ_base={"REMOTE_ADDR": fresh.addr(50)})
        assert_error(limited, 429, "rate_limited")


def registered_pair(client, env, username):
    """Register and log in from one address: two of that address's budget."""
    body = {"username": username, "password": PASSWORD}
    client.post("/api/auth/register", json=body, environ_base=env)
    return client.post("/api/auth/login", json=body, environ_base=env).json


def test_password_change_counts_against_the_address(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    token = registered_pair(client, env, fresh.name("gina"))["access_token"]
    change = {"current_password": "wrong guess", "new_password": "a new password"}

    def attempt():
        return client.put("/api/me/password", json=change, headers=bearer(token), environ_base=env)

    assert_error(attempt(), 422, "validation_error")  # the budget's third try
    assert_error(attempt(), 429, "rate_limited")


def test_mistyped_limit_stops_the_start(make_app):
    from config import ConfigError

    with pytest.raises(ConfigError, match="RATELIMIT_LOGIN='3 per minuet' is not a limit"):
        make_app(RATELIMIT_LOGIN="3 per minuet")


def test_refresh_is_limited_per_address(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    token = registered_pair(client, env, fresh.name("erin"))["refresh_token"]
    for _ in range(2):
        response = client.post("/api/auth/refresh", headers=bearer(token), environ_base=env)
        assert response.status_code == 200
        token = response.json["refresh_token"]
    limited = client.post("/api/auth/refresh", headers=bearer(token), environ_base=env)
    assert_error(limited, 429, "rate_limited")


def test_limits_are_off_when_disabled(make_app, fresh):
    client = make_app(RATELIMIT_ENABLED=False, RATELIMIT_LOGIN="1 per minute").test_client()
    for _ in range(5):
        assert login(client, fresh.name(), fresh.addr()).status_code == 401


def test_store_lost_after_the_view_keeps_the_answer(make_app, monkeypatch, fresh):
    """The limit was counted before the view; Redis going away before the
    headers are read leaves the view's answer (here, a new session) whole,
    not a 500. Found by tests/e2e/test_faults.py."""
    import redis

    from api.web.limits import limiter

    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    client.post("/api/auth/register", json={"username": fresh.name(), "password": PASSWORD})
    strategy = limiter.limiter

    def unreachable(*_args, **_kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(strategy, "get_window_stats", unreachable)
    response = login(client, fresh.name(), "10.0.0.1", password=PASSWORD)
    assert response.status_code == 200, response.json
    assert response.json["access_token"]
    assert "X-RateLimit-Remaining" not in response.headers


def test_a_malformed_login_is_not_an_attempt(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    for _ in range(5):
        response = client.post("/api/auth/login", json={"username": "x"}, environ_base=env)
        assert_error(response, 422, "validation_error")
    assert_error(login(client, fresh.name(), fresh.addr()), 401, "invalid_credentials")


def test_a_password_change_without_a_token_is_not_an_attempt(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    change = {"current_password": "wrong guess", "new_password": "a new password"}
    for _ in range(5):
        response = client.put("/api/me/password", json=change, environ_base=env)
        assert_error(response, 401, "missing_token")
    assert_error(login(client, fresh.name(), fresh.addr()), 401, "invalid_credentials")


def test_refreshes_with_a_refused_token_are_not_counted(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    pair = registered_pair(client, env, fresh.name("fay"))
    for _ in range(3):
        refused = client.post("/api/auth/refresh", headers=bearer("x.y.z"), environ_base=env)
        assert_error(refused, 401, "invalid_token")
    response = client.post(
        "/api/auth/refresh", headers=bearer(pair["refresh_token"]), environ_base=env
    )
    assert response.status_code == 200


def test_a_username_key_is_never_longer_than_a_username(app):
    from flask import g

    from api.web.limits import username_key

    with app.test_request_context():
        g.json_body = {"username": "B" * 60_000}
        assert username_key() == "username:" + "b" * 64
