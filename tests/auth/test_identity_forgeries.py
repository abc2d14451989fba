"""Tokens an attacker might send: every one is a 401 invalid_token, never a pass or a 500."""

import base64
import hashlib
import hmac
import json

import pytest

from tests.helpers import assert_error, bearer, claims_of, forge, header_of


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj):
    return b64(json.dumps(obj).encode())


@pytest.fixture
def pair(auth):
    return auth.registered_pair()


@pytest.fixture
def good_claims(pair):
    return claims_of(pair["access_token"])


def refused(client, token, error="invalid_token"):
    response = client.get("/api/me", headers=bearer(token))
    assert_error(response, 401, error)
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    return response


def test_forge_helper_makes_accepted_tokens(client, good_claims):
    # The attacks below change one thing each; this proves the rest is valid.
    token = forge(good_claims, headers={"typ": "at+jwt"})
    assert client.get("/api/me", headers=bearer(token)).status_code == 200


def test_alg_none(client, good_claims):
    token = f"{segment({'alg': 'none', 'typ': 'at+jwt'})}.{segment(good_claims)}."
    refused(client, token)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_spellings_with_signature(client, good_claims, alg):
    token = f"{segment({'alg': alg, 'typ': 'at+jwt'})}.{segment(good_claims)}.{b64(b'x')}"
    refused(client, token)


def test_stripped_signature(client, pair):
    header, payload, _ = pair["access_token"].split(".")
    refused(client, f"{header}.{payload}.")


def test_altered_signature(client, pair):
    token = pair["access_token"]
    last = "A" if token[-1] != "A" else "B"
    refused(client, token[:-1] + last)


def test_altered_payload(client, pair, good_claims):
    header, _, signature = pair["access_token"].split(".")
    tampered = {**good_claims, "roles": ["admin"]}
    refused(client, f"{header}.{segment(tampered)}.{signature}")


def test_other_secret(client, good_claims):
    refused(client, forge(good_claims, key="another-secret-that-is-32-bytes-long!!"))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithm_with_right_secret(client, good_claims, alg):
    refused(client, forge(good_claims, algorithm=alg, headers={"typ": "at+jwt"}))


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "sub", "type", "sid", "nbf", "iss", "aud"])
def test_correctly_signed_token_missing_a_claim(client, good_claims, claim):
    claims = {k: v for k, v in good_claims.items() if k != claim}
    refused(client, forge(claims, headers={"typ": "at+jwt"}))


def test_lifetime_longer_than_configured(client, good_claims):
    claims = {**good_claims, "exp": good_claims["iat"] + 3600}
    refused(client, forge(claims, headers={"typ": "at+jwt"}))


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "someone-else"},
        {"aud": "another-api"},
        {"sub": 1},
        {"sub": "999"},
        {"sub": "abc"},
        {"sub": "²"},
        {"sub": str(2**70)},
        {"sub": "9" * 5000},
        {"sub": "-1"},
        {"exp": "soon"},
        {"iat": None},
        {"type": ["access"]},
        {"type": "id"},
        {"type": "__proto__"},
        {"type": None},
    ],
)
@pytest.mark.parametrize("typ", ["at+jwt", None])
def test_bad_claim_values(client, good_claims, change, typ):
    refused(client, forge({**good_claims, **change}, headers={"typ": typ}))


def test_unsigned_token_of_unknown_type_is_refused_before_verification(client, good_claims):
    # No typ, an unknown type and a junk signature: refused, not a 500.
    token = f"{segment({'alg': 'HS256'})}.{segment({**good_claims, 'type': 'id'})}.{b64(b's')}"
    refused(client, token)


def test_nbf_in_the_future(client, good_claims):
    claims = {**good_claims, "nbf": good_claims["iat"] + 30}
    refused(client, forge(claims, headers={"typ": "at+jwt"}))


def test_iat_in_the_future(client, good_claims):
    later = good_claims["iat"] + 30
    claims = {**good_claims, "iat": later, "nbf": later, "exp": later + 60}
    refused(client, forge(claims, headers={"typ": "at+jwt"}))


@pytest.mark.parametrize("typ", ["JWT", None, "jwt", "at+JWT-x"])
def test_access_claims_with_wrong_typ(client, good_claims, typ):
    refused(client, forge(good_claims, headers={"typ": typ}))


def test_refresh_claims_with_access_typ_cannot_refresh(client, pair):
    claims = claims_of(pair["refresh_token"])
    token = forge(claims, headers={"typ": "at+jwt"})
    response = client.post("/api/auth/refresh", headers=bearer(token))
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c"])
def test_key_location_headers(client, good_claims, name):
    value = {"kty": "oct", "k": "AAAA"} if name == "jwk" else "https://evil.example/keys"
    if name == "x5c":
        value = ["MIIB"]
    refused(client, forge(good_claims, headers={"typ": "at+jwt", name: value}))


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJIUzI1NiJ9.W10.x", "Ã©.Ã©.Ã©"],
)
def test_malformed_tokens(client, token):
    refused(client, token)


def test_malformed_authorization_header(client, pair):
    response = client.get("/api/me", headers={"Authorization": f"Bearer {pair['access_token']} x"})
    assert_error(response, 401, "invalid_token")


def test_hs256_signed_with_rsa_public_key(make_app, rsa_key_files):
    """CVE-2022-29217's kind: the public key used as an HMAC secret."""
    private_file, public_file = rsa_key_files
    app = make_app(
        JWT_ALGORITHM="RS256",
        JWT_PRIVATE_KEY_FILE=str(private_file),
        JWT_PUBLIC_KEY_FILE=str(public_file),
    )
    client = app.test_client()
    client.post("/api/auth/register", json={"username": "bob", "password": "password123"})
    pair = client.post("/api/auth/login", json={"username": "bob", "password": "password123"}).json
    assert header_of(pair["access_token"])["alg"] == "RS256"
    claims = claims_of(pair["access_token"])
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'at+jwt'})}.{segment(claims)}"
    mac = hmac.new(public_file.read_bytes(), signing_input.encode(), hashlib.sha256).digest()
    response = client.get("/api/me", headers=bearer(f"{signing_input}.{b64(mac)}"))
    assert_error(response, 401, "invalid_token")
    # The real token still works: the refusal is about the forgery.
    assert client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 200


def test_header_mode_token_in_a_cookie_cannot_pass_csrf(auth, client):
    """Body-login tokens carry no csrf value, so planted in a cookie they cannot
    satisfy the double submit on an unsafe request."""
    pair = auth.registered_pair()
    assert "csrf" not in claims_of(pair["refresh_token"])
    client.set_cookie("refresh_token_cookie", pair["refresh_token"], path="/api/auth")
    response = client.post("/api/auth/refresh", headers={"X-CSRF-TOKEN": "anything"})
    assert_error(response, 401, "invalid_token")
