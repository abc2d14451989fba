"""CORS for SPAs on other origins, the OpenAPI document and the offline docs."""

import re

import pytest

from config import ConfigError
from tests.conftest import PASSWORD, assert_error

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


def test_openapi_documents_every_route(app, client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {
        (re.sub(r"\{(\w+)\}", r"<\1>", path), method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    served = {
        (re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"<\1>", rule.rule), method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.rule.startswith(("/api/", "/.well-known/"))
        and not rule.rule.startswith(("/api/docs", "/api/openapi.json"))
    }
    assert served <= documented, served - documented
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["cookieAuth"]["in"] == "cookie"
    me = spec["paths"]["/api/me"]["get"]
    assert {"bearerAuth": []} in me["security"]
    assert "default" in me["responses"]  # the error envelope, on every operation
    assert "Error" in spec["components"]["schemas"]
    refresh = spec["paths"]["/api/auth/refresh"]["post"]
    shapes = refresh["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
    assert {s["$ref"].rsplit("/", 1)[1] for s in shapes} == {"TokenPair", "CookieSession"}
    assert {"refreshCookieAuth": [], "csrfHeader": []} in refresh["security"]
    logout = spec["paths"]["/api/auth/logout"]["post"]
    assert {"cookieAuth": [], "csrfHeader": []} in logout["security"]  # unsafe: csrf too


def test_docs_are_served_from_this_server(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # no CDN: works offline
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        with client.get(f"/api/docs/assets/{asset}") as response:  # files: close them
            assert response.status_code == 200


def test_demo_page_is_served(client):
    with client.get("/") as page:
        assert page.status_code == 200
        assert "Get token" in page.get_data(as_text=True)
    with client.get("/static/demo.js") as script:
        assert "silently" in script.get_data(as_text=True)
