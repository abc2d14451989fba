"""gunicorn settings for development and production, from the environment:
HOST, PORT, WEB_CONCURRENCY (workers), GUNICORN_THREADS, GUNICORN_TIMEOUT,
GUNICORN_REQUEST_READ_TIMEOUT (api/web/gunicorn_worker.py).

Behind a reverse proxy, set TRUSTED_PROXY_HOPS (config.py) rather than
gunicorn's FORWARDED_ALLOW_IPS: the app's ProxyFix alone decides which
X-Forwarded-* values to believe.
"""

import json
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

METRICS_DIR_PREFIX = "jwt-api-metrics-"


def remove_orphaned_metrics_dirs():
    """Directories of masters that died without on_exit (SIGKILL, a crash):
    each is named after its master's pid, and only dead ones are removed."""
    for folder in Path(tempfile.gettempdir()).glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = folder.name[len(METRICS_DIR_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


# Before anything imports prometheus_client: each worker writes its metrics to
# files here and /metrics adds them up (api/web/metrics.py). A reload (HUP) reads
# this file again and keeps the directory, so counters carry on.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    remove_orphaned_metrics_dirs()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"
    )
    os.environ["JWT_API_OWN_METRICS_DIR"] = "1"

from gunicorn import util  # noqa: E402
from prometheus_client import multiprocess  # noqa: E402

from api.accounts import mail_delivery  # noqa: E402
from api.database import engines  # noqa: E402
from api.web.gunicorn_logging import JSONLogger  # noqa: E402
from api.web.gunicorn_worker import refusal  # noqa: E402
from config import env_int  # noqa: E402

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{env_int('PORT', '8000', high=65535)}"
# One worker per core (at least two): each serves GUNICORN_THREADS requests at
# once, and more processes than cores only take turns on them (BENCHMARKS.md:
# on 2 cores, 2 workers answered a fifth more than 5).
workers = env_int("WEB_CONCURRENCY", str(max(2, multiprocessing.cpu_count())), high=256)
# Threads: a login spends tens of milliseconds hashing its password; the worker's other
# threads serve other requests meanwhile (argon2 releases the GIL).
# gthread, with each request read whole before a thread serves it: clients that
# stall cannot hold every thread (api/web/gunicorn_worker.py).
worker_class = "api.web.gunicorn_worker.BufferingThreadWorker"
threads = env_int("GUNICORN_THREADS", "4", high=64)
timeout = env_int("GUNICORN_TIMEOUT", "30", high=600)
graceful_timeout = 20
# Longer than a proxy's idle upstream connections are kept (deploy/nginx.conf).
keepalive = 5
# Load the app once in the master: keys are read (or the development key is
# made) once, a bad key stops the start with one line, and workers fork from it.
preload_app = True
# gunicorn 25+ shares one control socket between every instance of a user.
control_socket_disable = True
# X-Forwarded-Proto is the app's business (ProxyFix, TRUSTED_PROXY_HOPS).
forwarded_allow_ips = ""

accesslog = "-"
# JSON lines; the access line has no query string (api/web/gunicorn_logging.py).
logger_class = JSONLogger


def post_fork(server, worker):
    # Connection pools must not be shared across a fork: give each worker its own.
    for engine in engines(server.app.wsgi()):
        engine.dispose(close=False)


def post_worker_init(worker):
    # Each worker delivers the outbox in a thread (MAIL_DELIVERY=thread), so
    # `make run` alone sends mail; claims keep every mail to one worker. Started
    # here, after the fork, as threads do not survive one (preload_app).
    worker.mail_delivery = mail_delivery.start_in_background(worker.wsgi)


def worker_exit(server, worker):
    # A graceful stop lets the mail in hand finish, for as long as the master
    # waits for the worker (graceful_timeout, less a margin for the rest of the
    # exit). A send cut short there never got its 250: the mail is not
    # accepted, and is sent again, once, after its lease.
    loop = getattr(worker, "mail_delivery", None)
    if loop is not None:
        loop.stop(timeout=max(1, worker.cfg.graceful_timeout - 5))


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.pop("JWT_API_OWN_METRICS_DIR", None):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# gunicorn answers requests it cannot parse (a huge header or URL, a malformed
# request line) itself, with an HTML page and no hook to change it. The
# contract wants JSON from every layer, so its error writer is replaced, with
# the codes of api/web/errors.py and a message that says what was wrong. Its
# reason and message are not used: it keeps "Bad Request" for its 501, and
# quotes the client's bytes.
def write_json_error(sock, status_int, _reason, _mesg):
    reason, error, message = refusal(status_int)
    body = json.dumps({"error": error, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_json_error
