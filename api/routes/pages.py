"""What browsers load: the demo page at `/` and the interactive API docs'
own Swagger UI files (served here: /api/docs works offline, with no CDN)."""

from flask import Blueprint, current_app, send_from_directory
from swagger_ui_bundle import swagger_ui_path

blp = Blueprint("browser", __name__)


@blp.get("/")
def demo_page():
    # The page and its script are the app's static files (api/static).
    return send_from_directory(current_app.static_folder, "index.html", max_age=0)


@blp.get("/api/docs/assets/<path:filename>")
def swagger_ui_asset(filename):
    return send_from_directory(str(swagger_ui_path), filename, max_age=3600)
