"""/api/auth/login, /api/auth/cookie/login and /api/auth/refresh
(api/routes/auth.py): token pairs in the body or in cookies, CSRF on cookie
refreshes, and the answers to wrong credentials or tokens."""

import pytest
from argon2 import PasswordHasher

from api.accounts import passwords, users
from tests.helpers import PASSWORD, assert_error, assert_login_cookies, bearer, claims_of


def test_login_returns_token_pair(auth, client):
    auth.register()
    response = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json
    assert set(body) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "refresh_expires_in",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 60
    assert body["refresh_expires_in"] == 14 * 24 * 3600
    assert response.headers["Cache-Control"] == "no-store"
    assert not response.headers.getlist("Set-Cookie")


def test_login_username_is_case_insensitive(auth, client):
    auth.register("Bob")
    response = client.post("/api/auth/login", json={"username": "bOB", "password": PASSWORD})
    assert response.status_code == 200


def test_login_makes_a_fresh_token_with_a_new_session(auth):
    auth.register()
    first, second = auth.login(), auth.login()
    claims = claims_of(first["access_token"])
    assert claims["fresh"] is True
    assert claims["sid"] == claims_of(first["refresh_token"])["sid"]
    assert claims["sid"] != claims_of(second["access_token"])["sid"]


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/cookie/login"])
def test_unknown_user_and_wrong_password_answer_alike(auth, client, path):
    auth.register()
    unknown = client.post(path, json={"username": "nobody", "password": PASSWORD})
    wrong = client.post(path, json={"username": "bob", "password": "wrong password"})
    assert_error(unknown, 401, "invalid_credentials")
    assert unknown.json == wrong.json
    assert unknown.headers.get("WWW-Authenticate") == wrong.headers.get("WWW-Authenticate")
    assert not unknown.headers.getlist("Set-Cookie")


def test_unknown_user_costs_one_password_verification(auth, client, monkeypatch):
    # Same timing whether the user exists: both paths run argon2 verify once.
    auth.register()
    calls = []
    real_verify = PasswordHasher.verify

    def counting_verify(self, hash, password):
        calls.append(hash)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)
    client.post("/api/auth/login", json={"username": "nobody", "password": PASSWORD})
    client.post("/api/auth/login", json={"username": "bob", "password": "wrong password"})
    assert len(calls) == 2
    assert all(h.startswith("$argon2id$") for h in calls)


def test_disabled_user_cannot_log_in(app, auth, client):
    auth.register()
    with app.app_context():
        user = users.find_by_username("bob")
        user.disabled = True
        users.db.session.commit()
    response = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert_error(response, 401, "invalid_credentials")


def test_login_rehashes_when_parameters_change(make_app):
    app = make_app(ARGON2_TIME_COST=1, ARGON2_MEMORY_COST=8)
    client = app.test_client()
    client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    app.extensions["passwords"] = passwords.Passwords({**app.config, "ARGON2_MEMORY_COST": 16})
    with app.app_context():
        before = users.find_by_username("bob").password_hash
    response = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert response.status_code == 200
    with app.app_context():
        after = users.find_by_username("bob").password_hash
    assert "m=8," in before
    assert "m=16," in after
    assert PasswordHasher().verify(after, PASSWORD)


