"""The Flask class the API runs on (api/web/application.py) and its
sessionless requests (api/web/no_sessions.py)."""

import pytest
from flask import Flask, session

from tests.helpers import calls_to


def test_each_hook_and_view_is_asked_about_once(app, client, monkeypatch):
    asked = calls_to(monkeypatch, Flask, "ensure_sync")
    app._sync.clear()
    for _ in range(3):
        assert client.get("/api/health/live").status_code == 200
    assert asked
    assert len(asked) == len(set(asked))


def test_no_request_has_a_cookie_session(app, client):
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="unavailable"):
        session["user"] = "bob"
    response = client.get("/api/health/live", headers={"Cookie": "session=forged"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
