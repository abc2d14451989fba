"""Request ids and JSON log lines (api/web/logs.py), in process. (Under
gunicorn, with several workers: tests/e2e/test_gunicorn.py.)"""

import json

import pytest

from config import ConfigError
from deploy.processes import free_port
from tests.helpers import AuthActions, assert_error, bearer


def test_a_request_id_is_made_and_echoed(client):
    first = client.get("/api/health/live").headers["X-Request-ID"]
    second = client.get("/api/health/live").headers["X-Request-ID"]
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_forked_workers_make_ids_of_their_own():
    """Workers fork from one preloaded master: each must draw its own ids."""
    import os

    from api.web.logs import new_request_id

    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the worker: its first id, to the parent, and out
        os.write(writer, new_request_id().encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    with os.fdopen(reader) as pipe:
        childs = pipe.read()
    assert len(childs) == 32
    assert childs != new_request_id()


def test_a_plain_request_id_from_the_caller_is_kept(client):
    response = client.get("/api/health/live", headers={"X-Request-ID": "edge-7f3a.01:b_c"})
    assert response.headers["X-Request-ID"] == "edge-7f3a.01:b_c"


@pytest.mark.parametrize("sent", ["a b", "x" * 129, '"}{"level": "ERROR', "é"])
def test_a_request_id_that_could_forge_log_lines_is_replaced(client, sent):
    echoed = client.get("/api/health/live", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert echoed != sent
    assert len(echoed) == 32


def test_errors_carry_the_request_id_too(client):
    refused = client.get("/api/me", headers={"X-Request-ID": "req-1"})
    assert_error(refused, 401, "missing_token")
    assert refused.headers["X-Request-ID"] == "req-1"
    assert client.get("/nowhere", headers={"X-Request-ID": "req-2"}).headers["X-Request-ID"] == (
        "req-2"
    )


def test_log_lines_are_json_with_the_request_id(make_app, capsys):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    user = AuthActions(app.test_client())
    pair = user.registered_pair()
    capsys.readouterr()
    response = app.test_client().get(
        "/api/me", headers={**bearer(pair["access_token"]), "X-Request-ID": "trace-42"}
    )
    assert_error(response, 503, "service_unavailable")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    logged = [line for line in lines if "revocation store unavailable" in line["message"]]
    assert len(logged) == 1, lines
    assert logged[0]["request_id"] == "trace-42"
    assert logged[0]["level"] == "ERROR"
    assert logged[0]["time"].endswith("+00:00")
    assert pair["access_token"] not in json.dumps(lines)


def test_a_mistyped_log_level_stops_the_start(make_app):
    with pytest.raises(ConfigError, match="LOG_LEVEL must be"):
        make_app(LOG_LEVEL="LOUD")


def test_the_access_line_is_the_line_the_json_formatter_writes():
    """gunicorn's access lines take a faster formatter: the same JSON."""
    import logging

    from api.web.logs import AccessLineFormatter, json_formatter

    fields = {"remote_addr": "10.0.0.7", "method": "GET", "path": "/api/me", "status": 200,
              "bytes": 81, "duration_ms": 1.5, "request_id": "r-1", "pid": 42}  # fmt: skip
    fast = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "request", None, None)
    fast.fields = fields
    general = logging.makeLogRecord({**fast.__dict__, **fields})
    del general.fields
    assert json.loads(AccessLineFormatter().format(fast)) == json.loads(
        json_formatter().format(general)
    )


def access_logger(*handlers):
    import logging
    import uuid

    logger = logging.getLogger(f"gunicorn.access.test-{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)
    return logger


ACCESS_FIELDS = {"method": "GET", "path": "/api/me", "status": 200, "request_id": "r-2"}


def test_the_access_line_goes_straight_to_a_stream():
    import io
    import logging

    from api.web.logs import AccessLineFormatter, write_access_line

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessLineFormatter())
    logger = access_logger(handler)
    write_access_line(logger, ACCESS_FIELDS)
    write_access_line(logger, ACCESS_FIELDS)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    line = json.loads(lines[0])
    assert line.pop("time").endswith("+00:00")
    assert line == {"level": "INFO", "logger": logger.name, "message": "request", **ACCESS_FIELDS}


def test_any_other_access_handler_gets_a_record():
    """A syslog handler, a filter, another formatter (an operator's
    logconfig): the access line goes through logging as any record."""
    import logging
    from logging.handlers import BufferingHandler

    from api.web.logs import write_access_line

    kept = BufferingHandler(10)
    logger = access_logger(kept)
    write_access_line(logger, ACCESS_FIELDS)
    assert [record.fields for record in kept.buffer] == [ACCESS_FIELDS]
    logger.setLevel(logging.WARNING)  # the access log turned down: no line at all
    write_access_line(logger, ACCESS_FIELDS)
    assert len(kept.buffer) == 1


@pytest.mark.parametrize("kind", ["rotating", "delayed", "warning", "filtered"])
def test_handlers_that_need_logging_s_walk_get_it(tmp_path, kind):
    """A rotating file must rotate, a delayed one open, a handler set above
    INFO and a filter be obeyed: only gunicorn's plain handlers are written
    to directly."""
    import logging
    from logging.handlers import RotatingFileHandler

    from api.web.logs import AccessLineFormatter, write_access_line

    path = tmp_path / "access.log"
    if kind == "rotating":
        handler = RotatingFileHandler(path, maxBytes=300, backupCount=2)
    else:
        handler = logging.FileHandler(path, delay=kind == "delayed")
    handler.setFormatter(AccessLineFormatter())
    if kind == "warning":
        handler.setLevel(logging.WARNING)
    if kind == "filtered":
        handler.addFilter(lambda record: record.fields["status"] != 200)
    logger = access_logger(handler)
    for _ in range(10):
        write_access_line(logger, ACCESS_FIELDS)
    handler.close()
    written = path.read_text() if path.exists() else ""
    if kind == "rotating":
        assert (tmp_path / "access.log.1").exists()
        assert len(written) <= 300
    elif kind == "delayed":
        assert len(written.splitlines()) == 10
    else:
        assert written == ""
