"""The Postman collection, run by newman against the real server under gunicorn,
its mails caught by maildev (the SMTP sink the collection reads them from); its
folder "Second factor (TOTP)" computes TOTP codes in its pre-request script;
its folder "Machine access" uses a client made with `flask clients create`."""

import json
import os
import shutil
import subprocess
from collections import defaultdict

import pytest
import requests

from deploy.processes import ROOT, Gunicorn, Process, free_port, server_env, wait_for_port
from tests.e2e.cli_support import create_client

NODE_BIN = ROOT / "node_modules" / ".bin"
NEWMAN = NODE_BIN / "newman"
MAILDEV = NODE_BIN / "maildev"
# The collection's requests (the polls of the mailbox that two of them make
# while they wait for a mail are newman requests too, but not the collection's).
COLLECTION_REQUESTS = 72


def node_tools_installed():
    if NEWMAN.exists() and MAILDEV.exists():
        return
    if os.environ.get("CI"):
        pytest.fail("newman or maildev is not installed: run `npm ci`")
    pytest.skip("newman or maildev is not installed: run `npm ci` (make test does)")


@pytest.fixture(scope="module")
def maildev(tmp_path_factory):
    """maildev on 127.0.0.1: SMTP for the server, its web API for newman."""
    node_tools_installed()
    folder = tmp_path_factory.mktemp("maildev")
    smtp, web = free_port(), free_port()
    args = [shutil.which("node") or "node", MAILDEV, "--ip", "127.0.0.1", "--smtp", str(smtp),
            "--web", str(web), "--mail-directory", folder / "mails"]  # fmt: skip
    sink = Process("maildev", args, dict(os.environ), folder / "maildev.log").start()
    try:
        wait_for_port(smtp, timeout=20)
        wait_for_port(web, timeout=20)
    except RuntimeError:
        sink.stop()
        raise
    sink.smtp_url = f"smtp://127.0.0.1:{smtp}"
    sink.web_url = f"http://127.0.0.1:{web}"
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, maildev):
    instance = tmp_path_factory.mktemp("postman")
    # One run logs in, registers and sends second-factor codes some 23 times
    # from 127.0.0.1 within seconds: more than the default 10 a minute.
    env = server_env(
        instance,
        JWT_COOKIE_SECURE="false",
        MAIL_URL=maildev.smtp_url,
        RATELIMIT_LOGIN="60 per minute",
    )
    live = Gunicorn(env, instance / "gunicorn.log").start()
    yield live
    live.stop()


def test_collection_runs_green_with_newman(server, maildev, tmp_path):
    report = tmp_path / "newman.json"
    client_id, client_secret = create_client(server, "postman", scopes="notes:read")
    result = subprocess.run(
        [
            shutil.which("node") or "node",
            NEWMAN,
            "run",
            ROOT / "postman" / "collection.json",
            "--environment",
            ROOT / "postman" / "environment.json",
            "--env-var",
            f"baseUrl={server.url}",
            "--env-var",
            f"mailUrl={maildev.web_url}",
            "--env-var",
            f"clientId={client_id}",
            "--env-var",
            f"clientSecret={client_secret}",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            report,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    run = json.loads(report.read_text())["run"]
    assert run["stats"]["assertions"]["failed"] == 0
    assert run["stats"]["items"]["total"] == COLLECTION_REQUESTS
    # Every request tested: each of the collection's requests made assertions.
    assertions = defaultdict(int)
    for execution in run["executions"]:
        assertions[execution["id"]] += len(execution.get("assertions", []))
    assert len(assertions) == COLLECTION_REQUESTS
    assert min(assertions.values()) >= 1
    # Through SMTP: the verification and the reset mail, and nothing for the
    # address no account has (the forgot-password answer was the same).
    mails = requests.get(f"{maildev.web_url}/email", timeout=10).json()
    recipients = [to["address"] for mail in mails for to in mail["to"]]
    assert len(recipients) == 2 and recipients[0] == recipients[1], recipients
    assert recipients[0].startswith("postman_mail_")
