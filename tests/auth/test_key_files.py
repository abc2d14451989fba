"""Signing keys: HS256 secrets, RS256 pairs in PEM or OpenSSH format, checks at start."""

import subprocess

import pytest

from api import create_app
from api.auth.key_files import KeyConfigError, generate_rsa_files
from tests.helpers import PASSWORD, assert_error, bearer, header_of


def ssh_keygen(path, *args, passphrase=""):
    """A key pair at `path` (and `path`.pub) as the tutorial makes one."""
    command = ["ssh-keygen", *args, "-f", str(path), "-N", passphrase, "-q"]
    subprocess.run(command, check=True)  # noqa: S603 - a fixed tool, our arguments


def login_and_call_me(app):
    client = app.test_client()
    client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    pair = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD}).json
    response = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert response.status_code == 200
    return pair


@pytest.fixture(scope="module")
def ssh_keygen_pair(tmp_path_factory):
    """A pair made exactly as the tutorial says: OpenSSH private key, ssh-rsa public key."""
    folder = tmp_path_factory.mktemp("ssh")
    key = folder / "jwt_key"
    ssh_keygen(key, "-t", "rsa", "-b", "3072")
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert (folder / "jwt_key.pub").read_text().startswith("ssh-rsa ")
    return key, folder / "jwt_key.pub"


def rs256(make_app, private_file, public_file=None):
    return make_app(
        JWT_ALGORITHM="RS256",
        JWT_PRIVATE_KEY_FILE=str(private_file),
        JWT_PUBLIC_KEY_FILE=str(public_file) if public_file else None,
    )


def test_rs256_with_ssh_keygen_pair(make_app, ssh_keygen_pair):
    pair = login_and_call_me(rs256(make_app, *ssh_keygen_pair))
    header = header_of(pair["access_token"])
    assert {k: header[k] for k in ("alg", "typ")} == {"alg": "RS256", "typ": "at+jwt"}
    assert len(header["kid"]) == 43  # a base64url SHA-256 thumbprint


def test_rs256_with_pem_pair(make_app, rsa_key_files):
    login_and_call_me(rs256(make_app, *rsa_key_files))


def test_rs256_public_key_derived_from_private(make_app, rsa_key_files):
    login_and_call_me(rs256(make_app, rsa_key_files[0]))


def test_rs256_token_verifies_with_public_key_alone(make_app, ssh_keygen_pair):
    import jwt as pyjwt
    from cryptography.hazmat.primitives import serialization

    pair = login_and_call_me(rs256(make_app, *ssh_keygen_pair))
    public_key = serialization.load_ssh_public_key(ssh_keygen_pair[1].read_bytes())
    claims = pyjwt.decode(
        pair["access_token"], public_key, algorithms=["RS256"], audience="flask-jwt-api"
    )
    assert claims["type"] == "access"


def test_token_from_another_rsa_key_is_refused(make_app, rsa_key_files, ssh_keygen_pair):
    other = login_and_call_me(rs256(make_app, *ssh_keygen_pair))
    app = rs256(make_app, *rsa_key_files)
    app.test_client().post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    response = app.test_client().get("/api/me", headers=bearer(other["access_token"]))
    assert_error(response, 401, "invalid_token")


def test_hs256_token_refused_by_rs256_app(make_app, rsa_key_files):
    hs_pair = login_and_call_me(make_app())
    app = rs256(make_app, *rsa_key_files)
    response = app.test_client().get("/api/me", headers=bearer(hs_pair["access_token"]))
    assert_error(response, 401, "invalid_token")


def start(**overrides):
    return create_app({"APP_CONFIG": "testing", **overrides})


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"JWT_SECRET_KEY": "short"}, "shorter than 32 bytes"),
        ({"JWT_ALGORITHM": "HS512", "JWT_SECRET_KEY": "k" * 63}, "shorter than 64 bytes"),
        ({"JWT_SECRET_KEY": None, "SECRET_KEY": None}, "JWT_SECRET_KEY is not set"),
        ({"JWT_ALGORITHM": "none"}, "not supported"),
        ({"JWT_ALGORITHM": "RS256"}, "needs JWT_KEY_DIR or JWT_PRIVATE_KEY_FILE"),
        ({"JWT_ALGORITHM": "RS256", "JWT_PRIVATE_KEY_FILE": "/no/such/key"}, "cannot be read"),
    ],
)
def test_startup_refuses_bad_key_config(overrides, complaint):
    with pytest.raises(KeyConfigError, match=complaint):
        start(**overrides)


def test_secret_key_is_the_fallback_for_hs256(make_app):
    app = make_app(JWT_SECRET_KEY=None, SECRET_KEY="x" * 16 + "0123456789abcdef")
    login_and_call_me(app)


