"""End to end through deploy/: nginx terminating TLS (a CA made at test time) in
front of two gunicorn instances sharing PostgreSQL and Redis, started by
deploy/local.py exactly as `make deploy-local` starts it."""

import os
import time
import uuid

import pytest
import requests

from deploy.local import Deployment, find_nginx
from tests.helpers import PASSWORD

TIMEOUT = 10


def require_nginx():
    """As tests.helpers.require_service: skipped without nginx, failed in CI."""
    if find_nginx():
        return
    if os.environ.get("CI"):
        pytest.fail("nginx is not installed (make test installs nginx-light)")
    pytest.skip("nginx is not installed (apt-get install nginx-light)")


@pytest.fixture
def deployment(postgres_url, redis_settings):
    require_nginx()
    with Deployment(
        postgres_url,
        redis_settings["REDIS_URL"],
        redis_settings["REDIS_KEY_PREFIX"],
    ) as d:
        d.session = requests.Session()
        d.session.verify = str(d.ca_file)
        yield d
        # Shown when the test failed (pytest keeps a passing test's output quiet).
        for process in d.processes():
            print(f"--- {process.name}\n{process.output()[-3000:]}")
        print(f"--- nginx access log\n{d.access_log.read_text()[-3000:]}")
    assert not any(p.running() for p in d.processes())


