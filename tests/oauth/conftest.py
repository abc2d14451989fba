"""Fixtures of the OAuth tests on a store (`store_app`)."""

import pytest

from tests.oauth.support import create_client


@pytest.fixture
def client(store_app):
    return store_app.test_client()


@pytest.fixture
def service(store_app):
    """A client with the scopes notes:read and profile:read."""
    return create_client(store_app)
