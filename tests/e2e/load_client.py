"""A small HTTP load client for the end-to-end load and fault tests.

Built on http.client, not requests, for two reasons: it is light enough that
32 client threads leave a 2-core machine to the server, and it hides nothing.
urllib3 quietly reconnects when it finds a pooled connection closed; here
every reconnection is decided, and counted, in `Client.request`.

Every request lands in a `Tally` as one `Result`: what was asked, when it
started and ended, what came back, and whether it was the answer expected.
The tests then check invariants on the whole record (no 5xx, no transport
error, no 200 for a revoked token, no 200 while a backing service is down).
"""

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from tests.helpers import PASSWORD

IDEMPOTENT = {"GET", "HEAD", "OPTIONS"}
# What a connection that the server closed between two requests looks like
# to the client that sends on it next.
STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass
class Result:
    label: str
    method: str
    path: str
    started: float
    ended: float
    status: int | None = None
    error: str | None = None  # the body's `error` code
    transport_error: str | None = None  # no HTTP answer at all
    expected: bool = True
    retried: bool = False  # a stale kept-alive connection was replaced (GET only)
    body: object = None
    headers: dict = field(default_factory=dict)

    @property
    def answered(self):
        return self.status is not None

    def __str__(self):
        got = self.transport_error or f"{self.status} {self.error or ''}".strip()
        return f"{self.method} {self.path} [{self.label}] -> {got}"


