"""Roles and user administration: the first admin from the CLI, 403 for
everyone else, and demotion or disabling taking effect at once."""

import json

import pytest

from tests.helpers import PASSWORD, USER_FIELDS, AuthActions, assert_error, bearer


def create_admin(app, username="root"):
    result = app.test_cli_runner().invoke(
        args=["users", "create", username, "--admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def admin(app, auth):
    create_admin(app)
    return bearer(auth.login("root")["access_token"])


def user_id(client, headers):
    return client.get("/api/me", headers=headers).json["id"]


def test_cli_makes_the_first_admin(app, client, auth):
    result = create_admin(app)
    assert "Created root (id 1) with roles admin, user" in result.output
    pair = auth.login("root")
    assert client.get("/api/me", headers=bearer(pair["access_token"])).json["roles"] == [
        "admin",
        "user",
    ]


@pytest.mark.parametrize(
    ("args", "stdin", "complaint"),
    [
        (["users", "create", "x", "--password-stdin"], PASSWORD + "\n", "not created"),
        (["users", "create", "carl", "--password-stdin"], "short\n", "not created"),
    ],
)
def test_cli_refuses_bad_users(app, args, stdin, complaint):
    result = app.test_cli_runner().invoke(args=args, input=stdin)
    assert result.exit_code != 0
    assert complaint in result.output


def test_cli_refuses_an_existing_username(app):
    create_admin(app)
    result = app.test_cli_runner().invoke(
        args=["users", "create", "ROOT", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code != 0 and "exists" in result.output


def test_normal_users_get_403_on_admin_routes(client, auth):
    user = bearer(auth.registered_pair("bob")["access_token"])
    assert_error(client.get("/api/admin/users", headers=user), 403, "forbidden")
    patch = client.patch("/api/admin/users/1", json={"roles": ["admin", "user"]}, headers=user)
    assert_error(patch, 403, "forbidden")
    assert client.get("/api/me", headers=user).json["roles"] == ["user"]


def test_admin_routes_need_a_token(client):
    assert_error(client.get("/api/admin/users"), 401, "missing_token")


def test_list_users_paginated_and_filtered(client, auth, admin):
    for name in ("bob", "Bobby", "carol", "b_o"):
        auth.register(name)
    everyone = client.get("/api/admin/users?per_page=2", headers=admin)
    assert [u["username"] for u in everyone.json] == ["root", "bob"]
    assert json.loads(everyone.headers["X-Pagination"])["total"] == 5
    assert set(everyone.json[0]) == USER_FIELDS | {"disabled"}
    bobs = client.get("/api/admin/users?username=BOB", headers=admin)
    assert [u["username"] for u in bobs.json] == ["bob", "Bobby"]
    literal = client.get("/api/admin/users?username=b_", headers=admin)
    assert [u["username"] for u in literal.json] == ["b_o"]  # "_" is no wildcard
    assert_error(
        client.get("/api/admin/users?per_page=101", headers=admin), 422, "validation_error"
    )


def test_disabling_a_user_ends_their_sessions_at_once(client, auth, admin):
    bob_pair = auth.registered_pair("bob")
    bob = bearer(bob_pair["access_token"])
    bob_id = user_id(client, bob)
    response = client.patch(f"/api/admin/users/{bob_id}", json={"disabled": True}, headers=admin)
    assert response.status_code == 200 and response.json["disabled"] is True
    assert_error(client.get("/api/me", headers=bob), 401, "token_revoked")
    refreshed = client.post("/api/auth/refresh", headers=bearer(bob_pair["refresh_token"]))
    assert_error(refreshed, 401, "token_revoked")
    login = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert_error(login, 401, "invalid_credentials")
    client.patch(f"/api/admin/users/{bob_id}", json={"disabled": False}, headers=admin)
    assert auth.login("bob")["access_token"]


def test_demotion_takes_effect_at_once(app, client, auth, admin):
    create_admin(app, "second")
    second = bearer(auth.login("second")["access_token"])
    assert client.get("/api/admin/users", headers=second).status_code == 200
    second_id = user_id(client, second)
    response = client.patch(
        f"/api/admin/users/{second_id}", json={"roles": ["user"]}, headers=admin
    )
    assert response.json["roles"] == ["user"]
    assert_error(client.get("/api/admin/users", headers=second), 401, "token_revoked")
    again = bearer(auth.login("second")["access_token"])
    assert_error(client.get("/api/admin/users", headers=again), 403, "forbidden")


def test_granting_a_role_keeps_sessions(client, auth, admin):
    bob = bearer(auth.registered_pair("bob")["access_token"])
    bob_id = user_id(client, bob)
    client.patch(f"/api/admin/users/{bob_id}", json={"roles": ["user", "admin"]}, headers=admin)
    assert client.get("/api/admin/users", headers=bob).status_code == 200


def test_an_admin_cannot_disable_themselves(client, admin):
    own_id = user_id(client, admin)
    response = client.patch(f"/api/admin/users/{own_id}", json={"disabled": True}, headers=admin)
    assert_error(response, 422, "validation_error")
    assert "disabled" in response.json["details"]
    assert client.get("/api/me", headers=admin).status_code == 200


def test_the_last_admin_remains(app, client, auth, admin):
    own_id = user_id(client, admin)
    response = client.patch(f"/api/admin/users/{own_id}", json={"roles": ["user"]}, headers=admin)
    assert_error(response, 422, "validation_error")
    assert response.json["details"] == {"roles": ["The last administrator must remain."]}
    create_admin(app, "second")
    second_id = user_id(client, bearer(auth.login("second")["access_token"]))
    # With another admin, one may step down or be disabled.
    ok = client.patch(f"/api/admin/users/{second_id}", json={"disabled": True}, headers=admin)
    assert ok.status_code == 200
    last = client.patch(f"/api/admin/users/{own_id}", json={"roles": ["user"]}, headers=admin)
    assert_error(last, 422, "validation_error")  # the other admin is disabled


@pytest.mark.parametrize(
    "body",
    [
        {"roles": ["superuser"]},
        {"roles": []},
        {"roles": "admin"},
        {"username": "x"},
        {"disabled": "yes"},
    ],
)
def test_patch_validation(client, auth, admin, body):
    bob_id = user_id(client, bearer(auth.registered_pair("bob")["access_token"]))
    response = client.patch(f"/api/admin/users/{bob_id}", json=body, headers=admin)
    assert_error(response, 422, "validation_error")


def test_patch_unknown_user_is_404(client, admin):
    response = client.patch("/api/admin/users/999", json={"disabled": True}, headers=admin)
    assert_error(response, 404, "not_found")


def test_roles_claim_comes_from_stored_roles(app, client):
    create_admin(app)
    pair = AuthActions(client).login("root")
    token = client.get("/api/auth/token", headers=bearer(pair["access_token"])).json
    assert token["roles"] == ["admin", "user"]


@pytest.mark.parametrize("user_id", ["2147483648", "9223372036854775808", "99999999999999999999"])
def test_huge_ids_are_404_not_500(client, admin, user_id):
    response = client.patch(f"/api/admin/users/{user_id}", json={"disabled": True}, headers=admin)
    assert_error(response, 404, "not_found")
    assert_error(client.get(f"/api/notes/{user_id}", headers=admin), 404, "not_found")
