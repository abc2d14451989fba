"""The pages served (api/routes/pages.py): the offline API docs and the demo page."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "api" / "static" / "swagger-ui"
INSTALLED = ROOT / "node_modules" / "swagger-ui-dist"
BUNDLE = "/api/docs/assets/swagger-ui-bundle.js"
# The newest fix of the advisories against the DOMPurify that Swagger UI 4.15.5
# bundled (2.3.10): GHSA-v2wj-7wpq-c8vv, fixed in 3.3.2 (and 2.5.9).
DOMPURIFY_AT_LEAST = (3, 3, 2)


def swagger_ui_pin():
    return json.loads((ROOT / "package.json").read_text())["devDependencies"]["swagger-ui-dist"]


def served_bundle(client):
    with client.get(BUNDLE) as response:  # a file: close it
        assert response.status_code == 200
        return response.get_data(as_text=True)


def test_docs_are_served_from_this_server(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", page.get_data(as_text=True))
    assert not [url for url in assets if re.match(r"(https?:)?//", url)]  # no CDN: offline
    assert {url.rsplit("/", 1)[1] for url in assets} == {
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
    }
    for url in assets:  # every file the page asks for is there, and cached
        assert url.startswith("/api/docs/assets/"), url
        with client.get(url) as response:
            assert response.status_code == 200, url
            assert response.cache_control.max_age == 3600, url


def test_the_swagger_ui_served_is_the_version_package_json_pins(client):
    pin = swagger_ui_pin()
    assert re.fullmatch(r"\d+\.\d+\.\d+", pin), "pin swagger-ui-dist to an exact version"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/swagger-ui-dist"]["version"] == pin, "npm install"
    vendored = (VENDORED / "VERSION").read_text().strip()
    assert vendored == pin, f"api/static/swagger-ui/ holds {vendored}, not {pin}: make swagger-ui"
    assert re.findall(r"PACKAGE_VERSION:\s*\"([^\"]+)\"", served_bundle(client)) == [pin]
    assert (VENDORED / "LICENSE").is_file()
    assert (VENDORED / "NOTICE").is_file()
    if (INSTALLED / "package.json").exists():  # after npm ci: the copies are untouched
        installed = json.loads((INSTALLED / "package.json").read_text())["version"]
        if installed == pin:
            for path in VENDORED.iterdir():
                if path.name != "VERSION":
                    assert path.read_bytes() == (INSTALLED / path.name).read_bytes(), path.name


def test_the_bundled_dompurify_is_past_the_advisories(client):
    found = re.findall(r"DOMPurify\.version\s*=\s*\"(\d+)\.(\d+)\.(\d+)\"", served_bundle(client))
    assert found, "DOMPurify's version is no longer where this looks in the bundle"
    for version in found:
        assert tuple(map(int, version)) >= DOMPURIFY_AT_LEAST, ".".join(version)


def test_demo_page_is_served(client):
    with client.get("/") as page:
        assert page.status_code == 200
        assert "Get token" in page.get_data(as_text=True)
    with client.get("/static/demo.js") as script:
        assert "silently" in script.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/verify-email", "/reset-password"])
def test_the_mails_links_open_the_demo_page_and_keep_their_token_here(client, path):
    with client.get("/") as home:
        demo = home.get_data(as_text=True)
    with client.get(f"{path}?token=abc") as page:
        assert page.status_code == 200
        assert page.get_data(as_text=True) == demo
        # The token is in this URL: not kept by a cache, not sent as a Referer.
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert client.get(f"{path}/more").status_code == 404


@pytest.mark.parametrize("path", ["/", "/verify-email?token=abc", "/reset-password?token=abc"])
def test_the_demo_page_talks_to_its_own_origin_alone_and_is_never_framed(client, path):
    with client.get(path) as page:
        policy = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_the_browsers_own_icon_request_is_no_error(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 204
    assert response.data == b""
    assert "max-age=86400" in response.headers["Cache-Control"]


def test_the_demo_page_offers_every_scope_and_no_other(client):
    from api.auth.scopes import ALL

    with client.get("/") as response:
        page = response.get_data(as_text=True)
    offered = re.findall(r'name="scopes" value="([^"]+)"', page)
    assert offered == list(ALL)
