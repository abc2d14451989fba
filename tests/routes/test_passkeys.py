"""Passkeys (api/routes/passkeys.py): registration, the login without a
password in both transports, and every answer that must not verify, with a
software authenticator (tests/webauthn_support.py), on SQLite and on
PostgreSQL + Redis."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from prometheus_client import REGISTRY

from api.accounts import users
from api.auth import passkeys
from api.auth.passkeys import MAX_CREDENTIAL_ID
from api.clock import utcnow
from api.extensions import db
from tests.helpers import (
    Fresh,
    assert_error,
    assert_login_cookies,
    bearer,
    claims_of,
    enable_totp,
    mfa_login,
    refresh,
)
from tests.webauthn_support import (
    COOKIE_LOGIN,
    LOGIN,
    OPTIONS,
    PASSKEYS,
    Authenticator,
    add,
    b64url,
    creation_options,
    finish,
    log_in,
    login_options,
    spoil_signature,
    two_factor_pair,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)

LIFETIME_AND_A_BIT = timedelta(minutes=5, seconds=1)


@pytest.fixture
def app(make_store_app):
    return make_store_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def pair(auth):
    return auth.registered_pair()


@pytest.fixture
def key():
    return Authenticator()


def listed(client, token):
    response = client.get(PASSKEYS, headers=bearer(token))
    assert response.status_code == 200
    return response.json


def events_of(client, token, type_):
    response = client.get(f"/api/me/events?type={type_}", headers=bearer(token))
    assert response.status_code == 200
    return response.json


def second_factors(result):
    labels = {"method": "passkey", "result": result}
    return REGISTRY.get_sample_value("jwt_api_second_factors_total", labels) or 0.0


# Registration


def test_creation_options_ask_for_a_discoverable_user_verified_passkey(client, pair):
    options = creation_options(client, pair["access_token"])
    assert options["rp"] == {"id": "localhost", "name": "Flask JWT API"}
    user_id = claims_of(pair["access_token"])["sub"]
    assert options["user"] == {"id": b64url(user_id.encode()), "name": "bob", "displayName": "bob"}
    assert options["authenticatorSelection"] == {
        "residentKey": "required",
        "requireResidentKey": True,
        "userVerification": "required",
    }
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert options["timeout"] == 300_000
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
    assert len(options["challenge"]) >= 43  # 32 bytes or more, base64url


def test_a_passkey_is_registered_and_listed(client, pair, key):
    token = pair["access_token"]
    added = add(client, token, key, name="Phone")
    assert set(added) == {"id", "name", "created_at", "last_used_at"}
    assert added["name"] == "Phone" and added["last_used_at"] is None
    assert added["created_at"].endswith("Z")
    assert listed(client, token) == [added]
    # The next registration (from a login with it: the account has a passkey
    # now) excludes it, so the same authenticator is not added twice.
    two_factors = two_factor_pair(client, key)["access_token"]
    excluded = creation_options(client, two_factors)["excludeCredentials"]
    assert excluded == [
        {
            "id": b64url(key.credential_id),
            "type": "public-key",
            "transports": ["internal", "hybrid"],
        }
    ]


def test_creation_options_need_a_fresh_token(client, pair):
    refreshed = refresh(client, pair["refresh_token"]).json
    response = client.post(OPTIONS, headers=bearer(refreshed["access_token"]))
    assert_error(response, 401, "fresh_token_required")


def test_a_registration_is_finished_by_its_session_fresh_or_not(client, pair, key):
    options = creation_options(client, pair["access_token"])
    refreshed = refresh(client, pair["refresh_token"]).json["access_token"]
    assert finish(client, refreshed, key.create(options)).status_code == 201


def test_a_registration_is_not_finished_by_another_session(client, auth, pair, key):
    options = creation_options(client, pair["access_token"])
    other = auth.login()["access_token"]
    credential = key.create(options)
    assert_error(finish(client, other, credential), 400, "webauthn_failed")
    assert listed(client, other) == []
    # The other session's attempt used nothing of this one's.
    assert finish(client, pair["access_token"], credential).status_code == 201


def test_new_creation_options_replace_the_sessions_older_ones(client, pair, key):
    token = pair["access_token"]
    older = creation_options(client, token)
    creation_options(client, token)
    assert_error(finish(client, token, key.create(older)), 400, "webauthn_failed")


def test_a_registration_challenge_works_once(client, pair, key):
    add(client, pair["access_token"], key)
    token = two_factor_pair(client, key)["access_token"]  # may add a second
    options = creation_options(client, token)
    assert finish(client, token, Authenticator().create(options)).status_code == 201
    another = Authenticator().create(options)  # a new key, the used challenge
    assert_error(finish(client, token, another), 400, "webauthn_failed")
    assert len(listed(client, token)) == 2


def test_a_credential_is_registered_once(client, auth, pair, key):
    add(client, pair["access_token"], key)
    token = two_factor_pair(client, key)["access_token"]
    again = key.create(creation_options(client, token))
    assert_error(finish(client, token, again), 400, "webauthn_failed")
    # Nor by another account.
    alice = auth.registered_pair("alice")["access_token"]
    theirs = key.create(creation_options(client, alice))
    assert_error(finish(client, alice, theirs), 400, "webauthn_failed")
    assert listed(client, alice) == []


def test_a_credential_registered_meanwhile_is_refused_by_the_database(
    client, pair, key, monkeypatch
):
    add(client, pair["access_token"], key)
    token = two_factor_pair(client, key)["access_token"]
    # A registration racing this one, committed after its check: only the unique key is left.
    monkeypatch.setattr(passkeys, "_find", lambda _credential_id: None)
    again = key.create(creation_options(client, token))
    assert_error(finish(client, token, again), 400, "webauthn_failed")
    assert len(listed(client, token)) == 1
    assert len(events_of(client, token, "passkey_added")) == 1


@pytest.mark.parametrize(
    "spoil",
    [{"origin": "https://evil.example"}, {"rp_id": "evil.example"}, {"user_verified": False}],
    ids=["wrong origin", "wrong rp id", "no user verification"],
)
def test_a_registration_that_does_not_verify_is_refused(client, pair, key, spoil):
    token = pair["access_token"]
    credential = key.create(creation_options(client, token), **spoil)
    assert_error(finish(client, token, credential), 400, "webauthn_failed")
    assert listed(client, token) == []


def test_a_registration_challenge_lives_5_minutes(client, auth):
    auth.register()
    first, second = Authenticator(), Authenticator()
    waits = ((first, timedelta(minutes=4, seconds=59), 201), (second, LIFETIME_AND_A_BIT, 400))
    with time_machine.travel(utcnow(), tick=False) as traveller:
        for key, wait, status in waits:
            # The second is asked for from a login with the first: the account has a passkey.
            pair = auth.login() if key is first else two_factor_pair(client, first)
            options = creation_options(client, pair["access_token"])
            traveller.shift(wait)
            # The access token has expired meanwhile: a refreshed one, of the same session.
            token = refresh(client, pair["refresh_token"]).json["access_token"]
            response = finish(client, token, key.create(options))
            assert response.status_code == status, response.json
    assert response.json["error"] == "webauthn_failed"


@pytest.mark.parametrize("name", ["", "x" * 65, None])
def test_a_passkey_needs_a_name_of_1_to_64_characters(client, pair, key, name):
    token = pair["access_token"]
    body = {"credential": key.create(creation_options(client, token))}
    if name is not None:
        body["name"] = name
    response = client.post(PASSKEYS, json=body, headers=bearer(token))
    assert_error(response, 422, "validation_error")
    assert "name" in response.json["details"]


def test_garbage_for_a_credential_is_refused(client, pair):
    token = pair["access_token"]
    creation_options(client, token)
    garbage = {"id": "AA", "rawId": "AA", "type": "public-key", "response": {"x": 1}}
    assert_error(finish(client, token, garbage), 400, "webauthn_failed")


def test_a_credential_id_of_1023_bytes_is_registered_and_logs_in(client, pair):
    key = Authenticator(id_length=MAX_CREDENTIAL_ID)
    add(client, pair["access_token"], key)
    assert log_in(client, key).status_code == 200


# WebAuthn caps a credential id at 1023 bytes; PostgreSQL's unique index, at
# about 2700 (beyond, a 503 unless refused first).
@pytest.mark.parametrize("length", [MAX_CREDENTIAL_ID + 1, 4096])
def test_a_longer_credential_id_is_refused(client, pair, length):
    token = pair["access_token"]
    credential = Authenticator(id_length=length).create(creation_options(client, token))
    assert_error(finish(client, token, credential), 400, "webauthn_failed")
    assert listed(client, token) == []
    assert events_of(client, token, "passkey_added") == []


# Login


def test_login_options_let_any_passkey_of_the_site_answer(client):
    start = login_options(client)
    assert set(start) == {"challenge_id", "options"}
    options = start["options"]
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    assert options["rpId"] == "localhost"
    assert options["timeout"] == 300_000
    assert login_options(client)["challenge_id"] != start["challenge_id"]


def test_a_passkey_logs_in_with_a_token_pair(client, pair, key):
    add(client, pair["access_token"], key)
    response = log_in(client, key)
    assert response.status_code == 200, response.json
    assert set(response.json) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "refresh_expires_in",
    }
    claims = claims_of(response.json["access_token"])
    assert claims["amr"] == ["hwk", "user"]
    assert claims["fresh"] is True
    assert claims_of(response.json["refresh_token"])["amr"] == ["hwk", "user"]
    token = response.json["access_token"]
    (login,) = [e for e in events_of(client, token, "login") if e["session_id"] == claims["sid"]]
    assert login["details"] == {"method": "passkey"}
    (passkey,) = listed(client, token)
    assert passkey["last_used_at"] is not None
    # A fresh login: it may register another passkey straight away.
    assert client.post(OPTIONS, headers=bearer(token)).status_code == 200


def test_a_synced_passkey_says_swk(client, pair):
    key = Authenticator(synced=True, counter=False)
    add(client, pair["access_token"], key)
    for _ in range(2):  # a count of 0, again and again: no counter kept
        response = log_in(client, key)
        assert response.status_code == 200, response.json
        assert claims_of(response.json["access_token"])["amr"] == ["swk", "user"]


def test_a_passkey_logs_in_with_cookies(client, pair, key):
    add(client, pair["access_token"], key)
    response = log_in(client, key, path=COOKIE_LOGIN)
    assert response.status_code == 200, response.json
    assert "access_token" not in response.json and "refresh_token" not in response.json
    assert response.json["user"]["username"] == "bob"
    assert_login_cookies(response)
    claims = claims_of(client.get_cookie("access_token_cookie").value)
    assert claims["amr"] == ["hwk", "user"] and claims["fresh"] is True
    assert client.get("/api/me").json["username"] == "bob"  # the cookie works
    me_events = client.get("/api/me/events?type=login").json
    assert me_events[0]["details"] == {"method": "passkey"}
    assert me_events[0]["session_id"] == claims["sid"]


def test_a_replayed_answer_is_refused(client, pair, key):
    add(client, pair["access_token"], key)
    start = login_options(client)
    body = {"challenge_id": start["challenge_id"], "credential": key.get(start["options"])}
    assert client.post(LOGIN, json=body).status_code == 200
    assert_error(client.post(LOGIN, json=body), 400, "webauthn_failed")
    assert_error(client.post(COOKIE_LOGIN, json=body), 400, "webauthn_failed")


def test_a_challenge_is_used_up_by_a_failed_attempt(client, pair, key):
    add(client, pair["access_token"], key)
    start = login_options(client)
    bad = spoil_signature(key.get(start["options"]))
    assert_error(client.post(LOGIN, json={"challenge_id": start["challenge_id"],
                                          "credential": bad}), 400, "webauthn_failed")  # fmt: skip
    good = key.get(start["options"])
    body = {"challenge_id": start["challenge_id"], "credential": good}
    assert_error(client.post(LOGIN, json=body), 400, "webauthn_failed")


def test_an_answer_to_another_challenge_is_refused(client, pair, key):
    add(client, pair["access_token"], key)
    first, second = login_options(client), login_options(client)
    body = {"challenge_id": second["challenge_id"], "credential": key.get(first["options"])}
    assert_error(client.post(LOGIN, json=body), 400, "webauthn_failed")


def test_an_unknown_challenge_id_is_refused(client, pair, key):
    add(client, pair["access_token"], key)
    start = login_options(client)
    body = {"challenge_id": "x" * 43, "credential": key.get(start["options"])}
    assert_error(client.post(LOGIN, json=body), 400, "webauthn_failed")


def test_a_login_challenge_lives_5_minutes(client, pair, key):
    add(client, pair["access_token"], key)
    with time_machine.travel(utcnow(), tick=False) as traveller:
        start = login_options(client)
        traveller.shift(timedelta(minutes=4, seconds=59))
        body = {"challenge_id": start["challenge_id"], "credential": key.get(start["options"])}
        assert client.post(LOGIN, json=body).status_code == 200
        start = login_options(client)
        traveller.shift(LIFETIME_AND_A_BIT)
        body = {"challenge_id": start["challenge_id"], "credential": key.get(start["options"])}
        assert_error(client.post(LOGIN, json=body), 400, "webauthn_failed")


@pytest.mark.parametrize(
    "spoil",
    [
        {"origin": "https://evil.example"},
        {"origin": "http://localhost:8001"},
        {"rp_id": "evil.example"},
        {"user_verified": False},
        {"user_handle": b"999"},
        {"user_handle": b""},
    ],
    ids=["wrong origin", "wrong port", "wrong rp id", "no user verification",
         "another user handle", "no user handle"],
)  # fmt: skip
def test_an_answer_that_does_not_verify_is_refused(client, pair, key, spoil):
    add(client, pair["access_token"], key)
    assert_error(log_in(client, key, **spoil), 400, "webauthn_failed")
    assert listed(client, pair["access_token"])[0]["last_used_at"] is None
    assert log_in(client, key).status_code == 200  # the passkey itself still works


def test_another_users_handle_is_refused(client, auth, pair, key):
    add(client, pair["access_token"], key)
    alice = auth.registered_pair("alice")["access_token"]
    add(client, alice, Authenticator())
    alice_id = claims_of(alice)["sub"].encode()
    assert_error(log_in(client, key, user_handle=alice_id), 400, "webauthn_failed")


def test_a_bad_signature_is_refused(client, pair, key):
    add(client, pair["access_token"], key)
    start = login_options(client)
    bad = spoil_signature(key.get(start["options"]))
    body = {"challenge_id": start["challenge_id"], "credential": bad}
    assert_error(client.post(LOGIN, json=body), 400, "webauthn_failed")


def test_an_unknown_passkey_is_refused(client, pair, key):
    add(client, pair["access_token"], key)
    stranger = Authenticator()
    stranger.user_handle = key.user_handle  # claims bob's account with a key he never added
    assert_error(log_in(client, stranger), 400, "webauthn_failed")


@pytest.mark.parametrize("length", [MAX_CREDENTIAL_ID + 1, 16384])
def test_a_raw_id_longer_than_webauthn_allows_is_refused_unlooked_up(
    client, pair, key, length, monkeypatch
):
    add(client, pair["access_token"], key)
    stranger = Authenticator(id_length=length)
    stranger.user_handle = key.user_handle
    looked_up = []
    find = passkeys._find
    monkeypatch.setattr(passkeys, "_find", lambda raw_id: looked_up.append(raw_id) or find(raw_id))
    assert_error(log_in(client, stranger), 400, "webauthn_failed")
    # No key is that long: it is refused before the database is asked.
    assert looked_up == []


def test_a_removed_passkey_logs_in_no_more(client, pair, key):
    passkey = add(client, pair["access_token"], key)
    token = two_factor_pair(client, key)["access_token"]
    assert client.delete(f"{PASSKEYS}/{passkey['id']}", headers=bearer(token)).status_code == 204
    assert_error(log_in(client, key), 400, "webauthn_failed")


@pytest.mark.parametrize("count", [0, 4, 5])
def test_a_sign_count_that_does_not_go_forward_is_refused(client, pair, key, count):
    add(client, pair["access_token"], key)
    assert log_in(client, key, sign_count=5).status_code == 200
    assert_error(log_in(client, key, sign_count=count), 400, "webauthn_failed")
    assert log_in(client, key, sign_count=6).status_code == 200


def test_a_disabled_user_cannot_log_in_with_a_passkey(app, client, pair, key):
    add(client, pair["access_token"], key)
    with app.app_context():
        users.find_by_username("bob").disabled = True
        db.session.commit()
    assert_error(log_in(client, key), 400, "webauthn_failed")
    assert_error(log_in(client, key, path=COOKIE_LOGIN), 400, "webauthn_failed")


def test_a_login_body_needs_a_challenge_id_and_a_credential(client):
    response = client.post(LOGIN, json={})
    assert_error(response, 422, "validation_error")
    assert set(response.json["details"]) == {"challenge_id", "credential"}
    assert_error(client.post("/api/auth/passkey/options", json={"x": 1}), 422, "validation_error")


def test_one_answer_sent_four_times_at_once_logs_in_once(app, client, pair, key):
    add(client, pair["access_token"], key)
    start = login_options(client)
    body = {"challenge_id": start["challenge_id"], "credential": key.get(start["options"])}

    def post(_):
        return app.test_client().post(LOGIN, json=body).status_code

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, range(4)))
    assert sorted(answers) == [200, 400, 400, 400]


# Removal


def test_a_passkey_is_removed_with_a_fresh_token(client, pair, key):
    passkey = add(client, pair["access_token"], key)
    # Two factors both times: only the freshness differs.
    two_factors = two_factor_pair(client, key)
    refreshed = refresh(client, two_factors["refresh_token"]).json["access_token"]
    response = client.delete(f"{PASSKEYS}/{passkey['id']}", headers=bearer(refreshed))
    assert_error(response, 401, "fresh_token_required")
    token = two_factors["access_token"]
    assert client.delete(f"{PASSKEYS}/{passkey['id']}", headers=bearer(token)).status_code == 204
    assert listed(client, token) == []


def test_someone_elses_passkey_is_not_found(client, auth, pair, key):
    passkey = add(client, pair["access_token"], key)
    alice = auth.registered_pair("alice")["access_token"]
    response = client.delete(f"{PASSKEYS}/{passkey['id']}", headers=bearer(alice))
    assert_error(response, 404, "not_found")
    assert_error(client.delete(f"{PASSKEYS}/99999", headers=bearer(alice)), 404, "not_found")
    assert listed(client, pair["access_token"]) == [passkey]
    assert listed(client, alice) == []


# Changing factors: a password alone still logs in to an account with a
# passkey, so from then on only a login that proved two factors adds, renews
# or removes one (api/auth/identity.py changes_factors).

TOTP = "/api/me/mfa/totp"
RECOVERY_CODES = "/api/me/mfa/recovery-codes"


def assert_step_up_needed(response):
    assert_error(response, 403, "forbidden")
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication"'
    )


def test_the_first_passkey_is_added_with_the_password_alone_not_a_second(client, pair, key):
    token = pair["access_token"]
    assert claims_of(token)["amr"] == ["pwd"]
    add(client, token, key)
    assert_step_up_needed(client.post(OPTIONS, headers=bearer(token)))


@pytest.mark.parametrize("route", ["passkey options", "passkey removal", "totp enrolment"])
def test_with_a_passkey_a_fresh_password_login_changes_no_factor(client, auth, pair, key, route):
    passkey = add(client, pair["access_token"], key)
    password_only = auth.login()["access_token"]  # as a thief of the password would log in
    assert claims_of(password_only)["fresh"] is True
    method, path = {
        "passkey options": ("POST", OPTIONS),
        "passkey removal": ("DELETE", f"{PASSKEYS}/{passkey['id']}"),
        "totp enrolment": ("POST", TOTP),
    }[route]
    assert_step_up_needed(client.open(path, method=method, headers=bearer(password_only)))
    # Nothing changed: the passkey stays, and TOTP is not on (nor can this
    # session confirm anything).
    assert listed(client, password_only) == [passkey]
    confirm = client.post(f"{TOTP}/confirm", json={"code": "000000"}, headers=bearer(password_only))
    assert_step_up_needed(confirm)
    assert client.get("/api/me", headers=bearer(password_only)).json["mfa_enabled"] is False


@pytest.mark.parametrize("synced", [False, True], ids=["hwk", "swk"])
def test_a_passkey_login_changes_factors(client, pair, synced):
    key = Authenticator(synced=synced)
    passkey = add(client, pair["access_token"], key)
    token = two_factor_pair(client, key)["access_token"]
    assert creation_options(client, token)["excludeCredentials"]
    started = client.post(TOTP, headers=bearer(token))
    assert started.status_code == 200, started.json
    removal = client.delete(f"{PASSKEYS}/{passkey['id']}", headers=bearer(token))
    assert removal.status_code == 204
    assert listed(client, token) == []


def test_with_totp_on_too_only_a_two_factor_login_changes_factors(client, pair, key):
    # The session that turned TOTP on outlives it and, the account having no
    # passkey yet, added one with the password alone: the one such token left.
    password_only = pair["access_token"]
    _secret, codes = enable_totp(client, password_only)
    passkey = add(client, password_only, key)
    for method, path, body in (
        ("POST", OPTIONS, None),
        ("POST", TOTP, None),
        ("POST", RECOVERY_CODES, None),
        ("DELETE", TOTP, {"code": codes[1]}),
        ("DELETE", f"{PASSKEYS}/{passkey['id']}", None),
    ):
        refused = client.open(path, method=method, json=body, headers=bearer(password_only))
        assert_step_up_needed(refused)
    # Password and a recovery code of the set the refused renewal left alone.
    token = mfa_login(client, codes[0]).json["access_token"]
    assert claims_of(token)["amr"] == ["pwd", "otp", "mfa"]
    creation_options(client, token)
    assert client.post(TOTP, headers=bearer(token)).status_code == 200
    renewed = client.post(RECOVERY_CODES, headers=bearer(token))
    assert renewed.status_code == 200
    turned_off = client.delete(
        TOTP, json={"code": renewed.json["recovery_codes"][0]}, headers=bearer(token)
    )
    assert turned_off.status_code == 204
    removal = client.delete(f"{PASSKEYS}/{passkey['id']}", headers=bearer(token))
    assert removal.status_code == 204


# Events and metrics


def test_adding_and_removing_are_recorded(client, pair, key):
    token = pair["access_token"]
    passkey = add(client, token, key, name="Phone")
    two_factors = two_factor_pair(client, key)["access_token"]
    removal = client.delete(f"{PASSKEYS}/{passkey['id']}", headers=bearer(two_factors))
    assert removal.status_code == 204
    # Each by the session that did it.
    for type_, by in (("passkey_added", token), ("passkey_removed", two_factors)):
        (event,) = events_of(client, token, type_)
        assert event["details"] == {"passkey_id": passkey["id"], "name": "Phone"}
        assert event["session_id"] == claims_of(by)["sid"]


def test_passkey_checks_are_counted(client, pair, key):
    ok, failed = second_factors("ok"), second_factors("failed")
    add(client, pair["access_token"], key)
    assert log_in(client, key).status_code == 200
    assert log_in(client, key, user_verified=False).status_code == 400
    assert second_factors("ok") == ok + 2  # the registration and the login
    assert second_factors("failed") == failed + 1


def test_passkey_logins_spend_the_address_login_budget(make_store_app):
    app = make_store_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    env = {"REMOTE_ADDR": Fresh().addr()}
    start = client.post("/api/auth/passkey/options", json={}, environ_base=env).json
    body = {"challenge_id": start["challenge_id"], "credential": {}}
    assert client.post(LOGIN, json=body, environ_base=env).status_code == 400
    assert client.post(COOKIE_LOGIN, json=body, environ_base=env).status_code == 400
    assert_error(client.post(LOGIN, json=body, environ_base=env), 429, "rate_limited")
    limited = client.post("/api/auth/passkey/options", json={}, environ_base=env)
    assert_error(limited, 429, "rate_limited")
