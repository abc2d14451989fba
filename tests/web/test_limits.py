"""Abuse limits: 429 rate_limited with Retry-After, per address and per username,
counted in the database, in Redis, or (an in-memory database) in memory.

Counts in Redis outlive a test (a minute), so every test uses addresses and
usernames of its own: a rerun within the minute starts from zero.
"""

import pytest

from tests.helpers import PASSWORD, Fresh, assert_error, bearer


@pytest.fixture
def fresh():
    return Fresh()


@pytest.fixture(params=["memory", "database", "redis"])
def limited_app(request, make_app, tmp_path):
    # memory: the in-memory SQLite database make_app uses by default.
    settings = {}
    if request.param != "memory":
        settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/app.db"
    if request.param == "redis":
        settings.update(request.getfixturevalue("redis_settings"))
    return make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="3 per minute",
        RATELIMIT_REFRESH="2 per minute",
        **settings,
    )


def login(client, username, address, password="wrong password"):
    return client.post(
        "/api/auth/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_login_attempts_per_address(limited_app, fresh):
    client = limited_app.test_client()
    for i in range(3):
        refused = login(client, fresh.name(f"u{i}"), fresh.addr())
        assert_error(refused, 401, "invalid_credentials")
        assert "Retry-After" not in refused.headers  # only a 429 says when to retry
        assert "X-RateLimit-Remaining" in refused.headers
    limited = login(client, fresh.name("u9"), fresh.addr())
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    # Another address still gets through.
    assert login(client, fresh.name("alice"), fresh.addr(2)).status_code == 401


def test_login_attempts_per_username_across_addresses(limited_app, fresh):
    client = limited_app.test_client()
    for host in range(3):
        login(client, fresh.name(), fresh.addr(host))
    assert_error(login(client, fresh.name(), fresh.addr(99)), 429, "rate_limited")
    assert login(client, fresh.name("carol"), fresh.addr(98)).status_code == 401


def test_username_budget_is_case_insensitive(limited_app, fresh):
    client = limited_app.test_client()
    for host, name in enumerate(["bob", "BOB", "Bob"]):
        login(client, fresh.name(name), fresh.addr(host))
    assert_error(login(client, fresh.name("bOb"), fresh.addr(99)), 429, "rate_limited")


def test_login_cookie_login_and_register_share_a_budget(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    body = {"username": fresh.name("dave"), "password": PASSWORD}
    assert client.post("/api/auth/register", json=body, environ_base=env).status_code == 201
    assert client.post("/api/auth/login", json=body, environ_base=env).status_code == 200
    assert client.post("/api/auth/cookie/login", json=body, environ_base=env).status_code == 200
    limited = client.post("/api/auth/login", json=body, environ_base=env)
    assert_error(limited, 429, "rate_limited")


def test_one_username_budget_across_routes_and_addresses(limited_app, fresh):
    client = limited_app.test_client()
    body = {"username": fresh.name("frank"), "password": PASSWORD}
    for host, path in enumerate(
        ["/api/auth/register", "/api/auth/login", "/api/auth/cookie/login"]
    ):
        response = client.post(path, json=body, environ_base={"REMOTE_ADDR": fresh.addr(host)})
        assert response.status_code in (200, 201)
    for path in ("/api/auth/login", "/api/auth/cookie/login", "/api/auth/register"):
        limited = client.post(path, json=body, environ_base={"REMOTE_ADDR": fresh.addr(50)})
        assert_error(limited, 429, "rate_limited")


def registered_pair(client, env, username):
    """Register and log in from one address: two of that address's budget."""
    body = {"username": username, "password": PASSWORD}
    client.post("/api/auth/register", json=body, environ_base=env)
    return client.post("/api/auth/login", json=body, environ_base=env).json


def test_password_change_counts_against_the_address(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    token = registered_pair(client, env, fresh.name("gina"))["access_token"]
    change = {"current_password": "wrong guess", "new_password": "a new password"}

    def attempt():
        return client.put("/api/me/password", json=change, headers=bearer(token), environ_base=env)

    assert_error(attempt(), 422, "validation_error")  # the budget's third try
    assert_error(attempt(), 429, "rate_limited")


def test_mistyped_limit_stops_the_start(make_app):
    from config import ConfigError

    with pytest.raises(ConfigError, match="RATELIMIT_LOGIN='3 per minuet' is not a limit"):
        make_app(RATELIMIT_LOGIN="3 per minuet")


def test_refresh_is_limited_per_address(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    token = registered_pair(client, env, fresh.name("erin"))["refresh_token"]
    for _ in range(2):
        response = client.post("/api/auth/refresh", headers=bearer(token), environ_base=env)
        assert response.status_code == 200
        token = response.json["refresh_token"]
    limited = client.post("/api/auth/refresh", headers=bearer(token), environ_base=env)
    assert_error(limited, 429, "rate_limited")


def test_limits_are_off_when_disabled(make_app, fresh):
    client = make_app(RATELIMIT_ENABLED=False, RATELIMIT_LOGIN="1 per minute").test_client()
    for _ in range(5):
        assert login(client, fresh.name(), fresh.addr()).status_code == 401


def test_store_lost_after_the_view_keeps_the_answer(make_app, monkeypatch, fresh):
    """The limit was counted before the view; Redis going away before the
    headers are read leaves the view's answer (here, a new session) whole,
    not a 500. Found by tests/e2e/test_faults.py."""
    import redis

    from api.web.limits import limiter

    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute")
    client = app.test_client()
    client.post("/api/auth/register", json={"username": fresh.name(), "password": PASSWORD})
    strategy = limiter.limiter

    def unreachable(*_args, **_kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(strategy, "get_window_stats", unreachable)
    response = login(client, fresh.name(), "10.0.0.1", password=PASSWORD)
    assert response.status_code == 200, response.json
    assert response.json["access_token"]
    assert "X-RateLimit-Remaining" not in response.headers


def test_a_malformed_login_is_not_an_attempt(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    for _ in range(5):
        response = client.post("/api/auth/login", json={"username": "x"}, environ_base=env)
        assert_error(response, 422, "validation_error")
    assert_error(login(client, fresh.name(), fresh.addr()), 401, "invalid_credentials")


def test_a_password_change_without_a_token_is_not_an_attempt(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    change = {"current_password": "wrong guess", "new_password": "a new password"}
    for _ in range(5):
        response = client.put("/api/me/password", json=change, environ_base=env)
        assert_error(response, 401, "missing_token")
    assert_error(login(client, fresh.name(), fresh.addr()), 401, "invalid_credentials")


def test_refreshes_with_a_refused_token_are_not_counted(limited_app, fresh):
    client = limited_app.test_client()
    env = {"REMOTE_ADDR": fresh.addr()}
    pair = registered_pair(client, env, fresh.name("fay"))
    for _ in range(3):
        refused = client.post("/api/auth/refresh", headers=bearer("x.y.z"), environ_base=env)
        assert_error(refused, 401, "invalid_token")
    response = client.post(
        "/api/auth/refresh", headers=bearer(pair["refresh_token"]), environ_base=env
    )
    assert response.status_code == 200


def test_a_username_key_is_never_longer_than_a_username(app):
    from flask import g

    from api.web.limits import username_key

    with app.test_request_context():
        g.json_body = {"username": "B" * 60_000}
        assert username_key() == "username:" + "b" * 64


# Without Redis the counts are in the app's database (api/web/limit_storage.py),
# so that every worker of an instance spends one budget. Each app below stands
# for a gunicorn worker: its own app, engine and pool, on the same database.
# (Flask-Limiter keeps one storage per process, made by the last app bound:
# building the second app is what gave the first worker's attempts a fresh,
# empty count when they were kept in memory.)


def test_the_storage_follows_the_database(make_app, tmp_path, redis_settings):
    assert make_app().config["RATELIMIT_STORAGE_URI"] == "memory://"  # in-memory SQLite
    on_file = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db")
    assert on_file.config["RATELIMIT_STORAGE_URI"] == "database://"
    with_redis = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/b.db", **redis_settings)
    assert with_redis.config["RATELIMIT_STORAGE_URI"] == redis_settings["REDIS_URL"]


def test_workers_on_one_database_share_one_budget(make_store_app, fresh):
    """sqlite, postgres: the database; postgres+redis: Redis, as before."""
    settings = {"RATELIMIT_ENABLED": True, "RATELIMIT_LOGIN": "3 per minute"}
    first = make_store_app(**settings).test_client()
    for i in range(2):
        assert_error(login(first, fresh.name(f"u{i}"), fresh.addr()), 401, "invalid_credentials")
    second = make_store_app(**settings).test_client()
    assert_error(login(second, fresh.name("u2"), fresh.addr()), 401, "invalid_credentials")
    for client in (first, second, first, second):
        limited = login(client, fresh.name("u9"), fresh.addr())
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) > 0


# The database's counts (Redis's INCR, the library's, is atomic by itself).
in_the_database = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
WORKERS, THREADS, HITS = 4, 4, 10


def hits_of_a_worker(settings, key, start, results):
    """One worker process: its own app on the shared database, THREADS
    threads each counting HITS hits at once; the counts it was answered, or
    its error (as a string)."""
    from concurrent.futures import ThreadPoolExecutor

    from api import create_app
    from api.web.limits import limiter

    def thread(_):
        with app.app_context():
            return [limiter.storage.incr(key, 60) for _ in range(HITS)]

    try:
        app = create_app({"APP_CONFIG": "testing", "RATELIMIT_ENABLED": True, **settings})
        start.wait(timeout=60)
        with ThreadPoolExecutor(THREADS) as pool:
            results.put([count for counts in pool.map(thread, range(THREADS)) for count in counts])
    except Exception as exc:
        start.abort()  # the others stop waiting
        results.put(repr(exc))


@in_the_database
def test_hits_from_many_workers_and_threads_count_exactly(make_store_app, backend, fresh):
    """Each hit is answered a count no other hit got: no lost update."""
    import multiprocessing

    make_store_app()  # the schema
    # Forked, as gunicorn's workers are, from a clean process that has
    # imported the app once (the first test pays it) rather than from pytest.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    start, results = context.Barrier(WORKERS), context.Queue()
    key = f"concurrency/{fresh.tag}"
    workers = [
        context.Process(target=hits_of_a_worker, args=(backend, key, start, results))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        worker.start()
    try:
        answers = [results.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
    assert not [answer for answer in answers if isinstance(answer, str)]
    counts = sorted(count for answer in answers for count in answer)
    assert counts == list(range(1, WORKERS * THREADS * HITS + 1))


@in_the_database
def test_a_hit_is_its_own_transaction(make_store_app, fresh):
    """Counted on a connection of its own: the request's rollback keeps it,
    and the request's session sees it at once."""
    from sqlalchemy import text

    from api.extensions import db
    from api.web.limits import limiter

    app = make_store_app(RATELIMIT_ENABLED=True)
    key = f"own-transaction/{fresh.tag}"
    with app.test_request_context():
        db.session.execute(text("SELECT count(*) FROM users"))  # the session's transaction
        assert limiter.storage.incr(key, 60) == 1
        db.session.rollback()
        hits = db.session.execute(text("SELECT hits FROM rate_limits WHERE key = :k"), {"k": key})
        assert hits.scalar_one() == 1
        assert limiter.storage.get(key) == 1


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_connection_the_server_dropped_is_tried_once_more(make_store_app, postgres_url, fresh):
    from sqlalchemy.engine import make_url

    from api.web.limits import limiter
    from tests.helpers import POSTGRES_ADMIN_URL, terminate_backends

    app = make_store_app(RATELIMIT_ENABLED=True)
    key = f"dropped/{fresh.tag}"
    with app.app_context():
        assert limiter.storage.incr(key, 60) == 1  # its connection goes back to the pool
        assert terminate_backends(POSTGRES_ADMIN_URL, make_url(postgres_url).database) >= 1
        assert limiter.storage.incr(key, 60) == 2


@pytest.mark.parametrize(
    "url",
    ["sqlite:////nonexistent-directory/app.db", "postgresql+psycopg://postgres@127.0.0.1:{port}/x"],
    ids=["sqlite", "postgres"],
)
def test_database_down_refuses_before_the_view(url, monkeypatch, fresh):
    """No count, no attempt: 503 service_unavailable, and no password is
    checked (the view never runs)."""
    from api import create_app
    from api.accounts import users
    from deploy.processes import free_port

    app = create_app(
        {
            "APP_CONFIG": "testing",
            "SQLALCHEMY_DATABASE_URI": url.format(port=free_port()),
            "RATELIMIT_ENABLED": True,
        }
    )
    checked, authenticate = [], users.authenticate

    def spy(*args):
        checked.append(args)
        return authenticate(*args)

    monkeypatch.setattr(users, "authenticate", spy)
    response = login(app.test_client(), fresh.name(), fresh.addr())
    assert_error(response, 503, "service_unavailable")
    assert checked == []


def test_database_lost_after_the_view_keeps_the_answer(make_app, tmp_path, monkeypatch, fresh):
    """As with Redis: the limit was counted before the view; the database
    failing when the headers are read leaves the view's answer whole."""
    from sqlalchemy.exc import OperationalError

    from api.web.limits import limiter

    app = make_app(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db",
        RATELIMIT_ENABLED=True,
        RATELIMIT_LOGIN="3 per minute",
    )
    client = app.test_client()
    client.post("/api/auth/register", json={"username": fresh.name(), "password": PASSWORD})

    def unreachable(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, Exception("unable to open database file"))

    monkeypatch.setattr(limiter.limiter, "get_window_stats", unreachable)
    response = login(client, fresh.name(), fresh.addr(), password=PASSWORD)
    assert response.status_code == 200, response.json
    assert response.json["access_token"]
    assert "X-RateLimit-Remaining" not in response.headers


def test_a_window_that_ended_starts_again_and_ended_ones_are_deleted(
    make_app, tmp_path, monkeypatch
):
    import time_machine
    from sqlalchemy import text

    from api.extensions import db
    from api.web import limit_storage
    from api.web.limits import limiter

    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db", RATELIMIT_ENABLED=True)
    storage = limiter.storage
    with app.app_context(), time_machine.travel(1_800_000_000, tick=False) as traveller:
        assert [storage.incr("a", 60) for _ in range(3)] == [1, 2, 3]
        assert storage.incr("short", 1) == 1
        assert storage.get_expiry("a") == 1_800_000_060
        traveller.shift(59)
        assert storage.get("a") == 3 and storage.get("short") == 0
        traveller.shift(1)
        assert storage.get("a") == 0
        assert storage.get_expiry("a") == 1_800_000_060  # now: nothing to wait for
        assert storage.incr("a", 60) == 1  # a new window
        assert storage.get_expiry("a") == 1_800_000_120
        monkeypatch.setattr(limit_storage, "PRUNE_ONE_IN", 1)  # this hit prunes
        storage.incr("b", 60)
        keys = db.session.execute(text("SELECT key FROM rate_limits ORDER BY key")).scalars()
        assert list(keys) == ["a", "b"]  # "short" is gone
        traveller.shift(60)
        assert storage.prune() == 2


@in_the_database
def test_a_key_too_long_for_its_column_is_counted_by_its_digest(make_store_app):
    from api.web.limits import limiter

    app = make_store_app(RATELIMIT_ENABLED=True)
    with app.app_context():
        long_key = "k" * 300
        assert [limiter.storage.incr(long_key, 60) for _ in range(2)] == [1, 2]
        assert limiter.storage.incr("k" * 299 + "j", 60) == 1
        assert limiter.storage.get(long_key) == 2
        limiter.storage.clear(long_key)
        assert limiter.storage.get(long_key) == 0
        assert limiter.storage.check()


def test_the_database_counts_fixed_windows_only(make_app, tmp_path):
    from config import ConfigError

    with pytest.raises(ConfigError, match="RATELIMIT_STRATEGY='moving-window' needs REDIS_URL"):
        make_app(
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db",
            RATELIMIT_ENABLED=True,
            RATELIMIT_STRATEGY="moving-window",
        )


def test_only_a_limited_route_pays_for_flask_limiter(limited_app, fresh):
    """Flask-Limiter's before-request check (default, application and meta
    limits, none of which this API sets) is not run; a route without a limit
    gets none of its headers, one with a limit still does."""
    from flask_limiter import Limiter

    hooks = limited_app.before_request_funcs.get(None, [])
    assert not [h for h in hooks if getattr(h, "__func__", None) is Limiter._check_request_limit]
    client = limited_app.test_client()
    assert "X-RateLimit-Limit" not in client.get("/api/health/live").headers
    limited = login(client, fresh.name(), fresh.addr())
    assert limited.headers["X-RateLimit-Limit"] == "3"


def test_a_default_limit_keeps_flask_limiter_s_check(make_app, fresh):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="2 per minute")
    client = app.test_client()
    address = {"REMOTE_ADDR": fresh.addr()}
    for _ in range(2):
        assert client.get("/api/health/live", environ_base=address).status_code == 200
    assert_error(client.get("/api/health/live", environ_base=address), 429, "rate_limited")


def test_every_route_limit_is_made_in_the_limits_module():
    """Only limits made by api/web/limits.py mark their requests, and only
    marked requests get Flask-Limiter's headers: a limit declared elsewhere
    would limit silently, without X-RateLimit-* or Retry-After."""
    import re
    from pathlib import Path

    api = Path(__file__).resolve().parents[2] / "api"
    declared = re.compile(r"limiter\.(limit|shared_limit)\(")
    elsewhere = [
        str(path.relative_to(api))
        for path in api.rglob("*.py")
        if path.name != "limits.py" and declared.search(path.read_text())
    ]
    assert elsewhere == []
