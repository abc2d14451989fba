"""POST /oauth/introspect (RFC 7662, api/oauth/introspection.py): what it
says of each kind of token, live and not, and that only an authenticated
client may ask; on SQLite and on PostgreSQL with Redis."""

from datetime import timedelta

import jwt as pyjwt
import pytest
import time_machine
from prometheus_client import REGISTRY

from api.clock import utcnow
from tests.helpers import AuthActions, bearer, claims_of, forge
from tests.oauth.support import (
    Credentials,
    assert_oauth_error,
    basic,
    create_client,
    introspect,
    issued,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)

INACTIVE = {"active": False}
JWT_CLAIMS = ("sub", "exp", "iat", "iss", "aud", "jti")


@pytest.fixture
def pair(client):
    return AuthActions(client).registered_pair()


def answer(client, service, token, **form):
    response = introspect(client, service, token, **form)
    assert response.status_code == 200, response.json
    assert response.headers["Cache-Control"] == "no-store"
    return response.json


def test_a_live_user_access_token(client, service, pair):
    body = answer(client, service, pair["access_token"])
    claims = claims_of(pair["access_token"])
    assert body == {
        "active": True,
        "scope": "profile:read notes:read notes:write",
        "username": "bob",
        "token_type": "Bearer",
        **{name: claims[name] for name in JWT_CLAIMS},
    }


def test_a_logged_out_sessions_token_is_inactive_at_once(client, service, pair):
    token = pair["access_token"]
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    # Its signature still verifies: only introspection can tell.
    assert answer(client, service, token) == INACTIVE


def test_a_refresh_token_is_inactive(client, service, pair):
    assert answer(client, service, pair["refresh_token"]) == INACTIVE
    hinted = answer(client, service, pair["refresh_token"], token_type_hint="refresh_token")
    assert hinted == INACTIVE


@pytest.mark.parametrize("hint", ["refresh_token", "access_token", "nonsense"])
def test_the_hint_is_ignored(client, service, pair, hint):
    assert answer(client, service, pair["access_token"], token_type_hint=hint)["active"] is True


def test_an_expired_token_is_inactive(client, service, pair):
    with time_machine.travel(utcnow() + timedelta(seconds=61)):
        assert answer(client, service, pair["access_token"]) == INACTIVE


def test_a_live_client_token(client, service):
    token = issued(client, service, scope="notes:read")
    claims = claims_of(token)
    assert answer(client, service, token) == {
        "active": True,
        "scope": "notes:read",
        "client_id": service.client_id,
        "token_type": "Bearer",
        **{name: claims[name] for name in JWT_CLAIMS},
    }


def test_another_client_may_ask_about_it(client, store_app, service):
    other = create_client(store_app, scopes="profile:read", name="reports")
    assert answer(client, other, issued(client, service))["client_id"] == service.client_id


def test_a_deleted_clients_token_is_inactive(client, store_app, service):
    other = create_client(store_app, scopes="profile:read", name="reports")
    token = issued(client, service)
    result = store_app.test_cli_runner().invoke(args=["clients", "delete", service.client_id])
    assert result.exit_code == 0, result.output
    assert answer(client, other, token) == INACTIVE


def test_a_client_token_expires(client, service):
    token = issued(client, service)
    with time_machine.travel(utcnow() + timedelta(seconds=299)):
        assert answer(client, service, token)["active"] is True
    with time_machine.travel(utcnow() + timedelta(seconds=301)):
        assert answer(client, service, token) == INACTIVE


def test_a_new_secret_ends_the_tokens_of_the_old_one(client, store_app, service):
    now = utcnow().replace(microsecond=500_000)
    with time_machine.travel(now - timedelta(seconds=5), tick=False):
        before = issued(client, service)
    with time_machine.travel(now, tick=False):
        same_second = issued(client, service)  # a thief's, just before the rotation
        result = store_app.test_cli_runner().invoke(
            args=["clients", "rotate-secret", service.client_id]
        )
    assert result.exit_code == 0, result.output
    renewed = Credentials(service.client_id, result.output.split("client_secret:")[1].split()[0])
    with time_machine.travel(now + timedelta(seconds=1), tick=False):
        assert answer(client, renewed, before) == INACTIVE
        assert answer(client, renewed, same_second) == INACTIVE
        assert answer(client, renewed, issued(client, renewed))["active"] is True


