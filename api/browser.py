"""What browsers get: CORS for SPAs on other origins, the demo page at `/`,
and the interactive API docs' own Swagger UI files (no CDN)."""

import re

from flask import Blueprint, current_app, send_from_directory
from flask_cors import CORS
from swagger_ui_bundle import swagger_ui_path

from config import ConfigError

blp = Blueprint("browser", __name__)

# What a cross-origin SPA sends and may read.
CORS_HEADERS = ["Authorization", "Content-Type", "X-CSRF-TOKEN"]
CORS_EXPOSED = ["Location", "Retry-After", "X-Request-ID", "WWW-Authenticate"]


@blp.get("/")
def demo_page():
    # The page and its script are the app's static files (api/static).
    return send_from_directory(current_app.static_folder, "index.html", max_age=0)


@blp.get("/api/docs/assets/<path:filename>")
def swagger_ui_asset(filename):
    return send_from_directory(str(swagger_ui_path), filename, max_age=3600)


# scheme://host[:port], nothing else: flask-cors would take a regex-looking
# entry as an unanchored pattern and "null" as an origin.
ORIGIN = re.compile(r"\Ahttps?://[A-Za-z0-9.-]+(:\d{1,5})?\Z")


def init_cors(app):
    origins = app.config["CORS_ORIGINS"]
    for origin in origins:
        if not ORIGIN.match(origin):
            # Cookies and bearer tokens go only to origins named one by one.
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


def init_app(app):
    init_cors(app)
    app.register_blueprint(blp)
