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
    assert response.status_code == 204
    assert "Content-Type" not in response.headers and response.data == b""
    assert "POST" in response.headers["Allow"]
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
    assert "Origin" not in response.vary  # nothing depends on it


def test_options_answers_no_content_and_no_html(client):
    """Flask's own OPTIONS answer was an empty text/html 200."""
    response = client.options("/api/notes")
    assert response.status_code == 204
    assert "Content-Type" not in response.headers and response.data == b""
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST", "OPTIONS"}


@pytest.mark.parametrize("method", ["get", "options"])
@pytest.mark.parametrize("path", ["/.well-known/jwks.json", "/api/me", "/no/such/route"])
@pytest.mark.parametrize("origin", [SPA, "https://evil.example", None])
def test_every_answer_varies_by_origin(cors_client, method, path, origin):
    """With origins restricted, every answer's CORS headers depend on Origin,
    its absence included: a shared cache (the JWKS is public for 5 minutes)
    must not serve one origin's answer to another. flask-cors adds Vary only
    when more than one origin is configured, and only to allowed origins."""
    headers = {"Origin": origin, "Access-Control-Request-Method": "GET"} if origin else {}
    response = getattr(cors_client, method)(path, headers=headers)
    assert response.vary.as_set() == {"origin"}


@pytest.mark.parametrize("entry", ["*", "null", "https://*.example.org", "https://a.org/path", ""])
def test_anything_but_plain_origins_is_refused(make_app, entry):
    with pytest.raises(ConfigError, match="is not an origin like"):
        make_app(CORS_ORIGINS=[entry])
