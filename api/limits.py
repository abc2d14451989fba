"""Abuse limits (Flask-Limiter): password guessing and token churn.

Counted in Redis when REDIS_URL is set, so every worker and instance shares
them; otherwise in each process's memory (a limit then applies per worker).
"""

from flask import current_app, g, request
from flask_limiter import Limiter
from limits import parse_many

from api.metrics import count_rate_limit_hit
from config import ConfigError


def client_address():
    return request.remote_addr or "unknown"


def username_key():
    # The body was parsed once already (api/json_http.check_body).
    body = g.get("json_body")
    name = body.get("username") if isinstance(body, dict) else None
    return f"username:{name.lower()}" if isinstance(name, str) else "username:"


def login_limit():
    return current_app.config["RATELIMIT_LOGIN"]


def refresh_limit():
    return current_app.config["RATELIMIT_REFRESH"]


# One Limiter per process, bound by init_app. (Flask-Limiter keeps the first
# app's key prefix; only the test suite, which builds many apps, notices.)
limiter = Limiter(key_func=client_address, on_breach=count_rate_limit_hit)

# Login, cookie login and register share one budget per address and one per
# username, so switching between them buys an attacker nothing.
per_address = limiter.shared_limit(login_limit, scope="credentials", key_func=client_address)
per_username = limiter.shared_limit(login_limit, scope="credentials-user", key_func=username_key)
refresh_per_address = limiter.limit(refresh_limit, key_func=client_address)


def init_app(app):
    config = app.config
    # Flask-Limiter would only log a mistyped limit, and limit nothing.
    for name in ("RATELIMIT_LOGIN", "RATELIMIT_REFRESH"):
        try:
            parse_many(config[name])
        except ValueError as exc:
            raise ConfigError(
                f"{name}={config[name]!r} is not a limit like '10 per minute'"
            ) from exc
    config.setdefault("RATELIMIT_STORAGE_URI", config.get("REDIS_URL") or "memory://")
    config.setdefault("RATELIMIT_KEY_PREFIX", config["REDIS_KEY_PREFIX"] + "limits")
    if config["RATELIMIT_STORAGE_URI"].startswith("redis"):
        # Fail fast (503) rather than hang a worker when Redis is away.
        options = {"socket_connect_timeout": 1, "socket_timeout": 1}
        config.setdefault("RATELIMIT_STORAGE_OPTIONS", options)
    limiter.init_app(app)
