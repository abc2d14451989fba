"""Fixtures of the route tests on a store (`store_app`)."""

import pytest

from tests.helpers import AuthActions, bearer
from tests.routes.test_admin import create_admin


@pytest.fixture
def admin(store_app, client):
    """An administrator's bearer header (the first admin, made by the CLI)."""
    create_admin(store_app)
    return bearer(AuthActions(client).login("root")["access_token"])
