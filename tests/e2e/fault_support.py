"""Faults for the end-to-end tests, all on 127.0.0.1 and all of the tests' own:
a private Redis that can be stopped and started again on its port, a TCP
proxy in front of PostgreSQL that can cut every connection, and
pg_terminate_backend aimed at one database's connections.

The shared PostgreSQL and Redis are never stopped, restarted or flushed.
"""

import contextlib
import selectors
import shutil
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import redis

from deploy.processes import Process, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class PrivateRedis:
    """A redis-server of the test's own, on a free port.

    Append-only with fsync on every write: a session revoked before a stop,
    even an abrupt one, is still revoked when the server comes back (the
    revocation store must not forget). The port and the data directory are
    kept across `stop()` and `start()`, as a restarted production Redis's are.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        args = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--dir", str(self.folder),
            "--daemonize", "no",
        ]  # fmt: skip
        self.server = Process("redis-server", args, None, self.folder / "redis.log", append=True)

    def start(self, timeout=10):
        self.server.start()
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            while True:
                if not self.server.running():
                    raise RuntimeError(f"redis-server exited:\n{self.output()}")
                try:
                    client.ping()
                    return self
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self, sig=signal.SIGTERM):
        """Stop this server (its PID only) and wait until it has exited."""
        self.server.stop(timeout=10, sig=sig)

    def output(self):
        path = self.folder / "redis.log"
        return path.read_text() if path.exists() else ""


class TcpProxy:
    """127.0.0.1:port -> upstream, one thread per direction per connection.

    `cut()` resets every connection it carries and from then on resets new
    ones as soon as they are accepted (the client sees the server hang up, as
    when PostgreSQL goes away); `restore()` lets connections through again.
    """

    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs = set()
        self.is_cut = False
        self.closing = False
        self.accepted = 0
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _accept_loop(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.accepted += 1
                refuse = self.is_cut or self.closing
            if refuse:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            pair = (client, upstream)
            with self.lock:
                self.pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair):
        client, upstream = pair
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ)
            selector.register(upstream, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select():
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        peer[key.fileobj].sendall(data)
            except (OSError, ValueError):
                return  # cut, or closed by either side
            finally:
                with self.lock:
                    self.pairs.discard(pair)
                for sock in pair:
                    _reset(sock)

    def cut(self):
        with self.lock:
            self.is_cut = True
            pairs = list(self.pairs)
        for client, upstream in pairs:
            # shutdown() wakes the pump's select(); its finally closes both.
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + 5
        while self.open_connections() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.open_connections() == 0, "the proxy could not cut every connection"

    def restore(self):
        with self.lock:
            self.is_cut = False

    def open_connections(self):
        with self.lock:
            return len(self.pairs)

    def close(self):
        self.closing = True
        self.cut()
        self.listener.close()
        self.thread.join(timeout=5)


def _reset(sock):
    """Close with an RST, as a server that went away does (no FIN handshake)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_until(predicate, timeout, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
