"""CORS for SPAs on other origins (api/web/cors.py)."""

import re

import pytest

from config import ConfigError
from tests.helpers import PASSWORD, assert_error

SPA = "https://spa.example.org"


@pytest.fixture
def cors_client(make_app):
    return make_app(CORS_ORIGINS=[SPA]).test_client()


def test_preflight_for_an_allowed_origin(cors_client):
    response = cors_client.options(
        "/api/auth/refresh",
        headers={
            "Origin": SPA,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-csrf-token, authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"content-type", "x-csrf-token", "authorization"} <= set(re.split(r",\s*", allowed))
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_credentialed_request_from_an_allowed_origin(cors_client):
    cors_client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    response = cors_client.post(
        "/api/auth/cookie/login",
        json={"username": "bob", "password": PASSWORD},
        headers={"Origin": SPA},
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_errors_carry_cors_headers_too(cors_client):
    response = cors_client.get("/api/me", headers={"Origin": SPA})
    assert_error(response, 401, "missing_token")
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert "WWW-Authenticate" in response.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("origin", ["https://evil.example", "https://spa.example.org.evil.example"])
def test_other_origins_get_no_cors_headers(cors_client, origin):
    response = cors_client.options(
        "/api/auth/login",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_no_cors_unless_configured(client):
    response = client.get("/api/health", headers={"Origin": SPA})
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("entry", ["*", "null", "https://*.example.org", "https://a.org/path", ""])
def test_anything_but_plain_origins_is_refused(make_app, entry):
    with pytest.raises(ConfigError, match="is not an origin like"):
        make_app(CORS_ORIGINS=[entry])
