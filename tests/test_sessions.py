"""Login sessions, rotation, reuse detection and revocation: every rule on
SQLite, PostgreSQL, and PostgreSQL with Redis as the revocation store."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.conftest import PASSWORD, AuthActions, assert_error, bearer, claims_of


@pytest.fixture
def client(store_app):
    return store_app.test_client()


@pytest.fixture
def auth(client):
    return AuthActions(client)


def me(client, token):
    return client.get("/api/me", headers=bearer(token))


def refresh(client, token):
    return client.post("/api/auth/refresh", headers=bearer(token))


def sessions_of(client, token):
    response = client.get("/api/auth/sessions", headers=bearer(token))
    assert response.status_code == 200
    return response.json


def test_each_login_opens_a_session(auth, client):
    auth.register()
    first = auth.login()
    second = client.post(
        "/api/auth/login",
        json={"username": "bob", "password": PASSWORD},
        headers={"User-Agent": "phone-app/2.1"},
    ).json
    listed = sessions_of(client, second["access_token"])
    assert len(listed) == 2
    assert set(listed[0]) == {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}
    by_id = {s["id"]: s for s in listed}
    current = by_id[claims_of(second["access_token"])["sid"]]
    assert current["current"] is True
    assert current["user_agent"] == "phone-app/2.1"
    assert current["ip"] == "127.0.0.1"
    assert current["created_at"].endswith("Z")
    assert by_id[claims_of(first["access_token"])["sid"]]["current"] is False


def test_sessions_list_only_the_callers(auth, client):
    auth.register("alice")
    auth.login("alice")
    auth.register("bob")
    bob = auth.login("bob")
    assert len(sessions_of(client, bob["access_token"])) == 1


def test_revoking_a_session_refuses_its_tokens_at_once(auth, client):
    auth.register()
    kept, doomed = auth.login(), auth.login()
    sid = claims_of(doomed["access_token"])["sid"]
    response = client.delete(f"/api/auth/sessions/{sid}", headers=bearer(kept["access_token"]))
    assert response.status_code == 204
    assert_error(me(client, doomed["access_token"]), 401, "token_revoked")
    assert_error(refresh(client, doomed["refresh_token"]), 401, "token_revoked")
    assert me(client, kept["access_token"]).status_code == 200
    assert [s["id"] for s in sessions_of(client, kept["access_token"])] == [
        claims_of(kept["access_token"])["sid"]
    ]


def test_someone_elses_session_is_404(auth, client):
    auth.register("alice")
    alice = auth.login("alice")
    auth.register("bob")
    bob = auth.login("bob")
    alice_sid = claims_of(alice["access_token"])["sid"]
    response = client.delete(f"/api/auth/sessions/{alice_sid}", headers=bearer(bob["access_token"]))
    assert_error(response, 404, "not_found")
    missing = client.delete("/api/auth/sessions/nope", headers=bearer(bob["access_token"]))
    assert_error(missing, 404, "not_found")
    assert me(client, alice["access_token"]).status_code == 200


def test_revoke_all_sessions(auth, client):
    auth.register()
    first, second = auth.login(), auth.login()
    response = client.delete("/api/auth/sessions", headers=bearer(second["access_token"]))
    assert response.status_code == 204
    for pair in (first, second):
        assert_error(me(client, pair["access_token"]), 401, "token_revoked")
        assert_error(refresh(client, pair["refresh_token"]), 401, "token_revoked")


def test_logout_with_bearer(auth, client):
    pair = auth.registered_pair()
    other = auth.login()
    response = client.post("/api/auth/logout", headers=bearer(pair["access_token"]))
    assert response.status_code == 204
    assert response.data == b""
    assert_error(me(client, pair["access_token"]), 401, "token_revoked")
    assert_error(refresh(client, pair["refresh_token"]), 401, "token_revoked")
    assert me(client, other["access_token"]).status_code == 200


def test_logout_with_cookies_needs_csrf_and_clears_them(auth, client):
    auth.register()
    session = auth.cookie_login()
    assert_error(client.post("/api/auth/logout"), 403, "csrf_failed")
    response = client.post(
        "/api/auth/logout", headers={"X-CSRF-TOKEN": session["csrf_access_token"]}
    )
    assert response.status_code == 204
    cleared = {c.split("=", 1)[0] for c in response.headers.getlist("Set-Cookie")}
    assert cleared == {
        "access_token_cookie",
        "refresh_token_cookie",
        "csrf_access_token",
        "csrf_refresh_token",
    }
    assert client.get_cookie("access_token_cookie") is None
    assert_error(client.get("/api/me"), 401, "missing_token")


@pytest.mark.parametrize("how", ["one", "all"])
def test_revoking_the_current_session_by_cookie_clears_the_cookies(auth, client, how):
    auth.register()
    session = auth.cookie_login()
    sid = claims_of(client.get_cookie("access_token_cookie").value)["sid"]
    path = f"/api/auth/sessions/{sid}" if how == "one" else "/api/auth/sessions"
    response = client.delete(path, headers={"X-CSRF-TOKEN": session["csrf_access_token"]})
    assert response.status_code == 204
    assert client.get_cookie("access_token_cookie") is None
    assert client.get_cookie("refresh_token_cookie", path="/api/auth") is None


def test_revoking_another_session_keeps_the_cookies(auth, client):
    auth.register()
    other = auth.login()
    session = auth.cookie_login()
    sid = claims_of(other["access_token"])["sid"]
    response = client.delete(
        f"/api/auth/sessions/{sid}", headers={"X-CSRF-TOKEN": session["csrf_access_token"]}
    )
    assert response.status_code == 204
    assert not response.headers.getlist("Set-Cookie")
    assert client.get("/api/me").status_code == 200


def test_long_client_addresses_are_kept_short(auth, client):
    auth.register()
    address = "fe80::1234:5678:9abc:def0%" + "x" * 40
    response = client.post(
        "/api/auth/login",
        json={"username": "bob", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": address},
    )
    assert response.status_code == 200
    (listed,) = sessions_of(client, response.json["access_token"])
    assert listed["ip"] == address[:45]


def test_rotation_replaces_the_refresh_token(auth, client):
    pair = auth.registered_pair()
    new = refresh(client, pair["refresh_token"])
    assert new.status_code == 200
    newer = refresh(client, new.json["refresh_token"])
    assert newer.status_code == 200
    assert me(client, newer.json["access_token"]).status_code == 200


def test_replaced_token_within_grace_is_superseded_and_changes_nothing(auth, client):
    pair = auth.registered_pair()
    new = refresh(client, pair["refresh_token"]).json
    again = refresh(client, pair["refresh_token"])
    assert_error(again, 401, "refresh_token_superseded")
    assert again.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # Nothing was revoked: the newer tokens, and the old access token, still work.
    assert me(client, new["access_token"]).status_code == 200
    assert me(client, pair["access_token"]).status_code == 200
    assert refresh(client, new["refresh_token"]).status_code == 200


def test_replaced_token_after_grace_is_reuse_and_revokes_the_session(auth, client):
    with time_machine.travel(datetime(2026, 11, 28, 12, tzinfo=UTC), tick=False) as traveller:
        pair = auth.registered_pair()
        other = auth.login()
        new = refresh(client, pair["refresh_token"]).json
        traveller.shift(timedelta(seconds=11))
        reused = refresh(client, pair["refresh_token"])
        assert_error(reused, 401, "refresh_token_reused")
        # The whole session, newest tokens included, is gone at once.
        assert_error(me(client, new["access_token"]), 401, "token_revoked")
        assert_error(refresh(client, new["refresh_token"]), 401, "token_revoked")
        # Other sessions are untouched.
        assert me(client, other["access_token"]).status_code == 200


def test_grace_is_counted_from_each_tokens_own_rotation(auth, client):
    with time_machine.travel(datetime(2026, 11, 28, 12, tzinfo=UTC), tick=False) as traveller:
        pair = auth.registered_pair()
        second = refresh(client, pair["refresh_token"]).json
        traveller.shift(timedelta(seconds=5))
        third = refresh(client, second["refresh_token"]).json
        traveller.shift(timedelta(seconds=3))
        # First generation, rotated 8 s ago: still within the 10 s window.
        assert_error(refresh(client, pair["refresh_token"]), 401, "refresh_token_superseded")
        traveller.shift(timedelta(seconds=3))
        # Now 11 s: reuse, even though the second generation is within its window.
        assert_error(refresh(client, pair["refresh_token"]), 401, "refresh_token_reused")
        assert_error(me(client, third["access_token"]), 401, "token_revoked")


def test_grace_window_is_configurable(make_store_app):
    app = make_store_app(JWT_REFRESH_GRACE_SECONDS=0)
    client = app.test_client()
    pair = AuthActions(client).registered_pair()
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=1), tick=False):
        assert refresh(client, pair["refresh_token"]).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=2), tick=False):
        assert_error(refresh(client, pair["refresh_token"]), 401, "refresh_token_reused")


def test_concurrent_refreshes_with_one_token_exactly_one_wins(store_app):
    client = store_app.test_client()
    pair = AuthActions(client).registered_pair()
    racers = 8
    barrier = threading.Barrier(racers)
    results = []

    def race():
        own = store_app.test_client()
        barrier.wait()
        response = refresh(own, pair["refresh_token"])
        results.append((response.status_code, (response.json or {}).get("error")))

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == sorted(
        [(200, None)] + [(401, "refresh_token_superseded")] * (racers - 1), key=str
    )


def test_password_change_needs_a_fresh_token(auth, client):
    pair = auth.registered_pair()
    refreshed = refresh(client, pair["refresh_token"]).json
    body = {"current_password": PASSWORD, "new_password": "a new password"}
    response = client.put("/api/me/password", json=body, headers=bearer(refreshed["access_token"]))
    assert_error(response, 401, "fresh_token_required")


def test_password_change_checks_the_current_password(auth, client):
    pair = auth.registered_pair()
    body = {"current_password": "not it at all", "new_password": "a new password"}
    response = client.put("/api/me/password", json=body, headers=bearer(pair["access_token"]))
    assert_error(response, 422, "validation_error")
    assert "current_password" in response.json["details"]
    assert me(client, pair["access_token"]).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"current_password": PASSWORD},
        {"current_password": PASSWORD, "new_password": "short"},
        {"current_password": PASSWORD, "new_password": "a new password", "roles": ["admin"]},
    ],
)
def test_password_change_validation(auth, client, body):
    pair = auth.registered_pair()
    response = client.put("/api/me/password", json=body, headers=bearer(pair["access_token"]))
    assert_error(response, 422, "validation_error")


def test_password_change_ends_every_other_session(auth, client):
    other = auth.registered_pair()
    current = auth.login()
    body = {"current_password": PASSWORD, "new_password": "a new password"}
    response = client.put("/api/me/password", json=body, headers=bearer(current["access_token"]))
    assert response.status_code == 204
    assert_error(me(client, other["access_token"]), 401, "token_revoked")
    assert_error(refresh(client, other["refresh_token"]), 401, "token_revoked")
    assert me(client, current["access_token"]).status_code == 200
    assert refresh(client, current["refresh_token"]).status_code == 200
    old = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert_error(old, 401, "invalid_credentials")
    assert auth.login(password="a new password")["access_token"]


def test_ended_sessions_are_not_listed(auth, client):
    pair = auth.registered_pair()
    with time_machine.travel(datetime.now(UTC) + timedelta(days=15), tick=False):
        fresh = auth.login()
        listed = sessions_of(client, fresh["access_token"])
    assert [s["id"] for s in listed] == [claims_of(fresh["access_token"])["sid"]]
    assert claims_of(pair["access_token"])["sid"] not in {s["id"] for s in listed}


def test_prune_forgets_expired_rotated_tokens(store_app, auth, client):
    from api.auth.sessions import LoginSession, RotatedRefreshToken
    from api.extensions import db

    pair = auth.registered_pair()
    refresh(client, pair["refresh_token"])
    runner = store_app.test_cli_runner()
    output = runner.invoke(args=["sessions", "prune"]).output
    assert "Pruned 0 expired rotated refresh tokens and 0 ended sessions" in output
    with time_machine.travel(datetime.now(UTC) + timedelta(days=15), tick=False):
        output = runner.invoke(args=["sessions", "prune"]).output
    assert "Pruned 1 expired rotated refresh tokens and 1 ended sessions" in output
    with store_app.app_context():
        assert db.session.query(RotatedRefreshToken).count() == 0
        assert db.session.query(LoginSession).count() == 0
