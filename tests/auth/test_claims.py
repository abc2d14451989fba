"""Expiry with time travel (time-machine), never by sleeping."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.helpers import assert_error, bearer

START = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def traveller():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def test_access_token_lives_exactly_60_seconds(auth, client, traveller):
    pair = auth.registered_pair()
    traveller.shift(timedelta(seconds=59))
    assert client.get("/api/me", headers=bearer(pair["access_token"])).status_code == 200
    traveller.shift(timedelta(seconds=1))
    response = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert_error(response, 401, "token_expired")
    assert response.json["message"] == "The access token has expired."
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_expired_cookie_access_token(auth, client, traveller):
    auth.register()
    auth.cookie_login()
    traveller.shift(timedelta(seconds=61))
    assert_error(client.get("/api/me"), 401, "token_expired")


def test_refresh_after_access_expiry_gives_a_working_token(auth, client, traveller):
    pair = auth.registered_pair()
    traveller.shift(timedelta(minutes=5))
    response = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert response.status_code == 200
    me = client.get("/api/me", headers=bearer(response.json["access_token"]))
    assert me.status_code == 200


def test_refresh_token_expires_after_14_days(auth, client, traveller):
    pair = auth.registered_pair()
    traveller.shift(timedelta(days=14, seconds=1))
    response = client.post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert_error(response, 401, "token_expired")
    assert response.json["message"] == "The refresh token has expired."
