"""Logging in with TOTP on (api/routes/auth.py, api/routes/mfa.py,
api/auth/mfa_challenges.py): `401 mfa_required` with an mfa token, then
POST /api/auth/mfa answering as the login that started it; which codes it
takes (drift, replay, recovery codes once each), what the mfa token is good
for, amr, events, metrics and rate limits; on SQLite and on PostgreSQL with
Redis. Enrolment and the rest: test_mfa.py."""

import json
import time
from contextlib import ExitStack
from typing import NamedTuple

import pytest

from api.accounts import users
from tests.helpers import (
    PASSWORD,
    TOTP_STEP,
    AuthActions,
    Fresh,
    assert_error,
    assert_login_cookies,
    bearer,
    claims_of,
    enable_totp,
    me,
    mfa_login,
    mfa_token_of,
    refresh,
    second_step,
    totp_code,
    wrong_code,
)
from tests.routes.test_admin import create_admin
from tests.routes.test_events import admin_events, events_of
from tests.web.test_metrics import Delta

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)

LOGINS = ["/api/auth/login", "/api/auth/cookie/login"]
CREDENTIALS = {"username": "bob", "password": PASSWORD}
AMR_TOTP = ["pwd", "otp", "mfa"]
PAIR_FIELDS = {"access_token", "refresh_token", "token_type", "expires_in", "refresh_expires_in"}
COOKIE_FIELDS = {
    "user",
    "expires_in",
    "refresh_expires_in",
    "csrf_access_token",
    "csrf_refresh_token",
}
SECOND_FACTORS = "jwt_api_second_factors_total"


class TotpUser(NamedTuple):
    secret: str
    recovery_codes: list


@pytest.fixture
def client(store_app):
    return store_app.test_client()


@pytest.fixture
def bob(auth, client, clock):
    """bob with TOTP on, a step after the one his confirmation spent."""
    secret, codes = enable_totp(client, auth.registered_pair()["access_token"])
    clock.shift(TOTP_STEP)
    return TotpUser(secret, codes)


def code_in(secret, steps):
    return totp_code(secret, time.time() + steps * TOTP_STEP)


