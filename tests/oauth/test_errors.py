"""Every error under /oauth/* in RFC 6749 §5.2's shape, whichever layer
answers it (routing, the body check, the size limit, the database, an
unexpected exception); elsewhere the contract's envelope as before."""

import pytest

from api import create_app
from tests.helpers import assert_error
from tests.oauth.support import assert_oauth_error, basic, create_client


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("post", "/oauth/nowhere", 404, "not_found"),
        ("get", "/oauth/token", 405, "method_not_allowed"),
        ("put", "/oauth/introspect", 405, "method_not_allowed"),
    ],
)
def test_routing_errors(client, method, path, status, error):
    assert_oauth_error(getattr(client, method)(path), status, error)


def test_a_body_over_the_limit_is_413(client):
    form = {"grant_type": "client_credentials", "scope": "x" * (64 * 1024)}
    assert_oauth_error(client.post("/oauth/token", data=form), 413, "payload_too_large")


def test_a_broken_form_is_still_an_oauth_error(client):
    response = client.post(
        "/oauth/token",
        data=b"\xff\xfe=%%%&grant_type",
        content_type="application/x-www-form-urlencoded",
    )
    assert_oauth_error(response, 400, "invalid_request")


def test_an_unexpected_exception_is_a_500_in_the_shape(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.post("/oauth/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().post("/oauth/boom")
    assert_oauth_error(response, 500, "internal_error")
    assert b"secret internals" not in response.data


def test_the_database_down_is_a_503_in_the_shape(make_app, tmp_path):
    app = make_app()
    service = create_client(app)
    unreachable = f"sqlite:///{tmp_path}/missing/dir/app.db"
    down = create_app({"APP_CONFIG": "testing", "SQLALCHEMY_DATABASE_URI": unreachable})
    response = down.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(*service)
    )
    assert_oauth_error(response, 503, "service_unavailable")


def test_errors_elsewhere_keep_the_envelope(client):
    response = client.get("/api/nowhere")
    assert_error(response, 404, "not_found")
    assert "error_description" not in response.json
