"""The README's curl walkthrough, run as a reader would run it, against
gunicorn started as `make run` starts it (development: mails in its log)."""

import json
import os
import re
import subprocess

import pytest

from deploy.processes import ROOT, Gunicorn, server_env
from tests.e2e.cli_support import printed_client, run_as_written

# The link of the reset mail, as `make run` writes it to its output.
RESET_LINK = re.compile(r"(https?://\S*?)reset-password\?token=([A-Za-z0-9_-]+)")


def walkthrough():
    """The sh blocks under "## Try it with curl": the tour, the reset, then
    machine access (a client of the command line's, introspection)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it with curl", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


@pytest.fixture
def server(tmp_path):
    (tmp_path / "instance").mkdir()
    env = server_env(tmp_path / "instance", APP_CONFIG="development")
    # As `make run`: no MAIL_URL (mails go to the log), no key given (one is made).
    del env["MAIL_URL"], env["ENCRYPTION_KEYS"]
    server = Gunicorn(env, tmp_path / "gunicorn.log").start()
    yield server
    server.stop()


def run(script, cwd, **env):
    result = subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_curl_walkthrough_works_and_leaves_no_file_behind(server, tmp_path):
    tour, reset, machine = (block.replace("localhost:8000", server.url) for block in walkthrough())
    checkout = tmp_path / "checkout"  # where a reader runs it
    checkout.mkdir()
    bodies = run(tour, checkout)
    assert len(bodies) == 8, bodies  # one per call, the login's echoed
    assert not [body for body in bodies if "error" in body], bodies
    assert [body.get("username") for body in bodies].count("bob") == 3  # register, me twice
    assert bodies[0]["email"] == "bob@example.org"
    assert "csrf_refresh_token" in bodies[-1]  # the cookie flow's refresh
    assert list(checkout.iterdir()) == []  # no cookie jar left in the checkout

    # The reset: the reader pastes the token from the link in make run's output.
    ask, pasted, finish = re.split(r"^(TOKEN=.*)$", reset, maxsplit=1, flags=re.M)
    assert "the token from that link" in pasted
    (answer,) = run(ask, checkout)
    assert f"# {json.dumps(answer)}\n" in ask  # what the README says it answers
    output = server.wait_for_output(RESET_LINK.search, timeout=15)
    app_url, token = RESET_LINK.search(output).groups()
    assert app_url == f"{server.url}/"  # APP_URL's default: the demo page
    login = run(finish, checkout, TOKEN=token)
    assert len(login) == 1, login  # the reset's 204 has no body
    assert "access_token" in login[0]  # logged in with the new password

    # Machine access: the reader runs the command line, pastes the two values
    # it printed, then asks for a client token and introspects bob's.
    command, said, pasted, calls = re.split(
        r"^((?:#.*\n)+)(CLIENT_ID=.*)$", machine, maxsplit=1, flags=re.M
    )
    client_id, secret = printed_client(run_as_written(server, command.strip()))
    assert "# client_id:     cid_…\n# client_secret: csec_…" in said
    field = re.search(r"^field\(\).*$", tour, re.M).group(0)  # defined by the tour
    token, active, inactive = run(
        f"{field}\n{calls}", checkout, CLIENT_ID=client_id, CLIENT_SECRET=secret
    )
    assert token["token_type"] == "Bearer" and token["scope"] == "notes:read"
    assert token["expires_in"] == 300 and "refresh_token" not in token
    assert active["active"] is True and active["username"] == "bob"
    assert active["scope"] == "profile:read notes:read notes:write"
    assert inactive == {"active": False}  # logged out a moment before: inactive at once
    assert '# {"active": false}\n' in calls
    assert list(checkout.iterdir()) == []