def amr_shown(client, headers=None):
    response = client.get("/api/auth/token", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["amr"]


# The password step


@pytest.mark.parametrize("path", LOGINS)
def test_a_right_password_asks_for_the_second_factor(client, bob, path):
    response = client.post(path, json=CREDENTIALS)
    assert_error(response, 401, "mfa_required")
    assert set(response.json) == {"error", "message", "mfa_token", "methods"}
    assert response.json["methods"] == ["totp", "recovery_code"]
    assert isinstance(response.json["mfa_token"], str) and len(response.json["mfa_token"]) >= 32
    assert not response.headers.getlist("Set-Cookie")
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/api/me").status_code == 401  # no cookie either


@pytest.mark.parametrize("path", LOGINS)
def test_a_wrong_password_is_no_step_closer(client, bob, path):
    response = client.post(path, json={"username": "bob", "password": "not the password"})
    assert_error(response, 401, "invalid_credentials")
    assert "mfa_token" not in response.json


def test_each_login_gets_its_own_mfa_token(client, bob):
    assert mfa_token_of(client) != mfa_token_of(client)


# The second step's answer


def test_the_second_step_answers_a_token_pair(client, bob):
    response = mfa_login(client, totp_code(bob.secret))
    assert response.status_code == 200
    assert set(response.json) == PAIR_FIELDS
    assert not response.headers.getlist("Set-Cookie")
    assert response.headers["Cache-Control"] == "no-store"
    access = response.json["access_token"]
    assert claims_of(access)["amr"] == AMR_TOTP
    assert claims_of(access)["fresh"] is True
    assert amr_shown(client, bearer(access)) == AMR_TOTP
    assert me(client, access).json["mfa_enabled"] is True


def test_a_refresh_keeps_the_amr_but_not_the_freshness(client, bob):
    pair = mfa_login(client, totp_code(bob.secret)).json
    later = refresh(client, pair["refresh_token"]).json["access_token"]
    assert claims_of(later)["amr"] == AMR_TOTP
    assert claims_of(later)["fresh"] is False
    assert amr_shown(client, bearer(later)) == AMR_TOTP


def test_the_second_step_of_a_cookie_login_sets_cookies(client, bob):
    token = mfa_token_of(client, path="/api/auth/cookie/login")
    response = second_step(client, token, totp_code(bob.secret))
    assert response.status_code == 200
    body = response.json
    assert set(body) == COOKIE_FIELDS
    assert body["user"]["username"] == "bob" and body["user"]["mfa_enabled"] is True
    assert_login_cookies(response)
    assert amr_shown(client) == AMR_TOTP
    refreshed = client.post(
        "/api/auth/refresh", headers={"X-CSRF-TOKEN": body["csrf_refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.json
    assert amr_shown(client) == AMR_TOTP


def test_a_password_login_without_totp_says_pwd(auth, client):
    access = auth.registered_pair()["access_token"]
    assert claims_of(access)["amr"] == ["pwd"]
    assert amr_shown(client, bearer(access)) == ["pwd"]


# Which codes


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (1, True), (2, False)])
def test_a_code_is_taken_within_one_step_of_drift(client, auth, clock, steps, accepted):
    secret, _ = enable_totp(client, auth.registered_pair()["access_token"])
    # Far enough from the confirmation's step for -2 and -1 to be unspent.
    clock.shift(3 * TOTP_STEP)
    response = mfa_login(client, code_in(secret, steps))
    if accepted:
        assert response.status_code == 200, response.json
    else:
        assert_error(response, 400, "invalid_code")


def test_a_code_works_once(client, bob):
    assert mfa_login(client, totp_code(bob.secret)).status_code == 200
    # Its step is spent, and every step before it.
    for steps in (0, -1):
        assert_error(mfa_login(client, code_in(bob.secret, steps)), 400, "invalid_code")
    assert mfa_login(client, code_in(bob.secret, 1)).status_code == 200


def test_the_confirming_code_is_spent(client, auth, clock):
    secret, _ = enable_totp(client, auth.registered_pair()["access_token"])
    for steps in (0, -1):
        assert_error(mfa_login(client, code_in(secret, steps)), 400, "invalid_code")
    assert mfa_login(client, code_in(secret, 1)).status_code == 200


def test_a_code_spent_at_login_cannot_turn_totp_off(client, bob):
    token = mfa_login(client, totp_code(bob.secret)).json["access_token"]
    body = {"code": totp_code(bob.secret)}
    refused = client.delete("/api/me/mfa/totp", json=body, headers=bearer(token))
    assert_error(refused, 400, "invalid_code")
    assert me(client, token).json["mfa_enabled"] is True


def test_a_recovery_code_finishes_a_login_once(client, bob):
    code = bob.recovery_codes[3]
    response = mfa_login(client, code)
    assert response.status_code == 200
    assert claims_of(response.json["access_token"])["amr"] == AMR_TOTP
    assert me(client, response.json["access_token"]).json["mfa_enabled"] is True
    assert_error(mfa_login(client, code), 400, "invalid_code")
    assert mfa_login(client, bob.recovery_codes[4]).status_code == 200


@pytest.mark.parametrize(
    "spell",
    [
        str.upper,
        lambda code: code.replace("-", ""),
        lambda code: code.replace("-", " "),
        lambda code: code.upper().replace("-", ""),
    ],
    ids=["upper", "no-dashes", "spaces", "upper-no-dashes"],
)
def test_a_recovery_code_is_read_whatever_its_case_and_dashes(client, bob, spell):
    assert mfa_login(client, spell(bob.recovery_codes[0])).status_code == 200
    assert_error(mfa_login(client, bob.recovery_codes[0]), 400, "invalid_code")


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "１２３４５６", "12345", "1234567", "x" * 64])
def test_what_is_no_code_is_a_wrong_code(client, bob, code):
    # Digits of other scripts pass str.isdigit(); they are no code all the same.
    assert_error(second_step(client, mfa_token_of(client), code), 400, "invalid_code")


# The mfa token


