"""What an attack on the OAuth endpoints found, each kept as a test: a
client's id is public, the Host header is the client's to write, and
Authlib logs what it issues."""

import logging

import pytest
from flask_migrate import upgrade

from tests.conftest import app_factory
from tests.oauth.support import (
    ask_token,
    assert_oauth_error,
    basic,
    create_client,
    issued,
)

TOKEN_FORM = {"grant_type": "client_credentials"}


@pytest.fixture
def make_postgres_app(postgres_url):
    """PostgreSQL with no Redis: the rate limits count in the database."""
    yield from app_factory({"SQLALCHEMY_DATABASE_URI": postgres_url}, upgrade)


def test_a_nul_in_a_client_id_is_no_500_where_limits_count_in_postgres(make_postgres_app):
    client = make_postgres_app(RATELIMIT_ENABLED=True).test_client()
    in_body = client.post(
        "/oauth/token", data={**TOKEN_FORM, "client_id": "\x00", "client_secret": "x"}
    )
    assert_oauth_error(in_body, 401, "invalid_client")
    in_basic = client.post("/oauth/token", data=TOKEN_FORM, headers=basic("%00", "x"))
    assert_oauth_error(in_basic, 401, "invalid_client")


def test_no_issued_token_reaches_a_debug_log(make_app, caplog):
    app = make_app(LOG_LEVEL="DEBUG")
    service = create_client(app)
    with caplog.at_level(logging.DEBUG):
        token = issued(app.test_client(), service)
    assert token not in caplog.text
    assert token.split(".")[1] not in caplog.text


def test_the_metadata_does_not_follow_the_host_header(make_app):
    app = make_app(JWT_ISSUER="https://auth.example.org/")
    answer = app.test_client().get(
        "/.well-known/oauth-authorization-server", headers={"Host": "evil.example"}
    )
    assert "evil.example" not in answer.text
    assert answer.json["token_endpoint"] == "https://auth.example.org/oauth/token"
    assert answer.json["jwks_uri"] == "https://auth.example.org/.well-known/jwks.json"


def token_over_plain_http(app, peer):
    """A token request over plain HTTP to `Host: localhost` from `peer`."""
    return app.test_client().post(
        "/oauth/token",
        data=TOKEN_FORM,
        headers={**basic(*create_client(app)), "Host": "localhost"},
        environ_base={"REMOTE_ADDR": peer},
    )


def test_plain_http_named_localhost_from_afar_is_refused(app):
    answer = token_over_plain_http(app, "203.0.113.7")
    assert_oauth_error(answer, 400, "invalid_request")
    assert "HTTPS" in answer.json["message"]


def test_basic_and_a_body_naming_another_client_is_refused(app):
    one, other = create_client(app), create_client(app, name="other")
    client = app.test_client()
    answer = client.post(
        "/oauth/token", data={**TOKEN_FORM, "client_id": other.client_id}, headers=basic(*one)
    )
    assert_oauth_error(answer, 400, "invalid_request")
    same = client.post(
        "/oauth/token", data={**TOKEN_FORM, "client_id": one.client_id}, headers=basic(*one)
    )
    assert same.status_code == 200


@pytest.mark.parametrize("separator", ["\t", "\u00a0", ","])
def test_scopes_are_separated_by_spaces_only(app, separator):
    response = ask_token(
        app.test_client(), create_client(app), scope=f"notes:read{separator}profile:read"
    )
    assert_oauth_error(response, 400, "invalid_scope")


def test_the_metadata_puts_the_mount_point_on_the_issuer_s_host_once(make_app):
    app = make_app(JWT_ISSUER="HTTPS://auth.example.org/base?x=1")
    answer = app.test_client().get(
        "/.well-known/oauth-authorization-server", base_url="http://localhost/base"
    )
    assert answer.json["token_endpoint"] == "https://auth.example.org/base/oauth/token"
    assert answer.json["introspection_endpoint"] == "https://auth.example.org/base/oauth/introspect"


def test_ipv4_loopback_seen_on_a_dual_stack_socket_is_loopback(app):
    answer = token_over_plain_http(app, "::ffff:127.0.0.1")
    assert answer.status_code == 200, answer.json
