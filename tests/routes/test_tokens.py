"""Personal access tokens (api/routes/tokens.py, api/auth/personal_tokens.py)
and scopes on routes (api/auth/identity.py's `token_required(scope=...)`):
making, listing and deleting tokens, what each may do, and every way one
stops working; on SQLite and on PostgreSQL with Redis."""

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from prometheus_client import REGISTRY
from sqlalchemy import select

from api.auth import personal_tokens
from api.auth.personal_tokens import PersonalAccessToken
from api.extensions import db
from tests.helpers import (
    AuthActions,
    assert_error,
    bearer,
    enable_totp,
    mfa_login,
    refresh,
    totp_code,
)
from tests.routes.test_admin import create_admin
from tests.routes.test_events import events_of
from tests.webauthn_support import Authenticator, add, two_factor_pair

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)

PAT = re.compile(r"pat_[0-9A-Za-z]{36}")
ALL_SCOPES = ["profile:read", "notes:read", "notes:write"]
NOTE = {"title": "t", "body": "b"}


@pytest.fixture
def client(store_app):
    return store_app.test_client()


@pytest.fixture
def pair(client):
    return AuthActions(client).registered_pair()


def make(client, access_token, scopes=("notes:read",), name="ci", **extra):
    body = {"name": name, "scopes": list(scopes), **extra}
    return client.post("/api/me/tokens", json=body, headers=bearer(access_token))


def made(client, access_token, scopes=("notes:read",), **extra):
    response = make(client, access_token, scopes, **extra)
    assert response.status_code == 201, response.json
    return response.json


def stored(app):
    with app.app_context():
        return db.session.scalars(select(PersonalAccessToken)).all()


def counter(action):
    return REGISTRY.get_sample_value("jwt_api_personal_access_tokens_total", {"action": action})


# Making, listing, deleting


def test_a_token_is_shown_once_and_kept_as_a_hash(store_app, client, pair):
    before = datetime.now(UTC).replace(microsecond=0)
    body = made(client, pair["access_token"], ALL_SCOPES, expires_in_days=7)
    assert PAT.fullmatch(body["token"]) and personal_tokens.is_well_formed(body["token"])
    assert body["scopes"] == ALL_SCOPES and body["name"] == "ci" and body["last_used_at"] is None
    created = datetime.fromisoformat(body["created_at"])
    assert before <= created <= datetime.now(UTC)
    assert datetime.fromisoformat(body["expires_at"]) - created == timedelta(days=7)
    listed = client.get("/api/me/tokens", headers=bearer(pair["access_token"])).json
    assert listed == [{k: v for k, v in body.items() if k != "token"}]
    (row,) = stored(store_app)
    assert row.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in repr(vars(row))


def test_a_token_lives_30_days_unless_told(client, pair):
    body = made(client, pair["access_token"])
    lifetime = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(
        body["created_at"]
    )
    assert lifetime == timedelta(days=30)


def test_the_list_is_the_caller_s_own_newest_first(client, pair):
    first = made(client, pair["access_token"], name="one")["id"]
    second = made(client, pair["access_token"], name="two")["id"]
    other = AuthActions(client).registered_pair("alice")
    made(client, other["access_token"], name="alice's")
    listed = client.get("/api/me/tokens", headers=bearer(pair["access_token"])).json
    assert [t["id"] for t in listed] == [second, first]


@pytest.mark.parametrize(
    "body",
    [
        {"scopes": ["notes:read"]},
        {"name": "ci"},
        {"name": "", "scopes": ["notes:read"]},
        {"name": "x" * 65, "scopes": ["notes:read"]},
        {"name": " ", "scopes": ["notes:read"]},
        {"name": "ci\njob", "scopes": ["notes:read"]},
        {"name": "\u202egol", "scopes": ["notes:read"]},
        {"name": "a\tb", "scopes": ["notes:read"]},
        {"name": "ci", "scopes": []},
        {"name": "ci", "scopes": ["notes:admin"]},
        {"name": "ci", "scopes": ["notes:read", "notes:read"]},
        {"name": "ci", "scopes": "notes:read"},
        {"name": "ci", "scopes": ["notes:read"], "expires_in_days": 0},
        {"name": "ci", "scopes": ["notes:read"], "expires_in_days": 366},
        {"name": "ci", "scopes": ["notes:read"], "expires_in_days": "30"},
        {"name": "ci", "scopes": ["notes:read"], "expires_in_days": 1.5},
        {"name": "ci", "scopes": ["notes:read"], "user_id": 2},
    ],
)
def test_a_bad_body_is_a_validation_error(store_app, client, pair, body):
    response = client.post("/api/me/tokens", json=body, headers=bearer(pair["access_token"]))
    assert_error(response, 422, "validation_error")
    assert response.json["details"]
    assert stored(store_app) == []


