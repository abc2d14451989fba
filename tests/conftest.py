"""Fixtures only; what tests import is in tests/helpers.py."""

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from api import create_app
from api.database import engines
from api.extensions import db
from tests.helpers import POSTGRES_ADMIN_URL, AuthActions, require_service, stopped_clock


@pytest.fixture
def make_app():
    """An app on its own in-memory SQLite, built from TestingConfig plus overrides."""
    yield from app_factory({}, db.create_all)


def app_factory(base, build_schema):
    """Yields a factory of apps on `base` settings; disposes their engines after."""
    built = []

    def factory(**overrides):
        app = create_app({"APP_CONFIG": "testing", **base, **overrides})
        with app.app_context():
            build_schema()
        built.append(app)
        return app

    yield factory
    for app in built:
        for engine in engines(app):
            engine.dispose()


@pytest.fixture
def clock():
    """Time stopped a second into a TOTP step; `.shift(TOTP_STEP)` moves on
    (tests/helpers.py stopped_clock)."""
    with stopped_clock() as traveller:
        yield traveller


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture(scope="session")
def rsa_key_files(tmp_path_factory):
    """A 2048-bit PEM pair, made once per run (key generation is slow)."""
    from api.auth.key_files import generate_rsa_files, write_private_files

    folder = tmp_path_factory.mktemp("rsa")
    write_private_files(folder, generate_rsa_files(2048))
    return folder / "jwt_key", folder / "jwt_key.pub"


@pytest.fixture
def postgres_url():
    """A fresh database on the real PostgreSQL, dropped afterwards."""
    require_service("PostgreSQL", 5432, "TEST_POSTGRES_URL")
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def redis_settings():
    """The real Redis, with a key prefix of this test's own, cleaned up after."""
    import redis

    require_service("Redis", 6379, "TEST_REDIS_URL")
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"test-{uuid.uuid4().hex[:12]}:"
    yield {"REDIS_URL": url, "REDIS_KEY_PREFIX": prefix}
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


BACKENDS = ["sqlite", "postgres", "postgres+redis"]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """Config for each store: SQLite (a file, so threads share it), PostgreSQL,
    and PostgreSQL with Redis as the revocation store."""
    if request.param == "sqlite":
        return {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/app.db"}
    settings = {"SQLALCHEMY_DATABASE_URI": request.getfixturevalue("postgres_url")}
    if request.param == "postgres+redis":
        settings.update(request.getfixturevalue("redis_settings"))
    return settings


@pytest.fixture
def make_store_app(backend):
    """Apps on `backend`, their schema built by the migrations."""
    from flask_migrate import upgrade

    yield from app_factory(backend, upgrade)


@pytest.fixture
def store_app(make_store_app):
    return make_store_app()


@pytest.fixture
def smtp_sink():
    """A real SMTP server on 127.0.0.1 (tests/mail_support.py), stopped after."""
    from tests.mail_support import SmtpSink

    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def mail_settings(smtp_sink):
    """App settings that send mail to `smtp_sink`, with a short socket timeout."""
    return {"MAIL_URL": smtp_sink.url, "MAIL_SEND_TIMEOUT": 2}


@pytest.fixture
def key_dir(tmp_path):
    path = tmp_path / "keys"
    path.mkdir()
    return path
