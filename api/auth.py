"""`token_required`: the decorator every protected view uses instead of
flask-jwt-extended's `jwt_required`, to keep the contract's rule on which
token a request is judged by."""

from functools import wraps

from flask import current_app, request
from flask_jwt_extended import get_current_user, verify_jwt_in_request
from flask_jwt_extended.exceptions import CSRFError, InvalidHeaderError, NoAuthorizationError
from flask_smorest import abort


def token_required(refresh=False, fresh=False):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request(refresh=refresh, fresh=fresh, locations=token_locations(refresh))
            return current_app.ensure_sync(view)(*args, **kwargs)

        return wrapper

    return decorator


def roles_required(*roles):
    """An access token whose user holds every one of `roles`; else 403.

    The user's stored roles decide, not the token's claim: a demotion revokes
    the user's sessions at once anyway (api/admin.py), and this way a token
    minted a moment before it cannot slip through.
    """

    def decorator(view):
        @token_required()
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not set(roles) <= set(get_current_user().roles):
                abort(403, message="You may not do this.")
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
    bearer = [words for words in parts if words[0].lower() == "bearer"]
    if not bearer:
        _refuse_non_ascii_csrf(refresh)
        return None  # the configured order: headers, then cookies
    if len(bearer) > 1:
        raise InvalidHeaderError("more than one bearer token")
    if len(bearer[0]) == 1:
        raise NoAuthorizationError("a bearer scheme without a token")
    bearer[0][0] = "Bearer"
    request.environ["HTTP_AUTHORIZATION"] = ", ".join(" ".join(words) for words in parts)
    return ["headers"]


def _refuse_non_ascii_csrf(refresh):
    """hmac.compare_digest raises TypeError on non-ASCII text: where
    flask-jwt-extended is about to compare, refuse such a value first."""
    config = current_app.config
    kind = "REFRESH" if refresh else "ACCESS"
    if request.method not in config["JWT_CSRF_METHODS"]:
        return
    if config[f"JWT_{kind}_COOKIE_NAME"] not in request.cookies:
        return
    if not request.headers.get(config[f"JWT_{kind}_CSRF_HEADER_NAME"], "").isascii():
        raise CSRFError("CSRF double submit tokens do not match")
