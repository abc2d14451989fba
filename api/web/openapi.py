"""The OpenAPI document (flask-smorest builds it from the routes' decorators):
the contract's error body on every operation, and the four ways a request
proves who it is.

The repository keeps the document as served in docs/openapi.json, so that a
change to it shows in review; a test fails while the two differ, and
`make openapi` (`flask openapi-snapshot`) writes it anew.
"""

from flask_smorest import Api as SmorestApi

from api.schemas import ErrorSchema


class Api(SmorestApi):
    # Documents the contract's error body; api/web/errors.py shapes the answer.
    ERROR_SCHEMA = ErrorSchema


# Protected routes take a bearer header, or the cookie (plus X-CSRF-TOKEN on
# unsafe methods). Which to use: a bearer header from scripts, mobile apps and
# Postman; the cookies from a browser page.
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "access_token_cookie"},
    "refreshCookieAuth": {"type": "apiKey", "in": "cookie", "name": "refresh_token_cookie"},
    "csrfHeader": {"type": "apiKey", "in": "header", "name": "X-CSRF-TOKEN"},
}
# CSRF applies to cookie-authenticated unsafe methods only.
AUTH_DOC = {"security": [{"bearerAuth": []}, {"cookieAuth": [], "csrfHeader": []}]}
READ_AUTH_DOC = {"security": [{"bearerAuth": []}, {"cookieAuth": []}]}
REFRESH_AUTH_DOC = {"security": [{"bearerAuth": []}, {"refreshCookieAuth": [], "csrfHeader": []}]}


def init_app(app, api):
    api.init_app(app)
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)


def document(app):
    """The document as `/api/openapi.json` serves it."""
    return app.test_client().get("/api/openapi.json").json
