"""Signing keys from a key directory (api/auth/keyring.py): every asymmetric
algorithm end to end, the keys published in the JWK Set, the attacks on key
selection, the checks at start-up, and rotation."""

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import time_machine
from cryptography.hazmat.primitives import serialization

from api import create_app
from api.auth.key_files import generate_private_key, private_pem
from api.auth.keyring import add_key
from config import ConfigError
from tests.helpers import PASSWORD, assert_error, bearer, claims_of, header_of, keyed_app

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


def login(app, username="bob"):
    client = app.test_client()
    client.post("/api/auth/register", json={"username": username, "password": PASSWORD})
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200
    return response.json


def verify_with_jwks(app, token):
    """As another service would: only the JWK Set and the token."""
    jwks = app.test_client().get("/.well-known/jwks.json").json
    key = pyjwt.PyJWKSet.from_dict(jwks)[header_of(token)["kid"]]
    return pyjwt.decode(token, key.key, algorithms=[key.algorithm_name], audience="flask-jwt-api")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_end_to_end(make_app, key_dir, algorithm):
    kid = add_key(str(key_dir), algorithm)
    app = keyed_app(make_app, algorithm, key_dir)
    pair = login(app)
    header = header_of(pair["access_token"])
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": kid}
    assert header_of(pair["refresh_token"])["kid"] == kid
    client = app.test_client()
    assert client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 200
    assert (
        verify_with_jwks(app, pair["access_token"])["sub"] == claims_of(pair["access_token"])["sub"]
    )
    refreshed = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert refreshed.status_code == 200


@pytest.mark.parametrize(
    ("keygen", "algorithm"),
    [
        (["-t", "rsa", "-b", "3072"], "RS256"),
        (["-t", "rsa", "-b", "2048"], "PS256"),
        (["-t", "ecdsa", "-b", "256"], "ES256"),
        (["-t", "ecdsa", "-b", "384"], "ES384"),
        (["-t", "ed25519"], "EdDSA"),
    ],
)
def test_ssh_keygen_keys_of_each_type(make_app, tmp_path, keygen, algorithm):
    key = tmp_path / "jwt_key"
    subprocess.run(["ssh-keygen", *keygen, "-f", str(key), "-N", "", "-q"], check=True)
    app = make_app(
        JWT_ALGORITHM=algorithm,
        JWT_PRIVATE_KEY_FILE=str(key),
        JWT_PUBLIC_KEY_FILE=f"{key}.pub",
    )
    pair = login(app)
    assert header_of(pair["access_token"])["alg"] == algorithm
    assert verify_with_jwks(app, pair["access_token"])["type"] == "access"


def test_kid_is_the_rfc7638_thumbprint(make_app, key_dir):
    kid = add_key(str(key_dir), "ES256")
    jwks = keyed_app(make_app, "ES256", key_dir).test_client().get("/.well-known/jwks.json").json
    (jwk,) = jwks["keys"]
    members = json.dumps({k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"))
    expected = base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=")
    assert jwk["kid"] == kid == expected.decode()
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}  # no private part
    assert jwk["alg"] == "ES256" and jwk["use"] == "sig"


# Attacks on key selection -------------------------------------------------


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj):
    return b64(json.dumps(obj).encode())


@pytest.fixture
def es_app(make_app, key_dir):
    add_key(str(key_dir), "ES256")
    return keyed_app(make_app, "ES256", key_dir)


@pytest.fixture
def es_pair(es_app):
    return login(es_app)


def refused(app, token):
    response = app.test_client().get("/api/me", headers=bearer(token))
    assert_error(response, 401, "invalid_token")


def test_alg_none_with_a_good_kid(es_app, es_pair):
    header = {**header_of(es_pair["access_token"]), "alg": "none"}
    refused(es_app, f"{segment(header)}.{segment(claims_of(es_pair['access_token']))}.")


