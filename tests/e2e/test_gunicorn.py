"""End to end: the real server under gunicorn, spoken to over HTTP."""

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from deploy.processes import ROOT, Gunicorn, server_env
from tests.helpers import PASSWORD


@pytest.fixture(scope="module", params=["development", "production"])
def server(request, tmp_path_factory):
    """development: what `make run` serves, with the key it generates itself;
    production: secrets from the environment."""
    instance = tmp_path_factory.mktemp(request.param)
    # Plain http here, so cookies must not be Secure-only for this test.
    env = server_env(instance, APP_CONFIG=request.param, JWT_COOKIE_SECURE="false")
    if request.param == "development":
        del env["SECRET_KEY"], env["JWT_SECRET_KEY"], env["ENCRYPTION_KEYS"]
    live = Gunicorn(env, instance / "gunicorn.log").start()
    yield live
    live.stop()
    if request.param == "development":
        assert (instance / "dev-keys" / "hmac" / "secret").exists()
        assert (instance / "dev-keys" / "encryption" / "key").exists()


def test_login_and_me_many_times_across_workers(server):
    url = server.url
    created = requests.post(
        f"{url}/api/auth/register", json={"username": "bob", "password": PASSWORD}, timeout=10
    )
    assert created.status_code == 201
    pair = requests.post(
        f"{url}/api/auth/login", json={"username": "bob", "password": PASSWORD}, timeout=10
    ).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    before = me_served(url)

    def call_me(_):
        # A new connection each time, so the calls spread over the workers.
        response = requests.get(f"{url}/api/me", headers=headers, timeout=10)
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(call_me, range(240)))
    assert all(status == 200 for status, _ in results)
    assert all(body["username"] == "bob" for _, body in results)
    # The token one worker issued verified on the others: keys are shared.
    served = server.wait_for_access("/api/me", 200, count=240)
    assert len(served) == 240
    assert len({r["pid"] for r in served}) >= 2, server.output()[-2000:]
    # Whichever worker answers the scrape, it counts what all of them served.
    assert me_served(url) - before == 240


def me_served(url):
    """`GET /api/me` answered 200, as /metrics counts it."""
    wanted = 'jwt_api_request_duration_seconds_count{method="GET",route="/api/me",status="200"}'
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(wanted):
            return float(line.split()[-1])
    return 0.0


def test_every_log_line_is_json_with_a_request_id(server):
    response = requests.get(
        f"{server.url}/api/health/live", headers={"X-Request-ID": "probe-1"}, timeout=10
    )
    assert response.headers["X-Request-ID"] == "probe-1"
    (record,) = server.wait_for_access("/api/health/live", 200)
    assert record["request_id"] == "probe-1"
    assert record["method"] == "GET" and record["remote_addr"] == "127.0.0.1"
    assert record["duration_ms"] >= 0 and record["bytes"] > 0
    # log_records() fails on any line that is not JSON, gunicorn's own included.
    loggers = {r["logger"] for r in server.log_records()}
    assert {"gunicorn.error", "gunicorn.access"} <= loggers


