"""End to end under gunicorn: an ES256 key from ssh-keygen, a second service
verifying tokens from the JWKS URL alone, and a key rotation while serving."""

import json
import subprocess
import sys

import jwt
import pytest
import requests

from deploy.processes import ROOT, Gunicorn, server_env
from tests.e2e.cli_support import create_client, flask
from tests.helpers import PASSWORD


@pytest.fixture
def es256_server(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    subprocess.run(
        ["ssh-keygen", "-t", "ecdsa", "-f", str(keys / "jwt_key"), "-N", "", "-q"], check=True
    )
    env = server_env(tmp_path, JWT_ALGORITHM="ES256", JWT_KEY_DIR=str(keys), WEB_CONCURRENCY="3")
    del env["JWT_SECRET_KEY"]
    server = Gunicorn(env, tmp_path / "gunicorn.log").start()
    yield server
    server.stop()


@pytest.fixture
def hs256_server(tmp_path):
    server = Gunicorn(server_env(tmp_path), tmp_path / "gunicorn.log").start()  # the default
    yield server
    server.stop()


def login(server, username):
    requests.post(
        f"{server.url}/api/auth/register",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    ).raise_for_status()
    response = requests.post(
        f"{server.url}/api/auth/login",
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["access_token"]


def run_verifier(server, token):
    """The example verifier, in a process of its own, with the URL alone."""
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / "verify_with_jwks.py"), server.url, token],
        capture_output=True,
        text=True,
        timeout=30,
    )


def verify_elsewhere(server, token):
    result = run_verifier(server, token)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_rotation_while_serving_keeps_old_and_new_tokens_valid(es256_server):
    server = es256_server
    before = login(server, "alice")
    assert verify_elsewhere(server, before)["type"] == "access"

    rotated = flask(server, "keys", "rotate")
    after = login(server, "bob")
    old_kid, new_kid = (jwt.get_unverified_header(t)["kid"] for t in (before, after))
    assert new_kid != old_kid
    assert new_kid in rotated

    jwks = requests.get(f"{server.url}/.well-known/jwks.json", timeout=10).json()
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    for token, username in ((before, "alice"), (after, "bob")):
        assert verify_elsewhere(server, token)["sub"]
        for _ in range(12):  # new connections: every worker
            me = requests.get(
                f"{server.url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
            )
            assert me.status_code == 200
            assert me.json()["username"] == username


def test_the_verifier_refuses_a_tampered_token(es256_server):
    token = login(es256_server, "carol")
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    result = run_verifier(es256_server, tampered)
    assert result.returncode != 0
    assert result.stderr.startswith("invalid:")


def test_the_verifier_explains_an_empty_jwk_set_under_hs256(hs256_server):
    assert requests.get(f"{hs256_server.url}/.well-known/jwks.json", timeout=10).json() == {
        "keys": []
    }
    result = run_verifier(hs256_server, login(hs256_server, "dan"))
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("no keys:")
    assert "HMAC secret" in result.stderr and "asymmetric JWT_ALGORITHM" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_verifier_says_which_python_runs_it():
    # -S: no site-packages, as a system Python without PyJWT.
    script = str(ROOT / "examples" / "verify_with_jwks.py")
    result = subprocess.run(
        [sys.executable, "-S", script, "http://127.0.0.1:9", "token"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert ".venv/bin/python" in result.stderr and "Traceback" not in result.stderr


def test_the_verifier_tells_a_client_s_token_from_a_user_s(es256_server):
    client_id, secret = create_client(es256_server, "svc", scopes="notes:read")
    token = requests.post(
        f"{es256_server.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=10,
    ).json()["access_token"]
    refused = run_verifier(es256_server, token)
    assert refused.returncode != 0
    assert refused.stderr.strip() == "invalid: a client's token, which speaks for no user"
    taken = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "verify_with_jwks.py"),
            es256_server.url,
            token,
            "--clients",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert taken.returncode == 0, taken.stderr
    claims = json.loads(taken.stdout)
    assert claims["client_id"] == claims["sub"] == client_id and claims["scope"] == "notes:read"