def test_a_token_signed_with_another_key_is_inactive(client, service, pair):
    claims = claims_of(pair["access_token"])
    forged = forge(
        claims, key="another-secret-that-is-long-enough-0123456789", headers={"typ": "at+jwt"}
    )
    assert answer(client, service, forged) == INACTIVE
    as_client = forge(
        {**claims_of(issued(client, service)), "scope": "notes:write"},
        key="another-secret-that-is-long-enough-0123456789",
        headers={"typ": "at+jwt"},
    )
    assert answer(client, service, as_client) == INACTIVE


def test_an_unsigned_token_is_inactive(client, service, pair):
    unsigned = pyjwt.encode(
        claims_of(pair["access_token"]), None, algorithm="none", headers={"typ": "at+jwt"}
    )
    assert answer(client, service, unsigned) == INACTIVE


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "é", "eyJ.eyJ.x", "pat_short", "pat_" + "A" * 36, "\x00", "x" * 5000],
)
def test_garbled_or_unknown_text_is_inactive(client, service, token):
    assert answer(client, service, token) == INACTIVE


def test_an_unauthenticated_call_is_401_invalid_client(client, service, pair):
    response = client.post("/oauth/introspect", data={"token": pair["access_token"]})
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    wrong = introspect(client, Credentials(service.client_id, "csec_wrong"), pair["access_token"])
    assert_oauth_error(wrong, 401, "invalid_client")
    # A user's own token is no client authentication.
    as_user = client.post(
        "/oauth/introspect",
        data={"token": pair["access_token"]},
        headers=bearer(pair["access_token"]),
    )
    assert_oauth_error(as_user, 401, "invalid_client")


def test_the_body_authenticates_too(client, service, pair):
    form = {
        "token": pair["access_token"],
        "client_id": service.client_id,
        "client_secret": service.secret,
    }
    assert client.post("/oauth/introspect", data=form).json["active"] is True


def test_a_missing_token_is_invalid_request(client, service):
    response = client.post("/oauth/introspect", data={}, headers=basic(*service))
    assert_oauth_error(response, 400, "invalid_request")


def test_a_repeated_token_is_invalid_request(client, service, pair):
    form = {"token": [pair["access_token"], "x"]}
    response = client.post("/oauth/introspect", data=form, headers=basic(*service))
    assert_oauth_error(response, 400, "invalid_request")


def make_pat(client, access_token, scopes=("notes:read",), days=30):
    body = {"name": "ci", "scopes": list(scopes), "expires_in_days": days}
    response = client.post("/api/me/tokens", json=body, headers=bearer(access_token))
    assert response.status_code == 201, response.json
    return response.json


def test_a_live_personal_access_token(client, service, pair):
    made = make_pat(client, pair["access_token"], scopes=("notes:write", "notes:read"))
    body = answer(client, service, made["token"])
    user = client.get("/api/me", headers=bearer(pair["access_token"])).json
    assert body == {
        "active": True,
        "scope": "notes:read notes:write",
        "sub": str(user["id"]),
        "username": "bob",
        "token_type": "Bearer",
        "exp": body["exp"],
        "iat": body["iat"],
        "iss": "flask-jwt-api",
    }
    assert body["exp"] - body["iat"] == 30 * 86400
    listed = client.get("/api/me/tokens", headers=bearer(pair["access_token"])).json
    assert listed[0]["last_used_at"] is not None  # introspection is a use


def test_a_deleted_or_expired_personal_access_token_is_inactive(client, service, pair):
    made = make_pat(client, pair["access_token"], days=1)
    with time_machine.travel(utcnow() + timedelta(days=1, seconds=1)):
        assert answer(client, service, made["token"]) == INACTIVE
    headers = bearer(pair["access_token"])
    assert client.delete(f"/api/me/tokens/{made['id']}", headers=headers).status_code == 204
    assert answer(client, service, made["token"]) == INACTIVE


def test_a_disabled_user_s_tokens_are_inactive(client, store_app, service, pair):
    # Set in the database, as a script might: the read joins the user, for
    # login tokens and personal access tokens alike.
    made = make_pat(client, pair["access_token"])
    assert answer(client, service, made["token"])["active"] is True
    with store_app.app_context():
        from api.accounts.users import User
        from api.extensions import db

        db.session.get(User, 1).disabled = True
        db.session.commit()
    assert answer(client, service, pair["access_token"]) == INACTIVE
    assert answer(client, service, made["token"]) == INACTIVE


def metric(result):
    return REGISTRY.get_sample_value("jwt_api_introspections_total", {"result": result})


def test_answers_are_counted(client, service, pair):
    before = metric("active"), metric("inactive")
    answer(client, service, pair["access_token"])
    answer(client, service, "garbage")
    assert (metric("active"), metric("inactive")) == (before[0] + 1, before[1] + 1)