def test_making_one_needs_a_fresh_token(client, pair):
    refreshed = refresh(client, pair["refresh_token"]).json
    assert_error(make(client, refreshed["access_token"]), 401, "fresh_token_required")


def test_with_totp_on_making_one_needs_the_code_too(client, pair, clock):
    secret, _ = enable_totp(client, pair["access_token"])
    # The session that turned TOTP on proved a password only.
    response = make(client, pair["access_token"])
    assert_error(response, 403, "forbidden")
    assert "insufficient_user_authentication" in response.headers["WWW-Authenticate"]
    clock.shift(30)
    two_factor = mfa_login(client, totp_code(secret)).json
    assert make(client, two_factor["access_token"]).status_code == 201


def test_with_a_passkey_a_password_alone_makes_none(client, pair):
    key = Authenticator()
    add(client, pair["access_token"], key)
    password_only = AuthActions(client).login()
    assert_error(make(client, password_only["access_token"]), 403, "forbidden")
    assert make(client, two_factor_pair(client, key)["access_token"]).status_code == 201


def test_scopes_are_kept_in_one_order(client, pair):
    body = made(client, pair["access_token"], ["notes:write", "profile:read", "notes:read"])
    assert body["scopes"] == ALL_SCOPES
    assert (
        events_of(client, pair["access_token"], type="token_created")[0]["details"]["scopes"]
        == ALL_SCOPES
    )


def test_concurrent_creations_keep_to_the_limit(monkeypatch, store_app, pair):
    monkeypatch.setattr(personal_tokens, "MAX_PER_USER", 3)

    def create(name):
        return make(store_app.test_client(), pair["access_token"], name=name).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(create, [f"t{i}" for i in range(8)]))
    assert sorted(statuses) == [201] * 3 + [409] * 5
    assert len(stored(store_app)) == 3


def test_a_user_has_at_most_so_many(monkeypatch, client, pair):
    monkeypatch.setattr(personal_tokens, "MAX_PER_USER", 2)
    made(client, pair["access_token"])
    made(client, pair["access_token"])
    assert_error(make(client, pair["access_token"]), 409, "too_many_tokens")
    other = AuthActions(client).registered_pair("alice")
    assert make(client, other["access_token"]).status_code == 201  # per user


def test_deleting_one_refuses_it_from_the_next_request(client, pair):
    token = made(client, pair["access_token"])
    assert client.get("/api/notes", headers=bearer(token["token"])).status_code == 200
    path = f"/api/me/tokens/{token['id']}"
    assert client.delete(path, headers=bearer(pair["access_token"])).status_code == 204
    assert_error(client.get("/api/notes", headers=bearer(token["token"])), 401, "invalid_token")
    assert client.get("/api/me/tokens", headers=bearer(pair["access_token"])).json == []
    assert_error(client.delete(path, headers=bearer(pair["access_token"])), 404, "not_found")


def test_a_deleted_token_s_id_is_never_given_again(client, pair):
    first = made(client, pair["access_token"])["id"]
    client.delete(f"/api/me/tokens/{first}", headers=bearer(pair["access_token"]))
    assert made(client, pair["access_token"])["id"] > first


def test_someone_else_s_token_is_not_found(client, pair):
    token = made(client, pair["access_token"])
    other = AuthActions(client).registered_pair("alice")
    path = f"/api/me/tokens/{token['id']}"
    assert_error(client.delete(path, headers=bearer(other["access_token"])), 404, "not_found")
    assert client.get("/api/notes", headers=bearer(token["token"])).status_code == 200


