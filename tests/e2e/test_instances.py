"""Two gunicorn instances sharing PostgreSQL (and Redis): a logout on one is
seen by the other at once, not when the access token expires; a TOTP code or
an mfa token used on one is spent on the other."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from deploy.processes import Gunicorn, server_env
from tests.helpers import PASSWORD, TOTP_STEP, totp_code
from tests.mail_support import LINK, SmtpSink, text_of


@pytest.fixture
def sink():
    """The deployment's SMTP server: a real one (aiosmtpd) in this process."""
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture(params=["redis", "database"])
def instances(request, tmp_path, postgres_url, sink):
    shared = {"DATABASE_URL": postgres_url, "WEB_CONCURRENCY": "2", "MAIL_URL": sink.url}
    if request.param == "redis":
        settings = request.getfixturevalue("redis_settings")
        shared.update(
            REDIS_URL=settings["REDIS_URL"], REDIS_KEY_PREFIX=settings["REDIS_KEY_PREFIX"]
        )
    first_env = server_env(tmp_path / "a", **shared)
    # The same secrets: two instances of one deployment.
    second_env = server_env(
        tmp_path / "b",
        **shared,
        SECRET_KEY=first_env["SECRET_KEY"],
        JWT_SECRET_KEY=first_env["JWT_SECRET_KEY"],
        ENCRYPTION_KEYS=first_env["ENCRYPTION_KEYS"],
    )
    servers = []
    try:
        for name, env in (("a", first_env), ("b", second_env)):
            (tmp_path / name).mkdir()
            servers.append(Gunicorn(env, tmp_path / name / "gunicorn.log").start())
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_logout_on_one_instance_refuses_the_token_on_the_other_at_once(instances):
    first, second = instances
    requests.post(
        f"{first.url}/api/auth/register",
        json={"username": "bob", "password": PASSWORD},
        timeout=10,
    ).raise_for_status()
    pair = requests.post(
        f"{first.url}/api/auth/login",
        json={"username": "bob", "password": PASSWORD},
        timeout=10,
    ).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert requests.get(f"{first.url}/api/me", headers=headers, timeout=10).status_code == 200
    assert requests.get(f"{second.url}/api/me", headers=headers, timeout=10).status_code == 200

    logout = requests.post(f"{second.url}/api/auth/logout", headers=headers, timeout=10)
    assert logout.status_code == 204

    # Every worker of the first instance, at once: several new connections.
    for _ in range(6):
        refused = requests.get(f"{first.url}/api/me", headers=headers, timeout=10)
        assert refused.status_code == 401
        assert refused.json()["error"] == "token_revoked"
    again = requests.post(
        f"{first.url}/api/auth/refresh",
        headers={"Authorization": f"Bearer {pair['refresh_token']}"},
        timeout=10,
    )
    assert again.json()["error"] == "token_revoked"


def post(url, **kwargs):
    return requests.post(url, timeout=10, **kwargs)


def test_security_events_from_both_instances_are_one_history(instances):
    first, second = instances
    post(f"{first.url}/api/auth/register", json={"username": "bob", "password": PASSWORD})
    wrong = post(f"{second.url}/api/auth/login", json={"username": "bob", "password": "nope1234"})
    assert wrong.status_code == 401
    pair = post(
        f"{first.url}/api/auth/login", json={"username": "bob", "password": PASSWORD}
    ).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    other = post(f"{second.url}/api/auth/login", json={"username": "bob", "password": PASSWORD})
    other_headers = {"Authorization": f"Bearer {other.json()['access_token']}"}
    assert post(f"{second.url}/api/auth/logout", headers=other_headers).status_code == 204
    listed = requests.get(f"{first.url}/api/me/events", headers=headers, timeout=10).json()
    assert [e["type"] for e in listed] == ["logout", "login", "login", "login_failed"]
    assert {e["ip"] for e in listed} == {"127.0.0.1"}


def test_a_session_past_its_max_age_is_expired_on_both_instances(instances, postgres_url):
    from sqlalchemy import create_engine, text

    first, second = instances
    post(f"{first.url}/api/auth/register", json={"username": "bob", "password": PASSWORD})
    pair = post(
        f"{first.url}/api/auth/login", json={"username": "bob", "password": PASSWORD}
    ).json()
    pair = post(
        f"{second.url}/api/auth/refresh",
        headers={"Authorization": f"Bearer {pair['refresh_token']}"},
    ).json()
    # The login was 31 days ago (SESSION_MAX_AGE is 30 days by default).
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE login_sessions SET created_at = created_at - interval '31 days'"))
    engine.dispose()
    for server in (first, second):
        refused = post(
            f"{server.url}/api/auth/refresh",
            headers={"Authorization": f"Bearer {pair['refresh_token']}"},
        )
        assert refused.status_code == 401
        assert refused.json()["error"] == "session_expired"


