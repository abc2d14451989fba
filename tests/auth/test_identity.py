"""Who a token speaks for (api/auth/identity.py): the claims it carries, where
it is read from (bearer header or cookies, never the query string or body),
the one look-up per request, and the token user being read-only."""

import pytest

from api.auth.identity import token_required
from tests.helpers import (
    PASSWORD,
    USER_FIELDS,
    assert_error,
    bearer,
    claims_of,
    header_of,
    sqlite_statements,
)

BOTH = {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type", "sid"}


# `amr` (RFC 8176) on both: the refresh token carries it to the access
# tokens its rotations mint.
ACCESS = BOTH | {"fresh", "roles", "amr"}
REFRESH = BOTH | {"amr"}


def test_me_with_bearer(auth, client):
    user = auth.register()
    pair = auth.login()
    response = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert response.status_code == 200
    assert response.json == user
    assert response.headers["Cache-Control"] == "no-store"


def test_token_shows_claims(auth, client):
    user = auth.register()
    pair = auth.login()
    response = client.get("/api/auth/token", headers=bearer(pair["access_token"]))
    assert response.status_code == 200
    claims = response.json
    assert set(claims) == ACCESS
    assert claims["sub"] == str(user["id"])
    assert claims["type"] == "access"
    assert claims["roles"] == ["user"]
    assert claims["amr"] == ["pwd"]
    assert claims["iss"] == "flask-jwt-api" and claims["aud"] == "flask-jwt-api"
    assert claims["exp"] - claims["iat"] == 60
    assert claims["nbf"] == claims["iat"]


def test_access_and_refresh_headers(auth):
    pair = auth.registered_pair()
    assert header_of(pair["access_token"]) == {"alg": "HS256", "typ": "at+jwt"}
    assert header_of(pair["refresh_token"]) == {"alg": "HS256", "typ": "JWT"}
    refresh = claims_of(pair["refresh_token"])
    assert refresh["type"] == "refresh"
    assert refresh["exp"] - refresh["iat"] == 14 * 24 * 3600
    assert set(refresh) == REFRESH
    assert refresh["amr"] == ["pwd"]


def test_cookie_mode_tokens_add_csrf_only(auth, client):
    auth.register()
    session = auth.cookie_login()
    access = claims_of(client.get_cookie("access_token_cookie").value)
    refresh = claims_of(client.get_cookie("refresh_token_cookie", path="/api/auth").value)
    assert set(access) == ACCESS | {"csrf"}
    assert set(refresh) == REFRESH | {"csrf"}
    assert access["csrf"] == session["csrf_access_token"]
    assert refresh["csrf"] == session["csrf_refresh_token"]


def test_configured_lifetimes(make_app):
    app = make_app(JWT_ACCESS_TOKEN_EXPIRES=__import__("datetime").timedelta(seconds=300))
    client = app.test_client()
    client.post("/api/auth/register", json={"username": "bob", "password": "password123"})
    body = client.post("/api/auth/login", json={"username": "bob", "password": "password123"})
    claims = claims_of(body.json["access_token"])
    assert claims["exp"] - claims["iat"] == 300
    assert body.json["expires_in"] == 300


@pytest.mark.parametrize("path", ["/api/me", "/api/auth/token"])
def test_protected_routes_need_a_token(client, path):
    response = client.get(path)
    assert_error(response, 401, "missing_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'


@pytest.mark.parametrize("path", ["/api/me", "/api/auth/token"])
def test_refresh_token_is_not_an_access_token(auth, client, path):
    pair = auth.registered_pair()
    response = client.get(path, headers=bearer(pair["refresh_token"]))
    assert_error(response, 401, "wrong_token_type")


def test_cookie_auth_on_get_needs_no_csrf(auth, client):
    auth.register()
    auth.cookie_login()
    assert client.get("/api/auth/token").json["csrf"]


def test_bearer_header_decides_over_cookies(auth, client):
    auth.register("alice")
    alice = auth.login("alice")
    auth.register("bob")
    auth.cookie_login("bob")
    # Valid cookies for bob, bearer for alice: the header alone decides.
    response = client.get("/api/me", headers=bearer(alice["access_token"]))
    assert response.json["username"] == "alice"
    # A bad bearer header is not rescued by good cookies.
    response = client.get("/api/me", headers=bearer("garbage"))
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_bearer_scheme_is_case_insensitive_and_still_decides(auth, client, scheme):
    auth.register("alice")
    alice = auth.login("alice")
    auth.register("bob")
    auth.cookie_login("bob")
    response = client.get("/api/me", headers={"Authorization": f"{scheme} {alice['access_token']}"})
    assert response.json["username"] == "alice"


def test_repeated_bearer_values_are_refused_not_skipped(auth, client):
    auth.register("alice")
    alice = auth.login("alice")
    auth.register("bob")
    auth.cookie_login("bob")
    header = f"Bearer {alice['access_token']}, Bearer other"
    response = client.get("/api/me", headers={"Authorization": header})
    assert_error(response, 401, "invalid_token")  # never bob's cookies


@pytest.mark.parametrize("header", ["Bearer", "bearer ", "Bearer ,"])
def test_bearer_scheme_without_a_token_is_missing_token(auth, client, header):
    auth.register()
    auth.cookie_login()
    response = client.get("/api/me", headers={"Authorization": header})
    assert_error(response, 401, "missing_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'


def test_other_auth_schemes_leave_the_cookies_in_charge(auth, client):
    auth.register()
    auth.cookie_login()
    response = client.get("/api/me", headers={"Authorization": "Basic Ym9iOnB3"})
    assert response.json["username"] == "bob"


def test_tokens_are_not_read_from_query_string_or_body(auth, client):
    pair = auth.registered_pair()
    response = client.get(f"/api/me?jwt={pair['access_token']}")
    assert_error(response, 401, "missing_token")
    response = client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_error(response, 401, "missing_token")


def test_deleted_user_token_is_refused(app, auth, client):
    from api.accounts import users

    pair = auth.registered_pair()
    with app.app_context():
        users.db.session.delete(users.find_by_username("bob"))
        users.db.session.commit()
    response = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert_error(response, 401, "invalid_token")


def test_an_authenticated_request_costs_one_query(app, auth, client):
    """The revocation check brings the user with it (database store): one
    statement reaches SQLite, no BEGIN, no ROLLBACK (SQLite's own trace)."""
    pair = auth.registered_pair()
    with sqlite_statements(app) as statements:
        response = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert response.status_code == 200
    assert len(statements) == 1, statements
    assert statements[0].startswith("SELECT users.id"), statements


def test_the_token_user_is_read_only_and_changes_go_through_the_model(client, auth):
    """/api/me answers from the row the revocation check read; a password
    change loads the model to write."""
    pair = auth.registered_pair()
    me = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert set(me.json) == USER_FIELDS
    changed = client.put(
        "/api/me/password",
        json={"current_password": PASSWORD, "new_password": "a new password"},
        headers=bearer(pair["access_token"]),
    )
    assert changed.status_code == 204, changed.json
    assert auth.login(password="a new password")["access_token"]


def test_a_look_up_serves_only_the_token_it_was_made_for(app, auth, client):
    """Within one app context, a look-up left by a refused token (here a
    revoked one) is never taken for another token's user."""
    from flask_jwt_extended import get_current_user, verify_jwt_in_request
    from flask_jwt_extended.exceptions import RevokedTokenError

    bob = auth.registered_pair("bob")["access_token"]
    alice = auth.registered_pair("alice")["access_token"]
    client.post("/api/auth/logout", headers=bearer(bob))
    with app.app_context():
        with app.test_request_context(headers=bearer(bob)), pytest.raises(RevokedTokenError):
            verify_jwt_in_request()
        with app.test_request_context(headers=bearer(alice)):
            verify_jwt_in_request(skip_revocation_check=True)
            assert get_current_user().username == "alice"


def test_a_route_cannot_name_a_scope_nobody_defined():
    with pytest.raises(ValueError, match="reports:read"):
        token_required(scope="reports:read")


@pytest.mark.parametrize("login", [{"fresh": True}, {"mfa": True}, {"refresh": True}])
def test_a_route_that_needs_a_login_names_no_scope(login):
    # A personal access token proves no login: it would pass over the demand.
    with pytest.raises(ValueError, match="names no scope"):
        token_required(scope="notes:write", **login)
