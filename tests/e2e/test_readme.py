"""The README's curl walkthrough, run as a reader would run it, against gunicorn."""

import json
import re
import subprocess

import pytest

from deploy.processes import ROOT, Gunicorn, server_env


def walkthrough():
    """The first sh block under "## Try it with curl"."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it with curl", 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def server(tmp_path):
    (tmp_path / "instance").mkdir()
    server = Gunicorn(server_env(tmp_path / "instance"), tmp_path / "gunicorn.log").start()
    yield server
    server.stop()


def test_the_curl_walkthrough_works_and_leaves_no_file_behind(server, tmp_path):
    script = walkthrough().replace("localhost:8000", server.url)
    checkout = tmp_path / "checkout"  # where a reader runs it
    checkout.mkdir()
    result = subprocess.run(
        ["bash", "-eu", "-o", "pipefail", "-c", script],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    bodies = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(bodies) == 8, result.stdout  # one per call, the login's echoed
    assert not [body for body in bodies if "error" in body], result.stdout
    assert [body.get("username") for body in bodies].count("bob") == 3  # register, me twice
    assert "csrf_refresh_token" in bodies[-1]  # the cookie flow's refresh
    assert list(checkout.iterdir()) == []  # no cookie jar left in the checkout
