"""A NUL character (U+0000) in any text a client sends, in a query string or a
body, is a 422 naming the field, on every backend: PostgreSQL text cannot hold
one (psycopg's DataError was a 500) while SQLite can (a 200)."""

import pytest

from tests.helpers import PASSWORD, assert_error, bearer

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)

NUL = "a\x00b"
REFUSED = "Must not contain the NUL character (U+0000)."


@pytest.fixture
def client(store_app):
    """On each store (conftest's `auth` uses this client too)."""
    return store_app.test_client()


@pytest.fixture
def admin(store_app, auth):
    """A fresh admin token, and one note of the admin's (id 1)."""
    result = store_app.test_cli_runner().invoke(
        args=["users", "create", "root", "--admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    headers = bearer(auth.login("root")["access_token"])
    note = {"title": "t", "body": "b"}
    assert auth.client.post("/api/notes", json=note, headers=headers).status_code == 201
    return headers


def body(**fields):
    return {"username": "carol", "password": PASSWORD, **fields}


def password_change(**fields):
    return {"current_password": PASSWORD, "new_password": "a new password", **fields}


@pytest.mark.parametrize(
    ("method", "path", "json", "field"),
    [
        ("get", "/api/admin/users?username=a%00b", None, "username"),
        ("get", "/api/me/events?type=a%00b", None, "type"),
        ("get", "/api/admin/events?type=a%00b", None, "type"),
        ("post", "/api/auth/register", body(username=NUL), "username"),
        ("post", "/api/auth/register", body(password=PASSWORD + "\x00"), "password"),
        ("post", "/api/auth/login", body(username=NUL), "username"),
        ("post", "/api/auth/login", body(password=NUL), "password"),
        ("post", "/api/auth/cookie/login", body(username=NUL), "username"),
        ("put", "/api/me/password", password_change(current_password=NUL), "current_password"),
        ("put", "/api/me/password", password_change(new_password=NUL * 5), "new_password"),
        ("post", "/api/notes", {"title": NUL, "body": "b"}, "title"),
        ("post", "/api/notes", {"title": "t", "body": NUL}, "body"),
        ("patch", "/api/notes/1", {"title": NUL}, "title"),
        ("patch", "/api/notes/1", {"body": NUL}, "body"),
        ("patch", "/api/admin/users/1", {"roles": ["user\x00"]}, "roles"),
    ],
)
def test_nul_in_client_text_is_a_validation_error(client, admin, method, path, json, field):
    response = getattr(client, method)(path, json=json, headers=admin)
    assert_error(response, 422, "validation_error")
    assert field in response.json["details"], response.json
    # The app is still well: the failed request left no broken transaction.
    assert client.get("/api/admin/users?username=ro", headers=admin).status_code == 200


def test_the_refusal_says_why(client, admin):
    response = client.get("/api/admin/users?username=a%00b", headers=admin)
    assert response.json["details"] == {"username": [REFUSED]}
    response = client.post("/api/notes", json={"title": "t", "body": NUL}, headers=admin)
    assert response.json["details"] == {"body": [REFUSED]}
    response = client.patch("/api/admin/users/1", json={"roles": ["user\x00"]}, headers=admin)
    assert response.json["details"] == {"roles": {"0": [REFUSED]}}