def call(d, method, path, session=None, **kwargs):
    """A request through nginx, verified against the test's CA."""
    client = session or requests
    kwargs.setdefault("verify", str(d.ca_file))
    return client.request(method, f"{d.url}{path}", timeout=TIMEOUT, **kwargs)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def register(d, username):
    body = {"username": username, "password": PASSWORD}
    response = call(d, "POST", "/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    return body


def new_request_id():
    return f"deploy-test-{uuid.uuid4().hex}"


def served_by(d, request_id, timeout=5):
    """The instances whose access log has `request_id` (gunicorn writes the
    line just after the response has gone out)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [i for i in d.instances if i.access_records(request_id=request_id)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def nginx_logged(d, request_id, timeout=5):
    """nginx's access records of `request_id` (written as the request ends)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in d.nginx_access_records() if r["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def raw_tls_request(d, head):
    """`head` (request line and headers) as sent, over TLS, and nginx's answer."""
    import socket
    import ssl

    context = ssl.create_default_context(cafile=str(d.ca_file))
    raw = socket.create_connection(("127.0.0.1", d.https_port), timeout=TIMEOUT)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.sendall(f"{head}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return answer.decode("latin-1")


def assert_json_error(response, status, error):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == error, response.text
    assert response.json()["message"]
    assert "<html" not in response.text.lower()
    assert response.text.endswith("}\n"), repr(response.text)  # as the app's bodies end


def test_bearer_flow_through_nginx_on_both_instances(deployment):
    d = deployment
    credentials = register(d, "bob")
    pair = call(d, "POST", "/api/auth/login", json=credentials).json()
    assert call(d, "GET", "/api/me", headers=bearer(pair["access_token"])).json()["username"] == (
        "bob"
    )

    # A new connection each time: nginx sends them round the two instances,
    # and a token one instance issued verifies on the other (one shared secret).
    ids = [new_request_id() for _ in range(8)]
    for request_id in ids:
        headers = {**bearer(pair["access_token"]), "X-Request-ID": request_id}
        assert call(d, "GET", "/api/me", headers=headers).status_code == 200
    hits = {i.name for request_id in ids for i in served_by(d, request_id)}
    assert hits == {"gunicorn-1", "gunicorn-2"}

    refreshed = call(d, "POST", "/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert refreshed.status_code == 200, refreshed.text
    access = refreshed.json()["access_token"]
    assert call(d, "GET", "/api/me", headers=bearer(access)).status_code == 200

    logout_id = new_request_id()
    logout = call(
        d, "POST", "/api/auth/logout", headers={**bearer(access), "X-Request-ID": logout_id}
    )
    assert logout.status_code == 204
    assert_json_error(call(d, "GET", "/api/me", headers=bearer(access)), 401, "token_revoked")

    # Revoked through one instance, refused by the other at once (shared Redis):
    # asked directly on each one's private address.
    [logged_out_on] = served_by(d, logout_id)
    other = next(i for i in d.instances if i is not logged_out_on)
    for instance in (other, logged_out_on):
        direct = requests.get(f"{instance.url}/api/me", headers=bearer(access), timeout=TIMEOUT)
        assert_json_error(direct, 401, "token_revoked")


def test_cookie_flow_over_tls_with_secure_cookies(deployment):
    d = deployment
    credentials = register(d, "carol")
    browser = d.session
    login = call(d, "POST", "/api/auth/cookie/login", session=browser, json=credentials)
    assert login.status_code == 200, login.text
    assert "access_token" not in login.json()
    set_cookies = login.raw.headers.getlist("Set-Cookie")
    by_name = {line.split("=", 1)[0]: line for line in set_cookies}
    assert set(by_name) == {
        "access_token_cookie",
        "refresh_token_cookie",
        "csrf_access_token",
        "csrf_refresh_token",
    }
    for name, line in by_name.items():
        attributes = {a.strip().split("=")[0].lower() for a in line.split(";")[1:]}
        assert "secure" in attributes, line
        assert ("httponly" in attributes) == name.endswith("_cookie"), line
        path = "/api/auth" if "refresh" in name else "/"
        assert f"Path={path}" in line, line

    assert call(d, "GET", "/api/me", session=browser).json()["username"] == "carol"
    refused = call(d, "POST", "/api/auth/refresh", session=browser)
    assert_json_error(refused, 403, "csrf_failed")
    csrf = {"X-CSRF-TOKEN": browser.cookies.get("csrf_refresh_token", path="/api/auth")}
    refreshed = call(d, "POST", "/api/auth/refresh", session=browser, headers=csrf)
    assert refreshed.status_code == 200, refreshed.text
    assert "access_token" not in refreshed.json()
    assert call(d, "GET", "/api/me", session=browser).status_code == 200

    csrf = {"X-CSRF-TOKEN": browser.cookies.get("csrf_access_token", path="/")}
    old_access = browser.cookies.get("access_token_cookie")
    assert call(d, "POST", "/api/auth/logout", session=browser, headers=csrf).status_code == 204
    assert "access_token_cookie" not in browser.cookies
    gone = call(d, "GET", "/api/me", cookies={"access_token_cookie": old_access})
    assert_json_error(gone, 401, "token_revoked")


def test_client_address_and_request_id_cross_the_proxy(deployment):
    d = deployment
    credentials = register(d, "dave")
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    pair = call(d, "POST", "/api/auth/login", json=credentials, headers=spoofed).json()

    request_id = new_request_id()
    headers = {**bearer(pair["access_token"]), **spoofed, "X-Request-ID": request_id}
    sessions = call(d, "GET", "/api/auth/sessions", headers=headers)
    assert sessions.status_code == 200, sessions.text
    [session] = sessions.json()
    assert session["ip"] == "127.0.0.1"
    assert sessions.headers["X-Request-ID"] == request_id
    [instance] = served_by(d, request_id)
    [record] = instance.access_records(path="/api/auth/sessions", request_id=request_id)
    assert record["remote_addr"] == "127.0.0.1"
    assert record["status"] == 200
    [logged] = nginx_logged(d, request_id)
    assert logged["path"] == "/api/auth/sessions"

    # An id that is not a plain token: nginx puts its own, the app keeps it,
    # and nginx's log, gunicorn's log and the response agree.
    odd = call(d, "GET", "/api/health/live", headers={"X-Request-ID": "no spaces <here>"})
    echoed = odd.headers["X-Request-ID"]
    assert echoed != "no spaces <here>" and len(echoed) == 32
    assert served_by(d, echoed)
    assert nginx_logged(d, echoed)


def test_nginx_answers_its_own_errors_as_json(deployment):
    d = deployment
    for path in ("/metrics", "/metrics/", "/%6Detrics", "//metrics"):
        refused = call(d, "GET", path)
        assert_json_error(refused, 404, "not_found")
        assert refused.headers["Server"] == "nginx"  # server_tokens off: no version
        assert refused.headers["Strict-Transport-Security"] == "max-age=63072000"
    # A transfer coding nginx does not know: refused before any instance sees it.
    answer = raw_tls_request(d, "POST /api/auth/login HTTP/1.1\r\nTransfer-Encoding: gzip")
    assert answer.startswith("HTTP/1.1 501 "), answer
    assert "Content-Type: application/json" in answer, answer
    assert '"error": "not_implemented"' in answer and "<html" not in answer.lower()
    assert answer.endswith("}\n"), repr(answer)
    # The instances do serve it, on their private addresses.
    assert requests.get(f"{d.instances[0].url}/metrics", timeout=TIMEOUT).status_code == 200

    login = {"Content-Type": "application/json"}
    body = b'{"username": "nobody", "password": "whatever1"}'
    at_limit = body + b" " * (64 * 1024 - len(body))
    assert_json_error(call(d, "POST", "/api/auth/login", data=at_limit, headers=login), 401,
                      "invalid_credentials")  # fmt: skip
    too_big = at_limit + b" "
    assert_json_error(call(d, "POST", "/api/auth/login", data=too_big, headers=login), 413,
                      "payload_too_large")  # fmt: skip
    chunks = iter([too_big[i : i + 8192] for i in range(0, len(too_big), 8192)])
    chunked = call(d, "POST", "/api/auth/login", data=chunks, headers=login)
    assert_json_error(chunked, 413, "payload_too_large")

    # Plain http serves nothing: neither on the TLS port nor on the http one.
    plain_to_tls = requests.get(f"http://127.0.0.1:{d.https_port}/api/health", timeout=TIMEOUT)
    assert_json_error(plain_to_tls, 400, "bad_request")
    for method, path in (("GET", "/api/health"), ("POST", "/api/auth/login"), ("GET", "/")):
        plain = requests.request(method, f"{d.http_url}{path}", json={}, timeout=TIMEOUT,
                                 allow_redirects=False)  # fmt: skip
        assert_json_error(plain, 400, "bad_request")
        assert "Set-Cookie" not in plain.headers
    assert not any(i.access_records(path="/api/health") for i in d.instances)

    assert call(d, "GET", "/api/health").json()["status"] == "ok"
    d.stop_instances()
    for method, path in (("GET", "/api/me"), ("POST", "/api/auth/login")):
        down = call(d, method, path, json={})
        assert_json_error(down, 503, "service_unavailable")
        assert down.headers["X-Request-ID"]
