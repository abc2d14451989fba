"""The command line against a live server's database, as an operator runs it
(`.venv/bin/flask --app wsgi …` with the server's settings)."""

import re
import shlex
import subprocess

from deploy.processes import BIN, ROOT

PRINTED_CLIENT = re.compile(r"^(client_id|client_secret):\s+(\S+)$", re.M)


def flask(server, *args, stdin=None):
    """The command's output; a failure fails the test, with what it said."""
    result = subprocess.run(
        [BIN / "flask", "--app", "wsgi", *args],
        input=stdin,
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def printed_client(output):
    """(client_id, client_secret) as `flask clients create` prints them."""
    printed = dict(PRINTED_CLIENT.findall(output))
    assert printed.keys() == {"client_id", "client_secret"}, output
    assert printed["client_id"].startswith("cid_") and printed["client_secret"].startswith("csec_")
    return printed["client_id"], printed["client_secret"]


def create_client(server, name, scopes="profile:read"):
    return printed_client(flask(server, "clients", "create", name, "--scopes", scopes))


def run_as_written(server, command):
    """A `.venv/bin/flask …` line as a document gives it, words and quotes as written."""
    words = shlex.split(command)
    assert words[:3] == [".venv/bin/flask", "--app", "wsgi"], command
    return flask(server, *words[3:])
