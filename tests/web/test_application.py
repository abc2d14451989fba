"""The Flask class the API runs on (api/web/application.py) and its
sessionless requests (api/web/no_sessions.py)."""

import pytest
from flask import Flask, session

from tests.helpers import PASSWORD, calls_to


def test_each_hook_and_view_is_asked_about_once(app, client, monkeypatch):
    asked = calls_to(monkeypatch, Flask, "ensure_sync")
    app._plain.clear()
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


def test_a_closure_made_for_one_request_is_not_kept(app):
    """after_this_request's closures hold their request's tokens (the cookie
    flows): remembering them would keep every token a worker ever issued."""
    import gc
    import weakref

    def per_request():
        pass

    app.ensure_sync(per_request)
    gone = weakref.ref(per_request)
    del per_request
    gc.collect()
    assert gone() is None


def test_cookie_logins_leave_nothing_behind(app, client, auth):
    import gc

    auth.register()
    body = {"username": "bob", "password": PASSWORD}
    client.post("/api/auth/cookie/login", json=body)  # the view and its hooks, once
    gc.collect()
    before = len(app._plain)
    for _ in range(5):
        assert client.post("/api/auth/cookie/login", json=body).status_code == 200
    gc.collect()
    assert len(app._plain) == before
