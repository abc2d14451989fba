"""Start the real API under gunicorn on 127.0.0.1 for end-to-end tests."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_pids(pid):
    """The PIDs whose parent is `pid` (gunicorn's workers), from /proc."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def wait_for_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def server_env(instance, **overrides):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "APP_", "SECRET", "REDIS_", "RATELIMIT_", "DATABASE_"))
    }
    env.update(
        APP_CONFIG="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        JWT_SECRET_KEY=secrets.token_urlsafe(48),
        INSTANCE_PATH=str(instance),
        DATABASE_URL=f"sqlite:///{instance}/app.db",
        HOST="127.0.0.1",
        PORT=str(free_port()),
        WEB_CONCURRENCY="3",
    )
    env.update(overrides)
    return env


class LiveServer:
    """gunicorn with its own control socket disabled (see gunicorn.conf.py)."""

    def __init__(self, env, log_path):
        self.env = env
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.log_path = log_path
        self.process = None

    def start(self, timeout=30, migrate=True):
        if migrate:
            subprocess.run(
                [BIN / "flask", "--app", "wsgi", "db", "upgrade"],
                cwd=ROOT,
                env=self.env,
                check=True,
                capture_output=True,
            )
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [BIN / "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_up(timeout)
        return self

    def _wait_until_up(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.output()}")
            try:
                requests.get(f"{self.url}/api/openapi.json", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer in {timeout}s:\n{self.output()}")

    def output(self):
        return Path(self.log_path).read_text()

    def log_records(self):
        """The server's log, one JSON object per line (api/logs.py); a line
        that is not JSON fails the test."""
        return [json.loads(line) for line in self.output().splitlines() if line.strip()]

    def access_records(self, path, status=None):
        return [
            r
            for r in self.log_records()
            if r.get("message") == "request"
            and r.get("path") == path
            and (status is None or r.get("status") == status)
        ]

    def wait_for_access(self, path, status=None, count=1, timeout=5):
        """gunicorn writes an access line after the response has gone out, so
        a client can be ahead of it."""
        deadline = time.monotonic() + timeout
        while len(found := self.access_records(path, status)) < count:
            if time.monotonic() > deadline:
                return found
            time.sleep(0.05)
        return found

    def wait_for_output(self, ready, timeout=5):
        """The server's output once `ready(output)` holds: gunicorn writes an
        access log line after the response has gone out, so a client can be
        ahead of it."""
        deadline = time.monotonic() + timeout
        while not ready(output := self.output()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return output

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()
