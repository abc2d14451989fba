"""The OpenAPI document (flask-smorest builds it from the routes' decorators):
the contract's error body on every operation, the four ways a request
proves who it is, and a description that says which one to pick.

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
# The document's info.description: which of the schemes above to pick, shown
# at the top of /api/docs (Markdown). The demo page at `/` links back here.
DESCRIPTION = """\
[The demo page](/) shows the browser flow working. Pick **one** way in
(under *Authorize*; when a bearer header is sent, it alone decides):

- **`bearerAuth`**: Postman, curl, mobile apps, other services. `POST /api/auth/login`
  answers a token pair: authorize with its `access_token`; for `POST /api/auth/refresh`
  only, with its `refresh_token` (the answer is a new pair: keep both, the old
  refresh token is spent).
- **`cookieAuth`** + **`csrfHeader`**: the browser flow. `POST /api/auth/cookie/login`
  sets httpOnly cookies the browser sends by itself (this page cannot set them);
  on POST, PUT, PATCH and DELETE put the login answer's `csrf_access_token` in
  `csrfHeader` (`X-CSRF-TOKEN`).
- **`refreshCookieAuth`** + **`csrfHeader`**: the browser flow's refresh, for
  `POST /api/auth/refresh` only, with `csrf_refresh_token` in `X-CSRF-TOKEN`.
"""

# CSRF applies to cookie-authenticated unsafe methods only.
AUTH_DOC = {"security": [{"bearerAuth": []}, {"cookieAuth": [], "csrfHeader": []}]}
READ_AUTH_DOC = {"security": [{"bearerAuth": []}, {"cookieAuth": []}]}
REFRESH_AUTH_DOC = {"security": [{"bearerAuth": []}, {"refreshCookieAuth": [], "csrfHeader": []}]}


def init_app(app, api):
    # Deep-merged into the document; API_SPEC_OPTIONS, if configured, still wins.
    api.init_app(app, spec_kwargs={"info": {"description": DESCRIPTION}})
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)


def document(app):
    """The document as `/api/openapi.json` serves it."""
    return app.test_client().get("/api/openapi.json").json
