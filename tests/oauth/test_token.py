"""POST /oauth/token (api/oauth/server.py, api/oauth/tokens.py): client
credentials, client authentication by HTTP Basic or in the body, scopes,
and RFC 6749's errors; on SQLite and on PostgreSQL with Redis."""

import base64
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from tests.helpers import assert_error, bearer, claims_of, header_of
from tests.oauth.support import (
    TOKEN_FIELDS,
    Credentials,
    ask_token,
    assert_oauth_error,
    basic,
    create_client,
    issued,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)


def test_http_basic_gets_a_client_token(client, service):
    response = ask_token(client, service)
    assert response.status_code == 200
    body = response.json
    assert set(body) == TOKEN_FIELDS  # no refresh_token (RFC 6749 §4.4.3)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "profile:read notes:read"
    assert response.headers["Cache-Control"] == "no-store"
    assert header_of(body["access_token"])["typ"] == "at+jwt"
    claims = claims_of(body["access_token"])
    assert set(claims) == {
        *("iss", "aud", "sub", "iat", "nbf", "exp", "jti", "type", "client_id", "scope"),
    }
    assert claims["sub"] == claims["client_id"] == service.client_id
    assert claims["iss"] == claims["aud"] == "flask-jwt-api"
    assert claims["type"] == "access"
    assert claims["scope"] == "profile:read notes:read"
    assert claims["nbf"] == claims["iat"] and claims["exp"] - claims["iat"] == 300


def test_the_body_gets_a_client_token_too(client, service):
    form = {
        "grant_type": "client_credentials",
        "client_id": service.client_id,
        "client_secret": service.secret,
    }
    response = client.post("/oauth/token", data=form)
    assert response.status_code == 200, response.json
    assert claims_of(response.json["access_token"])["client_id"] == service.client_id


def test_each_token_is_new(client, service):
    first, second = issued(client, service), issued(client, service)
    assert claims_of(first)["jti"] != claims_of(second)["jti"]


def test_the_lifetime_is_oauth_token_expires(make_store_app):
    app = make_store_app(OAUTH_TOKEN_EXPIRES=timedelta(seconds=120))
    response = ask_token(app.test_client(), create_client(app))
    assert response.json["expires_in"] == 120
    claims = claims_of(response.json["access_token"])
    assert claims["exp"] - claims["iat"] == 120


def test_some_of_the_clients_scopes(client, service):
    response = ask_token(client, service, scope="notes:read")
    assert response.json["scope"] == "notes:read"
    assert claims_of(response.json["access_token"])["scope"] == "notes:read"


def test_scopes_come_back_in_the_canonical_order(client, service):
    response = ask_token(client, service, scope="notes:read  profile:read")
    assert response.json["scope"] == "profile:read notes:read"


@pytest.mark.parametrize(
    "scope",
    ["notes:write", "notes:read notes:write", "admin", "notes:read admin", "NOTES:READ"],
)
def test_a_scope_not_granted_or_unknown_is_invalid_scope(client, service, scope):
    assert_oauth_error(ask_token(client, service, scope=scope), 400, "invalid_scope")