def test_making_and_deleting_are_security_events_without_the_token(client, pair):
    created_before, revoked_before = counter("created"), counter("revoked")
    token = made(client, pair["access_token"], ["notes:read", "notes:write"])
    client.delete(f"/api/me/tokens/{token['id']}", headers=bearer(pair["access_token"]))
    revoked, created = (
        events_of(client, pair["access_token"], type="token_revoked"),
        events_of(client, pair["access_token"], type="token_created"),
    )
    details = {"token_id": token["id"], "name": "ci"}
    assert created[0]["details"] == {**details, "scopes": ["notes:read", "notes:write"]}
    assert revoked[0]["details"] == details
    assert created[0]["session_id"] == revoked[0]["session_id"] is not None
    everything = client.get("/api/me/events", headers=bearer(pair["access_token"])).text
    assert token["token"] not in everything
    assert (counter("created"), counter("revoked")) == (created_before + 1, revoked_before + 1)


# What a token may do


def test_a_token_does_what_its_scopes_name(client, pair):
    reader = made(client, pair["access_token"], ["notes:read"])["token"]
    writer = made(client, pair["access_token"], ["notes:write"])["token"]
    profile = made(client, pair["access_token"], ["profile:read"])["token"]
    created = client.post("/api/notes", json=NOTE, headers=bearer(writer))
    assert created.status_code == 201
    note = created.headers["Location"]
    assert client.get(note, headers=bearer(reader)).json["title"] == "t"
    assert client.get("/api/notes", headers=bearer(reader)).json[0]["id"] == created.json["id"]
    assert client.patch(note, json={"title": "u"}, headers=bearer(writer)).status_code == 200
    assert client.get("/api/me", headers=bearer(profile)).json["username"] == "bob"
    assert client.delete(note, headers=bearer(writer)).status_code == 204
    # The notes are the user's own, whichever token made them.
    assert client.get("/api/notes", headers=bearer(pair["access_token"])).json == []


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", "/api/me", "profile:read"),
        ("get", "/api/notes", "notes:read"),
        ("get", "/api/notes/1", "notes:read"),
        ("post", "/api/notes", "notes:write"),
        ("patch", "/api/notes/1", "notes:write"),
        ("delete", "/api/notes/1", "notes:write"),
    ],
)
def test_a_route_outside_the_token_s_scopes_is_insufficient_scope(
    client, pair, method, path, scope
):
    others = [s for s in ALL_SCOPES if s != scope]
    token = made(client, pair["access_token"], others)["token"]
    client.post("/api/notes", json=NOTE, headers=bearer(pair["access_token"]))
    response = getattr(client, method)(path, json=NOTE, headers=bearer(token))
    assert_error(response, 403, "insufficient_scope")
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer error="insufficient_scope", scope="{scope}"'
    )
    assert scope in response.json["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/auth/token"),
        ("get", "/api/auth/sessions"),
        ("delete", "/api/auth/sessions"),
        ("post", "/api/auth/logout"),
        ("post", "/api/auth/refresh"),
        ("get", "/api/me/tokens"),
        ("post", "/api/me/tokens"),
        ("delete", "/api/me/tokens/1"),
        ("put", "/api/me/password"),
        ("get", "/api/me/events"),
        ("put", "/api/me/email"),
        ("post", "/api/me/mfa/totp"),
        ("get", "/api/me/passkeys"),
        ("get", "/api/admin/users"),
        ("patch", "/api/admin/users/1"),
        ("get", "/api/admin/events"),
    ],
)
def test_a_token_with_every_scope_is_refused_off_its_routes(store_app, client, method, path):
    create_admin(store_app)
    root = AuthActions(client).login("root")
    token = made(client, root["access_token"], ALL_SCOPES)
    response = getattr(client, method)(path, json={}, headers=bearer(token["token"]))
    assert_error(response, 403, "insufficient_scope")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    # Nothing was done: the session lives, the token is still listed.
    listed = client.get("/api/me/tokens", headers=bearer(root["access_token"])).json
    assert [t["id"] for t in listed] == [token["id"]]


def test_a_token_goes_in_the_bearer_header_only(client, pair):
    token = made(client, pair["access_token"])["token"]
    assert (
        client.get("/api/notes", headers={"Authorization": f"bearer  {token}"}).status_code == 200
    )
    client.set_cookie("access_token_cookie", token)
    assert_error(client.get("/api/notes"), 401, "invalid_token")
    assert_error(
        client.get("/api/notes", query_string={"access_token": token}), 401, "invalid_token"
    )


