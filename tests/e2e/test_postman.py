"""The Postman collection, run by newman against the real server under gunicorn."""

import json
import os
import shutil
import subprocess

import pytest

from deploy.processes import ROOT, Gunicorn, server_env

NEWMAN = ROOT / "node_modules" / ".bin" / "newman"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("postman")
    env = server_env(instance, JWT_COOKIE_SECURE="false")
    live = Gunicorn(env, instance / "gunicorn.log").start()
    yield live
    live.stop()


def test_collection_runs_green_with_newman(server, tmp_path):
    if not NEWMAN.exists():
        if os.environ.get("CI"):
            pytest.fail("newman is not installed: run `npm ci`")
        pytest.skip("newman is not installed: run `npm ci` (make test does)")
    report = tmp_path / "newman.json"
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
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            report,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["assertions"]["failed"] == 0
    assert stats["requests"]["total"] == 23
    assert stats["assertions"]["total"] >= stats["requests"]["total"]  # every request tested
