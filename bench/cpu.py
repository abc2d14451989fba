"""CPU per request in process: the WSGI app called directly, no server, no
sockets, no test client.

The same app as the load benchmark serves (production settings, SQLite, the
limiter on with limits no request reaches), and bare Flask (bench/bare_flask.py)
beside it: the figures say where the time goes without gunicorn, the network
or the load tool in the way. Each figure is the best of `--rounds` rounds of
`-n` requests (the machine's other work only ever adds time).
"""

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

PASSWORD = "benchmark password"  # noqa: S105 - a throwaway user in a temp database
UNREACHABLE_LIMIT = "100000000 per minute"


def build_app(instance, algorithm):
    """A production app on SQLite in `instance`, migrated, with one user."""
    os.environ["INSTANCE_PATH"] = str(instance)
    from flask_migrate import upgrade

    from api import create_app

    app = create_app(
        {
            "APP_CONFIG": "production",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/app.db",
            "RATELIMIT_LOGIN": UNREACHABLE_LIMIT,
            "RATELIMIT_REFRESH": UNREACHABLE_LIMIT,
            # Production needs both; no mail is sent in the benchmark.
            "MAIL_URL": "smtp://127.0.0.1:1",
            "APP_URL": "https://app.example/",
            **key_settings(instance, algorithm),
        }
    )
    with app.app_context():
        upgrade()
    client = app.test_client()
    client.post("/api/auth/register", json={"username": "bench", "password": PASSWORD})
    return app


def key_settings(instance, algorithm):
    """Signing material for `algorithm` (an HS* secret, or a new PEM pair) and an
    encryption key."""
    from api.encryption import new_key

    settings = {
        "SECRET_KEY": os.urandom(48).hex(),
        "JWT_ALGORITHM": algorithm,
        "ENCRYPTION_KEYS": new_key(),
    }
    if algorithm.startswith("HS"):
        return {**settings, "JWT_SECRET_KEY": os.urandom(48).hex()}
    from api.auth.key_files import generate_key_files, write_private_files

    keys = Path(instance) / "keys"
    write_private_files(keys, generate_key_files(algorithm))
    return {
        **settings,
        "JWT_PRIVATE_KEY_FILE": str(keys / "jwt_key"),
        "JWT_PUBLIC_KEY_FILE": str(keys / "jwt_key.pub"),
    }


def cases(app):
    """(name, wsgi app, environ) for each measured request."""
    from werkzeug.test import EnvironBuilder

    from bench.bare_flask import app as bare

    client = app.test_client()
    login = {"json": {"username": "bench", "password": PASSWORD}}
    access = client.post("/api/auth/login", **login).get_json()["access_token"]
    cookie = client.post("/api/auth/cookie/login", **login).headers.getlist("Set-Cookie")
    access_cookie = next(c.split(";", 1)[0] for c in cookie if c.startswith("access_token_"))
    bearer = {"Authorization": f"Bearer {access}"}

    def environ(path, headers=None):
        return EnvironBuilder(path=path, headers=headers).get_environ()

    yield "bare Flask", bare, environ("/")
    yield "GET /api/health/live", app, environ("/api/health/live")
    yield "GET /api/auth/token, bearer", app, environ("/api/auth/token", bearer)
    yield "GET /api/me, bearer", app, environ("/api/me", bearer)
    yield "GET /api/me, cookies", app, environ("/api/me", {"Cookie": access_cookie})


def cpu_per_request(app, environ, n, rounds):
    status = []

    def start_response(code, _headers, _exc_info=None):
        status.append(code)

    def call():
        b"".join(app({**environ, "wsgi.input": io.BytesIO(b"")}, start_response))

    for _ in range(50):  # warm caches
        call()
    best = None
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            call()
        elapsed = time.process_time() - start
        best = elapsed if best is None else min(best, elapsed)
    assert status[-1].startswith("200"), status[-1]
    return best / n * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algorithm", default="HS256")
    parser.add_argument("-n", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as instance:
        app = build_app(instance, args.algorithm)
        for name, wsgi_app, environ in cases(app):
            us = cpu_per_request(wsgi_app, environ, args.n, args.rounds)
            print(f"{args.algorithm} {name:32} {us:8.1f} µs CPU/request")


if __name__ == "__main__":
    main()
