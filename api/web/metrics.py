"""Prometheus metrics at `/metrics`, summed over every gunicorn worker.

Under gunicorn, gunicorn.conf.py points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before anything imports prometheus_client: each worker then writes
its values to files there and a scrape adds them up (prometheus_client's
multiprocess mode), so whichever worker answers, the figures are the server's.
Without it (flask run, tests) the process's own registry serves.
"""

import os
import time

from flask import Blueprint, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from api.oauth import errors as oauth_errors

REQUEST_LATENCY = Histogram(
    "jwt_api_request_duration_seconds",
    "Time to answer a request, by method, route template and status (all bounded).",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LOGINS = Counter("jwt_api_logins", "Password logins, by result (ok, failed).", ["result"])
REFRESHES = Counter(
    "jwt_api_refreshes",
    "Refresh token rotations, by result (ok, superseded, reused, revoked, expired).",
    ["result"],
)
REUSE_DETECTIONS = Counter(
    "jwt_api_refresh_reuse_detections",
    "Rotated-out refresh tokens presented after the grace window: the session was revoked.",
)
REVOCATIONS = Counter(
    "jwt_api_session_revocations",
    "Login sessions revoked, by reason "
    "(logout, user, password_change, password_reset, admin, mfa_enabled, mfa_reset, reuse).",
    ["reason"],
)
SECURITY_EVENTS = Counter("jwt_api_security_events", "Security events recorded, by type.", ["type"])
MAILS = Counter(
    "jwt_api_mails",
    "Mails, by outcome (queued: committed to the outbox; sent; retried: an attempt "
    "failed and another is scheduled; given_up: past MAIL_RETRY_HORIZON).",
    ["outcome"],
)
SECOND_FACTORS = Counter(
    "jwt_api_second_factors",
    "Second-factor and passkey checks, by method (totp, recovery_code, passkey) "
    "and result (ok, failed).",
    ["method", "result"],
)
PERSONAL_TOKENS = Counter(
    "jwt_api_personal_access_tokens",
    "Personal access tokens, by action (created; revoked: deleted by their user, "
    "or with every other of the user's on a password reset or a disabled account).",
    ["action"],
)
OAUTH_TOKENS = Counter(
    "jwt_api_oauth_tokens",
    "POST /oauth/token answers, by result (issued, or the RFC 6749 error: invalid_client, "
    "invalid_request, invalid_scope, unsupported_grant_type, unauthorized_client).",
    ["result"],
)
INTROSPECTIONS = Counter(
    "jwt_api_introspections",
    "POST /oauth/introspect answers to authenticated clients, by result (active, inactive).",
    ["result"],
)
RATE_LIMIT_HITS = Counter(
    "jwt_api_rate_limit_hits", "Requests refused by a rate limit, by route.", ["route"]
)

# Every result and reason is served from the start, at 0, so that alerts and
# dashboards see them before the first event. (Rate-limit hits appear with
# the first one, by route; security events with the first of each type.)
for _result in ("ok", "failed"):
    LOGINS.labels(_result)
for _result in ("ok", "superseded", "reused", "revoked", "expired"):
    REFRESHES.labels(_result)
REVOCATION_REASONS = (
    "logout",
    "user",
    "password_change",
    "password_reset",
    "admin",
    "mfa_enabled",
    "mfa_reset",
    "reuse",
)
for _reason in REVOCATION_REASONS:
    REVOCATIONS.labels(_reason)
for _outcome in ("queued", "sent", "retried", "given_up"):
    MAILS.labels(_outcome)
for _method in ("totp", "recovery_code", "passkey"):
    for _result in ("ok", "failed"):
        SECOND_FACTORS.labels(_method, _result)

for _action in ("created", "revoked"):
    PERSONAL_TOKENS.labels(_action)

OAUTH_TOKEN_RESULTS = ("issued", *oauth_errors.CODES)
for _result in OAUTH_TOKEN_RESULTS:
    OAUTH_TOKENS.labels(_result)
for _result in ("active", "inactive"):
    INTROSPECTIONS.labels(_result)

blp = Blueprint("metrics", __name__)


@blp.get("/metrics")
def metrics():
    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def _registry():
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


# Any other method a client makes up shares one series, as unmatched paths do.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method():
    return request.method if request.method in KNOWN_METHODS else "other"


def route():
    """The matched rule (`/api/notes/<int:note_id>`), never the raw path: one
    series per route, whatever paths clients make up."""
    return request.url_rule.rule if request.url_rule else "unmatched"


def count_rate_limit_hit(_limit):
    RATE_LIMIT_HITS.labels(route()).inc()


def _start_timer():
    g.metrics_started = time.perf_counter()


def _observe(response):
    started = g.get("metrics_started")
    if started is not None:
        elapsed = time.perf_counter() - started
        _latency(method(), route(), response.status_code).observe(elapsed)
    return response


# Each series's child, found once: labels() takes a lock and converts its
# values on every call. Bounded as the series are (methods, rules, statuses).
_LATENCY_CHILDREN = {}


def _latency(*labels):
    child = _LATENCY_CHILDREN.get(labels)
    if child is None:
        child = _LATENCY_CHILDREN.setdefault(labels, REQUEST_LATENCY.labels(*labels))
    return child


def init_app(app):
    if not app.config["METRICS_ENABLED"]:
        return
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    # after_request hooks run last-registered first: this one, registered
    # early, sees the response after the views' and the later hooks' work
    # (only the request id's echo, registered before it, comes after).
    app.after_request(_observe)
    app.register_blueprint(blp)
