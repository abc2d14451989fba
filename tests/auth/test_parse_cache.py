"""The parse kept per token (api/auth/parse_cache.py) keeps an authenticated
request cheap without making it any less checked: signature, expiry, key and
algorithm are checked on every use, callers get a header of their own, and
what fails to parse, long texts and headers that are not flat are never kept."""

from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import time_machine
from jwt import api_jws

from api.auth import parse_cache
from tests.helpers import AuthActions, assert_error, bearer


def test_a_kept_parse_still_has_its_signature_checked(client, auth):
    token = auth.registered_pair()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    header, claims, signature = token.split(".")
    # Same header and claims (their parse is kept), another signature.
    forged = f"{header}.{claims}.{signature[:-4]}AAAA"
    assert_error(client.get("/api/me", headers=bearer(forged)), 401, "invalid_token")
    assert client.get("/api/me", headers=bearer(token)).status_code == 200


def test_a_kept_parse_still_expires(client, auth):
    token = auth.registered_pair()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61), tick=False):
        assert_error(client.get("/api/me", headers=bearer(token)), 401, "token_expired")


def test_a_kept_parse_is_still_checked_against_the_key_and_algorithm(make_app):
    one, other = (
        make_app(),
        make_app(JWT_SECRET_KEY="another-secret-that-is-long-enough-0123456789"),
    )
    token = AuthActions(one.test_client()).registered_pair()["access_token"]
    assert one.test_client().get("/api/me", headers=bearer(token)).status_code == 200
    # The very same text, kept parsed, at an app with another key: refused.
    AuthActions(other.test_client()).register()
    refused = other.test_client().get("/api/me", headers=bearer(token))
    assert_error(refused, 401, "invalid_token")


def test_the_parse_is_done_once_per_token(client, auth):
    token = auth.registered_pair()["access_token"]
    cache = api_jws._jws_global_obj.parse_cache
    before = cache.cache_info()
    for _ in range(5):
        assert client.get("/api/me", headers=bearer(token)).status_code == 200
    after = cache.cache_info()
    # flask-jwt-extended asks four times a request; PyJWT parsed it at most once.
    assert after.misses - before.misses <= 1
    assert after.hits - before.hits >= 19


def test_callers_get_a_header_of_their_own(client, auth):
    token = auth.registered_pair()["access_token"]
    header = pyjwt.get_unverified_header(token)
    header["alg"] = "none"
    header["kid"] = "planted"
    assert pyjwt.get_unverified_header(token) == {"alg": "HS256", "typ": "at+jwt"}
    assert client.get("/api/me", headers=bearer(token)).status_code == 200


def test_what_fails_to_parse_is_not_kept():
    cache = api_jws._jws_global_obj.parse_cache
    before = cache.cache_info().currsize
    for junk in ("a.b", "!!!!.e30.sig", "e30.e30.!!!"):
        with pytest.raises(pyjwt.DecodeError):
            pyjwt.get_unverified_header(junk)
    assert cache.cache_info().currsize == before


def test_long_texts_are_parsed_each_time_and_the_cache_is_bounded():
    parse_cache.install()  # a second install changes nothing
    cache = api_jws._jws_global_obj.parse_cache
    long = pyjwt.encode({"pad": "x" * parse_cache.MAX_TOKEN_LENGTH}, "k" * 32)
    before = cache.cache_info()
    assert pyjwt.decode(long, "k" * 32, algorithms=["HS256"])["pad"]
    assert cache.cache_info() == before
    assert cache.cache_info().maxsize == parse_cache.MAX_TOKENS


def test_a_header_that_is_not_flat_is_parsed_each_time_and_never_shared():
    """Forged tokens cost their parse, not memory: a header holding lists or
    objects (nesting grows its parse ~100-fold) is never kept."""
    cache = api_jws._jws_global_obj.parse_cache
    token = pyjwt.encode({"sub": "1"}, "k" * 32, headers={"x5c": [[[]]] * 50})
    before = cache.cache_info().currsize
    first = pyjwt.get_unverified_header(token)
    first["x5c"].append("planted")
    assert pyjwt.get_unverified_header(token)["x5c"] == [[[]]] * 50
    assert cache.cache_info().currsize == before
