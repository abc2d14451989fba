"""The one error envelope, `{"error", "message"[, "details"]}`, from every layer:
routing, validation, flask-jwt-extended, the database and unexpected exceptions.
Under /oauth/* it adds RFC 6749 §5.2's `error_description` (the message).

Views never build error JSON: they call `flask_smorest.abort(status, error=...,
message=...)` and this module shapes the answer.
"""

import re

from flask import current_app, jsonify, request
from flask_jwt_extended.exceptions import CSRFError, WrongTokenError
from redis import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import RequestRedirect

from api.auth.revocation import StoreUnavailable
from api.extensions import db, jwt
from api.oauth import errors as oauth_errors
from api.web.json_bodies import is_oauth_request
from api.web.logs import request_id

ERROR_CODES = {
    400: ("bad_request", "The request body is not valid JSON."),
    401: ("unauthorized", "Authentication is required."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "Nothing is here."),
    405: ("method_not_allowed", "This method is not allowed here."),
    408: ("request_timeout", "The request took too long to arrive."),
    409: ("conflict", "The request conflicts with the current state."),
    413: ("payload_too_large", "The request body is too large."),
    414: ("uri_too_long", "The URL is too long."),
    415: ("unsupported_media_type", "Send the body as JSON (Content-Type: application/json)."),
    422: ("validation_error", "The request body is not valid."),
    429: ("rate_limited", "Too many requests; try again later."),
    431: ("request_header_fields_too_large", "The request headers are too large."),
    500: ("internal_error", "Something went wrong on our side."),
    501: ("not_implemented", "This request is not supported."),
    503: ("service_unavailable", "The service is unavailable; try again later."),
}
# Only these of werkzeug's own headers survive into an error response.
KEPT_HEADERS = ("Allow", "Retry-After")


def snake_case(reason):
    """The code for a status outside the contract's table: its reason phrase."""
    return re.sub(r"[^a-z0-9]+", "_", reason.lower()).strip("_")


def error_response(status, error, message, details=None, headers=None, extra=None):
    body = {"error": error, "message": message, **(extra or {})}
    if is_oauth_request():
        # RFC 6749 §5.2's shape, whichever layer answers (Authlib, routing,
        # the limiter, the database): its `error_description` is the message,
        # and a 400 of another layer (a broken body) is its `invalid_request`.
        body["error_description"] = message
        if status == 400 and error not in oauth_errors.CODES:
            body["error"] = "invalid_request"
    if details:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def handle_http_exception(exc):
    """Shape every HTTPException, including webargs' validation aborts."""
    status = exc.code or 500
    default_error, default_message = ERROR_CODES.get(status, (snake_case(exc.name), exc.name))
    data = getattr(exc, "data", None) or {}
    headers = {k: v for k, v in exc.get_headers() if k in KEPT_HEADERS}
    headers.update(data.get("headers") or {})
    if status == 500:
        return internal_error(exc.original_exception)
    if status == 422 and "query" in (data.get("messages") or {}):
        default_message = "The query string is not valid."
    return error_response(
        status,
        data.get("error", default_error),
        data.get("message", default_message),
        details=_details(data.get("messages")) if status == 422 else None,
        headers=headers,
        extra=data.get("extra"),
    )


def _details(messages):
    """webargs nests errors by location ({"json": {...}}); clients want fields."""
    details = {}
    for by_field in (messages or {}).values():
        details.update(by_field)
    return details


def unexpected_error(exc):
    # Registered for Exception, so Flask does not log it a second time.
    return internal_error(exc)


def internal_error(original):
    # The id is in the response too: a user's report leads to this line.
    rid = request_id()
    current_app.logger.error(
        "unhandled exception, request id %s", rid, exc_info=original, extra={"request_id": rid}
    )
    response = error_response(500, *ERROR_CODES[500])
    response.headers["X-Request-ID"] = rid
    return response


def database_unavailable(exc):
    db.session.rollback()
    # The driver's message (no SQL, no parameters) tells a down server from,
    # say, a database whose migrations were never applied.
    current_app.logger.error("database unavailable: %s: %s", type(exc.orig).__name__, exc.orig)
    return error_response(503, "service_unavailable", "The database is unavailable.")


def store_unavailable(exc):
    # Refuse, never let through.
    db.session.rollback()
    current_app.logger.error("revocation store unavailable: %s", exc)
    return error_response(503, "service_unavailable", "The revocation store is unavailable.")


def limits_unavailable(exc):
    # Flask-Limiter's Redis: without a count, no password guess gets through.
    db.session.rollback()
    current_app.logger.error("rate-limit store unavailable: %s", type(exc).__name__)
    return error_response(503, "service_unavailable", "The rate-limit store is unavailable.")


def bearer_challenge(www_error="invalid_token"):
    """RFC 6750 §3: what a 401 to a bearer-token request says in WWW-Authenticate."""
    return {"WWW-Authenticate": f'Bearer error="{www_error}"'}


def token_error(error, message, status=401, www_error="invalid_token"):
    """A JWT failure, with RFC 6750's WWW-Authenticate challenge."""
    return error_response(status, error, message, headers=bearer_challenge(www_error))


def _kind(claims):
    return "refresh" if claims.get("type") == "refresh" else "access"


def register_jwt_callbacks():
    """flask-jwt-extended answers 401/422 with its own bodies; use the contract's."""

    @jwt.unauthorized_loader
    def missing(_reason):
        return token_error(
            "missing_token",
            "No token in the Authorization header nor in the cookies.",
            www_error="invalid_request",
        )

    @jwt.invalid_token_loader
    def invalid(_reason):
        # PyJWT's reason stays out of the response: it helps only an attacker.
        return token_error("invalid_token", "The token is invalid.")

    @jwt.token_verification_failed_loader
    @jwt.user_lookup_error_loader
    def unknown_user(_header, _claims):
        return token_error("invalid_token", "The token is invalid.")

    @jwt.expired_token_loader
    def expired(_header, claims):
        return token_error("token_expired", f"The {_kind(claims)} token has expired.")

    @jwt.revoked_token_loader
    def revoked(_header, _claims):
        return token_error("token_revoked", "The token's session has ended.")

    @jwt.needs_fresh_token_loader
    def not_fresh(_header, _claims):
        return token_error("fresh_token_required", "Log in with your password again to do this.")


def wrong_token_type(_exc):
    return token_error(
        "wrong_token_type", "A refresh token where an access token is needed, or the reverse."
    )


def csrf_failed(_exc):
    return error_response(
        403, "csrf_failed", "Send the csrf cookie's value in the X-CSRF-TOKEN header."
    )


def no_routing_redirects():
    """Werkzeug answers a path it would tidy (`/api//notes//1`, a rule's missing
    trailing slash) with an HTML 308 to a URL built from the client's Host
    header, which re-sends a POST to another host; Flask passes that redirect
    by every error handler. This API serves no such path: 404."""
    if isinstance(request.routing_exception, RequestRedirect):
        raise NotFound()


def init_app(app):
    """Call after JWTManager and Api: later handlers for a class replace earlier ones."""
    register_jwt_callbacks()
    # `/api//notes` matches nothing (404), whatever the method: not even a 405.
    app.url_map.merge_slashes = False
    app.before_request(no_routing_redirects)
    app.register_error_handler(Exception, unexpected_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(WrongTokenError, wrong_token_type)
    app.register_error_handler(CSRFError, csrf_failed)
    app.register_error_handler(OperationalError, database_unavailable)
    app.register_error_handler(InterfaceError, database_unavailable)
    app.register_error_handler(StoreUnavailable, store_unavailable)
    app.register_error_handler(RedisError, limits_unavailable)
