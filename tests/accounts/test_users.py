import pytest

from tests.helpers import PASSWORD, USER_FIELDS, assert_error


def test_register_creates_user(client):
    response = client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    assert response.status_code == 201
    body = response.json
    assert set(body) == USER_FIELDS
    assert (body["email"], body["email_verified"], body["mfa_enabled"]) == (None, False, False)
    assert body["username"] == "bob"
    assert body["roles"] == ["user"]
    assert body["created_at"].endswith("Z")
    assert "password" not in response.get_data(as_text=True)


def test_password_is_stored_as_argon2id(app, auth):
    from api.accounts.users import find_by_username

    auth.register()
    with app.app_context():
        stored = find_by_username("bob").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


@pytest.mark.parametrize("taken", ["bob", "BOB", "Bob"])
def test_username_unique_case_insensitively(auth, client, taken):
    auth.register("bob")
    response = client.post("/api/auth/register", json={"username": taken, "password": PASSWORD})
    assert_error(response, 409, "username_taken")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "bob"}, "password"),
        ({"username": "bo", "password": PASSWORD}, "username"),
        ({"username": "b" * 65, "password": PASSWORD}, "username"),
        ({"username": "bob smith", "password": PASSWORD}, "username"),
        ({"username": "bob<script>", "password": PASSWORD}, "username"),
        ({"username": "bob\n", "password": PASSWORD}, "username"),
        ({"username": "\nbob", "password": PASSWORD}, "username"),
        # ASCII only: look-alike letters from other scripts cannot impersonate.
        ({"username": "Zoë", "password": PASSWORD}, "username"),
        ({"username": None, "password": PASSWORD}, "username"),
        ({"username": 42, "password": PASSWORD}, "username"),
        ({"username": "bob", "password": "short"}, "password"),
        ({"username": "bob", "password": "p" * 257}, "password"),
        ({"username": "bob", "password": PASSWORD, "roles": ["admin"]}, "roles"),
        ({"username": "bob", "password": PASSWORD, "id": 1}, "id"),
        ({"username": "bob", "password": PASSWORD, "disabled": False}, "disabled"),
    ],
)
def test_register_validation(client, body, field):
    response = client.post("/api/auth/register", json=body)
    assert_error(response, 422, "validation_error")
    assert field in response.json["details"]


@pytest.mark.parametrize("username", ["abc", "a.b-c_d", "A" * 64, "Zoe"])
def test_register_accepts_allowed_usernames(client, username):
    response = client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201


def test_roles_cannot_be_granted_at_registration(client, auth):
    response = client.post(
        "/api/auth/register",
        json={"username": "mallory", "password": PASSWORD, "roles": ["admin"]},
    )
    assert_error(response, 422, "validation_error")
    # And no account was created on the side.
    login = client.post("/api/auth/login", json={"username": "mallory", "password": PASSWORD})
    assert_error(login, 401, "invalid_credentials")


def test_registration_race_is_settled_by_the_database(auth, client, monkeypatch):
    # Two registrations passing the existence check together: the unique index
    # on lower(username) lets one in and the other gets the same 409.
    from api.accounts import users

    auth.register("bob")
    monkeypatch.setattr(users, "find_by_username", lambda _name: None)
    response = client.post("/api/auth/register", json={"username": "BOB", "password": PASSWORD})
    assert_error(response, 409, "username_taken")
    monkeypatch.undo()
    assert auth.login("bob")["access_token"]


def test_an_address_race_is_settled_by_the_database(make_store_app, monkeypatch):
    # Two registrations with one address passing the existence check together:
    # the unique index on lower(email) lets one in and the other gets 409.
    from api.accounts import users

    client = make_store_app().test_client()
    body = {"username": "bob", "password": PASSWORD, "email": "bob@example.com"}
    assert client.post("/api/auth/register", json=body).status_code == 201
    # The check misses it once (the other registration has not committed yet).
    real, misses = users.find_by_email, iter([None])
    monkeypatch.setattr(users, "find_by_email", lambda address: next(misses, real(address)))
    body = {"username": "eve", "password": PASSWORD, "email": "BOB@example.com"}
    response = client.post("/api/auth/register", json=body)
    monkeypatch.undo()
    assert_error(response, 409, "email_taken")
    assert (
        client.post("/api/auth/login", json={"username": "eve", "password": PASSWORD}).status_code
        == 401
    )
