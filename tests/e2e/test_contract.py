"""Every route in the OpenAPI document, fuzzed by schemathesis against the live
server under gunicorn: no 5xx, and every response matches its documented
schema, status and content type."""

import os
import subprocess

import pytest
import requests

from deploy.processes import BIN, Gunicorn, server_env
from tests.e2e.cli_support import flask
from tests.helpers import PASSWORD

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    instance = tmp_path_factory.mktemp("contract")
    env = server_env(
        instance,
        JWT_COOKIE_SECURE="false",
        RATELIMIT_ENABLED="false",
        JWT_ACCESS_TOKEN_EXPIRES="3600",  # one token for the whole run
    )
    server = Gunicorn(env, instance / "gunicorn.log").start()
    yield server
    server.stop()


# These end the session of the token the fuzzer holds (an admin's reset of
# its own factors ends its sessions too): they get a run of their own.
SESSION_ENDING = [
    "/api/auth/logout",
    "/api/auth/sessions",
    "/api/auth/sessions/{session_id}",
    "/api/admin/users/{user_id}/mfa",
]
REFRESH = "/api/auth/refresh"


def fuzz(live, workdir, token, *selection):
    return subprocess.run(
        [
            BIN / "schemathesis",
            "run",
            f"{live.url}/api/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--max-examples",
            "25",
            "--seed",
            "20261128",
            "--header",
            f"Authorization: Bearer {token}",
            *selection,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
        cwd=workdir,
    )


def login(live, username):
    credentials = {"username": username, "password": PASSWORD}
    return requests.post(f"{live.url}/api/auth/login", json=credentials, timeout=10).json()


def create_admin(live, username):
    """An administrator, so that the admin routes are reached, not just refused.
    Being the only one, it can neither disable nor demote itself."""
    flask(live, "users", "create", username, "--admin", "--password-stdin", stdin=PASSWORD + "\n")


def select(flag, paths):
    return [arg for path in paths for arg in (flag, path)]


def test_every_route_keeps_its_contract(live, tmp_path):
    """Three runs, each with the token its routes need: an access token for
    most, a refresh token for refresh, and a session of their own for the
    routes that end sessions."""
    create_admin(live, "fuzz")
    special = [REFRESH, *SESSION_ENDING]
    result = fuzz(
        live, tmp_path, login(live, "fuzz")["access_token"], *select("--exclude-path", special)
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Authentication failed" not in result.stdout, result.stdout[-3000:]
    # Each refresh rotates the token: after the first, the rest are refused, as they should be.
    result = fuzz(live, tmp_path, login(live, "fuzz")["refresh_token"], "--include-path", REFRESH)
    assert result.returncode == 0, result.stdout[-6000:]
    pair = login(live, "fuzz")
    result = fuzz(live, tmp_path, pair["access_token"], *select("--include-path", SESSION_ENDING))
    assert result.returncode == 0, result.stdout[-6000:]
    # Nothing sent produced a 500, seen from the server's side too.
    assert '" 500 ' not in live.output()
