"""/api/auth/sessions (api/routes/sessions.py) and /api/auth/logout (in
api/routes/auth.py): listing and revoking login sessions, logout by bearer or
cookies; every rule on SQLite, PostgreSQL, and PostgreSQL with Redis as the
revocation store."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.helpers import PASSWORD, AuthActions, assert_error, bearer, claims_of, me, refresh


@pytest.fixture
def client(store_app):
    """On each store (conftest's `auth` uses this client too)."""
    return store_app.test_client()


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
    assert set(listed[0]) == {
        "id",
        "created_at",
        "last_used_at",
        "user_agent",
        "ip",
        "current",
        "expires_at",
    }
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


def test_ended_sessions_are_not_listed(auth, client):
    pair = auth.registered_pair()
    with time_machine.travel(datetime.now(UTC) + timedelta(days=15), tick=False):
        fresh = auth.login()
        listed = sessions_of(client, fresh["access_token"])
    assert [s["id"] for s in listed] == [claims_of(fresh["access_token"])["sid"]]
    assert claims_of(pair["access_token"])["sid"] not in {s["id"] for s in listed}


def at(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def logged_in_at_start(make_store_app, **config):
    """(client, auth, start, pair): bob logged in at `start`, now."""
    client = make_store_app(**config).test_client()
    auth = AuthActions(client)
    start = datetime.now(UTC).replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        pair = auth.registered_pair()
    return client, auth, start, pair


def test_a_session_ends_at_its_max_age_however_often_it_is_refreshed(make_store_app):
    client, auth, start, pair = logged_in_at_start(
        make_store_app, SESSION_MAX_AGE=timedelta(days=3)
    )
    for day in (1, 2):
        with time_machine.travel(start + timedelta(days=day), tick=False):
            response = refresh(client, pair["refresh_token"])
            assert response.status_code == 200
            pair = response.json
            [listed] = sessions_of(client, pair["access_token"])
            assert listed["expires_at"] == at(start + timedelta(days=3))
    with time_machine.travel(start + timedelta(days=3, seconds=1), tick=False):
        response = refresh(client, pair["refresh_token"])
        assert_error(response, 401, "session_expired")
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        fresh = auth.login()
        listed = sessions_of(client, fresh["access_token"])
    assert [s["id"] for s in listed] == [claims_of(fresh["access_token"])["sid"]]


def test_a_session_ends_when_idle_too_long(make_store_app):
    client, _, start, pair = logged_in_at_start(
        make_store_app, SESSION_IDLE_TIMEOUT=timedelta(hours=1)
    )
    with time_machine.travel(start, tick=False):
        [listed] = sessions_of(client, pair["access_token"])
        assert listed["expires_at"] == at(start + timedelta(hours=1))
    used = start + timedelta(minutes=59)
    with time_machine.travel(used, tick=False):
        pair = refresh(client, pair["refresh_token"]).json  # a refresh is a use
        [listed] = sessions_of(client, pair["access_token"])
        assert listed["expires_at"] == at(used + timedelta(hours=1))
    with time_machine.travel(used + timedelta(minutes=61), tick=False):
        assert_error(refresh(client, pair["refresh_token"]), 401, "session_expired")
        assert_error(refresh(client, pair["refresh_token"]), 401, "session_expired")


def test_an_ended_cookie_session_is_expired_too(make_store_app):
    client = make_store_app(SESSION_IDLE_TIMEOUT=timedelta(hours=1)).test_client()
    auth = AuthActions(client)
    auth.register()
    session = auth.cookie_login()
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=2), tick=False):
        response = client.post(
            "/api/auth/refresh", headers={"X-CSRF-TOKEN": session["csrf_refresh_token"]}
        )
    assert_error(response, 401, "session_expired")


def test_the_idle_timeout_defaults_to_the_refresh_lifetime(make_store_app):
    app = make_store_app(JWT_REFRESH_TOKEN_EXPIRES=timedelta(days=2))
    client = app.test_client()
    pair = AuthActions(client).registered_pair()
    [listed] = sessions_of(client, pair["access_token"])
    created = datetime.strptime(listed["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    ends = datetime.strptime(listed["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert ends - created == timedelta(days=2)


@pytest.mark.parametrize("how", ["password", "revoke_all", "revoke_one"])
def test_a_session_past_its_age_is_still_revoked_while_its_tokens_live(make_store_app, how):
    """Refreshed a second before its end, a session's new access token
    outlives it by up to a minute: a password change must still end it."""
    client, auth, start, pair = logged_in_at_start(
        make_store_app, SESSION_MAX_AGE=timedelta(hours=1)
    )
    with time_machine.travel(start + timedelta(minutes=59, seconds=59), tick=False):
        late = refresh(client, pair["refresh_token"]).json
    with time_machine.travel(start + timedelta(hours=1, seconds=30), tick=False):
        assert me(client, late["access_token"]).status_code == 200  # past its end, still live
        token = auth.login()["access_token"]
        old_sid = claims_of(late["access_token"])["sid"]
        if how == "password":
            body = {"current_password": PASSWORD, "new_password": "a new password"}
            response = client.put("/api/me/password", json=body, headers=bearer(token))
        elif how == "revoke_all":
            response = client.delete("/api/auth/sessions", headers=bearer(token))
        else:
            response = client.delete(f"/api/auth/sessions/{old_sid}", headers=bearer(token))
        assert response.status_code == 204
        assert_error(me(client, late["access_token"]), 401, "token_revoked")


def test_a_replayed_token_after_the_sessions_end_is_still_reuse(make_store_app):
    """The end of a session is no cover for a stolen token: its replay still
    revokes the session, whose last access token outlives it by a minute."""
    client, auth, start, pair = logged_in_at_start(
        make_store_app, SESSION_MAX_AGE=timedelta(hours=1)
    )
    with time_machine.travel(start + timedelta(minutes=59, seconds=59), tick=False):
        late = refresh(client, pair["refresh_token"]).json
    with time_machine.travel(start + timedelta(hours=1, seconds=10), tick=False):
        assert_error(refresh(client, pair["refresh_token"]), 401, "refresh_token_reused")
        assert_error(me(client, late["access_token"]), 401, "token_revoked")
        assert_error(refresh(client, late["refresh_token"]), 401, "token_revoked")
