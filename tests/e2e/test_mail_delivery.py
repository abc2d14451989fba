"""Mail delivery under gunicorn, as deployed: each worker's delivery thread
sends the outbox to a real SMTP server (aiosmtpd), once, whatever happens to
the server or the workers meanwhile."""

import os
import signal
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from deploy.processes import Gunicorn, server_env
from tests.helpers import PASSWORD
from tests.mail_support import SmtpSink, text_of

# Leases are a dozen of these: a killed worker's mail comes back in 24 s.
SEND_TIMEOUT = "2"


def mail_env(instance, sink, **overrides):
    settings = {
        "MAIL_URL": sink.url,
        "MAIL_SEND_TIMEOUT": SEND_TIMEOUT,
        "RATELIMIT_ENABLED": "false",
        "WEB_CONCURRENCY": "2",
    }
    return server_env(instance, **{**settings, **overrides})


def register(server, name):
    response = requests.post(
        f"{server.url}/api/auth/register",
        json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


def token_of(text):
    [link] = [word for word in text.split() if "token=" in word]
    return parse_qs(urlsplit(link).query)["token"][0]


def verify(server, token):
    response = requests.post(
        f"{server.url}/api/auth/email/verify", json={"token": token}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["email_verified"] is True


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(env, name="gunicorn"):
        server = Gunicorn(env, tmp_path / f"{name}.log", name=name).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_a_mail_accepted_while_smtp_is_down_arrives_once_it_is_up(tmp_path, start_server):
    sink = SmtpSink()  # not started: its port refuses connections
    server = start_server(mail_env(tmp_path, sink))
    try:
        register(server, "bob")
        server.wait_for_output(lambda out: "ConnectionRefusedError" in out, timeout=10)
        assert "not sent (ConnectionRefusedError" in server.output()
        sink.start()
        [message] = sink.wait_for(1, timeout=20)
        assert len(sink.wait_for(2, timeout=3)) == 1
    finally:
        sink.stop()
    assert message["To"] == "bob@example.com"
    verify(server, token_of(text_of(message)))


def test_two_instances_deliver_one_outbox_exactly_once(
    tmp_path, start_server, postgres_url, smtp_sink
):
    shared = {"DATABASE_URL": postgres_url, "WEB_CONCURRENCY": "3"}
    first_env = mail_env(tmp_path / "a", smtp_sink, **shared)
    second_env = mail_env(
        tmp_path / "b",
        smtp_sink,
        **shared,
        **{key: first_env[key] for key in ("SECRET_KEY", "JWT_SECRET_KEY", "ENCRYPTION_KEYS")},
    )
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    servers = [start_server(first_env, "a"), start_server(second_env, "b")]
    names = [f"user{n}" for n in range(24)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: register(servers[n % 2], names[n]), range(len(names))))
    messages = smtp_sink.wait_for(len(names), timeout=30)
    assert len(smtp_sink.wait_for(len(names) + 1, timeout=3)) == len(names)
    assert Counter(m["To"] for m in messages) == Counter(f"{n}@example.com" for n in names)
    assert set(Counter(m["Message-ID"] for m in messages).values()) == {1}


def test_a_worker_killed_inside_a_send_leaves_the_mail_to_another(
    tmp_path, start_server, smtp_sink
):
    server = start_server(mail_env(tmp_path, smtp_sink, WEB_CONCURRENCY="3"))
    smtp_sink.stall()
    register(server, "bob")
    assert smtp_sink.stalled.wait(10), "no worker started the send"
    with sqlite3.connect(tmp_path / "app.db") as conn:
        [(owner, attempts)] = conn.execute("SELECT lease_owner, attempts FROM mail_outbox")
    assert attempts == 1
    os.kill(int(owner.split(":")[1]), signal.SIGKILL)
    smtp_sink.release()
    # The lease (12 x MAIL_SEND_TIMEOUT) runs out; another worker sends it.
    [message] = smtp_sink.wait_for(1, timeout=40)
    assert len(smtp_sink.wait_for(2, timeout=3)) == 1
    with sqlite3.connect(tmp_path / "app.db") as conn:
        [(sent_at, attempts)] = conn.execute("SELECT sent_at, attempts FROM mail_outbox")
    assert sent_at is not None and attempts == 2
    verify(server, token_of(text_of(message)))


def test_make_run_writes_each_mail_with_its_link_to_the_log(tmp_path, start_server):
    env = server_env(tmp_path, APP_CONFIG="development", WEB_CONCURRENCY="2")
    del env["MAIL_URL"]  # as `make run` starts: no mail settings at all
    server = start_server(env)
    register(server, "bob")
    server.wait_for_output(lambda out: "verify-email?token=" in out, timeout=10)
    records = [r for r in server.log_records() if "verify-email?token=" in r["message"]]
    assert len(records) == 1
    [record] = records
    assert record["level"] == "INFO"
    assert record["message"].startswith("mail to bob@example.com")
    verify(server, token_of(record["message"]))
