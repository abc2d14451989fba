"""Abuse limits (Flask-Limiter): password guessing and token churn.

Counted in Redis when REDIS_URL is set, so every worker and instance shares
them; otherwise in the app's database (api/web/limit_storage.py), so every
worker of an instance (and every instance on one PostgreSQL) shares them too.
Only an in-memory SQLite database, which lives in one process, counts in
that process's memory.
"""

import math
import time
from functools import wraps

from flask import current_app, g, request
from flask_limiter import Limiter
from limits import parse_many
from redis import RedisError
from sqlalchemy.exc import DBAPIError

from api.schemas import canonical_email
from api.web import limit_storage
from api.web.metrics import count_rate_limit_hit
from config import ConfigError


def client_address():
    return request.remote_addr or "unknown"


def username_key():
    # The body has passed its schema (the limits come after it): a username of
    # at most 64 characters. Cut there all the same, so that no key outgrows it.
    name = body_field("username")
    return f"username:{name.lower()[:64]}" if name is not None else "username:"


def login_limit():
    return current_app.config["RATELIMIT_LOGIN"]


def refresh_limit():
    return current_app.config["RATELIMIT_REFRESH"]


def mail_limit():
    return current_app.config["RATELIMIT_EMAIL"]


def oauth_token_limit():
    return current_app.config["RATELIMIT_OAUTH_TOKEN"]


# One Limiter per process, bound by init_app. (Flask-Limiter keeps the first
# app's key prefix; only the test suite, which builds many apps, notices.)
limiter = Limiter(key_func=client_address, on_breach=count_rate_limit_hit)

# Set on a request whose route has a limit: only those need Flask-Limiter's
# after-request work (its X-RateLimit-* headers, conditional deductions).
_CHECKED = "rate_limit_checked"


def _route_limit(decorator):
    """A Flask-Limiter decorator that also marks the request as limited."""

    def apply(view):
        limited = decorator(view)

        @wraps(limited)
        def wrapper(*args, **kwargs):
            g.setdefault(_CHECKED, True)
            return limited(*args, **kwargs)

        return wrapper

    return apply


# Login, cookie login and register share one budget per address and one per
# username, so switching between them buys an attacker nothing; a password
# change (a guess at the current password) spends the address's budget too.
per_address = _route_limit(
    limiter.shared_limit(login_limit, scope="credentials", key_func=client_address)
)
per_username = _route_limit(
    limiter.shared_limit(login_limit, scope="credentials-user", key_func=username_key)
)
refresh_per_address = _route_limit(limiter.limit(refresh_limit, key_func=client_address))


def credentials(view):
    """Both credential budgets: the caller's address and the username tried."""
    return per_address(per_username(view))


def second_factor(username_of):
    """The credential budgets again, for a code sent after a right password:
    the caller's address, and the account whose login it finishes
    (`username_of()`, shared with that username's password guesses), so a
    stolen password buys no more guesses at the code than at a password."""
    per_account = _route_limit(
        limiter.shared_limit(
            login_limit,
            scope="credentials-user",
            key_func=lambda: f"username:{(username_of() or '').lower()[:64]}",
        )
    )
    return lambda view: per_address(per_account(view))


# Every route that mails someone (a reset, a verification, a change of
# address) shares one budget per client address and one per address mailed:
# nobody can flood a mailbox, nor make this server a spammer's relay.
def mail_sending(address_of):
    """Both mail budgets; `address_of()`: the address the view would mail (or None)."""

    def mailed_address_key():
        return "email:" + (address_of() or "").lower()[:254]

    # No address, no mail (a 409 nothing_to_verify): no mailbox's budget is spent.
    per_mailed = limiter.shared_limit(
        mail_limit,
        scope="mail-to",
        key_func=mailed_address_key,
        exempt_when=lambda: address_of() is None,
    )
    per_address = limiter.shared_limit(
        mail_limit, scope="mail", key_func=client_address, exempt_when=lambda: address_of() is None
    )
    return _route_limit(lambda view: per_address(per_mailed(view)))


def spend_client_budget(client_id):
    """POST /oauth/token's budget per client, spent by a client that has
    proved its secret, in one atomic step (a count that is read before the
    view and added after it lets every request in flight through at once);
    None, or the seconds to wait. A client's id is no secret (it is in its
    tokens): requests made in its name without the secret spend only their
    address's budget (`oauth_per_address`), so they cannot shut it out, and
    its 256-bit secret needs no budget to stay unguessed. This one stops a
    leaked secret used from many addresses."""
    config = current_app.config
    if not config["RATELIMIT_ENABLED"]:
        return None
    keys = (config["RATELIMIT_KEY_PREFIX"], "client:" + client_id, "oauth-token-client")
    for item in parse_many(oauth_token_limit()):
        if not limiter.limiter.hit(item, *keys):
            count_rate_limit_hit(item)
            reset = limiter.limiter.get_window_stats(item, *keys).reset_time
            return max(1, math.ceil(reset - time.time()))
    return None