def test_cookie_login_sets_cookies_and_no_token_in_body(auth, client):
    auth.register()
    response = client.post("/api/auth/cookie/login", json={"username": "bob", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json
    assert set(body) == {
        "user",
        "expires_in",
        "refresh_expires_in",
        "csrf_access_token",
        "csrf_refresh_token",
    }
    assert body["user"]["username"] == "bob"
    assert "access_token" not in body and "refresh_token" not in body
    assert_login_cookies(response)
    assert response.headers["Cache-Control"] == "no-store"


def test_cookie_secure_flag_follows_config(make_app):
    app = make_app(JWT_COOKIE_SECURE=True)
    client = app.test_client()
    client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    response = client.post("/api/auth/cookie/login", json={"username": "bob", "password": PASSWORD})
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 4
    assert all("; Secure" in c for c in cookies)


def test_cookies_are_not_secure_by_default_outside_production(auth, client):
    auth.register()
    response = client.post("/api/auth/cookie/login", json={"username": "bob", "password": PASSWORD})
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 4
    assert not any("Secure" in c for c in cookies)


def test_cookie_login_works_for_protected_routes(auth, client):
    auth.register()
    auth.cookie_login()
    response = client.get("/api/me")
    assert response.status_code == 200
    assert response.json["username"] == "bob"


@pytest.mark.parametrize(
    "body",
    [{}, {"username": "bob"}, {"password": PASSWORD}, {"username": None, "password": None}],
)
def test_login_validation(client, body):
    response = client.post("/api/auth/login", json=body)
    assert_error(response, 422, "validation_error")


def test_login_rejects_extra_fields(auth, client):
    auth.register()
    response = client.post(
        "/api/auth/login", json={"username": "bob", "password": PASSWORD, "fresh": True}
    )
    assert_error(response, 422, "validation_error")
    assert "fresh" in response.json["details"]


def test_form_post_to_login_is_refused(auth, client):
    # A cross-site HTML form can only send form or text bodies.
    auth.register()
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        response = client.post(
            "/api/auth/login",
            data=f"username=bob&password={PASSWORD}",
            content_type=content_type,
        )
        assert_error(response, 415, "unsupported_media_type")


def test_login_token_reaches_me(auth):
    pair = auth.registered_pair()
    response = auth.client.get("/api/me", headers=bearer(pair["access_token"]))
    assert response.json["username"] == "bob"


def test_header_refresh_returns_new_pair_in_body(auth, client):
    pair = auth.registered_pair()
    response = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert response.status_code == 200
    new = response.json
    assert new["token_type"] == "Bearer"
    assert new["expires_in"] == 60
    assert new["access_token"] != pair["access_token"]
    assert new["refresh_token"] != pair["refresh_token"]
    assert response.headers["Cache-Control"] == "no-store"
    assert not response.headers.getlist("Set-Cookie")
    me = client.get("/api/me", headers=bearer(new["access_token"]))
    assert me.json["username"] == "bob"


def test_refreshed_token_keeps_session_and_is_not_fresh(auth, client):
    pair = auth.registered_pair()
    new = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"])).json
    old_claims, claims = claims_of(pair["access_token"]), claims_of(new["access_token"])
    assert claims["sid"] == old_claims["sid"]
    assert claims_of(new["refresh_token"])["sid"] == old_claims["sid"]
    assert claims["fresh"] is False
    assert claims["jti"] != old_claims["jti"]


def test_access_token_cannot_refresh(auth, client):
    pair = auth.registered_pair()
    response = client.post("/api/auth/refresh", headers=bearer(pair["access_token"]))
    assert_error(response, 401, "wrong_token_type")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_refresh_without_token(client):
    response = client.post("/api/auth/refresh")
    assert_error(response, 401, "missing_token")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'


def test_cookie_refresh_needs_csrf_header(auth, client):
    auth.register()
    auth.cookie_login()
    response = client.post("/api/auth/refresh")
    assert_error(response, 403, "csrf_failed")


def test_cookie_refresh_with_wrong_csrf_header(auth, client):
    auth.register()
    session = auth.cookie_login()
    # The access token's csrf value does not unlock the refresh cookie.
    response = client.post(
        "/api/auth/refresh", headers={"X-CSRF-TOKEN": session["csrf_access_token"]}
    )
    assert_error(response, 403, "csrf_failed")


def test_cookie_refresh_sets_new_cookies(auth, client):
    auth.register()
    session = auth.cookie_login()
    old_access = client.get_cookie("access_token_cookie").value
    response = client.post(
        "/api/auth/refresh", headers={"X-CSRF-TOKEN": session["csrf_refresh_token"]}
    )
    assert response.status_code == 200
    body = response.json
    assert "access_token" not in body and "refresh_token" not in body
    assert body["user"]["username"] == "bob"
    assert body["csrf_access_token"] != session["csrf_access_token"]
    refresh_csrf_cookie = client.get_cookie("csrf_refresh_token", path="/api/auth")
    assert body["csrf_refresh_token"] == refresh_csrf_cookie.value
    new_access = client.get_cookie("access_token_cookie").value
    assert new_access != old_access
    assert claims_of(new_access)["fresh"] is False
    assert client.get("/api/me").status_code == 200


def test_bearer_header_decides_refresh_over_cookies(auth, client):
    auth.register()
    auth.cookie_login()
    # A bad bearer refresh token is refused even though valid cookies came along.
    response = client.post("/api/auth/refresh", headers=bearer("not-a-token"))
    assert_error(response, 401, "invalid_token")
    # And a good one is used without any CSRF header, answering in the body.
    pair = auth.login()
    response = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert response.status_code == 200
    assert "refresh_token" in response.json


def test_refresh_for_disabled_user_is_refused(app, auth, client):
    from api.accounts import users

    pair = auth.registered_pair()
    with app.app_context():
        users.find_by_username("bob").disabled = True
        users.db.session.commit()
    response = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert_error(response, 401, "invalid_token")


def test_non_ascii_csrf_header_is_refused(auth, client):
    auth.register()
    auth.cookie_login()
    response = client.post(
        "/api/auth/refresh", headers={"X-CSRF-TOKEN": "é".encode().decode("latin-1")}
    )
    assert_error(response, 403, "csrf_failed")


def test_non_ascii_csrf_header_matters_only_where_csrf_is_checked(auth, client):
    odd = "é".encode().decode("latin-1")
    assert_error(client.get("/api/me", headers={"X-CSRF-TOKEN": odd}), 401, "missing_token")
    auth.register()
    auth.cookie_login()
    assert client.get("/api/me", headers={"X-CSRF-TOKEN": odd}).status_code == 200
