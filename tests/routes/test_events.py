"""Security events (api/accounts/events.py): what each act records, the two
lists (GET /api/me/events, GET /api/admin/events), that an event lands with
its act or not at all, that no secret is ever in one, and `flask events
prune`; on SQLite, PostgreSQL, and PostgreSQL with Redis."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from prometheus_client import REGISTRY

from tests.helpers import (
    PASSWORD,
    AuthActions,
    StoreWritesFail,
    assert_error,
    bearer,
    claims_of,
    refresh,
)

COUNTER = "jwt_api_security_events_total"


@pytest.fixture
def client(store_app):
    return store_app.test_client()


def events_of(client, token, **query):
    response = client.get("/api/me/events", headers=bearer(token), query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def admin_events(client, admin, **query):
    response = client.get("/api/admin/events", headers=admin, query_string=query)
    assert response.status_code == 200, response.json
    return response.json


def login_from(client, user_agent):
    body = {"username": "bob", "password": PASSWORD}
    return client.post("/api/auth/login", json=body, headers={"User-Agent": user_agent})


def test_a_login_is_recorded_with_its_session_address_and_agent(auth, client):
    auth.register()
    pair = login_from(client, "phone-app/2.1").json
    [event] = events_of(client, pair["access_token"])
    assert set(event) == {"id", "type", "at", "ip", "user_agent", "session_id", "details"}
    assert event["type"] == "login"
    assert event["session_id"] == claims_of(pair["access_token"])["sid"]
    assert event["ip"] == "127.0.0.1"
    assert event["user_agent"] == "phone-app/2.1"
    assert event["details"] == {"method": "password"}
    at = datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(at - datetime.now(UTC)) < timedelta(seconds=30)


def test_failed_logins_are_recorded_for_the_account_tried(auth, client, admin):
    bob_id = auth.register()["id"]
    wrong = client.post("/api/auth/login", json={"username": "BOB", "password": "not it!!"})
    assert_error(wrong, 401, "invalid_credentials")
    unknown = client.post("/api/auth/login", json={"username": "nobody", "password": "x" * 9})
    assert_error(unknown, 401, "invalid_credentials")
    pair = auth.login()
    mine = events_of(client, pair["access_token"])
    assert [(e["type"], e["details"]) for e in mine] == [
        ("login", {"method": "password"}),
        ("login_failed", {"reason": "wrong_password"}),
    ]
    assert REGISTRY.get_sample_value(COUNTER, {"type": "login_failed"}) >= 2
    assert mine[1]["session_id"] is None
    failed = admin_events(client, admin, type="login_failed")
    assert [(e["user_id"], e["details"]["reason"]) for e in failed] == [
        (None, "unknown_user"),
        (bob_id, "wrong_password"),
    ]
    # The name tried is not kept: it is often a password typed in the wrong box.
    assert "nobody" not in json.dumps(failed)


def test_a_disabled_users_right_password_is_recorded_as_disabled(auth, client, admin):
    bob_id = auth.register()["id"]
    client.patch(f"/api/admin/users/{bob_id}", json={"disabled": True}, headers=admin)
    assert_error(
        client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    failed = admin_events(client, admin, type="login_failed", user_id=bob_id)
    assert [e["details"] for e in failed] == [{"reason": "disabled"}]


def test_logout_revocations_and_password_change_are_recorded(auth, client):
    auth.register()
    other, doomed, current = auth.login(), auth.login(), auth.login()
    token = current["access_token"]
    sid = claims_of(token)["sid"]
    doomed_sid = claims_of(doomed["access_token"])["sid"]
    assert client.post("/api/auth/logout", headers=bearer(other["access_token"])).status_code == 204
    assert (
        client.delete(f"/api/auth/sessions/{doomed_sid}", headers=bearer(token)).status_code == 204
    )
    spare = auth.login()
    body = {"current_password": PASSWORD, "new_password": "a new password"}
    assert client.put("/api/me/password", json=body, headers=bearer(token)).status_code == 204
    recorded = [e for e in events_of(client, token) if e["type"] != "login"]
    assert [e["type"] for e in recorded] == ["password_changed", "session_revoked", "logout"]
    changed, revoked, logout = recorded[:3]
    assert (changed["session_id"], changed["details"]) == (sid, {"sessions_revoked": 1})
    assert (revoked["session_id"], revoked["details"]) == (sid, {"sessions": [doomed_sid]})
    assert logout["session_id"] == claims_of(other["access_token"])["sid"]
    assert_error(refresh(client, spare["refresh_token"]), 401, "token_revoked")
    assert client.delete("/api/auth/sessions", headers=bearer(token)).status_code == 204
    newest = auth.login("bob", "a new password")["access_token"]
    [all_revoked] = events_of(client, newest, type="session_revoked")[:1]
    assert all_revoked["details"] == {"sessions": [sid]}


def test_refresh_reuse_is_recorded_with_the_session_it_ended(auth, client):
    pair = auth.registered_pair()
    assert refresh(client, pair["refresh_token"]).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=30)):
        assert_error(refresh(client, pair["refresh_token"]), 401, "refresh_token_reused")
        token = auth.login()["access_token"]
        [reused] = events_of(client, token, type="refresh_reused")
    assert reused["session_id"] == claims_of(pair["access_token"])["sid"]


def test_admin_changes_are_recorded_on_the_users_account(auth, client, admin):
    bob_id = auth.register()["id"]
    root_id = client.get("/api/me", headers=admin).json["id"]
    patch = {"roles": ["user", "admin"], "disabled": True}
    assert client.patch(f"/api/admin/users/{bob_id}", json=patch, headers=admin).status_code == 200
    for _ in range(2):  # the second changes nothing, and records nothing
        enable = client.patch(f"/api/admin/users/{bob_id}", json={"disabled": False}, headers=admin)
        assert enable.status_code == 200
    recorded = admin_events(client, admin, user_id=bob_id)
    assert [(e["type"], e["details"]) for e in recorded] == [
        ("user_enabled", {"by": root_id}),
        ("user_disabled", {"by": root_id, "tokens_revoked": 0}),
        ("roles_changed", {"by": root_id, "old": ["user"], "new": ["admin", "user"]}),
    ]
    assert {e["user_id"] for e in recorded} == {bob_id}
    assert {e["ip"] for e in recorded} == {"127.0.0.1"}  # the administrator's, for admins
    # Bob sees what was done and by whom, not the administrator's address or session.
    bob = AuthActions(client).login()["access_token"]
    own = [e for e in events_of(client, bob) if e["type"] != "login"]
    assert [e["details"]["by"] for e in own] == [root_id] * 3
    assert {(e["ip"], e["user_agent"], e["session_id"]) for e in own} == {(None, None, None)}


def test_each_user_sees_only_their_own_events(auth, client):
    auth.register("alice")
    alice = auth.login("alice")["access_token"]
    auth.register("bob")
    bob = auth.login("bob")["access_token"]
    assert [e["session_id"] for e in events_of(client, bob)] == [claims_of(bob)["sid"]]
    assert [e["session_id"] for e in events_of(client, alice)] == [claims_of(alice)["sid"]]


def test_events_are_paginated_newest_first(auth, client):
    auth.register()
    tokens = [auth.login()["access_token"] for _ in range(5)]
    response = client.get(
        "/api/me/events", headers=bearer(tokens[-1]), query_string={"per_page": 2, "page": 2}
    )
    assert response.status_code == 200
    assert [e["session_id"] for e in response.json] == [
        claims_of(tokens[2])["sid"],
        claims_of(tokens[1])["sid"],
    ]
    meta = json.loads(response.headers["X-Pagination"])
    assert (meta["total"], meta["total_pages"], meta["next_page"]) == (5, 3, 3)


@pytest.mark.parametrize(
    "query", [{"type": "nonsense"}, {"per_page": 101}, {"page": 0}, {"type": "login\x00"}]
)
def test_bad_filters_are_validation_errors(auth, client, query):
    token = auth.registered_pair()["access_token"]
    response = client.get("/api/me/events", headers=bearer(token), query_string=query)
    assert_error(response, 422, "validation_error")


def test_admin_events_filter_by_user_and_type_and_need_the_role(auth, client, admin):
    alice_id = auth.register("alice")["id"]
    alice = auth.login("alice")["access_token"]
    auth.register("bob")
    auth.login("bob")
    logins = admin_events(client, admin, type="login")
    assert len(logins) == 3  # root, alice, bob
    assert [e["user_id"] for e in admin_events(client, admin, user_id=alice_id)] == [alice_id]
    assert_error(client.get("/api/admin/events", headers=bearer(alice)), 403, "forbidden")
    bad = client.get("/api/admin/events", headers=admin, query_string={"user_id": 2**31})
    assert_error(bad, 422, "validation_error")


def test_no_secret_is_ever_in_an_event(auth, client, admin):
    auth.register()
    client.post("/api/auth/login", json={"username": "bob", "password": "guess-one-2"})
    pair = auth.login()
    rotated = refresh(client, pair["refresh_token"]).json
    body = {"current_password": PASSWORD, "new_password": "the new secret 42"}
    client.put("/api/me/password", json=body, headers=bearer(pair["access_token"]))
    assert (
        client.post("/api/auth/logout", headers=bearer(rotated["access_token"])).status_code == 204
    )
    everything = json.dumps(admin_events(client, admin, per_page=100))
    secrets = [PASSWORD, "guess-one-2", "the new secret 42"]
    secrets += [pair[k] for k in ("access_token", "refresh_token")]
    secrets += [rotated[k] for k in ("access_token", "refresh_token")]
    secrets += [claims_of(pair["refresh_token"])["jti"]]
    assert len(json.loads(everything)) == 5  # root's login; bob's failure, login, change, logout
    for secret in secrets:
        assert secret not in everything


def test_an_event_is_not_recorded_when_its_act_fails(make_app, tmp_path):
    """The password change's revocation fails (the store is away): neither
    the new password nor its event lands."""
    from api.auth.revocation import DatabaseStore

    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db")
    client = app.test_client()
    auth = AuthActions(client)
    auth.registered_pair()
    token = auth.login()["access_token"]
    app.extensions["revocation_store"] = StoreWritesFail()
    body = {"current_password": PASSWORD, "new_password": "a new password"}
    response = client.put("/api/me/password", json=body, headers=bearer(token))
    assert_error(response, 503, "service_unavailable")
    assert_error(client.post("/api/auth/logout", headers=bearer(token)), 503, "service_unavailable")
    app.extensions["revocation_store"] = DatabaseStore()
    assert [e["type"] for e in events_of(client, token)] == ["login", "login"]


def test_the_address_is_the_clients_behind_a_trusted_proxy(make_store_app):
    app = make_store_app(TRUSTED_PROXY_HOPS=1)
    client = app.test_client()
    auth = AuthActions(client)
    auth.register()
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    token = client.post(
        "/api/auth/login", json={"username": "bob", "password": PASSWORD}, headers=forwarded
    ).json["access_token"]
    assert events_of(client, token)[0]["ip"] == "203.0.113.9"


def test_prune_forgets_events_past_the_retention(store_app, auth, client):
    auth.register()
    long_ago = datetime.now(UTC) - timedelta(days=200)
    with time_machine.travel(long_ago, tick=False):
        auth.login()
    with time_machine.travel(long_ago + timedelta(days=150), tick=False):
        auth.login()
    token = auth.login()["access_token"]
    result = store_app.test_cli_runner().invoke(args=["events", "prune"])
    assert result.exit_code == 0, result.output
    assert "Pruned 1 security events older than 180 days." in result.output
    assert len(events_of(client, token)) == 2


def test_a_nul_in_the_user_agent_is_dropped_not_a_500(auth, client):
    auth.register()
    response = login_from(client, "evil\x00agent")
    assert response.status_code == 200
    assert events_of(client, response.json["access_token"])[0]["user_agent"] == "evilagent"


def test_a_bad_query_string_says_so(auth, client):
    token = auth.registered_pair()["access_token"]
    response = client.get("/api/me/events", headers=bearer(token), query_string={"type": "x"})
    assert_error(response, 422, "validation_error")
    assert response.json["message"] == "The query string is not valid."
    assert "type" in response.json["details"]


def test_a_forwarded_address_that_is_not_one_is_not_kept(make_store_app):
    client = make_store_app(TRUSTED_PROXY_HOPS=1).test_client()
    AuthActions(client).register()
    body = {"username": "bob", "password": PASSWORD}
    token = client.post("/api/auth/login", json=body, headers={"X-Forwarded-For": "<script>"}).json[
        "access_token"
    ]
    assert events_of(client, token)[0]["ip"] is None


def test_a_utf8_user_agent_is_kept_as_sent(auth, client):
    auth.register()
    # WSGI hands header bytes over as latin-1 text; the client sent UTF-8.
    sent = "Café-App/1.0 (ünïcode)"
    response = login_from(client, sent.encode().decode("latin-1"))
    assert events_of(client, response.json["access_token"])[0]["user_agent"] == sent


def test_an_event_of_a_failed_act_is_neither_kept_nor_counted(store_app, auth, client, admin):
    """Disabling bob records user_disabled, then his sessions' revocation
    fails: the change, its event and its count all go."""
    bob_id = auth.register()["id"]
    auth.login()  # a session to revoke
    store_app.extensions["revocation_store"] = StoreWritesFail()
    counted = REGISTRY.get_sample_value(COUNTER, {"type": "user_disabled"}) or 0
    response = client.patch(f"/api/admin/users/{bob_id}", json={"disabled": True}, headers=admin)
    assert_error(response, 503, "service_unavailable")
    assert (REGISTRY.get_sample_value(COUNTER, {"type": "user_disabled"}) or 0) == counted
    assert admin_events(client, admin, type="user_disabled") == []
    assert auth.login()["access_token"]  # still enabled


def test_prune_says_a_retention_under_a_day_in_seconds(make_store_app):
    app = make_store_app(SECURITY_EVENTS_RETENTION=timedelta(seconds=90))
    result = app.test_cli_runner().invoke(args=["events", "prune"])
    assert "Pruned 0 security events older than 90 seconds." in result.output
