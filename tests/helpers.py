"""What tests share besides fixtures (those are in conftest.py): the password
the tests register with, the PostgreSQL admin URL, a client's auth actions,
token and error helpers, and the skip-or-fail check for a backing service."""

import os
import secrets
import socket
import time
import uuid
from contextlib import contextmanager

import jwt as pyjwt
import pyotp
import pytest
import time_machine
from sqlalchemy import create_engine, text

from api.auth.revocation import DatabaseStore, StoreUnavailable

PASSWORD = "correct horse battery"
# The user body's fields (CONTRACT.md), wherever a user is answered.
USER_FIELDS = {"id", "username", "roles", "created_at", "email", "email_verified", "mfa_enabled"}
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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


class Fresh:
    """Addresses, usernames and mailboxes no other test (or earlier run) has
    used: rate-limit counts in Redis outlive a test."""

    def __init__(self):
        self.net = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
        self.tag = uuid.uuid4().hex[:8]

    def addr(self, host=1):
        return f"{self.net}.{host}"

    def name(self, base="bob"):
        return f"{base}_{self.tag}"

    def email(self, base="bob"):
        return f"{base}_{self.tag}@example.com"


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


def _answers(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def require_service(name, port, env_var):
    """Outside CI a machine without the service skips these tests, saying so;
    in CI (.ci/run starts the services) they must run."""
    if env_var in os.environ or _answers(port):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not answering on 127.0.0.1:{port}")
    pytest.skip(f"{name} is not answering on 127.0.0.1:{port} (set {env_var})")


# The API as the session and rotation tests call it.


def me(client, token):
    return client.get("/api/me", headers=bearer(token))


def refresh(client, token):
    return client.post("/api/auth/refresh", headers=bearer(token))


def assert_login_cookies(response):
    """A cookie login's answer: the four cookies, httpOnly where they hold a
    token, on their paths, their csrf values those of the body."""
    body = response.json
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    assert set(cookies) == {
        "access_token_cookie",
        "refresh_token_cookie",
        "csrf_access_token",
        "csrf_refresh_token",
    }
    assert "HttpOnly" in cookies["access_token_cookie"]
    assert "Path=/;" in cookies["access_token_cookie"]
    assert "HttpOnly" in cookies["refresh_token_cookie"]
    assert "Path=/api/auth" in cookies["refresh_token_cookie"]
    assert "HttpOnly" not in cookies["csrf_access_token"]
    assert "Path=/api/auth" in cookies["csrf_refresh_token"]
    assert all("SameSite=Lax" in c for c in cookies.values())
    assert f"csrf_access_token={body['csrf_access_token']};" in cookies["csrf_access_token"]
    assert f"csrf_refresh_token={body['csrf_refresh_token']};" in cookies["csrf_refresh_token"]


# TOTP (api/auth/totp.py): codes as an authenticator app makes them.

TOTP_STEP = 30  # seconds


def totp_code(secret, at=None):
    """The code of `secret` at `at` (a timestamp or an aware datetime; default now)."""
    return pyotp.TOTP(secret).at(time.time() if at is None else at)


def stopped_clock():
    """Time stopped a second into the next TOTP step: a test knows which codes
    are spent and moves on with `.shift(TOTP_STEP)`. Forward, never back, so
    that no token minted before it is from the future."""
    now = time.time()
    return time_machine.travel(now - now % TOTP_STEP + TOTP_STEP + 1, tick=False)


def enable_totp(client, access_token):
    """Turn TOTP on for the token's user (a fresh token); (secret, recovery
    codes). The current step's code confirms it, so that step is spent."""
    headers = bearer(access_token)
    started = client.post("/api/me/mfa/totp", headers=headers)
    assert started.status_code == 200, started.json
    secret = started.json["secret"]
    body = {"code": totp_code(secret)}
    confirmed = client.post("/api/me/mfa/totp/confirm", json=body, headers=headers)
    assert confirmed.status_code == 200, confirmed.json
    return secret, confirmed.json["recovery_codes"]


def wrong_code(secret):
    """Six digits that are no code of `secret` within two steps of now."""
    near = {totp_code(secret, time.time() + TOTP_STEP * k) for k in range(-2, 3)}
    return next(code for code in ("000000", "111111", "222222") if code not in near)


def mfa_token_of(client, username="bob", path="/api/auth/login", **kwargs):
    """The password step of a login with TOTP on: its mfa token."""
    started = client.post(path, json={"username": username, "password": PASSWORD}, **kwargs)
    assert started.status_code == 401 and started.json["error"] == "mfa_required", started.json
    return started.json["mfa_token"]


def second_step(client, mfa_token, code, **kwargs):
    return client.post("/api/auth/mfa", json={"mfa_token": mfa_token, "code": code}, **kwargs)


def mfa_login(client, code, username="bob", path="/api/auth/login"):
    """Both steps of a login with TOTP on; the second step's answer."""
    return second_step(client, mfa_token_of(client, username, path), code)


# Apps signing with the keys of a key directory (the `key_dir` fixture).


def keyed_app(make_app, algorithm, key_dir):
    return make_app(JWT_ALGORITHM=algorithm, JWT_KEY_DIR=str(key_dir))


def terminate_backends(admin_url, database):
    """pg_terminate_backend every connection to `database` but this one; how many."""
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).all()
            )
    finally:
        engine.dispose()


class StoreWritesFail(DatabaseStore):
    """A revocation store whose writes fail: Redis going away between a
    request's check and its write cannot be timed for real."""

    def revoke(self, session_ids):
        raise StoreUnavailable("ConnectionError")


def wait_for_a_lock_wait(conn, timeout=10):
    """Until a request of the test waits for a row lock on PostgreSQL (a
    race driven step by step: another connection holds the lock)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()"
    )
    deadline = time.monotonic() + timeout
    while conn.execute(query).scalar() == 0:
        assert time.monotonic() < deadline, "the request never waited for the lock"
        time.sleep(0.01)


@contextmanager
def sqlite_statements(app):
    """The statements SQLite runs meanwhile on `app`'s in-memory database
    (SQLite's own trace, beneath SQLAlchemy and its events)."""
    from api.extensions import db

    with app.app_context():
        pooled = db.engine.raw_connection()
    connection = pooled.dbapi_connection  # the in-memory database's one
    pooled.close()
    seen = []
    connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        connection.set_trace_callback(None)


def calls_to(monkeypatch, owner, name):
    """The first arguments `owner.name` is called with from now on (it still runs)."""
    calls = []
    original = getattr(owner, name)

    def recording(self, first, *args, **kwargs):
        calls.append(first)
        return original(self, first, *args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return calls
