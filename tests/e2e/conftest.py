"""End-to-end tests: live gunicorn, nginx, a browser, newman, load and faults.

Everything collected under tests/e2e/ is marked `e2e`, so `pytest -m "not e2e"`
runs the in-process tests alone (the marker is declared in pyproject.toml)."""

import os
from pathlib import Path

import pytest

from deploy.processes import Gunicorn, free_port, server_env

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Before `-m` selects: mark what this folder holds."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def localhost_api(tmp_path_factory):
    """The API for a browser test module, at http://localhost:PORT: WebAuthn
    wants a secure page and a domain for the RP id, and the clipboard a
    secure page; http://localhost is both, http://127.0.0.1 neither (the
    server still listens on 127.0.0.1)."""
    from tests.e2e.test_browser import CHROMIUM

    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (make test installs it)")
        pytest.skip("Debian's chromium is not installed: apt-get install chromium")
    root = tmp_path_factory.mktemp("browser")
    port = free_port()
    env = server_env(
        root,
        PORT=str(port),
        APP_URL=f"http://localhost:{port}/",
        JWT_COOKIE_SECURE="false",
        RATELIMIT_ENABLED="false",
    )
    api = Gunicorn(env, root / "gunicorn.log").start()
    api.url = f"http://localhost:{port}"
    yield api
    api.stop()


@pytest.fixture(scope="module")
def chromium(localhost_api):
    """Debian's Chromium, driven by Playwright (no browser is downloaded)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
