"""Flows that change an account run one at a time per account (a row lock on
PostgreSQL): a thief's change of address racing the owner's password change
must not survive it. Driven deterministically: the "owner" holds the lock in
a transaction of its own while the thief's request waits for it."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import PASSWORD, assert_error, bearer, wait_for_a_lock_wait


@pytest.fixture(params=["postgres", "postgres+redis"])
def backend(request):
    settings = {"SQLALCHEMY_DATABASE_URI": request.getfixturevalue("postgres_url")}
    if request.param == "postgres+redis":
        settings.update(request.getfixturevalue("redis_settings"))
    return settings


def test_a_change_of_address_waiting_on_a_password_change_is_refused(
    make_store_app, mail_settings, backend, smtp_sink
):
    app = make_store_app(**mail_settings)
    client = app.test_client()
    body = {"username": "bob", "password": PASSWORD, "email": "bob@example.com"}
    assert client.post("/api/auth/register", json=body).status_code == 201
    login = {"username": "bob", "password": PASSWORD}
    thief = client.post("/api/auth/login", json=login).json["access_token"]
    engine = create_engine(backend["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as owner, ThreadPoolExecutor(1) as pool:
            owner.begin()
            # The owner's password change, in flight: it holds the account's lock.
            owner.execute(text("SELECT id FROM users WHERE id = 1 FOR UPDATE"))
            change = pool.submit(
                app.test_client().put,
                "/api/me/email",
                json={"email": "thief@example.org"},
                headers=bearer(thief),
            )
            with engine.connect() as watcher:
                wait_for_a_lock_wait(watcher)
            owner.execute(text("UPDATE login_sessions SET revoked_at = now() WHERE user_id = 1"))
            owner.commit()
            response = change.result(timeout=30)
        assert_error(response, 401, "token_revoked")
        with engine.connect() as conn:
            pending = conn.execute(text("SELECT pending_email FROM users")).scalar()
            links = conn.execute(text("SELECT count(*) FROM one_time_tokens")).scalar()
        assert pending is None
        assert links == 1  # the registration's own, nothing for the thief
    finally:
        engine.dispose()
