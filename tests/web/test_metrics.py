"""Prometheus metrics (api/web/metrics.py), in process: latency by route, and
logins, refreshes, revocations and rate-limit hits counted. (Under gunicorn,
with several workers: tests/e2e/test_gunicorn.py.)"""

from datetime import UTC, datetime, timedelta

import time_machine
from prometheus_client import REGISTRY

from tests.helpers import PASSWORD, assert_error, bearer


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


def test_metrics_are_served_as_prometheus_text(client):
    client.get("/api/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "# TYPE jwt_api_request_duration_seconds histogram" in response.text
    assert "# TYPE jwt_api_logins_total counter" in response.text


def test_the_content_type_is_prometheus_own(client):
    from prometheus_client import CONTENT_TYPE_LATEST

    assert client.get("/metrics").headers["Content-Type"] == CONTENT_TYPE_LATEST


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
