"""HMAC secrets are checked once each (api/auth/hmac_keys.py), and still
refused when they have an asymmetric key's shape; signatures are checked on
every token."""

import jwt
import pytest
from jwt.algorithms import HMACAlgorithm
from jwt.exceptions import InvalidKeyError

from api.auth.hmac_keys import CheckedOnceHMAC
from tests.helpers import AuthActions, assert_error, bearer, calls_to

PEM = b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"


def test_the_app_verifies_with_checked_once_hmac(app):
    for name in ("HS256", "HS384", "HS512"):
        assert isinstance(jwt.get_algorithm_by_name(name), CheckedOnceHMAC)


def test_a_secret_is_checked_once(monkeypatch):
    checked = calls_to(monkeypatch, HMACAlgorithm, "prepare_key")
    algorithm = CheckedOnceHMAC(HMACAlgorithm.SHA256)
    for _ in range(3):
        assert algorithm.prepare_key("a secret of thirty-two bytes, or more") == (
            b"a secret of thirty-two bytes, or more"
        )
    assert len(checked) == 1


def test_an_asymmetric_key_is_refused_every_time():
    algorithm = CheckedOnceHMAC(HMACAlgorithm.SHA256)
    for _ in range(2):
        with pytest.raises(InvalidKeyError):
            algorithm.prepare_key(PEM)


def test_a_token_signed_with_another_secret_is_still_refused(app, client):
    token = AuthActions(client).registered_pair()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(claims, "another secret that is long enough for hs256", "HS256",
                        headers={"typ": "at+jwt"})  # fmt: skip
    assert_error(client.get("/api/me", headers=bearer(forged)), 401, "invalid_token")
