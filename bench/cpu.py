"""CPU per request in process (Flask's test client, no server, no sockets).

Same app, same routes as the load benchmark: the figures say where the time
goes without gunicorn, the network or the load tool in the way.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

PASSWORD = "benchmark password"  # noqa: S105 - a throwaway user in a temp database


def build_app(instance, algorithm):
    """A production app on SQLite in `instance`, migrated, with one user."""
    os.environ["INSTANCE_PATH"] = str(instance)
    from flask_migrate import upgrade

    from api import create_app

    app = create_app(
        {
            "APP_CONFIG": "production",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/app.db",
            "RATELIMIT_ENABLED": False,
            "LOG_LEVEL": "WARNING",
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


def cases(client):
    """(name, method, path, kwargs) for each measured request."""
    login = {"json": {"username": "bench", "password": PASSWORD}}
    access = client.post("/api/auth/login", **login).get_json()["access_token"]
    yield "bare route (/api/health/live)", "get", "/api/health/live", {}
    bearer = {"headers": {"Authorization": f"Bearer {access}"}}
    yield "GET /api/me, bearer", "get", "/api/me", bearer
    # The test client keeps the cookies from here on; the bearer case is done.
    client.post("/api/auth/cookie/login", **login)
    yield "GET /api/me, cookies", "get", "/api/me", {}


def cpu_per_request(client, method, path, kwargs, n):
    call = getattr(client, method)
    for _ in range(50):  # warm caches
        call(path, **kwargs)
    start = time.process_time()
    for _ in range(n):
        response = call(path, **kwargs)
    elapsed = time.process_time() - start
    assert response.status_code == 200, (path, response.status_code, response.get_data())
    return elapsed / n * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--algorithm", default="HS256")
    parser.add_argument("-n", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as instance:
        app = build_app(instance, args.algorithm)
        client = app.test_client()
        for name, method, path, kwargs in cases(client):
            us = cpu_per_request(client, method, path, kwargs, args.n)
            print(f"{args.algorithm} {name:40} {us:8.1f} µs CPU/request")


if __name__ == "__main__":
    main()