def refused(service):
    """Every way a client authentication fails, and what it sends."""
    wrong = service.secret[:-1] + ("A" if service.secret[-1] != "A" else "B")
    unknown = "cid_" + "x" * 22
    post = {"grant_type": "client_credentials"}
    return {
        "basic, wrong secret": ({}, basic(service.client_id, wrong)),
        "basic, unknown client": ({}, basic(unknown, service.secret)),
        "basic, not an id of ours": ({}, basic("admin", service.secret)),
        "basic, empty secret": ({}, basic(service.client_id, "")),
        "post, wrong secret": ({"client_id": service.client_id, "client_secret": wrong}, {}),
        "post, unknown client": ({"client_id": unknown, "client_secret": service.secret}, {}),
        "post, id alone": ({"client_id": service.client_id}, {}),
        "no credentials": ({}, {}),
        "a bearer token": ({}, bearer("x.y.z")),
        "basic, not base64": ({}, {"Authorization": "Basic !!!"}),
        "basic, non-ASCII": ({}, {"Authorization": "Basic é"}),
        "basic, no colon": ({}, {"Authorization": "Basic " + base64.b64encode(b"x").decode()}),
        "basic, not UTF-8": (
            {},
            {"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},
        ),
        "basic, empty": ({}, {"Authorization": "Basic"}),
    }, post


def test_every_failed_client_authentication_is_401_invalid_client(client, service):
    cases, post = refused(service)
    messages = set()
    for name, (form, headers) in cases.items():
        response = client.post("/oauth/token", data={**post, **form}, headers=headers)
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="oauth"'), name
        messages.add(response.json["message"])
    assert len(messages) == 1  # an unknown client reads as a wrong secret


def test_both_ways_at_once_is_invalid_request(client, service):
    form = {
        "grant_type": "client_credentials",
        "client_id": service.client_id,
        "client_secret": service.secret,
    }
    response = client.post("/oauth/token", data=form, headers=basic(*service))
    assert_oauth_error(response, 400, "invalid_request")  # RFC 6749 §2.3


@pytest.mark.parametrize(
    "grant_type", ["password", "authorization_code", "refresh_token", "implicit", "x\u00e9"]
)
def test_another_grant_type_is_unsupported(client, service, grant_type):
    response = ask_token(client, service, grant_type=grant_type)
    assert_oauth_error(response, 400, "unsupported_grant_type")
    assert grant_type not in response.json["message"]  # nothing of the request echoed


def test_a_missing_grant_type_is_invalid_request(client, service):
    response = client.post("/oauth/token", data={}, headers=basic(*service))
    assert_oauth_error(response, 400, "invalid_request")
    empty = client.post("/oauth/token", headers=basic(*service))  # no body at all
    assert_oauth_error(empty, 400, "invalid_request")


def test_a_repeated_parameter_is_invalid_request(client, service):
    form = {"grant_type": "client_credentials", "scope": ["notes:read", "profile:read"]}
    response = client.post("/oauth/token", data=form, headers=basic(*service))
    assert_oauth_error(response, 400, "invalid_request")


def test_parameters_in_the_query_string_are_not_read(client, service):
    response = client.post(
        "/oauth/token?grant_type=client_credentials",
        data={"scope": "notes:read"},
        headers=basic(*service),
    )
    assert_oauth_error(response, 400, "invalid_request")
    secret_in_url = client.post(
        f"/oauth/token?client_id={service.client_id}&client_secret={service.secret}",
        data={"grant_type": "client_credentials"},
    )
    assert_oauth_error(secret_in_url, 401, "invalid_client")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"grant_type": "client_credentials"}},
        {"data": "grant_type=client_credentials", "content_type": "text/plain"},
        {"data": {"grant_type": "client_credentials"}, "content_type": "multipart/form-data"},
    ],
)
def test_only_a_form_body_is_taken(client, service, kwargs):
    response = client.post("/oauth/token", headers=basic(*service), **kwargs)
    assert_oauth_error(response, 400, "invalid_request")


def test_a_form_body_is_still_415_outside_oauth(client):
    form = {"username": "bob", "password": "correct horse battery"}
    response = client.post("/api/auth/login", data=form)
    assert_error(response, 415, "unsupported_media_type")
    assert "error_description" not in response.json
    # A route with no body schema: refused before its view, by the body check.
    logout = client.post("/api/auth/logout", data={"x": "y"})
    assert_error(logout, 415, "unsupported_media_type")


def test_plain_http_is_refused_but_on_loopback(client, service):
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(*service),
        base_url="http://api.example.com",
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert "HTTPS" in response.json["message"]
    secure = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(*service),
        base_url="https://api.example.com",
    )
    assert secure.status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/me", "/api/notes", "/api/auth/sessions", "/api/admin/users"]
)
def test_a_client_token_is_refused_on_user_routes(client, service, path):
    assert_error(client.get(path, headers=bearer(issued(client, service))), 403, "forbidden")


def metric(result):
    return REGISTRY.get_sample_value("jwt_api_oauth_tokens_total", {"result": result})


def test_answers_are_counted(client, service):
    before = {result: metric(result) for result in ("issued", "invalid_client", "invalid_scope")}
    issued(client, service)
    ask_token(client, Credentials(service.client_id, "wrong"))
    ask_token(client, service, scope="notes:write")
    assert metric("issued") == before["issued"] + 1
    assert metric("invalid_client") == before["invalid_client"] + 1
    assert metric("invalid_scope") == before["invalid_scope"] + 1
