from tests.conftest import assert_error, bearer, claims_of


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
