"""The OpenAPI document (flask-smorest builds it from the routes' decorators):
the contract's error body on every operation, the four ways a request
proves who it is, and a description that says which one to pick.

The repository keeps the document as served in docs/openapi.json, so that a
change to it shows in review; a test fails while the two differ, and
`make openapi` (`flask openapi-snapshot`) writes it anew.
"""

from apispec import BasePlugin
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
    "personalAccessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "pat_…",
        "description": "A personal access token (POST /api/me/tokens), on the routes "
        "whose scope it holds.",
    },
    "clientBasicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "A client's id and secret (flask clients create), at /oauth/token "
        "and /oauth/introspect; or client_id and client_secret in the form body.",
    },
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
- **`personalAccessToken`**: scripts and CI jobs. `POST /api/me/tokens` makes one
  (`pat_…`) with the scopes it needs; it works only on the operations whose
  `x-required-scopes` it holds (`GET /api/me`, the notes).
- **`clientBasicAuth`**: other services, at `/oauth/token` and `/oauth/introspect`:
  the client's id and secret (`flask clients create`) as HTTP Basic, or as
  `client_id` and `client_secret` in the form body.
"""

# CSRF applies to cookie-authenticated unsafe methods only.
AUTH_DOC = {"security": [{"bearerAuth": []}, {"cookieAuth": [], "csrfHeader": []}]}
READ_AUTH_DOC = {"security": [{"bearerAuth": []}, {"cookieAuth": []}]}
REFRESH_AUTH_DOC = {"security": [{"bearerAuth": []}, {"refreshCookieAuth": [], "csrfHeader": []}]}


def init_app(app, api):
    # Deep-merged into the document; API_SPEC_OPTIONS, if configured, still wins.
    spec_kwargs = {"info": {"description": DESCRIPTION}, "extra_plugins": [ScopesPlugin()]}
    api.init_app(app, spec_kwargs=spec_kwargs)
    for name, scheme in SECURITY_SCHEMES.items():
        api.spec.components.security_scheme(name, scheme)


def document(app):
    """The document as `/api/openapi.json` serves it."""
    return app.test_client().get("/api/openapi.json").json


def document_scope(view, scope):
    """List a route's scope on its operation (api/auth/identity.py's
    `token_required(scope=...)`). OpenAPI 3.0 keeps scopes in security
    requirements for OAuth 2.0 schemes only, and a personal access token is a
    bearer token of its own: the scope goes in the operation's
    `x-required-scopes` and its description, and the personalAccessToken
    scheme joins the ways in."""
    apidoc = getattr(view, "_apidoc", {})
    manual = {**apidoc.get("manual_doc", {}), SCOPES_KEY: [scope] if scope else []}
    view._apidoc = {**apidoc, "manual_doc": manual}
    return view


SCOPES_KEY = "x-required-scopes"


class ScopesPlugin(BasePlugin):
    """An operation whose route names a scope says so, and lists the
    personalAccessToken scheme among its ways in (`document_scope`)."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for operation in (operations or {}).values():
            scopes = operation.pop(SCOPES_KEY, None)
            if not scopes:
                continue
            operation[SCOPES_KEY] = scopes
            operation["security"] = [*operation.get("security", []), {"personalAccessToken": []}]
            note = f"Scope: `{' '.join(scopes)}` (a personal access token needs it)."
            operation["description"] = "\n\n".join(
                part for part in (operation.get("description"), note) if part
            )