class Tally:
    """Every request of a run, from every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.results = []

    def add(self, result):
        with self.lock:
            self.results.append(result)

    def where(self, predicate=None, **fields):
        with self.lock:
            results = list(self.results)
        return [
            r
            for r in results
            if all(getattr(r, k) == v for k, v in fields.items())
            and (predicate is None or predicate(r))
        ]

    def count(self, predicate=None, **fields):
        return len(self.where(predicate, **fields))

    def transport_errors(self):
        return self.where(lambda r: r.transport_error is not None)

    def server_errors(self):
        return self.where(lambda r: r.status is not None and r.status >= 500)

    def unexpected(self):
        return self.where(lambda r: not r.expected)

    def summary(self):
        counts = {}
        for r in self.where():
            key = f"{r.label} {r.transport_error or r.status}{' ' + r.error if r.error else ''}"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


def sample(results, limit=10):
    return "\n".join(str(r) for r in results[:limit])


class Client:
    """One virtual user's connection: kept alive across requests, or (with
    `keep_alive=False`) a new one for every request, sent `Connection: close`.

    A kept-alive connection can be closed by the server just as a request is
    sent on it (its idle timeout, a worker stopping). RFC 9112 section 9.3.1
    lets a client retry such a request on a new connection when it is
    idempotent, and real clients do; this one does too, once, for GET only,
    and marks the result `retried`. Any other failure, and any failure on a
    new connection, is a transport error: the request may have been lost.
    """

    def __init__(self, url, tally, keep_alive=True, timeout=15):
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.tally = tally
        self.keep_alive = keep_alive
        self.timeout = timeout
        self.conn = None
        self.reused = False
        self.cookies = {}  # (name, path) -> value

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.reused = False

    def _connection(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.reused = False
        return self.conn

    def request(self, method, path, label, expect, body=None, token=None, headers=None):
        """`expect`: a status, or (status, error code), or a collection of
        either; the result is recorded, whatever it is, and returned."""
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if not self.keep_alive:
            headers["Connection"] = "close"
        cookie = self._cookie_header(path)
        if cookie and token is None:
            headers["Cookie"] = cookie
        result = Result(label, method, path, started=time.monotonic(), ended=0.0)
        try:
            try:
                response = self._send(method, path, body, headers)
            except STALE_CONNECTION_ERRORS:
                if not (self.reused and method in IDEMPOTENT):
                    raise
                self.close()
                result.retried = True
                response = self._send(method, path, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            result.transport_error = f"{type(exc).__name__}: {exc}"
            result.expected = False
            result.ended = time.monotonic()
            self.tally.add(result)
            return result
        result.ended = time.monotonic()
        result.status = response.status
        result.headers = {k.lower(): v for k, v in response.getheaders()}
        raw = response.read()
        try:
            result.body = json.loads(raw) if raw else None
        except ValueError:
            result.body = raw[:200]
        if isinstance(result.body, dict):
            result.error = result.body.get("error")
        self._store_cookies(response)
        if response.will_close or not self.keep_alive:
            self.close()
        else:
            self.reused = True
        result.expected = matches(result, expect)
        self.tally.add(result)
        return result

    def _send(self, method, path, body, headers):
        conn = self._connection()
        conn.request(method, path, body=body, headers=headers)
        return conn.getresponse()

    def _cookie_header(self, path):
        return "; ".join(
            f"{name}={value}"
            for (name, cookie_path), value in self.cookies.items()
            if path == cookie_path or path.startswith(cookie_path.rstrip("/") + "/")
        )

    def _store_cookies(self, response):
        for line in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(line).items():
                key = (name, morsel["path"] or "/")
                if morsel.value == "" or morsel["max-age"] == "0":
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value

    def cookie(self, name):
        return next((v for (n, _), v in self.cookies.items() if n == name), None)


def matches(result, expect):
    options = expect if isinstance(expect, (set, frozenset, list)) else [expect]
    for option in options:
        status, error = option if isinstance(option, tuple) else (option, None)
        if result.status == status and (error is None or result.error == error):
            return True
    return False


REVOKED = (401, "token_revoked")
UNAVAILABLE = (503, "service_unavailable")


class Interrupted(Exception):
    """A step did not get its expected answer: this round of the loop ends."""


class VirtualUser:
    """One user logging in and out in a loop, by body tokens or by cookies.

    Each round: log in, several GET /api/me, refresh, GET /api/me with the new
    access token, log out; then the round's old and new access tokens (and,
    in body mode, the last refresh token) must be refused as token_revoked.

    `tolerate` adds answers accepted at every step (503 service_unavailable
    during a fault): a round that gets one stops there and the next one starts
    with a new login, as a real client would.
    """

    def __init__(self, client, username, cookies=False, me_calls=3, tolerate=()):
        self.client = client
        self.username = username
        self.cookies = cookies
        self.me_calls = me_calls
        self.tolerate = set(tolerate)

    def step(self, method, path, label, expect, **kwargs):
        result = self.client.request(method, path, label, {expect, *self.tolerate}, **kwargs)
        if not result.expected or (result.status, result.error) in self.tolerate:
            raise Interrupted(str(result))
        return result

    def run(self, until):
        while time.monotonic() < until:
            try:
                self.round()
            except Interrupted:
                self.client.close()
                self.client.cookies.clear()
                time.sleep(0.05)  # as a client backs off before trying again

    def round(self):
        credentials = {"username": self.username, "password": PASSWORD}
        me = ("GET", "/api/me")
        if not self.cookies:
            pair = self.step("POST", "/api/auth/login", "login", 200, body=credentials).body
            for _ in range(self.me_calls):
                self.check_me(self.step(*me, "me", 200, token=pair["access_token"]))
            new = self.step(
                "POST", "/api/auth/refresh", "refresh", 200, token=pair["refresh_token"]
            ).body
            self.check_me(self.step(*me, "me", 200, token=new["access_token"]))
            self.step("POST", "/api/auth/logout", "logout", 204, token=new["access_token"])
            self.step(*me, "revoked", REVOKED, token=pair["access_token"])
            self.step(*me, "revoked", REVOKED, token=new["access_token"])
            self.step("POST", "/api/auth/refresh", "revoked", REVOKED, token=new["refresh_token"])
            return
        session = self.step(
            "POST", "/api/auth/cookie/login", "cookie_login", 200, body=credentials
        ).body
        old_access = self.client.cookie("access_token_cookie")
        for _ in range(self.me_calls):
            self.check_me(self.step(*me, "me", 200))
        refresh_csrf = {"X-CSRF-TOKEN": session["csrf_refresh_token"]}
        renewed = self.step("POST", "/api/auth/refresh", "refresh", 200, headers=refresh_csrf)
        new_access = self.client.cookie("access_token_cookie")
        assert new_access and new_access != old_access, "refresh set no new access cookie"
        self.check_me(self.step(*me, "me", 200))
        access_csrf = {"X-CSRF-TOKEN": renewed.body["csrf_access_token"]}
        self.step("POST", "/api/auth/logout", "logout", 204, headers=access_csrf)
        assert self.client.cookie("access_token_cookie") is None, "logout left the cookie"
        self.step(*me, "revoked", REVOKED, token=old_access)
        self.step(*me, "revoked", REVOKED, token=new_access)

    def check_me(self, result):
        if result.body.get("username") != self.username:
            result.expected = False
            raise Interrupted(f"/api/me answered for {result.body!r}")


class Prober:
    """The same few requests again and again, each on a new connection (so
    they spread over the workers), `pause` seconds apart: `checks` are
    (method, path, label, expected answers, token)."""

    def __init__(self, client, checks, pause=0.05):
        self.client = client
        self.checks = checks
        self.pause = pause

    def run(self, until):
        while time.monotonic() < until:
            for method, path, label, expect, token in self.checks:
                self.client.request(method, path, label, expect, token=token)
            time.sleep(self.pause)


def register(url, tally, usernames):
    client = Client(url, tally)
    for name in usernames:
        client.request(
            "POST", "/api/auth/register", "register", 201,
            body={"username": name, "password": PASSWORD},
        )  # fmt: skip
    client.close()


def run_users(users, seconds):
    """Run every VirtualUser on a thread of its own for `seconds`; returns
    the time it took, which is a little more than `seconds` (the rounds
    under way finish)."""
    started = time.monotonic()
    until = started + seconds
    threads = [threading.Thread(target=user.run, args=(until,), daemon=True) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    for user in users:
        user.client.close()
    assert not any(t.is_alive() for t in threads), "a virtual user never finished"
    return time.monotonic() - started


class Background:
    """Virtual users running on threads while the test does something else."""

    def __init__(self, users):
        self.users = users
        self.stop_at = [float("inf")]
        self.threads = []

    def __enter__(self):
        for user in self.users:
            thread = threading.Thread(target=self._run, args=(user,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def _run(self, user):
        while time.monotonic() < self.stop_at[0]:
            user.run(until=min(self.stop_at[0], time.monotonic() + 0.5))

    def __exit__(self, *exc):
        self.stop_at[0] = time.monotonic()
        for thread in self.threads:
            thread.join(timeout=60)
        for user in self.users:
            user.client.close()
        assert not any(t.is_alive() for t in self.threads), "a virtual user never finished"


def metric_values(text, name):
    """{labels: value} for one metric in Prometheus' text format."""
    values = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            series, value = line.rsplit(" ", 1)
            labels = series[len(name) :].strip("{}")
            values[labels] = float(value)
    return values
