"""What browsers load: the demo page at `/` (and at the mails' link paths,
/verify-email and /reset-password) and the interactive API docs'
own Swagger UI files (served here: /api/docs works offline, with no CDN).

The Swagger UI files are swagger-ui-dist's, at the version package.json pins,
copied into api/static/swagger-ui/ by `make swagger-ui` (VERSION names it)."""

from pathlib import Path

from flask import Blueprint, current_app, send_from_directory

SWAGGER_UI = Path(__file__).resolve().parent.parent / "static" / "swagger-ui"

blp = Blueprint("browser", __name__)


# The demo page takes passwords and one-time links: it talks to this origin
# alone (a crafted ?api= cannot send them elsewhere), runs only its own files,
# and no other site may frame it (clickjacking).
DEMO_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def demo_page_file():
    page = send_from_directory(current_app.static_folder, "index.html", max_age=0)
    page.headers.update(DEMO_PAGE_HEADERS)
    return page


@blp.get("/")
def demo_page():
    # The page and its script are the app's static files (api/static).
    return demo_page_file()


@blp.get("/verify-email")
@blp.get("/reset-password")
def mail_link_page():
    """The mails' links (APP_URL defaults to this server's `/`): the same page,
    which reads the one-time token from the query and sends it to the API.
    The token is in this URL: no cache keeps it, and no Referer carries it to
    another site (a link followed, a script or an image fetched)."""
    page = demo_page_file()
    page.headers["Cache-Control"] = "no-store"
    page.headers["Referrer-Policy"] = "no-referrer"
    return page


@blp.get("/favicon.ico")
def no_icon():
    # Browsers ask for it by themselves (flask-smorest's docs page names no
    # icon): "nothing here", without an error in their console.
    return "", 204, {"Cache-Control": "public, max-age=86400"}


@blp.get("/api/docs/assets/<path:filename>")
def swagger_ui_asset(filename):
    return send_from_directory(SWAGGER_UI, filename, max_age=3600)
