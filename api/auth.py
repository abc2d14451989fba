"""`token_required`: the decorator every protected view uses instead of
flask-jwt-extended's `jwt_required`, to keep the contract's rule on which
token a request is judged by."""

from functools import wraps

from flask import current_app, request
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import CSRFError


def token_required(refresh=False, fresh=False):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request(refresh=refresh, fresh=fresh, locations=token_locations(refresh))
            return current_app.ensure_sync(view)(*args, **kwargs)

        return wrapper

    return decorator


def token_locations(refresh=False):
    """A request with a bearer header is judged by that header alone, whatever
    cookies come with it.

    flask-jwt-extended falls back to the cookies when the scheme is not spelled
    exactly "Bearer" or is given twice; RFC 7235 makes the scheme
    case-insensitive, so it is normalised here and the cookies are left out.
    """
    header = request.headers.get("Authorization", "")
    parts = [part.split() for part in header.split(",") if part.strip()]
    if not any(words[0].lower() == "bearer" for words in parts):
        _refuse_non_ascii_csrf(refresh)
        return None  # the configured order: headers, then cookies
    for words in parts:
        if words[0].lower() == "bearer":
            words[0] = "Bearer"
    request.environ["HTTP_AUTHORIZATION"] = ", ".join(" ".join(words) for words in parts)
    return ["headers"]


def _refuse_non_ascii_csrf(refresh):
    # hmac.compare_digest raises TypeError on non-ASCII text: refuse it first.
    setting = "JWT_REFRESH_CSRF_HEADER_NAME" if refresh else "JWT_ACCESS_CSRF_HEADER_NAME"
    value = request.headers.get(current_app.config[setting], "")
    if not value.isascii():
        raise CSRFError("CSRF double submit tokens do not match")
