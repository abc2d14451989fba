"""CORS for SPAs on other origins (CORS_ORIGINS), with credentials: cookies
and bearer tokens go only to origins named one by one."""

import re

from flask import request
from flask_cors import CORS

from config import ConfigError

# What a cross-origin SPA sends and may read.
CORS_HEADERS = ["Authorization", "Content-Type", "X-CSRF-TOKEN"]
CORS_EXPOSED = ["Location", "Retry-After", "X-Request-ID", "WWW-Authenticate"]

# scheme://host[:port], nothing else: flask-cors would take a regex-looking
# entry as an unanchored pattern and "null" as an origin.
ORIGIN = re.compile(r"\Ahttps?://[A-Za-z0-9.-]+(:\d{1,5})?\Z")


def init_app(app):
    app.after_request(options_without_html)
    origins = app.config["CORS_ORIGINS"]
    for origin in origins:
        if not ORIGIN.match(origin):
            raise ConfigError(
                f"CORS_ORIGINS entry {origin!r} is not an origin like https://app.example.org"
            )
    if origins:
        CORS(
            app,
            origins=origins,
            supports_credentials=True,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
            max_age=600,
            vary_header=False,  # vary_by_origin says it on every answer instead
        )
        app.after_request(vary_by_origin)


def options_without_html(response):
    """Flask answers OPTIONS itself (Allow; flask-cors adds a preflight's
    headers) with an empty text/html 200: no content, so no content type."""
    if request.method != "OPTIONS":  # every other answer, first and at once
        return response
    rule = request.url_rule
    automatic = rule is not None and getattr(rule, "provide_automatic_options", False)
    if automatic and response.status_code == 200:
        response.status_code = 204
        del response.headers["Content-Type"]
    return response


def vary_by_origin(response):
    """With origins restricted, every answer's CORS headers depend on Origin,
    its absence included, and a shared cache (the JWKS is public) must not
    serve one origin's answer to another. flask-cors's vary_header says so
    only with several origins configured, and only to an allowed one."""
    response.vary.add("Origin")
    return response
