"""Behind a proxy (api/web/proxies.py): X-Forwarded-For only from trusted
proxies, and rate limits counting the forwarded address."""

from tests.helpers import PASSWORD, AuthActions, bearer


def session_ip(app, headers):
    client = app.test_client()
    AuthActions(client).register()
    login = client.post(
        "/api/auth/login", json={"username": "bob", "password": PASSWORD}, headers=headers
    )
    sessions = client.get("/api/auth/sessions", headers=bearer(login.json["access_token"]))
    return sessions.json[0]["ip"]


SPOOFED = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(make_app):
    assert session_ip(make_app(), SPOOFED) == "127.0.0.1"


def test_one_trusted_proxy_gives_the_address_it_saw(make_app):
    # nginx appended 198.51.100.7; 203.0.113.9 is whatever the client claimed.
    assert session_ip(make_app(TRUSTED_PROXY_HOPS=1), SPOOFED) == "198.51.100.7"
    assert session_ip(make_app(TRUSTED_PROXY_HOPS=2), SPOOFED) == "203.0.113.9"


def test_rate_limits_count_the_forwarded_address(make_app):
    app = make_app(TRUSTED_PROXY_HOPS=1, RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="1 per minute")
    client = app.test_client()

    def attempt(address, username):
        body = {"username": username, "password": PASSWORD}
        return client.post(
            "/api/auth/login", json=body, headers={"X-Forwarded-For": f"10.0.0.1, {address}"}
        ).status_code

    assert attempt("198.51.100.1", "ann") == 401
    assert attempt("198.51.100.1", "ben") == 429  # the same address: its budget is spent
    assert attempt("198.51.100.2", "cal") == 401  # another address, its own budget