# Both OAuth endpoints, per address: every request to /oauth/token, and each
# failed client authentication at /oauth/introspect (resource servers ask on
# every request they serve; only a wrong secret is spent).
oauth_per_address = _route_limit(
    limiter.shared_limit(oauth_token_limit, scope="oauth-token", key_func=client_address)
)
failed_client_per_address = _route_limit(
    limiter.shared_limit(
        oauth_token_limit,
        scope="oauth-failed-client",
        key_func=client_address,
        deduct_when=lambda response: response.status_code == 401,
    )
)


def body_email():
    """The body's address, spelled as it is stored: one budget per mailbox."""
    address = body_field("email")
    return canonical_email(address) if address is not None else None


def body_field(name):
    """A field of the JSON body, parsed once already (api/web/json_bodies.py)
    and passed by its schema (the limits come after it)."""
    body = g.get("json_body")
    value = body.get(name) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def init_app(app):
    config = app.config
    # Flask-Limiter would only log a mistyped limit, and limit nothing.
    for name in (
        "RATELIMIT_LOGIN",
        "RATELIMIT_REFRESH",
        "RATELIMIT_EMAIL",
        "RATELIMIT_OAUTH_TOKEN",
    ):
        try:
            parse_many(config[name])
        except ValueError as exc:
            raise ConfigError(
                f"{name}={config[name]!r} is not a limit like '10 per minute'"
            ) from exc
    config.setdefault("RATELIMIT_STORAGE_URI", config.get("REDIS_URL") or _local_storage(config))
    config.setdefault("RATELIMIT_KEY_PREFIX", config["REDIS_KEY_PREFIX"] + "limits")
    if config["RATELIMIT_STORAGE_URI"].startswith(limit_storage.SCHEME + ":"):
        limit_storage.check_usable(config)
    if config["RATELIMIT_STORAGE_URI"].startswith("redis"):
        # Fail fast (503) rather than hang a worker when Redis is away.
        options = {"socket_connect_timeout": 1, "socket_timeout": 1}
        config.setdefault("RATELIMIT_STORAGE_OPTIONS", options)
    limiter.init_app(app)
    _check_on_limited_routes_only(app)
    _keep_answer_without_headers(app)


# Limits Flask-Limiter's before-request hook would check on every request.
_EVERY_ROUTE_LIMITS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META")


def _check_on_limited_routes_only(app):
    """Flask-Limiter checks default, application and meta limits before every
    request, about a seventh of a bare route's time. This API sets none: each
    limit is on its route, checked by its decorator. So the hook goes, unless
    one of those is configured."""
    if any(app.config.get(name) for name in _EVERY_ROUTE_LIMITS) or _limits_on_every_route():
        return
    hooks = app.before_request_funcs.get(None, [])
    hooks[:] = [hook for hook in hooks if getattr(hook, "__func__", None) is not _BEFORE]


_BEFORE = Limiter._check_request_limit


def _limits_on_every_route():
    """The process's one Limiter keeps the first app's default, application and
    meta limits, whatever a later app's settings say."""
    manager = limiter.limit_manager
    return bool(manager._default_limits or manager._application_limits or limiter._meta_limits)


def _local_storage(config):
    if limit_storage.is_in_memory_sqlite(config["SQLALCHEMY_DATABASE_URI"]):
        return "memory://"
    return f"{limit_storage.SCHEME}://"


def _keep_answer_without_headers(app):
    """Flask-Limiter counts a request before its view, then reads the count
    again after it, in an after_request hook, for the X-RateLimit-* and
    Retry-After headers. Should its store (Redis, the database) go away in
    between, that read raised outside every error handler and the view's
    answer, already committed (a new session, a rotated refresh token), became
    a 500. The limit has been enforced by then: the answer goes out, without
    those headers."""
    if not app.config["RATELIMIT_ENABLED"]:
        return  # Flask-Limiter added no hooks
    hooks = app.after_request_funcs.setdefault(None, [])
    for index, hook in enumerate(hooks):
        if getattr(hook, "func", None) is getattr(Limiter, "_Limiter__inject_headers", None):
            hooks[index] = _headers_if_reachable(hook)
            return
    raise RuntimeError("Flask-Limiter's header hook was not found: check api/web/limits.py")


def _headers_if_reachable(inject_headers):
    def hook(response):
        if not g.get(_CHECKED):
            return response  # no limit on this route: nothing to add
        try:
            response = inject_headers(response)
            if response.status_code != 429:
                # Flask-Limiter sends it on every answer of a limited route;
                # on a 401 session_expired it would say "retry" for "log in".
                response.headers.pop("Retry-After", None)
            return response
        except (RedisError, DBAPIError) as exc:
            current_app.logger.error(
                "rate-limit store unavailable after the view; answered without its headers: %s",
                type(exc).__name__,
            )
            return response

    return hook
