import os
import socket
import uuid

import jwt as pyjwt
import pytest
from sqlalchemy import create_engine, text

from api import create_app
from api.extensions import db

PASSWORD = "correct horse battery"
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def make_app():
    """An app on its own in-memory SQLite, built from TestingConfig plus overrides."""
    built = []

    def factory(**overrides):
        app = create_app({"APP_CONFIG": "testing", **overrides})
        with app.app_context():
            db.create_all()
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


class AuthActions:
    def __init__(self, client):
        self.client = client

    def register(self, username="bob", password=PASSWORD):
        response = self.client.post(
            "/api/auth/register", json={"username": username, "password": password}
        )
        assert response.status_code == 201, response.json
        return response.json

    def login(self, username="bob", password=PASSWORD):
        response = self.client.post(
            "/api/auth/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.json
        return response.json

    def cookie_login(self, username="bob", password=PASSWORD):
        response = self.client.post(
            "/api/auth/cookie/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.json
        return response.json

    def registered_pair(self, username="bob"):
        self.register(username)
        return self.login(username)


@pytest.fixture
def auth(client):
    return AuthActions(client)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def claims_of(token):
    return pyjwt.decode(token, options={"verify_signature": False})


def header_of(token):
    return pyjwt.get_unverified_header(token)


def assert_error(response, status, error):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.json["error"] == error
    assert isinstance(response.json["message"], str) and response.json["message"]


def forge(claims, key=None, algorithm="HS256", headers=None):
    """A token signed with the testing secret (or `key`), claims and header as given."""
    from config import TestingConfig

    return pyjwt.encode(
        claims, key or TestingConfig.JWT_SECRET_KEY, algorithm=algorithm, headers=headers
    )


@pytest.fixture(scope="session")
def rsa_key_files(tmp_path_factory):
    """A 2048-bit PEM pair, made once per run (key generation is slow)."""
    from api.keys import generate_rsa_files, write_private_files

    folder = tmp_path_factory.mktemp("rsa")
    write_private_files(folder, generate_rsa_files(2048))
    return folder / "jwt_key", folder / "jwt_key.pub"


def _postgres_answers():
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def postgres_url():
    """A fresh database on the real PostgreSQL, dropped afterwards.

    Outside CI a machine without PostgreSQL skips these tests, saying so; in
    CI (.ci/run starts the server) they must run.
    """
    if "TEST_POSTGRES_URL" not in os.environ and not _postgres_answers():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not answering on 127.0.0.1:5432")
        pytest.skip("PostgreSQL is not answering on 127.0.0.1:5432 (set TEST_POSTGRES_URL)")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