def test_mismatched_pair_is_refused(rsa_key_files, ssh_keygen_pair):
    with pytest.raises(KeyConfigError, match="does not match"):
        start(
            JWT_ALGORITHM="RS256",
            JWT_PRIVATE_KEY_FILE=str(rsa_key_files[0]),
            JWT_PUBLIC_KEY_FILE=str(ssh_keygen_pair[1]),
        )


def test_small_rsa_key_is_refused(tmp_path):
    ssh_keygen(tmp_path / "k", "-t", "rsa", "-b", "1024")
    with pytest.raises(KeyConfigError, match="1024-bit RSA key"):
        start(JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY_FILE=str(tmp_path / "k"))


def test_non_rsa_key_for_rs256_is_refused(tmp_path):
    ssh_keygen(tmp_path / "k", "-t", "ed25519")
    with pytest.raises(
        KeyConfigError, match="JWT_ALGORITHM=RS256 but the signing key is for EdDSA"
    ):
        start(JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY_FILE=str(tmp_path / "k"))


def test_passphrase_protected_key_is_refused_clearly(tmp_path):
    ssh_keygen(tmp_path / "k", "-t", "rsa", "-b", "2048", passphrase="pw")
    with pytest.raises(KeyConfigError, match="unencrypted PEM or OpenSSH"):
        start(JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY_FILE=str(tmp_path / "k"))


def test_garbage_public_key_is_refused(tmp_path, rsa_key_files):
    (tmp_path / "pub").write_text("not a key")
    with pytest.raises(KeyConfigError, match="JWT_PUBLIC_KEY_FILE is not"):
        start(
            JWT_ALGORITHM="RS256",
            JWT_PRIVATE_KEY_FILE=str(rsa_key_files[0]),
            JWT_PUBLIC_KEY_FILE=str(tmp_path / "pub"),
        )


RACE = """
import sys, time
from api.auth.key_files import ensure_dev_material, generate_rsa_files
start = float(sys.argv[2])
time.sleep(max(0, start - time.time()))
folder = ensure_dev_material(sys.argv[1], "rsa", lambda: generate_rsa_files(2048))
print(open(folder + "/jwt_key.pub").read())
"""


def test_development_key_is_generated_once_and_shared(tmp_path):
    """Processes racing at start (gunicorn workers) all end up with the same key."""
    import sys
    import time

    go = str(time.time() + 1.0)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path), go], stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    outputs = [racer.communicate(timeout=60)[0] for racer in racers]
    assert all(racer.returncode == 0 for racer in racers)
    assert len(set(outputs)) == 1
    assert outputs[0].startswith("-----BEGIN PUBLIC KEY-----")
    # The losers' scratch folders are gone; only the winner is left.
    assert [p.name for p in (tmp_path / "dev-keys").iterdir()] == ["rsa"]


@pytest.mark.parametrize(
    ("algorithm", "files"),
    [("HS256", {"secret"}), ("RS256", {"jwt_key"}), ("ES256", {"jwt_key"}), ("EdDSA", {"jwt_key"})],
)
def test_development_config_makes_a_key_in_the_instance_folder(
    tmp_path, monkeypatch, algorithm, files
):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    overrides = {
        "APP_CONFIG": "development",
        "JWT_ALGORITHM": algorithm,
        "JWT_SECRET_KEY": None,
        "SECRET_KEY": None,
        "JWT_PRIVATE_KEY_FILE": None,
        "JWT_PUBLIC_KEY_FILE": None,
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
    }
    key = create_app(overrides).extensions["keyring"].signer()
    again = create_app(overrides).extensions["keyring"].signer()
    kind = "hmac" if algorithm == "HS256" else algorithm.lower()
    assert {p.name for p in (tmp_path / "dev-keys" / kind).iterdir()} == files
    assert key.algorithm == algorithm
    if algorithm == "HS256":
        assert key.signing_key == again.signing_key and len(key.signing_key) >= 32
    else:
        assert key.kid == again.kid


def test_testing_and_production_never_generate_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    with pytest.raises(KeyConfigError):
        start(JWT_SECRET_KEY=None, SECRET_KEY=None)
    assert not (tmp_path / "dev-keys").exists()


def test_generated_key_files_are_private(tmp_path):
    from api.auth.key_files import write_private_files

    write_private_files(tmp_path, generate_rsa_files(2048))
    assert (tmp_path / "jwt_key").stat().st_mode & 0o777 == 0o600


def test_cli_generates_a_working_pair(make_app, app, tmp_path):
    out = tmp_path / "keys" / "jwt_key"
    result = app.test_cli_runner().invoke(args=["keys", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "JWT_PRIVATE_KEY_FILE=" in result.output
    assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    login_and_call_me(rs256(make_app, out, f"{out}.pub"))
    again = app.test_cli_runner().invoke(args=["keys", "generate", "--out", str(out)])
    assert again.exit_code != 0
    assert "refusing to overwrite" in again.output


def test_cli_refuses_small_keys(app, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["keys", "generate", "--out", str(tmp_path / "k"), "--bits", "1024"]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "k").exists()