def test_an_mfa_token_works_once(client, bob):
    token = mfa_token_of(client)
    assert second_step(client, token, totp_code(bob.secret)).status_code == 200
    again = second_step(client, token, bob.recovery_codes[0])
    assert_error(again, 401, "invalid_token")


def test_an_mfa_token_lives_five_minutes(client, bob, clock):
    token = mfa_token_of(client)
    clock.shift(299)
    assert second_step(client, token, totp_code(bob.secret)).status_code == 200
    token = mfa_token_of(client)
    clock.shift(301)
    expired = second_step(client, token, totp_code(bob.secret))
    assert_error(expired, 401, "token_expired")


def test_an_unknown_mfa_token_is_invalid(client, bob):
    token = mfa_token_of(client)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for made_up in ("x" * 43, tampered, token.upper()):
        refused = second_step(client, made_up, totp_code(bob.secret))
        assert_error(refused, 401, "invalid_token")
    assert second_step(client, token, totp_code(bob.secret)).status_code == 200


def test_an_mfa_token_is_no_bearer_token(client, bob):
    token = mfa_token_of(client)
    for refused in (
        me(client, token),
        client.get("/api/auth/token", headers=bearer(token)),
        refresh(client, token),
    ):
        assert_error(refused, 401, "invalid_token")
    assert second_step(client, token, totp_code(bob.secret)).status_code == 200


def test_five_wrong_codes_kill_the_mfa_token(client, bob):
    token = mfa_token_of(client)
    wrong = [wrong_code(bob.secret), "aaaa-bbbb-cccc-dddd"] * 2 + [wrong_code(bob.secret)]
    for code in wrong:
        assert_error(second_step(client, token, code), 400, "invalid_code")
    assert_error(second_step(client, token, totp_code(bob.secret)), 401, "invalid_token")
    # The code it was refused is still good for another login.
    assert mfa_login(client, totp_code(bob.secret)).status_code == 200


def test_four_wrong_codes_do_not(client, bob):
    token = mfa_token_of(client)
    for _ in range(4):
        assert_error(second_step(client, token, wrong_code(bob.secret)), 400, "invalid_code")
    assert second_step(client, token, totp_code(bob.secret)).status_code == 200


def test_a_user_disabled_meanwhile_gets_no_tokens(store_app, client, bob):
    token = mfa_token_of(client)
    with store_app.app_context():
        users.find_by_username("bob").disabled = True
        users.db.session.commit()
    refused = second_step(client, token, totp_code(bob.secret))
    assert refused.status_code == 401
    assert "access_token" not in refused.json and not refused.headers.getlist("Set-Cookie")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mfa_token": "x" * 43},
        {"code": "123456"},
        {"mfa_token": None, "code": None},
        {"mfa_token": "x" * 43, "code": ""},
        {"mfa_token": "x" * 43, "code": "123456", "username": "bob"},
    ],
)
def test_second_step_validation(client, body):
    assert_error(client.post("/api/auth/mfa", json=body), 422, "validation_error")


# Events and metrics


def test_the_login_is_recorded_with_its_second_factor(client, bob):
    totp = mfa_login(client, totp_code(bob.secret)).json["access_token"]
    mfa_login(client, bob.recovery_codes[0])
    logins = [e for e in events_of(client, totp) if e["type"] == "login"]
    assert [e["details"]["method"] for e in logins[:2]] == [
        "password+recovery_code",
        "password+totp",
    ]
    assert logins[1]["session_id"] == claims_of(totp)["sid"]


def test_each_wrong_code_is_recorded(client, bob):
    token = mfa_token_of(client)
    for code in (wrong_code(bob.secret), "aaaa-bbbb-cccc-dddd"):
        second_step(client, token, code)
    access = second_step(client, token, totp_code(bob.secret)).json["access_token"]
    failed = [e for e in events_of(client, access) if e["type"] == "mfa_failed"]
    assert len(failed) == 2


