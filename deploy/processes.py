"""The API's processes on 127.0.0.1: a free port, gunicorn started as
`make run` starts it, its JSON log, its workers; each stopped by its PID.

One helper for the three that start servers: the end-to-end tests, the
benchmark (bench/) and the reverse-proxy set-up (deploy/local.py). It needs
nothing beyond the runtime requirements.
"""

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Settings of the caller's shell that would change what a server runs with.
OWN_SETTINGS = (
    "JWT_",
    "APP_",
    "SECRET",
    "REDIS_",
    "RATELIMIT_",
    "DATABASE_",
    "ENCRYPTION_",
    "MAIL_",
)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


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


def without_own_settings(env, also=()):
    return {k: v for k, v in env.items() if not k.startswith(OWN_SETTINGS + tuple(also))}


def server_env(instance, **overrides):
    """Production settings with fresh secrets, SQLite in `instance`, a free port."""
    env = without_own_settings(os.environ)
    env.update(
        APP_CONFIG="production",
        SECRET_KEY=secrets.token_urlsafe(48),
        JWT_SECRET_KEY=secrets.token_urlsafe(48),
        ENCRYPTION_KEYS=new_encryption_key(),
        # Production needs an SMTP server: by default one that refuses every
        # connection (nothing listens on port 1), so mails wait in the outbox.
        # Tests that read mail point it at their own (tests/mail_support.py).
        MAIL_URL="smtp://127.0.0.1:1",
        INSTANCE_PATH=str(instance),
        DATABASE_URL=f"sqlite:///{instance}/app.db",
        HOST="127.0.0.1",
        PORT=str(free_port()),
        WEB_CONCURRENCY="3",
    )
    env.update(overrides)
    # The links in mails open this server's own demo page, unless a test says otherwise.
    env.setdefault("APP_URL", f"http://127.0.0.1:{env['PORT']}/")
    return env


def new_encryption_key():
    """A Fernet key (as api.encryption makes), without importing the app."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def migrate_database(env):
    """`flask db upgrade` with these settings (as `make run` does first)."""
    subprocess.run(  # noqa: S603 - our own command
        [BIN / "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


class Process:
    """A child process with its output in a file; stopped by its PID alone."""

    def __init__(self, name, args, env, log_path, cwd=ROOT, append=False):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.append = append  # one log across restarts, rather than one per start
        self.popen = None

    def start(self):
        self._log = open(self.log_path, "a" if self.append else "w")  # noqa: SIM115 - closed in stop()
        # Its own session: Ctrl-C reaches the runner only, which then stops
        # its children in order.
        self.popen = subprocess.Popen(  # noqa: S603 - our own commands
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    @property
    def pid(self):
        return self.popen.pid

    def running(self):
        return self.popen is not None and self.popen.poll() is None

    def output(self):
        return Path(self.log_path).read_text(errors="replace")

    def terminate(self, sig=signal.SIGTERM):
        """SIGTERM to this PID: gunicorn, nginx and Redis finish what they serve, then exit."""
        if self.running():
            self.popen.send_signal(sig)

    def stop(self, timeout=30, sig=signal.SIGTERM):
        """`sig` to this PID, then wait for it to exit (SIGKILL after `timeout` s)."""
        if self.popen is None:
            return
        self.terminate(sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._log.close()


class Gunicorn(Process):
    """The API under gunicorn, with gunicorn.conf.py (its control socket off)."""

    def __init__(self, env, log_path, name="gunicorn"):
        args = [BIN / "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
        super().__init__(name, args, env, log_path)
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30, migrate=True, wait=True, ready_path="/api/openapi.json"):
        """Migrate (unless told not to), start, and wait until it answers;
        `started_in`: the seconds from the start until `ready_path` answered."""
        if migrate:
            migrate_database(self.env)
        started = time.monotonic()
        super().start()
        if wait:
            self.wait_until_ready(started + timeout, ready_path)
            self.started_in = time.monotonic() - started
        return self

    def wait_until_ready(self, deadline, path="/api/openapi.json"):
        """Until `path` answers 200; a server that exits or never answers is
        stopped and its output raised."""
        while time.monotonic() < deadline:
            if not self.running():
                self.stop()
                raise RuntimeError(f"{self.name} exited:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}{path}", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready in time:\n{self.output()[-3000:]}")

    def log_records(self):
        """Its log, one JSON object per line (api/web/logs.py, gunicorn.conf.py);
        a line that is not JSON raises: every line should be."""
        return [json.loads(line) for line in self.output().splitlines() if line.strip()]

    def access_records(self, path=None, status=None, request_id=None):
        return [
            r
            for r in self.log_records()
            if r.get("message") == "request"
            and (path is None or r.get("path") == path)
            and (status is None or r.get("status") == status)
            and (request_id is None or r.get("request_id") == request_id)
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
        """The output once `ready(output)` holds (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while not ready(output := self.output()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return output