def test_cookie_flow_over_http(server):
    url = server.url
    browser = requests.Session()
    requests.post(
        f"{url}/api/auth/register", json={"username": "carol", "password": PASSWORD}, timeout=10
    )
    login = browser.post(
        f"{url}/api/auth/cookie/login",
        json={"username": "carol", "password": PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200
    assert "access_token" not in login.json()
    assert browser.get(f"{url}/api/me", timeout=10).json()["username"] == "carol"
    refused = browser.post(f"{url}/api/auth/refresh", timeout=10)
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"
    csrf = browser.cookies.get("csrf_refresh_token")
    refreshed = browser.post(f"{url}/api/auth/refresh", headers={"X-CSRF-TOKEN": csrf}, timeout=10)
    assert refreshed.status_code == 200
    assert browser.get(f"{url}/api/me", timeout=10).status_code == 200


def test_errors_over_http_are_json(server):
    response = requests.get(f"{server.url}/nowhere", timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_found"


def test_access_log_leaves_out_query_strings(server):
    # Tokens are never read from the query string, but clients do send them there.
    secret_query = "token=eyJhbGciOiJIUzI1NiJ9.e30.sig"
    requests.get(f"{server.url}/api/me?{secret_query}", timeout=10)
    assert server.wait_for_access("/api/me", 401)
    assert "eyJhbGciOiJIUzI1NiJ9" not in server.output()


@pytest.mark.parametrize(
    ("request_kwargs", "status", "error"),
    [
        ({"path": "/api/" + "x" * 9000}, 414, "uri_too_long"),
        ({"path": "/api/me", "headers": {"X-Big": "y" * 9000}}, 431,
         "request_header_fields_too_large"),
        ({"path": "/api/me", "headers": {f"X-H{i}": "v" for i in range(120)}}, 431,
         "request_header_fields_too_large"),
    ],
)  # fmt: skip
def test_errors_gunicorn_answers_itself_are_json(server, request_kwargs, status, error):
    kwargs = dict(request_kwargs)
    path = kwargs.pop("path")
    response = requests.get(f"{server.url}{path}", timeout=10, **kwargs)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == error
    assert "<html" not in response.text


def raw_request(server, payload):
    import socket

    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(payload)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode("latin-1")


@pytest.mark.parametrize("chunk", [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"])
def test_broken_chunked_body_is_a_json_400(server, chunk):
    answer = raw_request(
        server,
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunk,
    )
    assert answer.startswith("HTTP/1.1 400 ")
    assert '"error":"bad_request"' in answer.replace(" ", "")
    assert "Content-Type: application/json" in answer
    assert "internal_error" not in answer


def test_chunked_body_over_the_limit_is_413_over_http(server):
    body = b'{"username": "nobody", "password": "x"}' + b" " * 100_000
    response = requests.post(
        f"{server.url}/api/auth/login",
        data=iter([body[i : i + 8192] for i in range(0, len(body), 8192)]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_production_start_fails_with_one_line(tmp_path):
    env = server_env(tmp_path, JWT_SECRET_KEY="too-short")
    live = Gunicorn(env, tmp_path / "gunicorn.log")
    with pytest.raises(RuntimeError, match="gunicorn exited"):
        live.start(timeout=20, migrate=False)
    assert live.popen.returncode == 1
    assert "error: JWT_SECRET_KEY is shorter than 32 bytes" in live.output()
    live.stop()


def test_results_and_reasons_are_scraped_at_zero_before_they_happen(server):
    """Made in the master before the fork, they are served by every worker."""
    scraped = requests.get(f"{server.url}/metrics", timeout=10).text
    assert 'jwt_api_session_revocations_total{reason="admin"} 0.0' in scraped
    assert 'jwt_api_refreshes_total{result="reused"} 0.0' in scraped


def test_a_killed_masters_metrics_directory_is_removed_by_the_next(tmp_path):
    """A master that dies without its exit hook (SIGKILL) leaves its metrics
    directory; the next start removes those of dead masters only."""
    finished = subprocess.Popen(["true"])  # noqa: S607 - a pid known to be gone
    finished.wait()
    temp = Path(tempfile.gettempdir())
    orphan = temp / f"jwt-api-metrics-{finished.pid}-orphan"
    alive = temp / f"jwt-api-metrics-{os.getpid()}-alive"  # this test's pid: alive
    orphan.mkdir()
    alive.mkdir()
    try:
        env = server_env(tmp_path, JWT_COOKIE_SECURE="false", WEB_CONCURRENCY="1")
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        Gunicorn(env, tmp_path / "gunicorn.log").start().stop()
        assert not orphan.exists()
        assert alive.exists()
    finally:
        for folder in (orphan, alive):
            if folder.exists():
                folder.rmdir()


def test_gunicorn_s_own_error_answers_are_logged_not_dropped(tmp_path):
    """gunicorn logs the error answers it writes itself (an exception that
    escaped the app) through the access logger, with a status that is only
    text; the logger once raised there, and the client got no answer at all."""
    script = """
import runpy, sys
from datetime import timedelta
from gunicorn.config import Config
from gunicorn.http.wsgi import Response
conf = runpy.run_path("gunicorn.conf.py")
cfg = Config()
cfg.set("accesslog", "-")
log = conf["JSONLogger"](cfg)
resp = Response(None, None, cfg)
resp.status = "500 Internal Server Error"
environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/auth/login", "REMOTE_ADDR": "127.0.0.1"}
log.access(resp, None, environ, timedelta(milliseconds=3))
"""
    env = server_env(tmp_path)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)  # the conf makes no directory of its own
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    (line,) = [json.loads(out) for out in (done.stdout + done.stderr).splitlines() if out]
    assert (line["message"], line["status"], line["path"]) == ("request", 500, "/api/auth/login")
