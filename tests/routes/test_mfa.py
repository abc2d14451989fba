"""TOTP enrolment and management (api/routes/mfa.py, api/auth/totp.py): the
secret, its otpauth URI and QR code, confirmation and recovery codes, turning
it off, new recovery codes, the admin's reset and the admin routes' demand
for a second factor, and what the database keeps; on SQLite and on PostgreSQL
with Redis. The login's second step: test_mfa_login.py."""

import base64
import re
import time
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
import segno
from sqlalchemy import select

from api.auth.totp import RecoveryCode
from api.extensions import db
from tests.helpers import (
    PASSWORD,
    TOTP_STEP,
    AuthActions,
    assert_error,
    bearer,
    claims_of,
    enable_totp,
    me,
    mfa_login,
    refresh,
    totp_code,
    wrong_code,
)
from tests.routes.test_admin import create_admin
from tests.routes.test_events import events_of

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)

# Ten of them, 80 bits each, in four groups: RFC 4648 base32, lower case.
RECOVERY_CODE = re.compile(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def client(store_app):
    return store_app.test_client()


def start(client, token):
    return client.post("/api/me/mfa/totp", headers=bearer(token))


def confirm(client, token, code):
    return client.post("/api/me/mfa/totp/confirm", json={"code": code}, headers=bearer(token))


def turn_off(client, token, code):
    return client.delete("/api/me/mfa/totp", json={"code": code}, headers=bearer(token))


def new_recovery_codes(client, token):
    return client.post("/api/me/mfa/recovery-codes", headers=bearer(token))


def mfa_enabled(client, token):
    response = me(client, token)
    assert response.status_code == 200, response.json
    return response.json["mfa_enabled"]


def code_in(secret, steps):
    """The code of `secret` that many steps from now."""
    return totp_code(secret, time.time() + steps * TOTP_STEP)


def recovery_codes_kept(app, user_id):
    with app.app_context():
        return len(db.session.scalars(select(RecoveryCode).filter_by(user_id=user_id)).all())


def assert_login_needs_no_code(client):
    response = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert response.status_code == 200, response.json
    return response.json


# Enrolment


def test_enrolment_answers_a_secret_its_uri_and_its_qr_code(auth, client):
    token = auth.registered_pair()["access_token"]
    response = start(client, token)
    assert response.status_code == 200
    assert set(response.json) == {"secret", "otpauth_uri", "qr_svg"}
    secret = response.json["secret"]
    assert re.fullmatch("[A-Z2-7]+=*", secret)
    # RFC 4226 §4 (R6): a shared secret of at least 128 bits.
    assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) >= 16
    assert start(client, token).json["secret"] != secret
    assert response.headers["Cache-Control"] == "no-store"
    assert mfa_enabled(client, token) is False


