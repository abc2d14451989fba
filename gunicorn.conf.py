"""gunicorn settings, from the environment (HOST, PORT, WEB_CONCURRENCY)."""

import json
import multiprocessing
import os

from gunicorn import util

from api.errors import ERROR_CODES, snake_case

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Threads keep slow password hashing in one request from blocking the others.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
# Load the app once in the master: keys are read (or the development key is
# made) once, a bad key stops the start with one line, and workers fork from it.
preload_app = True
# gunicorn 25+ shares one control socket between every instance of a user.
control_socket_disable = True

accesslog = "-"
# %(U)s is the path without its query string: a token sent there never lands in a log.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss pid=%(p)s'


def post_fork(server, worker):
    # Connection pools must not be shared across a fork: give each worker its own.
    app = server.app.wsgi()
    with app.app_context():
        from api.extensions import db

        for engine in db.engines.values():
            engine.dispose(close=False)


# gunicorn answers requests it cannot parse (a huge header or URL, a malformed
# request line) itself, with an HTML page and no hook to change it. The
# contract wants JSON from every layer, so its error writer is replaced, with
# the same codes and messages as api/errors.py.
def write_json_error(sock, status_int, reason, _mesg):
    error, message = ERROR_CODES.get(status_int) or (snake_case(reason), f"{reason}.")
    body = json.dumps({"error": error, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = write_json_error
