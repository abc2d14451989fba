"""What keeps an authenticated request cheap must not make it any less checked:
the parse kept per token (api/auth/parse_cache.py), the one read (api/database.py)."""

from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
import time_machine
from jwt import api_jws
from sqlalchemy import make_url, text

from api.auth import parse_cache
from tests.conftest import PASSWORD, POSTGRES_ADMIN_URL, AuthActions, assert_error, bearer
from tests.fault_support import terminate_backends


def tampered(token, segment, replacement):
    parts = token.split(".")
    parts[segment] = replacement
    return ".".join(parts)


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


def test_the_token_user_is_read_only_and_changes_go_through_the_model(client, auth):
    """/api/me answers from the row the revocation check read; a password
    change loads the model to write."""
    pair = auth.registered_pair()
    me = client.get("/api/me", headers=bearer(pair["access_token"]))
    assert set(me.json) == {"id", "username", "roles", "created_at"}
    changed = client.put(
        "/api/me/password",
        json={"current_password": PASSWORD, "new_password": "a new password"},
        headers=bearer(pair["access_token"]),
    )
    assert changed.status_code == 204, changed.json
    assert auth.login(password="a new password")["access_token"]


@pytest.fixture
def pg_store_app(make_app, postgres_url):
    from flask_migrate import upgrade

    from api.extensions import db

    app = make_app(SQLALCHEMY_DATABASE_URI=postgres_url)
    with app.app_context():
        db.drop_all()
        upgrade()
    return app


def terminate_app_connections(app):
    """pg_terminate_backend on every connection of `app`'s database."""
    database = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    return terminate_backends(POSTGRES_ADMIN_URL, database)


def test_a_connection_the_server_dropped_is_replaced_without_an_error(pg_store_app):
    """No ping before each use: a dropped pooled connection fails on use, and
    the read, being read-only, tries once more on a new one."""
    client = pg_store_app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    assert terminate_app_connections(pg_store_app) >= 1
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    assert terminate_app_connections(pg_store_app) >= 1
    # A write on a dropped connection is refused once (503), never half-done...
    dropped = client.post("/api/auth/logout", headers=bearer(token))
    assert dropped.status_code in (204, 503)
    # ...and the pool, invalidated, serves the retry.
    if dropped.status_code == 503:
        assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    assert_error(client.get("/api/me", headers=bearer(token)), 401, "token_revoked")


def test_the_read_runs_in_autocommit_on_postgres(pg_store_app):
    """One round trip: no BEGIN before the read and no ROLLBACK after it."""
    from sqlalchemy import event

    from api.extensions import db

    client = pg_store_app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    with pg_store_app.app_context():
        engines = {"default": db.engine, "reads": pg_store_app.extensions["read_engine"]}
    seen = []

    def recorder(name):
        def record(conn, _cursor, statement, *_args):
            autocommit = conn.connection.dbapi_connection.autocommit
            seen.append((name, statement.split()[0], autocommit))

        return record

    listeners = [(engine, recorder(name)) for name, engine in engines.items()]
    for engine, listener in listeners:
        event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get("/api/me", headers=bearer(token)).status_code == 200
    finally:
        for engine, listener in listeners:
            event.remove(engine, "before_cursor_execute", listener)
    assert seen == [("reads", "SELECT", True)]


def test_readiness_after_a_dropped_connection_is_not_an_outage(pg_store_app):
    client = pg_store_app.test_client()
    assert client.get("/api/health/ready").status_code == 200
    assert terminate_app_connections(pg_store_app) >= 1
    ready = client.get("/api/health/ready")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"] == {"database": "ok", "revocation_store": "ok"}


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


def test_a_connection_dropped_before_the_session_ends_costs_no_answer(pg_store_app):
    """The answer is made; then the server drops the connection; the ROLLBACK
    that ends the session fails. That must not escape (under gunicorn it cost
    the client its answer: a closed connection), and the next request works."""
    from api.extensions import db

    client = pg_store_app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    with pg_store_app.app_context():
        db.session.execute(text("SELECT 1"))  # the session holds a connection
        assert terminate_app_connections(pg_store_app) >= 1
    # The app context's teardown ran on leaving the block, without raising.
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