def test_the_uri_is_the_one_authenticator_apps_read(auth, client):
    body = start(client, auth.registered_pair()["access_token"]).json
    uri = urlsplit(body["otpauth_uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    issuer, account = unquote(uri.path.removeprefix("/")).split(":")
    query = parse_qs(uri.query)
    assert account == "bob"
    assert issuer and query["issuer"] == [issuer]
    assert query["secret"] == [body["secret"]]
    # Key URI format: absent means SHA1, 6 digits, 30 s.
    assert query.get("algorithm", ["SHA1"]) == ["SHA1"]
    assert query.get("digits", ["6"]) == ["6"]
    assert query.get("period", ["30"]) == ["30"]
    assert pyotp.parse_uri(body["otpauth_uri"]).now() == totp_code(body["secret"])


def test_the_qr_code_is_an_svg_document_of_the_uri(auth, client):
    body = start(client, auth.registered_pair()["access_token"]).json
    root = ET.fromstring(body["qr_svg"].encode())  # noqa: S314 - our own answer
    # A document of its own (a file, an <img>) renders only in SVG's namespace.
    assert root.tag == f"{SVG}svg"
    assert qr_modules(root) in qr_codes_of(body["otpauth_uri"])


def qr_modules(root):
    """The dark modules of a QR code drawn as segno draws it: horizontal
    runs (`h`) of one path, moved to by `M`/`m`; as (row, column) from its
    top left dark module."""
    [path] = [element for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "path"]
    dark, x, y = set(), 0.0, 0.0
    for command, numbers in re.findall(r"([MmHh])([^MmHh]*)", path.get("d")):
        values = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", numbers)]
        if command in "Mm":
            x, y = (values[0], values[1]) if command == "M" else (x + values[0], y + values[1])
        else:
            end = values[0] if command == "H" else x + values[0]
            dark |= {(int(y), int(column)) for column in range(int(x), int(end))}
            x = end
    top, left = min(row for row, _ in dark), min(column for _, column in dark)
    return frozenset((row - top, column - left) for row, column in dark)


def qr_codes_of(text):
    """Every QR code of `text` segno can make: each error level and mask."""
    codes = set()
    for error in "LMQH":
        for mask in range(8):
            qr = segno.make(text, error=error, mask=mask, boost_error=False, micro=False)
            codes.add(
                frozenset(
                    (r, c) for r, row in enumerate(qr.matrix) for c, dark in enumerate(row) if dark
                )
            )
    return codes


def test_enrolment_needs_a_fresh_token(auth, client):
    pair = auth.registered_pair()
    later = refresh(client, pair["refresh_token"]).json["access_token"]
    assert_error(start(client, later), 401, "fresh_token_required")
    assert_error(client.post("/api/me/mfa/totp"), 401, "missing_token")


def test_confirming_turns_totp_on_with_ten_recovery_codes(auth, client):
    token = auth.registered_pair()["access_token"]
    secret = start(client, token).json["secret"]
    response = confirm(client, token, totp_code(secret))
    assert response.status_code == 200
    assert set(response.json) == {"recovery_codes"}
    codes = response.json["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(RECOVERY_CODE.fullmatch(code) for code in codes), codes
    assert response.headers["Cache-Control"] == "no-store"
    assert mfa_enabled(client, token) is True
    login = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert_error(login, 401, "mfa_required")


def test_a_token_of_the_same_session_confirms_fresh_or_not(auth, client):
    pair = auth.registered_pair()
    secret = start(client, pair["access_token"]).json["secret"]
    later = refresh(client, pair["refresh_token"]).json["access_token"]
    assert claims_of(later)["fresh"] is False
    assert confirm(client, later, totp_code(secret)).status_code == 200
    assert mfa_enabled(client, later) is True


def test_another_sessions_token_has_nothing_to_confirm(auth, client):
    auth.register()
    mine, other = auth.login()["access_token"], auth.login()["access_token"]
    secret = start(client, mine).json["secret"]
    assert_error(confirm(client, other, totp_code(secret)), 409, "nothing_to_confirm")
    assert mfa_enabled(client, other) is False
    # The enrolment is still this session's to finish.
    assert confirm(client, mine, totp_code(secret)).status_code == 200


def test_with_nothing_pending_there_is_nothing_to_confirm(auth, client, clock):
    token = auth.registered_pair()["access_token"]
    assert_error(confirm(client, token, "123456"), 409, "nothing_to_confirm")
    secret, _ = enable_totp(client, token)
    # Confirmed: the enrolment is over, not pending again.
    clock.shift(TOTP_STEP)
    assert_error(confirm(client, token, totp_code(secret)), 409, "nothing_to_confirm")


def test_a_wrong_code_leaves_the_enrolment_pending(auth, client):
    token = auth.registered_pair()["access_token"]
    secret = start(client, token).json["secret"]
    for wrong in (wrong_code(secret), "aaaa-bbbb-cccc-dddd"):
        assert_error(confirm(client, token, wrong), 400, "invalid_code")
    assert mfa_enabled(client, token) is False
    assert_login_needs_no_code(client)
    assert confirm(client, token, totp_code(secret)).status_code == 200


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (1, True), (2, False)])
def test_a_code_confirms_within_one_step_of_drift(auth, client, clock, steps, accepted):
    token = auth.registered_pair()["access_token"]
    secret = start(client, token).json["secret"]
    response = confirm(client, token, code_in(secret, steps))
    if accepted:
        assert response.status_code == 200, response.json
    else:
        assert_error(response, 400, "invalid_code")
    assert mfa_enabled(client, token) is accepted


@pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": 123456}, {"code": "1" * 65}])
def test_confirm_validation(auth, client, body):
    token = auth.registered_pair()["access_token"]
    start(client, token)
    response = client.post("/api/me/mfa/totp/confirm", json=body, headers=bearer(token))
    assert_error(response, 422, "validation_error")


# Turning it off


def test_a_code_turns_totp_off(auth, client, clock):
    token = auth.registered_pair()["access_token"]
    secret, _ = enable_totp(client, token)
    clock.shift(TOTP_STEP)
    response = turn_off(client, token, totp_code(secret))
    assert response.status_code == 204
    assert mfa_enabled(client, token) is False
    assert_login_needs_no_code(client)


def test_a_recovery_code_turns_totp_off_and_the_others_die(store_app, auth, client):
    token = auth.registered_pair()["access_token"]
    _, codes = enable_totp(client, token)
    assert turn_off(client, token, codes[0]).status_code == 204
    assert mfa_enabled(client, token) is False
    # Not merely unused while TOTP is off: a new enrolment replaces them anyway.
    assert recovery_codes_kept(store_app, me(client, token).json["id"]) == 0


def test_turning_off_needs_a_fresh_token(auth, client):
    pair = auth.registered_pair()
    _, codes = enable_totp(client, pair["access_token"])
    later = refresh(client, pair["refresh_token"]).json["access_token"]
    assert_error(turn_off(client, later, codes[0]), 401, "fresh_token_required")
    assert mfa_enabled(client, later) is True


def test_turning_off_what_is_not_on(auth, client):
    token = auth.registered_pair()["access_token"]
    assert_error(turn_off(client, token, "123456"), 409, "mfa_not_enabled")
    # A pending enrolment is not on either.
    secret = start(client, token).json["secret"]
    assert_error(turn_off(client, token, totp_code(secret)), 409, "mfa_not_enabled")


def test_a_wrong_code_keeps_totp_on_and_is_recorded(auth, client):
    token = auth.registered_pair()["access_token"]
    secret, _ = enable_totp(client, token)
    for wrong in (wrong_code(secret), "aaaa-bbbb-cccc-dddd"):
        assert_error(turn_off(client, token, wrong), 400, "invalid_code")
    assert mfa_enabled(client, token) is True
    failed = [e for e in events_of(client, token) if e["type"] == "mfa_failed"]
    assert len(failed) == 2
    assert {e["session_id"] for e in failed} == {claims_of(token)["sid"]}


def test_the_confirming_code_cannot_turn_totp_off(auth, client, clock):
    token = auth.registered_pair()["access_token"]
    secret, _ = enable_totp(client, token)
    # Its step is spent, and the one before it with it.
    for steps in (0, -1):
        assert_error(turn_off(client, token, code_in(secret, steps)), 400, "invalid_code")
    assert mfa_enabled(client, token) is True
    assert turn_off(client, token, code_in(secret, 1)).status_code == 204


def test_enabling_and_turning_off_are_recorded(auth, client, clock):
    token = auth.registered_pair()["access_token"]
    secret, _ = enable_totp(client, token)
    clock.shift(TOTP_STEP)
    turn_off(client, token, totp_code(secret))
    listed = events_of(client, token)
    assert [e["type"] for e in listed] == ["mfa_disabled", "mfa_enabled", "login"]
    assert {e["session_id"] for e in listed} == {claims_of(token)["sid"]}


# New recovery codes


def test_new_recovery_codes_replace_the_old_set(auth, client):
    token = auth.registered_pair()["access_token"]
    _, old = enable_totp(client, token)
    response = new_recovery_codes(client, token)
    assert response.status_code == 200
    assert set(response.json) == {"recovery_codes"}
    new = response.json["recovery_codes"]
    assert len(set(new)) == 10 and all(RECOVERY_CODE.fullmatch(code) for code in new)
    assert not set(new) & set(old)
    assert_error(mfa_login(client, old[0]), 400, "invalid_code")
    assert mfa_login(client, new[0]).status_code == 200


def test_new_recovery_codes_need_a_fresh_token_and_totp_on(auth, client):
    pair = auth.registered_pair()
    assert_error(new_recovery_codes(client, pair["access_token"]), 409, "mfa_not_enabled")
    _, codes = enable_totp(client, pair["access_token"])
    later = refresh(client, pair["refresh_token"]).json["access_token"]
    assert_error(new_recovery_codes(client, later), 401, "fresh_token_required")
    assert mfa_login(client, codes[0]).status_code == 200  # the set was kept


# The admin's reset


def reset(client, user_id, headers):
    return client.delete(f"/api/admin/users/{user_id}/mfa", headers=headers)


def test_an_admin_turns_totp_off_and_ends_the_users_sessions(store_app, auth, client, admin):
    pair = auth.registered_pair()
    bob_id = me(client, pair["access_token"]).json["id"]
    enable_totp(client, pair["access_token"])
    assert reset(client, bob_id, admin).status_code == 204
    assert_error(me(client, pair["access_token"]), 401, "token_revoked")
    assert_error(refresh(client, pair["refresh_token"]), 401, "token_revoked")
    token = assert_login_needs_no_code(client)["access_token"]
    assert mfa_enabled(client, token) is False
    [event] = [e for e in events_of(client, token) if e["type"] == "mfa_disabled"]
    assert event["details"]["by"] == client.get("/api/me", headers=admin).json["id"]
    assert recovery_codes_kept(store_app, bob_id) == 0


def test_resetting_an_unknown_user_is_404(client, admin):
    assert_error(reset(client, 999, admin), 404, "not_found")


def test_only_admins_reset(auth, client):
    token = auth.registered_pair()["access_token"]
    enable_totp(client, token)
    bob_id = me(client, token).json["id"]
    assert_error(reset(client, bob_id, bearer(token)), 403, "forbidden")
    assert mfa_enabled(client, token) is True


def test_admin_routes_can_demand_a_second_factor(make_store_app, clock):
    app = make_store_app(ADMIN_MFA_REQUIRED=True)
    client = app.test_client()
    create_admin(app)
    token = AuthActions(client).login("root")["access_token"]
    for refused in (
        client.get("/api/admin/users", headers=bearer(token)),
        reset(client, 1, bearer(token)),
    ):
        assert_error(refused, 403, "forbidden")
        assert "insufficient_user_authentication" in refused.headers["WWW-Authenticate"]
    # The admin's own second factor is not an admin route.
    secret, codes = enable_totp(client, token)
    clock.shift(TOTP_STEP)
    for code in (totp_code(secret), codes[0]):
        pair = mfa_login(client, code, "root").json
        assert (
            client.get("/api/admin/users", headers=bearer(pair["access_token"])).status_code == 200
        )
        later = refresh(client, pair["refresh_token"]).json["access_token"]
        assert client.get("/api/admin/events", headers=bearer(later)).status_code == 200


# What the database keeps


def everything_stored(app):
    """Every value of every row of every model's table, as text, and the bytes ones."""
    texts, blobs = [], []
    with app.app_context():
        for stored in db.metadata.sorted_tables:
            for row in db.session.execute(select(stored)):
                for value in row:
                    (blobs if isinstance(value, bytes | memoryview) else texts).append(value)
    return "\n".join(str(value) for value in texts), [bytes(blob) for blob in blobs]


def test_the_secret_is_kept_encrypted_and_recovery_codes_hashed(store_app, auth, client):
    token = auth.registered_pair()["access_token"]
    secret, codes = enable_totp(client, token)
    pending = start(client, token).json["secret"]
    stored, blobs = everything_stored(store_app)
    for value in (secret, pending):
        assert value.rstrip("=").upper() not in stored.upper()
        raw = base64.b32decode(value + "=" * (-len(value) % 8))
        assert not any(raw in blob for blob in blobs)
    for code in codes:
        for spelling in (code, code.replace("-", "")):
            assert spelling.upper() not in stored.upper()
