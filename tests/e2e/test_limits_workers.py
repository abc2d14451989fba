"""Rate limits across gunicorn's workers without Redis: counted in the
database (api/web/limit_storage.py), a limit is the instance's, not each
worker's. (Kept in each worker's memory, 12 wrong logins against a limit of
5 over 3 workers got no 429.)"""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from deploy.processes import Gunicorn, server_env

LIMIT, ATTEMPTS = 5, 12
# Which worker accepts a connection is the kernel's choice: now and then one
# worker takes all 12. Such a round proves nothing about sharing, so another
# round follows, from another address and for another username (fresh budgets).
ROUNDS = 5


@pytest.fixture(params=["sqlite", "postgres"])
def server(request, tmp_path):
    settings = {
        "WEB_CONCURRENCY": "3",
        "RATELIMIT_LOGIN": f"{LIMIT} per minute",
        # Each round's client address comes from X-Forwarded-For.
        "TRUSTED_PROXY_HOPS": "1",
    }
    if request.param == "postgres":
        settings["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    live = Gunicorn(server_env(tmp_path, **settings), tmp_path / "gunicorn.log").start()
    yield live
    live.stop()


def wrong_logins(server, round_):
    def attempt(i):
        # No session: a new connection each time, so any worker may answer.
        return requests.post(
            f"{server.url}/api/auth/login",
            json={"username": f"mallory{round_}", "password": "wrong password"},
            headers={"X-Forwarded-For": f"203.0.113.{round_}", "X-Request-ID": f"{round_}-{i}"},
            timeout=10,
        )

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        return list(pool.map(attempt, range(ATTEMPTS)))


def workers_that_answered(server, round_):
    served = server.wait_for_access("/api/auth/login", count=ATTEMPTS * (round_ + 1))
    return {r["pid"] for r in served if r.get("request_id", "").startswith(f"{round_}-")}


def test_wrong_logins_are_limited_across_workers(server):
    for round_ in range(ROUNDS):
        responses = wrong_logins(server, round_)
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [401] * LIMIT + [429] * (ATTEMPTS - LIMIT), server.output()[-2000:]
        for response in responses:
            if response.status_code == 429:
                assert response.json()["error"] == "rate_limited"
                assert 0 < int(response.headers["Retry-After"]) <= 60
        if len(workers_that_answered(server, round_)) >= 2:
            return  # several workers answered, and spent one budget
    pytest.fail(f"one worker answered every login in {ROUNDS} rounds")
