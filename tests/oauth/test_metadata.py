"""GET /.well-known/oauth-authorization-server (RFC 8414), and a client's
token verified as another service would, by the JWK Set alone, under each
kind of key."""

import jwt as pyjwt
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from api.auth.keyring import add_key
from tests.helpers import header_of, keyed_app
from tests.oauth.support import create_client, issued

BASE = "https://api.example.com"


def test_the_metadata(make_app):
    app = make_app(JWT_ISSUER=BASE)
    response = app.test_client().get("/.well-known/oauth-authorization-server", base_url=BASE)
    assert response.status_code == 200
    methods = ["client_secret_basic", "client_secret_post"]
    assert response.json == {
        "issuer": BASE,
        "token_endpoint": f"{BASE}/oauth/token",
        "jwks_uri": f"{BASE}/.well-known/jwks.json",
        "introspection_endpoint": f"{BASE}/oauth/introspect",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
        "scopes_supported": ["profile:read", "notes:read", "notes:write"],
        "response_types_supported": [],
    }
    # Authlib's own checks of RFC 8414, but for response_types_supported: it
    # takes the empty list (no authorization endpoint, nothing to respond
    # with) for a missing one.
    metadata = AuthorizationServerMetadata(response.json)
    for name in dir(metadata):
        if name.startswith("validate_") and name != "validate_response_types_supported":
            getattr(metadata, name)()


def test_every_url_in_it_answers(make_app):
    client = make_app().test_client()
    metadata = client.get("/.well-known/oauth-authorization-server").json
    assert client.get(metadata["jwks_uri"]).status_code == 200
    # There, and asking for what is missing: a grant type, a client.
    assert client.post(metadata["token_endpoint"]).json["error"] == "invalid_request"
    assert client.post(metadata["introspection_endpoint"]).json["error"] == "invalid_client"


def verify_with_jwks(client, token):
    """As another service would: the JWK Set, pinned to the key's algorithm."""
    key = pyjwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json)[
        header_of(token)["kid"]
    ]
    return pyjwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="flask-jwt-api")


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256", "EdDSA"])
def test_a_client_token_verifies_against_the_jwks(make_app, key_dir, algorithm):
    add_key(str(key_dir), algorithm)
    app = keyed_app(make_app, algorithm, key_dir)
    client = app.test_client()
    token = issued(client, create_client(app))
    assert header_of(token)["alg"] == algorithm and header_of(token)["typ"] == "at+jwt"
    assert verify_with_jwks(client, token)["scope"] == "profile:read notes:read"


def test_a_client_token_verifies_after_a_key_rotation(make_app, key_dir):
    add_key(str(key_dir), "RS256")
    app = keyed_app(make_app, "RS256", key_dir)
    client = app.test_client()
    service = create_client(app)
    before = issued(client, service)
    add_key(str(key_dir), "RS256")
    after = issued(client, service)
    assert header_of(before)["kid"] != header_of(after)["kid"]
    for token in (before, after):
        assert verify_with_jwks(client, token)["client_id"] == service.client_id


def test_a_client_token_verifies_with_a_pem_pair(make_app, rsa_key_files):
    private, public = rsa_key_files
    app = make_app(
        JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY_FILE=str(private), JWT_PUBLIC_KEY_FILE=str(public)
    )
    client = app.test_client()
    assert verify_with_jwks(client, issued(client, create_client(app)))["type"] == "access"


@pytest.mark.parametrize(
    ("env_name", "issuer", "warned"),
    [
        ("production", "flask-jwt-api", True),
        ("production", "http://auth.example.org", True),
        ("production", "https://auth.example.org", False),
        ("development", "flask-jwt-api", False),
    ],
)
def test_production_says_when_the_issuer_is_no_https_url(
    make_app, caplog, env_name, issuer, warned
):
    from api import oauth

    app = make_app(JWT_ISSUER=issuer)
    app.config["ENV_NAME"] = env_name  # the checks of the rest of production aside
    with caplog.at_level("WARNING"):
        oauth.init_app(app)
    assert ("not an https URL" in caplog.text) is warned
