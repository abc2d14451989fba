"""api/auth/totp.py on its own: which step a code is of and the drift
allowed, what passes for a TOTP code, the recovery codes' form and hashing,
and that of many requests with one code at once exactly one is accepted (on
SQLite and PostgreSQL). Through the routes: tests/routes/test_mfa*.py."""

import base64
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pyotp
import pytest
import time_machine

from api.auth import totp
from api.extensions import db
from tests.helpers import TOTP_STEP, AuthActions, enable_totp, totp_code

SECRET = pyotp.random_base32()
AT = datetime(2030, 1, 1, 0, 0, 1, tzinfo=UTC)  # a second into a step
STEP = int(AT.timestamp()) // TOTP_STEP


@pytest.fixture
def clock():
    with time_machine.travel(AT, tick=False) as traveller:
        yield traveller


def code_in(steps):
    return totp_code(SECRET, AT.timestamp() + steps * TOTP_STEP)


@pytest.mark.parametrize("steps", [-1, 0, 1])
def test_a_code_is_of_its_step_within_one_step_of_drift(clock, steps):
    assert totp.matching_step(SECRET, code_in(steps)) == STEP + steps


@pytest.mark.parametrize("steps", [-3, -2, 2, 3])
def test_a_code_further_off_is_of_no_step(clock, steps):
    assert totp.matching_step(SECRET, code_in(steps)) is None


def test_codes_are_rfc_6238s():
    # RFC 6238 Appendix B: SHA-1, the key "12345678901234567890", T = 59 s.
    secret = base64.b32encode(b"12345678901234567890").decode()
    with time_machine.travel(59, tick=False):
        assert totp.matching_step(secret, "287082") == 1


@pytest.mark.parametrize(
    "code",
    ["", "12345", "1234567", "12345a", "123-456", "١٢٣٤٥٦", "１２３４５６", "abcd-efgh-ijkl-mnop"],
)
def test_what_is_no_totp_code_matches_no_step(clock, code):
    # Digits of other scripts are digits to str.isdigit(): never compared.
    assert totp.matching_step(SECRET, code) is None
    assert totp.kind_of(code) == totp.RECOVERY_CODE


def test_without_a_secret_nothing_matches(clock):
    assert totp.matching_step(None, code_in(0)) is None


def test_six_ascii_digits_are_a_totp_code():
    assert totp.kind_of("012345") == totp.TOTP


@pytest.mark.parametrize("spelling", ["{} {}", " {}{} ", "{}\t{}"])
def test_a_code_typed_as_apps_show_it_with_a_space_matches(clock, spelling):
    code = code_in(0)
    typed = spelling.format(code[:3], code[3:])
    assert totp.kind_of(typed) == totp.TOTP
    assert totp.matching_step(SECRET, typed) == STEP


def test_recovery_codes_are_80_random_bits_in_four_groups():
    codes = [totp.new_recovery_code() for _ in range(200)]
    assert len(set(codes)) == 200
    for code in codes:
        assert re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", code), code
        assert len(base64.b32decode(code.replace("-", "").upper())) == 10


def test_a_recovery_codes_hash_ignores_case_dashes_and_spaces():
    code = totp.new_recovery_code()
    digest = totp.recovery_code_hash(code)
    assert re.fullmatch("[0-9a-f]{64}", digest)
    spellings = [code.upper(), code.replace("-", ""), code.replace("-", " "), f" {code} "]
    assert {totp.recovery_code_hash(spelling) for spelling in spellings} == {digest}
    assert totp.recovery_code_hash(totp.new_recovery_code()) != digest
    assert code not in digest and code.replace("-", "") not in digest


# One code, many requests at once: gunicorn's workers and two instances are
# so many sessions on one database. A lost update shows in some interleavings
# only: several rounds, each with a new step's code.
THREADS, ROUNDS = 8, 5


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_of_many_requests_with_one_code_at_once_one_is_accepted(store_app, clock):
    client = store_app.test_client()
    auth = AuthActions(client)
    user_id = auth.register()["id"]
    secret, _ = enable_totp(client, auth.login()["access_token"])

    def attempt(code, start):
        with store_app.app_context():
            start.wait(timeout=30)
            accepted = totp.check_code(user_id, code)
            db.session.commit()
            return accepted

    for _ in range(ROUNDS):
        clock.shift(TOTP_STEP)
        code, start = totp_code(secret), threading.Barrier(THREADS)
        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(attempt, [code] * THREADS, [start] * THREADS))
        assert sorted(answers, key=str) == [None] * (THREADS - 1) + [totp.TOTP]