def test_hs256_signed_with_the_public_key_as_secret(es_app, es_pair):
    """CVE-2022-29217's kind: the published public key used as an HMAC secret."""
    kid = header_of(es_pair["access_token"])["kid"]
    public = es_app.extensions["keyring"].find(kid).verification_key
    for encoding, fmt in (
        (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        (serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
    ):
        secret = public.public_bytes(encoding, fmt)
        signing_input = (
            f"{segment({'alg': 'HS256', 'typ': 'at+jwt', 'kid': kid})}."
            f"{segment(claims_of(es_pair['access_token']))}"
        )
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        refused(es_app, f"{signing_input}.{b64(mac)}")


@pytest.mark.parametrize("kid", [None, "unknown-kid", "", 7, ["x"]])
def test_unknown_or_missing_kid(es_app, es_pair, kid):
    header = {"alg": "ES256", "typ": "at+jwt"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{segment(header)}.{segment(claims_of(es_pair['access_token']))}"
    other = generate_private_key("ES256")
    signature = pyjwt.algorithms.ECAlgorithm(pyjwt.algorithms.ECAlgorithm.SHA256).sign(
        signing_input.encode(), other
    )
    refused(es_app, f"{signing_input}.{b64(signature)}")


def test_another_key_claiming_our_kid(es_app, es_pair):
    kid = header_of(es_pair["access_token"])["kid"]
    other = generate_private_key("ES256")
    token = pyjwt.encode(
        claims_of(es_pair["access_token"]), other, "ES256", headers={"typ": "at+jwt", "kid": kid}
    )
    refused(es_app, token)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://evil.example/jwks.json"),
        ("x5u", "https://evil.example/cert.pem"),
        ("jwk", {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
    ],
)
def test_key_location_headers_are_refused(es_app, es_pair, name, value):
    """Even when the token is otherwise signed by our own key."""
    kid = header_of(es_pair["access_token"])["kid"]
    own = es_app.extensions["keyring"].find(kid).signing_key
    headers = {"typ": "at+jwt", "kid": kid, name: value}
    refused(es_app, pyjwt.encode(claims_of(es_pair["access_token"]), own, "ES256", headers=headers))


def test_rsa_key_pinned_to_its_algorithm(make_app, key_dir):
    """A PS256 signature by the right RSA key, under an RS256 deployment."""
    add_key(str(key_dir), "RS256")
    app = keyed_app(make_app, "RS256", key_dir)
    pair = login(app)
    kid = header_of(pair["access_token"])["kid"]
    own = app.extensions["keyring"].find(kid).signing_key
    token = pyjwt.encode(
        claims_of(pair["access_token"]), own, "PS256", headers={"typ": "at+jwt", "kid": kid}
    )
    refused(app, token)


def test_kid_under_hs256_is_refused(client, auth):
    pair = auth.registered_pair()
    from tests.helpers import forge

    refused_token = forge(claims_of(pair["access_token"]), headers={"typ": "at+jwt", "kid": "x"})
    assert_error(client.get("/api/me", headers=bearer(refused_token)), 401, "invalid_token")


# Checks at start-up ----------------------------------------------------------


def test_curve_must_fit_the_algorithm(make_app, key_dir):
    add_key(str(key_dir), "ES256")
    with pytest.raises(ConfigError, match="JWT_ALGORITHM=ES384 but the signing key is for ES256"):
        keyed_app(make_app, "ES384", key_dir)


def test_unsupported_curve_is_refused(make_app, tmp_path):
    subprocess.run(
        ["ssh-keygen", "-t", "ecdsa", "-b", "521", "-f", str(tmp_path / "k"), "-N", "", "-q"],
        check=True,
    )
    with pytest.raises(ConfigError, match="EC key on secp521r1"):
        make_app(JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY_FILE=str(tmp_path / "k"))


def test_empty_key_dir_is_refused_with_a_way_out(make_app, key_dir, tmp_path):
    hint = r"make the first key with `python -m api.auth.first_key DIR --algorithm ALG`"
    with pytest.raises(ConfigError, match=f"holds no key: {hint}"):
        keyed_app(make_app, "ES256", key_dir)
    with pytest.raises(ConfigError, match=f"cannot be read: No such file or directory; {hint}"):
        keyed_app(make_app, "ES256", tmp_path / "missing")


def test_the_first_key_is_made_without_the_app(make_app, tmp_path):
    """`flask keys rotate` needs an app, and the app needs a key: the way out
    the error names works, and what it makes the app uses."""
    folder = tmp_path / "keys"
    made = subprocess.run(
        [sys.executable, "-m", "api.auth.first_key", str(folder), "--algorithm", "ES256"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert made.stderr == ""  # no warning: the package does not import the command first
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    (pem,) = folder.iterdir()
    assert oct(pem.stat().st_mode & 0o777) == "0o600"
    kid = made.stdout.split("signing key ")[1].split()[0]
    assert header_of(login(keyed_app(make_app, "ES256", folder))["access_token"])["kid"] == kid


def test_development_makes_the_first_key_of_an_empty_key_dir(make_app, tmp_path):
    folder = tmp_path / "dev-keys-dir"
    app = make_app(JWT_ALGORITHM="ES256", JWT_KEY_DIR=str(folder), JWT_GENERATE_DEV_KEY=True)
    token = login(app)["access_token"]
    (pem,) = folder.iterdir()
    assert header_of(token)["kid"] in pem.name
    again = make_app(JWT_ALGORITHM="ES256", JWT_KEY_DIR=str(folder), JWT_GENERATE_DEV_KEY=True)
    assert len(list(folder.iterdir())) == 1  # made once, then used
    assert again.extensions["keyring"].signer().kid == header_of(token)["kid"]


def test_mismatched_public_key_in_key_dir_is_refused(make_app, key_dir):
    add_key(str(key_dir), "ES256")
    (pem,) = [p for p in key_dir.iterdir()]
    other = generate_private_key("ES256").public_key()
    (key_dir / f"{pem.name}.pub").write_bytes(
        other.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    with pytest.raises(ConfigError, match="does not match"):
        keyed_app(make_app, "ES256", key_dir)


# Rotation ----------------------------------------------------------------


def test_rotation_keeps_old_tokens_and_signs_new_ones_with_the_new_kid(make_app, key_dir):
    old_kid = add_key(str(key_dir), "ES256")
    app = keyed_app(make_app, "ES256", key_dir)
    before = login(app, "alice")
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0, result.output
    after = login(app, "bob")
    new_kid = header_of(after["access_token"])["kid"]
    assert new_kid != old_kid and new_kid in result.output
    client = app.test_client()
    for pair in (before, after):
        assert client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 200
        verify_with_jwks(app, pair["access_token"])
    kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json["keys"]}
    assert kids == {old_kid, new_kid}
    # A restarted instance agrees, and the old session can still refresh.
    restarted = keyed_app(make_app, "ES256", key_dir)
    assert restarted.extensions["keyring"].signer().kid == new_kid
    listing = app.test_cli_runner().invoke(args=["keys", "list"]).output
    assert f"{new_kid}  ES256" in listing and "signing" in listing and "verifying" in listing
    refreshed = client.post("/api/auth/refresh", headers=bearer(before["refresh_token"]))
    assert header_of(refreshed.json["access_token"])["kid"] == new_kid


def test_key_added_by_another_process_is_known_before_its_first_token(make_app, key_dir, tmp_path):
    add_key(str(key_dir), "ES256")
    shared = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/shared.db"}
    first = make_app(JWT_ALGORITHM="ES256", JWT_KEY_DIR=str(key_dir), **shared)
    second = make_app(JWT_ALGORITHM="ES256", JWT_KEY_DIR=str(key_dir), **shared)
    login(first, "alice")  # both rings loaded and in use
    new_kid = add_key(str(key_dir), "ES256")  # as `flask keys rotate` in another process
    token = login(second, "bob")["access_token"]
    assert header_of(token)["kid"] == new_kid
    response = first.test_client().get("/api/me", headers=bearer(token))
    assert response.status_code == 200


def test_old_keys_retire_once_their_tokens_have_expired(make_app, key_dir):
    old_kid = add_key(str(key_dir), "ES256")
    app = keyed_app(make_app, "ES256", key_dir)
    old = login(app, "alice")
    new_kid = add_key(str(key_dir), "ES256")
    client = app.test_client()
    later = datetime.now(UTC) + timedelta(days=14, minutes=2)
    with time_machine.travel(later, tick=False):
        kids = {k["kid"] for k in client.get("/.well-known/jwks.json").json["keys"]}
        assert kids == {new_kid}
        assert "retired" in app.test_cli_runner().invoke(args=["keys", "list"]).output
        pruned = app.test_cli_runner().invoke(args=["keys", "prune"]).output
    assert "Pruned 1 retired keys" in pruned
    assert len([p for p in key_dir.iterdir()]) == 1
    assert old_kid != new_kid and header_of(old["access_token"])["kid"] == old_kid


def test_rotation_before_retirement_keeps_both(make_app, key_dir):
    add_key(str(key_dir), "ES256")
    app = keyed_app(make_app, "ES256", key_dir)
    add_key(str(key_dir), "ES256")
    with time_machine.travel(datetime.now(UTC) + timedelta(days=13), tick=False):
        assert len(app.test_client().get("/.well-known/jwks.json").json["keys"]) == 2
        assert (
            "Pruned 0 retired keys" in app.test_cli_runner().invoke(args=["keys", "prune"]).output
        )


def test_rotate_needs_a_key_directory(app):
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code != 0
    assert "rotation needs a key directory" in result.output


def test_a_bad_file_dropped_in_the_directory_does_not_stop_verification(make_app, key_dir):
    add_key(str(key_dir), "ES256")
    app = keyed_app(make_app, "ES256", key_dir)
    pair = login(app)
    (key_dir / "garbage").write_text("not a key")
    assert app.test_client().get("/api/me", headers=bearer(pair["access_token"])).status_code == 200


def test_generated_files_for_each_algorithm(app, tmp_path):
    for algorithm in ("ES256", "EdDSA"):
        out = tmp_path / algorithm / "jwt_key"
        result = app.test_cli_runner().invoke(
            args=["keys", "generate", "--algorithm", algorithm, "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        assert f"JWT_ALGORITHM={algorithm}" in result.output
        assert out.read_bytes() == private_pem(
            serialization.load_pem_private_key(out.read_bytes(), None)
        )
    _ = create_app


# Found in review: key order, retirement clock, reload cost, algorithm per key ---


def test_unknown_kids_do_not_make_the_directory_reread(make_app, key_dir, monkeypatch):
    """Otherwise any client could make every request parse every key file."""
    import api.auth.keyring

    add_key(str(key_dir), "ES256")
    app = keyed_app(make_app, "ES256", key_dir)
    pair = login(app)
    loads = []
    real = api.auth.keyring.load_key_file
    monkeypatch.setattr(
        api.auth.keyring, "load_key_file", lambda *a, **k: loads.append(a) or real(*a, **k)
    )
    for i in range(5):
        header = {"alg": "ES256", "typ": "at+jwt", "kid": f"made-up-{i}"}
        refused(app, f"{segment(header)}.{segment(claims_of(pair['access_token']))}.{b64(b's')}")
    assert loads == []
    add_key(str(key_dir), "ES256")  # a real change is still seen, parsing only the new file
    login(app, "alice")
    assert len(loads) == 1


def test_a_long_serving_key_keeps_verifying_after_rotation(make_app, key_dir):
    twenty_days_ago = datetime.now(UTC).timestamp() - 20 * 24 * 3600
    old_kid = add_key(str(key_dir), "ES256", created=twenty_days_ago)
    app = keyed_app(make_app, "ES256", key_dir)
    old = login(app)
    assert header_of(old["access_token"])["kid"] == old_kid
    app.test_cli_runner().invoke(args=["keys", "rotate"])
    client = app.test_client()
    assert client.get("/api/me", headers=bearer(old["access_token"])).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(days=13), tick=False):
        refreshed = client.post("/api/auth/refresh", headers=bearer(old["refresh_token"]))
        assert refreshed.status_code == 200


def test_each_key_retires_from_its_own_successors_start(make_app, key_dir):
    now = datetime.now(UTC).timestamp()
    day = 24 * 3600
    first = add_key(str(key_dir), "ES256", created=now - 30 * day)
    second = add_key(str(key_dir), "ES256", created=now - 10 * day)
    third = add_key(str(key_dir), "ES256", created=now - 1 * day)
    kids = {
        k["kid"] for k in keyed_app(make_app, "ES256", key_dir).extensions["keyring"].jwks()["keys"]
    }
    # first was replaced 10 days ago: its tokens may live 4 more days.
    assert kids == {first, second, third}
    with time_machine.travel(datetime.now(UTC) + timedelta(days=5), tick=False):
        later = keyed_app(make_app, "ES256", key_dir).extensions["keyring"].jwks()["keys"]
        assert {k["kid"] for k in later} == {second, third}


def test_a_key_moved_in_with_an_old_file_time_does_not_retire_the_current_one(
    make_app, key_dir, tmp_path
):
    import os

    current = add_key(str(key_dir), "ES256", created=datetime.now(UTC).timestamp() - 20 * 86400)
    app = keyed_app(make_app, "ES256", key_dir)
    token = login(app)["access_token"]
    outside = tmp_path / "made_earlier"
    subprocess.run(["ssh-keygen", "-t", "ecdsa", "-f", str(outside), "-N", "", "-q"], check=True)
    fifteen_days_ago = datetime.now(UTC).timestamp() - 15 * 86400
    os.utime(outside, (fifteen_days_ago, fifteen_days_ago))
    os.rename(outside, key_dir / "made_earlier")  # as `mv`, keeping the old mtime
    assert app.test_client().get("/api/me", headers=bearer(token)).status_code == 200
    kids = {k["kid"] for k in app.test_client().get("/.well-known/jwks.json").json["keys"]}
    assert current in kids and len(kids) == 2
    assert header_of(login(app, "alice")["access_token"])["kid"] != current  # the new one signs


def test_rotating_to_another_rsa_algorithm_keeps_old_tokens(make_app, key_dir, tmp_path):
    add_key(str(key_dir), "RS256")
    shared = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/shared.db",
        "JWT_KEY_DIR": str(key_dir),
    }
    app = make_app(JWT_ALGORITHM="RS256", **shared)
    old = login(app)
    result = app.test_cli_runner().invoke(args=["keys", "rotate", "--algorithm", "PS256"])
    assert result.exit_code == 0, result.output
    new = login(app, "alice")
    assert header_of(new["access_token"])["alg"] == "PS256"
    # Restarted on the new algorithm: each key keeps the one it was made for.
    restarted = make_app(JWT_ALGORITHM="PS256", **shared)
    response = restarted.test_client().get("/api/me", headers=bearer(old["access_token"]))
    assert response.status_code == 200
    with pytest.raises(ConfigError, match="JWT_ALGORITHM=RS256 but the signing key is for PS256"):
        keyed_app(make_app, "RS256", key_dir)


def test_a_named_public_key_file_must_exist(make_app, tmp_path):
    key = tmp_path / "jwt_key"
    subprocess.run(["ssh-keygen", "-t", "ed25519", "-f", str(key), "-N", "", "-q"], check=True)
    with pytest.raises(ConfigError, match="JWT_PUBLIC_KEY_FILE=.*nope.pub cannot be read"):
        make_app(
            JWT_ALGORITHM="EdDSA",
            JWT_PRIVATE_KEY_FILE=str(key),
            JWT_PUBLIC_KEY_FILE=str(tmp_path / "nope.pub"),
        )
