"""End-to-end tests: live gunicorn, nginx, a browser, newman, load and faults.

Everything collected under tests/e2e/ is marked `e2e`, so `pytest -m "not e2e"`
runs the in-process tests alone (the marker is declared in pyproject.toml)."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Before `-m` selects: mark what this folder holds."""
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
