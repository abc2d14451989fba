"""The browser transport: tokens in httpOnly cookies, csrf values readable."""

from flask import after_this_request, request
from flask_jwt_extended import set_access_cookies, set_refresh_cookies, unset_jwt_cookies

from config import ConfigError

SAMESITE_VALUES = ("Lax", "Strict", "None")
JWT_COOKIES = ("access_token_cookie", "refresh_token_cookie")


def check_cookie_config(config):
    samesite = config["JWT_COOKIE_SAMESITE"]
    if samesite not in SAMESITE_VALUES:
        raise ConfigError(f"JWT_COOKIE_SAMESITE must be one of {', '.join(SAMESITE_VALUES)}")
    # Browsers drop SameSite=None cookies that are not Secure.
    if samesite == "None" and not config["JWT_COOKIE_SECURE"]:
        raise ConfigError("JWT_COOKIE_SAMESITE=None needs JWT_COOKIE_SECURE=true")


def set_token_cookies(pair):
    @after_this_request
    def add_cookies(response):
        set_access_cookies(response, pair.access_token)
        set_refresh_cookies(response, pair.refresh_token)
        return response


def cookie_session(user, pair):
    """The cookie-mode answer: no token, but the csrf values for SPAs on
    another site, which cannot read this API's csrf cookies."""
    set_token_cookies(pair)
    return {
        "user": user,
        "expires_in": pair.expires_in,
        "refresh_expires_in": pair.refresh_expires_in,
        "csrf_access_token": pair.csrf_access_token,
        "csrf_refresh_token": pair.csrf_refresh_token,
    }


def clear_cookies_if_sent():
    """A session that ends takes the cookies it came with (if it came with any)."""
    if any(name in request.cookies for name in JWT_COOKIES):
        after_this_request(_clear_cookies)


def _clear_cookies(response):
    unset_jwt_cookies(response)
    return response
