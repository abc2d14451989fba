"""/api/me/password (api/routes/me.py): a fresh token and the current password
needed, and every other session ended; on SQLite, PostgreSQL, and PostgreSQL
with Redis as the revocation store."""

import pytest

from tests.helpers import PASSWORD, assert_error, bearer, me, refresh


@pytest.fixture
def client(store_app):
    """On each store (conftest's `auth` uses this client too)."""
    return store_app.test_client()


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
