"""Every error from every layer is the contract's JSON envelope, never HTML."""

import pytest

from tests.helpers import PASSWORD, assert_error, bearer


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "error"),
    [
        ("get", "/no/such/route", {}, 404, "not_found"),
        ("get", "/api/auth/login", {}, 405, "method_not_allowed"),
        ("delete", "/api/me", {}, 405, "method_not_allowed"),
        ("post", "/api/auth/login", {"data": "{not json", "content_type": "application/json"},
         400, "bad_request"),
        ("post", "/api/auth/login", {"data": b"\xff\xfe", "content_type": "application/json"},
         400, "bad_request"),
        ("post", "/api/auth/login", {"data": "[" * 5000, "content_type": "application/json"},
         400, "bad_request"),
        ("post", "/api/auth/login",
         {"data": '{"username": "a\\ud800", "password": "p"}', "content_type": "application/json"},
         400, "bad_request"),
        ("post", "/api/auth/login",
         {"data": '{"username": "a\\u0000", "password": "p"}', "content_type": "application/json"},
         422, "validation_error"),
        ("post", "/api/auth/login",
         {"data": '{"username": ' + "9" * 5000 + "}", "content_type": "application/json"},
         400, "bad_request"),
        ("post", "/api/auth/login", {}, 415, "unsupported_media_type"),
        ("post", "/nowhere", {"data": "x", "content_type": "text/plain"}, 404, "not_found"),
        ("delete", "/api/me", {"data": "x", "content_type": "text/plain"},
         405, "method_not_allowed"),
        ("post", "/api/auth/login", {"data": "x", "content_type": "text/plain"},
         415, "unsupported_media_type"),
        ("post", "/api/auth/refresh", {"data": "x=1", "content_type": "text/plain"},
         415, "unsupported_media_type"),
        ("post", "/api/auth/login", {"data": "null", "content_type": "application/json"},
         422, "validation_error"),
        ("post", "/api/auth/login", {"json": []}, 422, "validation_error"),
        ("post", "/api/auth/login", {"json": "bob"}, 422, "validation_error"),
        ("post", "/api/auth/login", {"data": "", "content_type": "application/json"},
         422, "validation_error"),
        ("post", "/api/auth/register", {"json": {"username": "b" * 70_000}},
         413, "payload_too_large"),
    ],
)  # fmt: skip
def test_error_envelope(client, method, path, kwargs, status, error):
    response = getattr(client, method)(path, **kwargs)
    assert_error(response, status, error)
    assert set(response.json) <= {"error", "message", "details"}
    assert b"<html" not in response.data.lower()


def test_405_keeps_allow_header(client):
    response = client.get("/api/auth/login")
    assert "POST" in response.headers["Allow"]


def test_validation_details_are_by_field(client):
    response = client.post("/api/auth/register", json={"username": "x"})
    assert response.json["details"] == {
        "username": ["3 to 64 letters, digits, '_', '.' or '-'."],
        "password": ["Missing data for required field."],
    }


def test_unexpected_exception_is_a_json_500_without_trace(make_app, caplog):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals: SELECT * FROM users")

    response = app.test_client().get("/boom")
    assert_error(response, 500, "internal_error")
    assert b"secret internals" not in response.data
    request_id = response.headers["X-Request-ID"]
    assert request_id in caplog.text
    assert "secret internals" in caplog.text  # logged server-side, not sent
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1  # once


def test_database_down_is_503(tmp_path):
    from api import create_app

    unreachable = f"sqlite:///{tmp_path}/missing/dir/app.db"
    app = create_app({"APP_CONFIG": "testing", "SQLALCHEMY_DATABASE_URI": unreachable})
    response = app.test_client().post(
        "/api/auth/login", json={"username": "bob", "password": PASSWORD}
    )
    assert_error(response, 503, "service_unavailable")


def test_no_token_text_in_error_responses(auth, client):
    pair = auth.registered_pair()
    token = pair["access_token"]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = client.get("/api/me", headers=bearer(tampered))
    assert tampered.split(".")[1] not in response.get_data(as_text=True)
    assert response.json == {"error": "invalid_token", "message": "The token is invalid."}


def chunked(client, path, body, **headers):
    """A chunked body as gunicorn hands it over: no Content-Length, input terminated."""
    import io

    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json", **headers},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_chunked_body_over_the_limit_is_413_not_truncated(auth, client):
    auth.register()
    body = b'{"username": "bob", "password": "%s"}' % PASSWORD.encode() + b" " * 100_000
    assert_error(chunked(client, "/api/auth/login", body), 413, "payload_too_large")
    small = b'{"username": "bob", "password": "%s"}' % PASSWORD.encode()
    assert chunked(client, "/api/auth/login", small).status_code == 200


def test_malformed_json_never_reaches_a_view_without_a_body_schema(auth, client):
    auth.register()
    session = auth.cookie_login()
    headers = {"X-CSRF-TOKEN": session["csrf_refresh_token"]}
    response = client.post(
        "/api/auth/refresh", data="{bad", content_type="application/json", headers=headers
    )
    assert_error(response, 400, "bad_request")
    response = client.post("/api/auth/refresh", json={"any": "json"}, headers=headers)
    assert response.status_code == 200  # a JSON body it does not need is let be


def test_statuses_outside_the_contract_table_get_their_reason_as_code(make_app):
    from werkzeug.exceptions import ImATeapot

    app = make_app()

    @app.get("/teapot")
    def teapot():
        raise ImATeapot()

    response = app.test_client().get("/teapot")
    assert_error(response, 418, "i_m_a_teapot")


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    "path", ["/api//notes//1", "/api//auth/login", "//api//health", "/.well-known//jwks.json"]
)
def test_paths_werkzeug_would_redirect_are_a_json_404(client, method, path):
    """Not werkzeug's HTML 308 to a URL built from the client's Host header,
    which sent a POST, body and all, on to another host."""
    response = getattr(client, method)(path, json={}, headers={"Host": "evil.example"})
    assert_error(response, 404, "not_found")
    assert "Location" not in response.headers


def test_every_routing_redirect_is_a_json_404(make_app):
    """Werkzeug's other redirect too: to a rule's trailing slash."""
    app = make_app()

    @app.get("/slashed/")
    def slashed():
        return {}

    client = app.test_client()
    assert client.get("/slashed/").status_code == 200
    for method in ("get", "post", "options"):
        response = getattr(client, method)("/slashed", headers={"Host": "evil.example"})
        assert_error(response, 404, "not_found")
        assert "Location" not in response.headers