@pytest.mark.parametrize(
    "spoil",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # checksum off
        lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:],  # another secret
        lambda t: t + "A",
        lambda t: "pat_",
        lambda t: "pat_" + "٣" * 36,  # digits, but not ASCII ones
        lambda t: t.upper(),
    ],
)
def test_a_spoiled_token_is_invalid(client, pair, spoil):
    token = made(client, pair["access_token"])["token"]
    response = client.get("/api/notes", headers=bearer(spoil(token)))
    assert_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_well_formed_token_nobody_made_is_invalid(client, pair):
    assert_error(
        client.get("/api/notes", headers=bearer(personal_tokens.new_text())), 401, "invalid_token"
    )


def test_a_client_s_token_has_no_user_here(store_app, client, pair):
    with store_app.app_context():
        from api.auth.minting import sign

        now = int(datetime.now(UTC).timestamp())
        client_token = sign(
            {
                "iss": store_app.config["JWT_ISSUER"],
                "aud": store_app.config["JWT_AUDIENCE"],
                "sub": "client-1",
                "client_id": "client-1",
                "scope": " ".join(ALL_SCOPES),
                "iat": now,
                "nbf": now,
                "exp": now + 300,
                "jti": "j",
                "type": "access",
            }
        )
    for path in ("/api/me", "/api/notes", "/api/auth/token"):
        response = client.get(path, headers=bearer(client_token))
        assert_error(response, 403, "forbidden")
    # Routes that want a fresh login say the same: it has no user, whatever login it shows.
    assert_error(make(client, client_token), 403, "forbidden")
    password = {"current_password": "x" * 8, "new_password": "y" * 8}
    response = client.put("/api/me/password", json=password, headers=bearer(client_token))
    assert_error(response, 403, "forbidden")


# When a token stops working


def test_an_expired_token_is_refused_as_expired(client, pair):
    token = made(client, pair["access_token"], expires_in_days=1)["token"]
    later = datetime.now(UTC) + timedelta(days=1, seconds=1)
    with time_machine.travel(later, tick=False):
        response = client.get("/api/notes", headers=bearer(token))
        assert_error(response, 401, "token_expired")
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    with time_machine.travel(later - timedelta(seconds=2), tick=False):
        assert client.get("/api/notes", headers=bearer(token)).status_code == 200


def test_last_use_is_noted_once_a_minute(store_app, client, pair):
    token = made(client, pair["access_token"])
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)

    def last_use_after_a_request_at(moment):
        with time_machine.travel(moment, tick=False):
            assert client.get("/api/notes", headers=bearer(token["token"])).status_code == 200
        listed = client.get("/api/me/tokens", headers=bearer(pair["access_token"])).json
        return datetime.fromisoformat(listed[0]["last_used_at"])

    assert last_use_after_a_request_at(start) == start
    assert last_use_after_a_request_at(start + timedelta(seconds=59)) == start  # no write
    later = start + timedelta(seconds=61)
    assert last_use_after_a_request_at(later) == later


def test_disabling_the_user_ends_their_tokens_for_good(store_app, client, pair):
    token = made(client, pair["access_token"])["token"]
    create_admin(store_app)
    root = bearer(AuthActions(client).login("root")["access_token"])
    bob = client.get("/api/me", headers=bearer(pair["access_token"])).json["id"]

    def set_disabled(value):
        path = f"/api/admin/users/{bob}"
        assert client.patch(path, json={"disabled": value}, headers=root).status_code == 200

    set_disabled(True)
    assert_error(client.get("/api/notes", headers=bearer(token)), 401, "invalid_token")
    set_disabled(False)
    assert_error(client.get("/api/notes", headers=bearer(token)), 401, "invalid_token")
    assert stored(store_app) == []
    query = {"type": "user_disabled"}
    disabled = client.get("/api/admin/events", query_string=query, headers=root).json
    assert disabled[0]["details"]["tokens_revoked"] == 1


def test_a_disabled_user_s_token_is_refused_even_before_it_is_deleted(store_app, client, pair):
    # The read joins the user: a user disabled by other means (a script, the
    # database) is refused too.
    token = made(client, pair["access_token"])["token"]
    with store_app.app_context():
        from api.accounts.users import User

        db.session.get(User, 1).disabled = True
        db.session.commit()
    assert_error(client.get("/api/notes", headers=bearer(token)), 401, "invalid_token")