def test_no_code_secret_or_mfa_token_is_in_an_event(store_app, client, bob):
    create_admin(store_app)
    admin = bearer(AuthActions(client).login("root")["access_token"])
    token = mfa_token_of(client)
    wrong = [wrong_code(bob.secret), "zzzz-zzzz-zzzz-zzzz"]
    for code in wrong:
        second_step(client, token, code)
    second_step(client, token, totp_code(bob.secret))
    mfa_login(client, bob.recovery_codes[0].upper())
    everything = json.dumps(admin_events(client, admin, per_page=100))
    assert "mfa_failed" in everything and "password+recovery_code" in everything
    for secret in [bob.secret, token, totp_code(bob.secret), *wrong, *bob.recovery_codes]:
        assert secret.lower() not in everything.lower()


def test_second_factors_are_counted_by_method_and_result(client, bob):
    with ExitStack() as stack:
        deltas = {
            (method, result): stack.enter_context(
                Delta(SECOND_FACTORS, method=method, result=result)
            )
            for method in ("totp", "recovery_code")
            for result in ("ok", "failed")
        }
        token = mfa_token_of(client)
        second_step(client, token, wrong_code(bob.secret))
        second_step(client, token, "aaaa-bbbb-cccc-dddd")
        second_step(client, token, "bbbb-cccc-dddd-eeee")
        second_step(client, token, totp_code(bob.secret))
        mfa_login(client, bob.recovery_codes[0])
    counted = {key: delta.value for key, delta in deltas.items()}
    assert counted == {
        ("totp", "ok"): 1,
        ("totp", "failed"): 1,
        ("recovery_code", "ok"): 1,
        ("recovery_code", "failed"): 2,
    }


# Rate limits: the second step spends the login's budgets. Counts in Redis
# outlive a test: every test has usernames and addresses of its own.


@pytest.fixture
def limited(make_store_app):
    return make_store_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="5 per minute").test_client()


def totp_user(client, fresh, name, host, clock):
    """A user with TOTP on, registered, logged in and confirmed from `host`:
    three of the username's budget (and of the address's). The clock moves
    past the confirmation's step."""
    env = {"REMOTE_ADDR": fresh.addr(host)}
    body = {"username": fresh.name(name), "password": PASSWORD}
    assert client.post("/api/auth/register", json=body, environ_base=env).status_code == 201
    token = client.post("/api/auth/login", json=body, environ_base=env).json["access_token"]
    secret, _ = enable_totp(client, token)
    clock.shift(TOTP_STEP)
    return secret


def test_the_second_step_spends_the_accounts_budget(limited, clock):
    fresh = Fresh()
    secret = totp_user(limited, fresh, "bob", 1, clock)
    token = mfa_token_of(limited, fresh.name("bob"), environ_base={"REMOTE_ADDR": fresh.addr(2)})
    for host in (3,):  # the username's fifth
        wrong = second_step(
            limited, token, wrong_code(secret), environ_base={"REMOTE_ADDR": fresh.addr(host)}
        )
        assert_error(wrong, 400, "invalid_code")
    env = {"REMOTE_ADDR": fresh.addr(5)}
    assert_error(
        second_step(limited, token, totp_code(secret), environ_base=env), 429, "rate_limited"
    )
    body = {"username": fresh.name("bob"), "password": PASSWORD}
    login = limited.post("/api/auth/login", json=body, environ_base={"REMOTE_ADDR": fresh.addr(6)})
    assert_error(login, 429, "rate_limited")


def test_the_second_step_spends_the_addresss_budget(limited, clock):
    fresh = Fresh()
    secret = totp_user(limited, fresh, "bob", 1, clock)
    token = mfa_token_of(limited, fresh.name("bob"), environ_base={"REMOTE_ADDR": fresh.addr(1)})
    env = {"REMOTE_ADDR": fresh.addr(9)}
    for guess in range(4):  # password guesses at other accounts from one address
        body = {"username": fresh.name(f"u{guess}"), "password": PASSWORD}
        login = limited.post("/api/auth/login", json=body, environ_base=env)
        assert_error(login, 401, "invalid_credentials")
    wrong = second_step(limited, token, wrong_code(secret), environ_base=env)
    assert_error(wrong, 400, "invalid_code")  # the address's fifth, the username's fourth
    limited_answer = second_step(limited, token, totp_code(secret), environ_base=env)
    assert_error(limited_answer, 429, "rate_limited")
