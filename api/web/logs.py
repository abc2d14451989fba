"""JSON logs, one object per line, each carrying the request's id.

Every request gets an id: the caller's or the proxy's `X-Request-ID` when it
is a plain token, a new one otherwise. It is echoed in the response, written
on every log line of the request and on gunicorn's access line, so a client's
error report, the proxy's log and this server's log meet on one value.
"""

import json
import logging
import random
import re
import sys
import time
from datetime import UTC, datetime

from flask import g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from config import ConfigError

REQUEST_ID_HEADER = "X-Request-ID"
# Anything else a client sends could forge or flood log lines: replaced.
_PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
_HANDLER_NAME = "jwt-api-json"


def json_formatter():
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        timestamp="time",
        rename_fields={"levelname": "level", "name": "logger"},
    )


class AccessLineFormatter(logging.Formatter):
    """gunicorn's access line, one per request: the line json_formatter()
    would write for the record, made by one json.dumps of its `fields`
    rather than by a walk over the record's attributes."""

    def format(self, record):
        return access_line(record.levelname, record.name, record.fields, record.created)


def access_line(level, logger, fields, created):
    line = {"level": level, "logger": logger, "message": "request", **fields}
    line["time"] = datetime.fromtimestamp(created, UTC).isoformat()
    return json.dumps(line, default=str)


def write_access_line(logger, fields):
    """Log gunicorn's access line for `fields` (INFO, message "request").

    Where the handlers are gunicorn's own (a StreamHandler on stdout, a
    FileHandler), open, taking INFO, formatted by AccessLineFormatter, with no
    filter on them or the logger, the line is written to each directly: the
    same line, without a LogRecord and the walk through loggers, filters and
    handlers around it, which cost several times the line itself on every
    request. Any other set-up (a rotating or watched file, syslog, an
    operator's logconfig) gets the record as usual."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handlers = logger.handlers
    plain = handlers and not logger.filters and all(_plain_stream(h) for h in handlers)
    if not plain:
        logger.info("request", extra={"fields": fields})
        return
    text = access_line("INFO", logger.name, fields, time.time())
    for handler in handlers:
        with handler.lock:
            handler.stream.write(text + handler.terminator)
            handler.flush()


def _plain_stream(handler):
    return (
        type(handler) in (logging.StreamHandler, logging.FileHandler)
        and handler.stream is not None  # a FileHandler(delay=True) opens on its first record
        and handler.level <= logging.INFO
        and type(handler.formatter) is AccessLineFormatter
        and not handler.filters
    )


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record logged while a request is served."""

    def filter(self, record):
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner swaps it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def json_handler():
    handler = StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(level):
    """The root logger writes JSON to stderr: the app's own lines and those of
    its libraries (SQLAlchemy, Flask-Limiter, alembic) alike. Idempotent."""
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME]
    root.addHandler(json_handler())
    root.setLevel(level)
    # Authlib logs each token it issues at DEBUG: never below INFO.
    authlib = logging.getLogger("authlib")
    authlib.setLevel(max(root.level, logging.INFO))


def request_id():
    """This request's id (made on first use, so error handlers always have one)."""
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _PLAIN_ID.match(incoming) else new_request_id()
    return g.request_id


def new_request_id():
    """32 hex digits, as a UUID's. An id is no secret and needs no system
    call: random's generator (reseeded in each forked worker) serves, at a
    tenth of uuid4's cost."""
    return f"{random.getrandbits(128):032x}"  # noqa: S311 - not a secret


def assign_request_id():
    request_id()


def echo_request_id(response):
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def init_app(app):
    level = app.config["LOG_LEVEL"]
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
    # Before Flask's own default handler would be added to app.logger.
    configure_logging(level)
    # First of all hooks, so that even a refused body is logged with its id.
    app.before_request_funcs.setdefault(None, []).insert(0, assign_request_id)
    app.after_request(echo_request_id)
