"""Request ids, JSON logs, Prometheus metrics, liveness/readiness and ProxyFix,
in process. (Under gunicorn, with several workers: tests/test_gunicorn.py.)"""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from prometheus_client import REGISTRY

from config import ConfigError
from deploy.processes import free_port
from tests.conftest import PASSWORD, AuthActions, assert_error, bearer


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """How much a metric grew while the `with` block ran."""

    def __init__(self, name, **labels):
        self.name, self.labels = name, labels

    def __enter__(self):
        self.before = sample(self.name, **self.labels)
        return self

    def __exit__(self, *exc):
        self.value = sample(self.name, **self.labels) - self.before


# Request ids


def test_a_request_id_is_made_and_echoed(client):
    first = client.get("/api/health/live").headers["X-Request-ID"]
    second = client.get("/api/health/live").headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_a_plain_request_id_from_the_caller_is_kept(client):
    response = client.get("/api/health/live", headers={"X-Request-ID": "edge-7f3a.01:b_c"})
    assert response.headers["X-Request-ID"] == "edge-7f3a.01:b_c"


@pytest.mark.parametrize("sent", ["a b", "x" * 129, '"}{"level": "ERROR', "é"])
def test_a_request_id_that_could_forge_log_lines_is_replaced(client, sent):
    echoed = client.get("/api/health/live", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert echoed != sent
    assert len(echoed) == 32


def test_errors_carry_the_request_id_too(client):
    refused = client.get("/api/me", headers={"X-Request-ID": "req-1"})
    assert_error(refused, 401, "missing_token")
    assert refused.headers["X-Request-ID"] == "req-1"
    assert client.get("/nowhere", headers={"X-Request-ID": "req-2"}).headers["X-Request-ID"] == (
        "req-2"
    )


def test_log_lines_are_json_with_the_request_id(make_app, capsys):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    user = AuthActions(app.test_client())
    pair = user.registered_pair()
    capsys.readouterr()
    response = app.test_client().get(
        "/api/me", headers={**bearer(pair["access_token"]), "X-Request-ID": "trace-42"}
    )
    assert_error(response, 503, "service_unavailable")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    logged = [line for line in lines if "revocation store unavailable" in line["message"]]
    assert len(logged) == 1, lines
    assert logged[0]["request_id"] == "trace-42"
    assert logged[0]["level"] == "ERROR"
    assert logged[0]["time"].endswith("+00:00")
    assert pair["access_token"] not in json.dumps(lines)


def test_a_mistyped_log_level_stops_the_start(make_app):
    with pytest.raises(ConfigError, match="LOG_LEVEL must be"):
        make_app(LOG_LEVEL="LOUD")


# Metrics


def test_metrics_are_served_as_prometheus_text(client):
    client.get("/api/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE jwt_api_request_duration_seconds histogram" in response.text
    assert "# TYPE jwt_api_logins_total counter" in response.text


def test_metrics_can_be_switched_off(make_app):
    assert_error(make_app(METRICS_ENABLED=False).test_client().get("/metrics"), 404, "not_found")


def test_latency_is_by_route_template_not_path(client, auth):
    pair = auth.registered_pair()
    note = client.post(
        "/api/notes", json={"title": "t", "body": "b"}, headers=bearer(pair["access_token"])
    )
    path = note.headers["Location"]
    labels = {"method": "GET", "route": "/api/notes/<int(max=2147483647):note_id>", "status": "200"}
    with Delta("jwt_api_request_duration_seconds_count", **labels) as counted:
        client.get(path, headers=bearer(pair["access_token"]))
    assert counted.value == 1
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    with Delta("jwt_api_request_duration_seconds_count", **unmatched) as counted:
        client.get("/made/up/path/123")
        client.get("/another/made/up/path")
    assert counted.value == 2


def test_made_up_methods_share_one_series(client):
    """A client must not be able to add series: each would be kept and scraped."""
    labels = {"method": "other", "route": "unmatched", "status": "405"}
    with Delta("jwt_api_request_duration_seconds_count", **labels) as counted:
        for made_up in ("QWERTY", "ASDFGH", "ZXCVBN"):
            client.open("/api/me", method=made_up)
    assert counted.value == 3
    scraped = client.get("/metrics").text
    assert "QWERTY" not in scraped and "ZXCVBN" not in scraped


def test_logins_are_counted_by_result(client, auth):
    auth.register()
    ok, failed = (
        Delta("jwt_api_logins_total", result="ok"),
        Delta("jwt_api_logins_total", result="failed"),
    )
    with ok, failed:
        auth.login()
        auth.cookie_login()
        client.post("/api/auth/login", json={"username": "bob", "password": "wrong-one"})
        client.post("/api/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert (ok.value, failed.value) == (2, 2)


def test_refreshes_and_reuse_are_counted(client, auth):
    with time_machine.travel(datetime(2026, 11, 28, 12, tzinfo=UTC), tick=False) as traveller:
        pair = auth.registered_pair()
        old = bearer(pair["refresh_token"])
        with Delta("jwt_api_refreshes_total", result="ok") as ok:
            assert client.post("/api/auth/refresh", headers=old).status_code == 200
        with Delta("jwt_api_refreshes_total", result="superseded") as superseded:
            assert_error(
                client.post("/api/auth/refresh", headers=old), 401, "refresh_token_superseded"
            )
        traveller.shift(timedelta(seconds=11))
        reuse = Delta("jwt_api_refresh_reuse_detections_total")
        reused = Delta("jwt_api_refreshes_total", result="reused")
        revoked = Delta("jwt_api_session_revocations_total", reason="reuse")
        with reuse, reused, revoked:
            assert_error(client.post("/api/auth/refresh", headers=old), 401, "refresh_token_reused")
    assert (ok.value, superseded.value) == (1, 1)
    assert (reuse.value, reused.value, revoked.value) == (1, 1, 1)


def test_revocations_are_counted_by_reason(client, auth):
    auth.register()
    first, second, third = (auth.login()["access_token"] for _ in range(3))
    with Delta("jwt_api_session_revocations_total", reason="logout") as logout:
        assert client.post("/api/auth/logout", headers=bearer(first)).status_code == 204
        # A second logout with the same token is refused and revokes nothing more.
        assert_error(client.post("/api/auth/logout", headers=bearer(first)), 401, "token_revoked")
    fresh = auth.login()["access_token"]
    with Delta("jwt_api_session_revocations_total", reason="password_change") as changed:
        answer = client.put(
            "/api/me/password",
            json={"current_password": PASSWORD, "new_password": "another password"},
            headers=bearer(fresh),
        )
        assert answer.status_code == 204
    assert (logout.value, changed.value) == (1, 2)  # `second` and `third` ended
    assert_error(client.get("/api/me", headers=bearer(second)), 401, "token_revoked")
    assert_error(client.get("/api/me", headers=bearer(third)), 401, "token_revoked")


def test_rate_limit_hits_are_counted_by_route(make_app):
    client = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="2 per minute").test_client()
    body = {"username": "nobody", "password": PASSWORD}
    with Delta("jwt_api_rate_limit_hits_total", route="/api/auth/login") as hits:
        answers = [client.post("/api/auth/login", json=body).status_code for _ in range(4)]
    assert answers == [401, 401, 429, 429]
    assert hits.value == 2


# Liveness and readiness


def test_liveness_does_not_depend_on_backing_services(make_app):
    client = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    live = client.get("/api/health/live")
    assert live.status_code == 200
    assert live.json == {"status": "ok"}
    for path in ("/api/health/ready", "/api/health"):
        ready = client.get(path)
        assert_error(ready, 503, "service_unavailable")
        assert ready.json["checks"] == {"database": "ok", "revocation_store": "unavailable"}


def test_readiness_is_the_contracts_health(client):
    ready, health = client.get("/api/health/ready"), client.get("/api/health")
    assert ready.status_code == health.status_code == 200
    assert (
        ready.json
        == health.json
        == {
            "status": "ok",
            "checks": {"database": "ok", "revocation_store": "ok"},
        }
    )


# Behind a proxy


def session_ip(app, headers):
    client = app.test_client()
    AuthActions(client).register()
    login = client.post(
        "/api/auth/login", json={"username": "bob", "password": PASSWORD}, headers=headers
    )
    sessions = client.get("/api/auth/sessions", headers=bearer(login.json["access_token"]))
    return sessions.json[0]["ip"]


SPOOFED = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(make_app):
    assert session_ip(make_app(), SPOOFED) == "127.0.0.1"


def test_one_trusted_proxy_gives_the_address_it_saw(make_app):
    # nginx appended 198.51.100.7; 203.0.113.9 is whatever the client claimed.
    assert session_ip(make_app(TRUSTED_PROXY_HOPS=1), SPOOFED) == "198.51.100.7"
    assert session_ip(make_app(TRUSTED_PROXY_HOPS=2), SPOOFED) == "203.0.113.9"


def test_rate_limits_count_the_forwarded_address(make_app):
    app = make_app(TRUSTED_PROXY_HOPS=1, RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="1 per minute")
    client = app.test_client()

    def attempt(address, username):
        body = {"username": username, "password": PASSWORD}
        return client.post(
            "/api/auth/login", json=body, headers={"X-Forwarded-For": f"10.0.0.1, {address}"}
        ).status_code

    assert attempt("198.51.100.1", "ann") == 401
    assert attempt("198.51.100.1", "ben") == 429  # the same address: its budget is spent
    assert attempt("198.51.100.2", "cal") == 401  # another address, its own budget
