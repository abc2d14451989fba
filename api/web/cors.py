"""CORS for SPAs on other origins (CORS_ORIGINS), with credentials: cookies
and bearer tokens go only to origins named one by one."""

import re

from flask_cors import CORS

from config import ConfigError

# What a cross-origin SPA sends and may read.
CORS_HEADERS = ["Authorization", "Content-Type", "X-CSRF-TOKEN"]
CORS_EXPOSED = ["Location", "Retry-After", "X-Request-ID", "WWW-Authenticate"]

# scheme://host[:port], nothing else: flask-cors would take a regex-looking
# entry as an unanchored pattern and "null" as an origin.
ORIGIN = re.compile(r"\Ahttps?://[A-Za-z0-9.-]+(:\d{1,5})?\Z")


def init_app(app):
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
        )
