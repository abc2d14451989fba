"""examples/resource_server.py, run as its README says, against the real API
under gunicorn (ES256, a key from ssh-keygen): a client made with
`flask clients create`, a user's token accepted, and refused at once after a
logout though its signature still verifies against the JWKS."""

import os
import subprocess
import sys

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from deploy.processes import ROOT, Gunicorn, Process, free_port, server_env, wait_for_port
from tests.e2e.cli_support import create_client
from tests.helpers import PASSWORD

EXAMPLE = ROOT / "examples" / "resource_server.py"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("resource-server")
    keys = root / "keys"
    keys.mkdir()
    subprocess.run(
        ["ssh-keygen", "-t", "ecdsa", "-f", str(keys / "jwt_key"), "-N", "", "-q"], check=True
    )
    env = server_env(root, JWT_ALGORITHM="ES256", JWT_KEY_DIR=str(keys), RATELIMIT_ENABLED="false")
    del env["JWT_SECRET_KEY"]
    server = Gunicorn(env, root / "gunicorn.log").start()
    server.root = root
    server.private_key = keys / "jwt_key"
    yield server
    server.stop()


def start_example(api, client_id, client_secret, name):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "CLIENT_"))}
    env.update(API_URL=api.url, CLIENT_ID=client_id, CLIENT_SECRET=client_secret, PORT=str(port))
    example = Process(name, [sys.executable, str(EXAMPLE)], env, api.root / f"{name}.log")
    example.start()
    try:
        wait_for_port(port, timeout=20)
    except RuntimeError:
        example.stop()
        raise RuntimeError(example.output()) from None
    example.url = f"http://127.0.0.1:{port}"
    return example


@pytest.fixture(scope="module")
def client(api):
    return create_client(api, "notes-service")


@pytest.fixture(scope="module")
def example(api, client):
    service = start_example(api, *client, "resource-server")
    yield service
    service.stop()


def log_in(api, username):
    body = {"username": username, "password": PASSWORD}
    requests.post(f"{api.url}/api/auth/register", json=body, timeout=10).raise_for_status()
    pair = requests.post(f"{api.url}/api/auth/login", json=body, timeout=10)
    pair.raise_for_status()
    return pair.json()


def hello(example, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{example.url}/hello", headers=headers, timeout=10)


def assert_refused(answer, status, error):
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert answer.json()["message"]


def verifies_against_the_jwks(api, token):
    key = jwt.PyJWKClient(f"{api.url}/.well-known/jwks.json").get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["ES256"], audience="flask-jwt-api")


def test_a_live_token_passes_and_a_logged_out_one_is_refused_at_once(api, example):
    access = log_in(api, "alice")["access_token"]
    answer = hello(example, access)
    assert answer.status_code == 200, answer.text
    assert answer.json()["message"] == "Hello, alice."
    assert answer.json()["sub"] == verifies_against_the_jwks(api, access)["sub"]

    logout = requests.post(
        f"{api.url}/api/auth/logout", headers={"Authorization": f"Bearer {access}"}, timeout=10
    )
    assert logout.status_code == 204
    # The signature alone would still let it in; the introspection does not.
    assert verifies_against_the_jwks(api, access)["type"] == "access"
    refused = hello(example, access)
    assert_refused(refused, 401, "token_revoked")
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_session_revoked_elsewhere_is_refused_at_once(api, example):
    pair = log_in(api, "bob")
    other = requests.post(
        f"{api.url}/api/auth/login",
        json={"username": "bob", "password": PASSWORD},
        timeout=10,
    ).json()["access_token"]
    assert hello(example, pair["access_token"]).status_code == 200
    # From the other login: every session ends, this one's too.
    ended = requests.delete(
        f"{api.url}/api/auth/sessions", headers={"Authorization": f"Bearer {other}"}, timeout=10
    )
    assert ended.status_code == 204
    assert_refused(hello(example, pair["access_token"]), 401, "token_revoked")


def test_what_is_not_a_users_access_token_is_refused(api, example, client):
    missing = hello(example)
    assert_refused(missing, 401, "missing_token")
    assert missing.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'

    pair = log_in(api, "carol")
    header, payload, signature = pair["access_token"].split(".")
    assert_refused(hello(example, f"{header}.{payload}.{signature[:-4]}AAAA"), 401, "invalid_token")
    assert_refused(hello(example, pair["refresh_token"]), 401, "invalid_token")  # typ JWT
    assert_refused(hello(example, "pat_" + "A" * 36), 401, "invalid_token")  # not a JWT

    # A client's own token verifies, but speaks for no user.
    granted = requests.post(
        f"{api.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=client,
        timeout=10,
    )
    assert granted.status_code == 200, granted.text
    assert_refused(hello(example, granted.json()["access_token"]), 403, "forbidden")
    assert hello(example, pair["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"iss": "someone-else"}, "invalid_token"),
        ({"aud": "another-api"}, "invalid_token"),
        ({"exp": 1_000_000_000}, "token_expired"),
    ],
)
def test_a_token_signed_by_the_apis_key_with_wrong_claims_is_refused(api, example, change, error):
    """Signed with the API's own key (the test reads its file): only the
    claims are wrong, so only the example's iss, aud and exp checks refuse it."""
    access = log_in(api, f"eve-{next(iter(change))}")["access_token"]
    header = jwt.get_unverified_header(access)
    claims = jwt.decode(access, options={"verify_signature": False})
    key = serialization.load_ssh_private_key(api.private_key.read_bytes(), password=None)
    # Signed again as it was, it passes: the signing here is the API's own.
    same = jwt.encode(claims, key, algorithm="ES256", headers=header)
    assert hello(example, same).status_code == 200
    changed = jwt.encode(claims | change, key, algorithm="ES256", headers=header)
    assert_refused(hello(example, changed), 401, error)


def test_credentials_the_api_refuses_let_nothing_through(api, client):
    client_id, _ = client
    wrong = start_example(api, client_id, "not-the-secret", "resource-server-wrong-secret")
    try:
        access = log_in(api, "dave")["access_token"]
        assert_refused(hello(wrong, access), 503, "service_unavailable")
        assert "introspection refused: 401" in wrong.output()
        assert access not in wrong.output()  # no token in its log
    finally:
        wrong.stop()


def test_without_client_credentials_it_says_what_to_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "CLIENT_"))}
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert result.stderr.startswith("CLIENT_ID and CLIENT_SECRET not set: make a client with")
    assert "Traceback" not in result.stderr