def test_a_reset_on_one_instance_ends_the_sessions_on_the_other_at_once(instances, sink):
    first, second = instances
    body = {"username": "bob", "password": PASSWORD, "email": "bob@example.com"}
    assert post(f"{first.url}/api/auth/register", json=body).status_code == 201
    pair = post(
        f"{first.url}/api/auth/login", json={"username": "bob", "password": PASSWORD}
    ).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert requests.get(f"{first.url}/api/me", headers=headers, timeout=10).status_code == 200
    forgot = post(f"{second.url}/api/auth/password/forgot", json={"email": "bob@example.com"})
    assert forgot.status_code == 202
    # Either instance's delivery threads send it: the verification mail and this one.
    messages = sink.wait_for(2, timeout=20)
    (reset_mail,) = [m for m in messages if "reset-password" in text_of(m)]
    (link,) = LINK.findall(text_of(reset_mail))
    token = parse_qs(urlsplit(link).query)["token"][0]
    new_password = "a brand new passphrase"
    reset = post(
        f"{second.url}/api/auth/password/reset", json={"token": token, "new_password": new_password}
    )
    assert reset.status_code == 204
    # Every worker of the first instance refuses the old access token at once.
    for _ in range(6):
        refused = requests.get(f"{first.url}/api/me", headers=headers, timeout=10)
        assert refused.status_code == 401
        assert refused.json()["error"] == "token_revoked"
    login = post(f"{first.url}/api/auth/login", json={"username": "bob", "password": new_password})
    assert login.status_code == 200
    assert len(sink.messages) == 2  # each mail once, though both instances deliver


def test_a_totp_code_and_an_mfa_token_work_once_across_instances(instances):
    first, second = instances
    credentials = {"username": "bob", "password": PASSWORD}
    post(f"{first.url}/api/auth/register", json=credentials)
    access = post(f"{first.url}/api/auth/login", json=credentials).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    secret = post(f"{first.url}/api/me/mfa/totp", headers=headers).json()["secret"]
    now = time.time()
    body = {"code": totp_code(secret, now)}
    confirmed = post(f"{second.url}/api/me/mfa/totp/confirm", json=body, headers=headers)
    assert confirmed.status_code == 200
    recovery_codes = confirmed.json()["recovery_codes"]

    def mfa_token_from(server):
        started = post(f"{server.url}/api/auth/login", json=credentials)
        assert started.json()["error"] == "mfa_required"
        return started.json()["mfa_token"]

    def second_step(server, mfa_token, code):
        return post(f"{server.url}/api/auth/mfa", json={"mfa_token": mfa_token, "code": code})

    # The next step's code (one step of drift ahead, unspent): within the
    # window on both instances for the next minute, so only its use refuses it.
    code = totp_code(secret, now + TOTP_STEP)
    assert second_step(first, mfa_token_from(first), code).status_code == 200
    mfa_token = mfa_token_from(first)
    refused = second_step(second, mfa_token, code)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_code"
    # An mfa token used on one instance is spent on the other.
    assert second_step(first, mfa_token, recovery_codes[0]).status_code == 200
    again = second_step(second, mfa_token, recovery_codes[1])
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_token"


def test_a_personal_access_token_deleted_on_one_instance_is_refused_on_the_other(instances):
    first, second = instances
    post(f"{first.url}/api/auth/register", json={"username": "bob", "password": PASSWORD})
    pair = post(
        f"{first.url}/api/auth/login", json={"username": "bob", "password": PASSWORD}
    ).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    made = post(
        f"{first.url}/api/me/tokens",
        json={"name": "ci", "scopes": ["notes:read"]},
        headers=headers,
    ).json()
    pat = {"Authorization": f"Bearer {made['token']}"}
    for server in (first, second):
        assert requests.get(f"{server.url}/api/notes", headers=pat, timeout=10).status_code == 200

    deleted = requests.delete(
        f"{second.url}/api/me/tokens/{made['id']}", headers=headers, timeout=10
    )
    assert deleted.status_code == 204
    # Every worker of the first instance, at once: several new connections.
    for _ in range(6):
        refused = requests.get(f"{first.url}/api/notes", headers=pat, timeout=10)
        assert refused.status_code == 401
        assert refused.json()["error"] == "invalid_token"
