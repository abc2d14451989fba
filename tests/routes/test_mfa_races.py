"""The second factor under concurrent requests, on SQLite and on PostgreSQL +
Redis: an mfa token has five checked attempts however many arrive at once;
a right code racing wrong ones is never refused as a database failure; a
double-clicked confirmation shows one set of recovery codes, the one kept;
and turning TOTP on ends the sessions that proved the password alone."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from api.auth.mfa_challenges import MAX_FAILURES
from api.auth.totp import ENROLMENT_LIFETIME
from tests.helpers import (
    PASSWORD,
    TOTP_STEP,
    Fresh,
    assert_error,
    bearer,
    enable_totp,
    me,
    mfa_login,
    mfa_token_of,
    refresh,
    second_step,
    totp_code,
    wait_for_a_lock_wait,
    wrong_code,
)
from tests.routes.test_events import events_of
from tests.webauthn_support import Authenticator, add, creation_options, finish

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)

THREADS = 8


@pytest.fixture
def client(store_app):
    return store_app.test_client()


def at_once(app, requests):
    """Send `requests` (callables of a client) together; their answers."""
    start = threading.Barrier(len(requests))

    def send(request):
        own = app.test_client()
        start.wait()
        return request(own)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def attempt(token, code):
    return lambda client: second_step(client, token, code)


def test_of_many_wrong_codes_at_once_five_are_checked(store_app, auth, client, clock):
    pair = auth.registered_pair()
    secret, _codes = enable_totp(client, pair["access_token"])
    token, wrong = mfa_token_of(client), wrong_code(secret)
    answers = at_once(store_app, [attempt(token, wrong)] * (MAX_FAILURES + 3))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [400] * MAX_FAILURES + [401] * 3
    assert len(events_of(client, pair["access_token"], type="mfa_failed")) == MAX_FAILURES
    # Every refusal of the token reads the same, whichever way it died.
    refusals = {answer.json["message"] for answer in answers if answer.status_code == 401}
    used = mfa_token_of(client)
    clock.shift(TOTP_STEP)
    assert second_step(client, used, totp_code(secret)).status_code == 200
    refusals.add(second_step(client, used, totp_code(secret)).json["message"])
    refusals.add(second_step(client, "no-such-token", totp_code(secret)).json["message"])
    assert len(refusals) == 1


def test_a_right_code_racing_wrong_ones_logs_in(store_app, auth, client, clock):
    secret, _codes = enable_totp(client, auth.registered_pair()["access_token"])
    for _round in range(3):
        clock.shift(TOTP_STEP)
        token, right, wrong = mfa_token_of(client), totp_code(secret), wrong_code(secret)
        answers = at_once(store_app, [attempt(token, right)] + [attempt(token, wrong)] * 2)
        right_answer = answers[0]
        assert right_answer.status_code == 200, right_answer.json  # never a 503 deadlock
        assert {answer.status_code for answer in answers[1:]} <= {400, 401}


def test_a_double_clicked_confirmation_shows_the_codes_it_keeps(store_app, auth, client, clock):
    access = auth.registered_pair()["access_token"]
    secret = client.post("/api/me/mfa/totp", headers=bearer(access)).json["secret"]
    code = totp_code(secret)
    answers = at_once(
        store_app,
        [lambda c: c.post("/api/me/mfa/totp/confirm", json={"code": code}, headers=bearer(access))]
        * 4,
    )
    shown = [answer.json["recovery_codes"] for answer in answers if answer.status_code == 200]
    assert len(shown) == 1
    assert all(answer.status_code in (200, 400, 409) for answer in answers)
    assert mfa_login(client, shown[0][0]).status_code == 200
    assert len(events_of(client, access, type="mfa_enabled")) == 1


def test_turning_totp_on_ends_the_other_sessions(auth, client):
    other = auth.registered_pair()["access_token"]
    enabling = auth.login()["access_token"]
    enable_totp(client, enabling)
    assert_error(me(client, other), 401, "token_revoked")
    assert me(client, enabling).status_code == 200
    (event,) = events_of(client, enabling, type="mfa_enabled")
    assert event["details"]["sessions_revoked"] == 1


def test_wrong_codes_to_turn_it_off_spend_the_accounts_budget(make_store_app, clock):
    app = make_store_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="4 per minute")
    client = app.test_client()
    fresh = Fresh()
    body = {"username": fresh.name("bob"), "password": PASSWORD}
    env = {"REMOTE_ADDR": fresh.addr(1)}
    assert client.post("/api/auth/register", json=body, environ_base=env).status_code == 201
    access = client.post("/api/auth/login", json=body, environ_base=env).json["access_token"]
    secret, _codes = enable_totp(client, access)  # the account's third
    wrong = wrong_code(secret)
    off = {"code": wrong}
    first = client.delete(
        "/api/me/mfa/totp",
        json=off,
        headers=bearer(access),
        environ_base={"REMOTE_ADDR": fresh.addr(2)},
    )
    assert_error(first, 400, "invalid_code")  # the fourth
    again = client.delete(
        "/api/me/mfa/totp",
        json=off,
        headers=bearer(access),
        environ_base={"REMOTE_ADDR": fresh.addr(3)},  # another address: the account's budget
    )
    assert_error(again, 429, "rate_limited")


def test_a_registration_started_before_the_first_passkey_is_checked_when_finished(auth, client):
    thief = auth.registered_pair()["access_token"]  # the password alone
    owner = auth.login()["access_token"]
    pending = creation_options(client, thief)
    add(client, owner, Authenticator())  # the account's first passkey
    late = finish(client, thief, Authenticator().create(pending))
    assert_error(late, 403, "forbidden")
    assert len(client.get("/api/me/passkeys", headers=bearer(owner)).json) == 1


def test_an_enrolment_started_before_the_first_passkey_is_checked_when_confirmed(auth, client):
    thief = auth.registered_pair()["access_token"]
    owner = auth.login()["access_token"]
    secret = client.post("/api/me/mfa/totp", headers=bearer(thief)).json["secret"]
    add(client, owner, Authenticator())
    late = client.post(
        "/api/me/mfa/totp/confirm", json={"code": totp_code(secret)}, headers=bearer(thief)
    )
    assert_error(late, 403, "forbidden")
    assert me(client, owner).json["mfa_enabled"] is False


def test_an_enrolment_left_waiting_cannot_be_confirmed_later(auth, client, clock):
    pair = auth.registered_pair()
    secret = client.post("/api/me/mfa/totp", headers=bearer(pair["access_token"])).json["secret"]
    clock.shift(ENROLMENT_LIFETIME.total_seconds())
    same_session = refresh(client, pair["refresh_token"]).json["access_token"]
    late = client.post(
        "/api/me/mfa/totp/confirm", json={"code": totp_code(secret)}, headers=bearer(same_session)
    )
    assert_error(late, 409, "nothing_to_confirm")


def test_a_login_racing_the_turning_on_of_totp_needs_a_code(store_app, auth, client, backend):
    """The login has checked the password; TOTP is turned on before it opens
    its session: it must ask for a code, not open a password-only session."""
    if "postgres" not in backend["SQLALCHEMY_DATABASE_URI"]:
        pytest.skip("SQLite locks no row: the race is PostgreSQL's")
    auth.register()
    engine = create_engine(backend["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as turning_on, ThreadPoolExecutor(1) as pool:
            turning_on.begin()
            turning_on.execute(text("SELECT id FROM users WHERE id = 1 FOR NO KEY UPDATE"))
            login = pool.submit(
                store_app.test_client().post,
                "/api/auth/login",
                json={"username": "bob", "password": PASSWORD},
            )
            with engine.connect() as watcher:
                wait_for_a_lock_wait(watcher)
            turning_on.execute(text("UPDATE users SET mfa_enabled = true WHERE id = 1"))
            turning_on.commit()
            answer = login.result(timeout=30)
    finally:
        engine.dispose()
    assert_error(answer, 401, "mfa_required")
