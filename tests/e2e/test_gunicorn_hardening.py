"""gunicorn facing clients directly: clients that stall, secrets in what it logs
of a malformed request, and the words of the errors it answers itself."""

import http.client
import json
import socket
import time

import pytest
import requests

from api.web.errors import ERROR_CODES
from deploy.processes import Gunicorn, server_env
from tests.e2e.test_gunicorn import raw_request

READ_TIMEOUT = 4  # GUNICORN_REQUEST_READ_TIMEOUT here
SECRET = "SECRETVALUE"
LOGIN = b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
CREDENTIALS = b'{"username": "nobody", "password": "whatever1"}'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One worker with two threads, so that two stalled clients could hold them
    all; gunicorn's debug lines on, since they too must keep secrets out."""
    instance = tmp_path_factory.mktemp("hardening")
    env = server_env(
        instance,
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="2",
        GUNICORN_REQUEST_READ_TIMEOUT=str(READ_TIMEOUT),
        GUNICORN_CMD_ARGS="--log-level debug",
        RATELIMIT_ENABLED="false",
    )
    live = Gunicorn(env, instance / "gunicorn.log").start()
    yield live
    live.stop()


def connect(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


# A request cut short in each of its parts, its client then silent.
STALLS = (
    b"GET /api/hea",
    b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Waiting: ",
    LOGIN + b"Content-Length: 60\r\n\r\n" + CREDENTIALS[:20],
    LOGIN + b"Transfer-Encoding: chunked\r\n\r\n30\r\n" + CREDENTIALS[:20],
)


def stalled_clients(server, count):
    clients = [connect(server) for _ in range(count)]
    for i, client in enumerate(clients):
        client.sendall(STALLS[i % len(STALLS)])
    return clients


def test_stalled_clients_do_not_stop_the_server(server):
    clients = stalled_clients(server, 12)
    try:
        started = time.monotonic()
        response = requests.get(f"{server.url}/api/health", timeout=3)
        assert response.status_code == 200
        # Served while every one of them is still stalled.
        assert time.monotonic() - started < READ_TIMEOUT - 1
    finally:
        for client in clients:
            client.close()


def read_answer(client, timeout):
    client.settimeout(timeout)
    answer = b""
    try:
        while chunk := client.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer.decode("latin-1")


def assert_json_error(answer, status, error):
    assert answer.startswith(f"HTTP/1.1 {status} "), answer
    head, _, body = answer.partition("\r\n\r\n")
    assert "Content-Type: application/json" in head
    assert json.loads(body)["error"] == error
    return json.loads(body)["message"]


def drip_until_answered(client, limit):
    """A byte every half second until the server answers."""
    client.settimeout(0.5)
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            return client.recv(65536).decode("latin-1") + read_answer(client, 5)
        except TimeoutError:
            try:
                client.sendall(b"a")
            except OSError:
                break
    return read_answer(client, 1)


def test_a_request_that_does_not_arrive_in_time_is_answered_408(server):
    clients = stalled_clients(server, len(STALLS))
    # One that keeps sending: the deadline is for the whole request, not each read.
    dripping = connect(server)
    dripping.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Drip: ")
    started = time.monotonic()
    answers = [drip_until_answered(dripping, READ_TIMEOUT + 5)]
    assert READ_TIMEOUT - 1 < time.monotonic() - started < READ_TIMEOUT + 3
    answers += [read_answer(client, 5) for client in clients]
    for client in [dripping, *clients]:
        client.close()
    for answer in answers:
        message = assert_json_error(answer, 408, "request_timeout")
        assert message == "The request took too long to arrive."


def read_response(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def test_prompt_requests_keep_alive_and_large_bodies_still_work(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    assert read_response(conn, "GET", "/api/health/live")[0] == 200
    kept = conn.sock
    assert read_response(conn, "GET", "/api/health/live")[0] == 200
    assert conn.sock is kept  # the same connection, kept alive
    json_type = {"Content-Type": "application/json"}
    at_limit = CREDENTIALS + b" " * (64 * 1024 - len(CREDENTIALS))
    status, body = read_response(conn, "POST", "/api/auth/login", at_limit, json_type)
    assert (status, body["error"]) == (401, "invalid_credentials")
    status, body = read_response(conn, "POST", "/api/auth/login", at_limit + b" ", json_type)
    assert (status, body["error"]) == (413, "payload_too_large")
    conn.close()

    # Two requests at once, and a body in pieces that arrives in time.
    pipelined = b"GET /api/health/live HTTP/1.1\r\nHost: x\r\n\r\n" * 2
    answer = raw_request(server, pipelined[:-2] + b"Connection: close\r\n\r\n")
    assert answer.count("HTTP/1.1 200 ") == 2
    with connect(server) as client:
        client.sendall(LOGIN + b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (
            b"%x\r\n" % len(CREDENTIALS) + CREDENTIALS[:10],
            CREDENTIALS[10:] + b"\r\n",
            b"0\r\n\r\n",
        ):
            time.sleep(0.4)
            client.sendall(piece)
        assert_json_error(read_answer(client, 10), 401, "invalid_credentials")

    # Expect: 100-continue: the client sends its body once told to.
    with connect(server) as client:
        client.sendall(
            LOGIN + b"Connection: close\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(CREDENTIALS)
        )
        assert client.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        client.sendall(CREDENTIALS)
        assert "HTTP/1.1 401 " in read_answer(client, 10)


@pytest.mark.parametrize(
    "payload",
    [
        f"GET api/me?access_token={SECRET}&password={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /api/me?access_token={SECRET}\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {SECRET}\r\n\r\n",
        f"GET /api/me?password={SECRET} HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    ],
    ids=["request-line", "request-target", "header-line", "nul-in-header"],
)
def test_secrets_in_a_malformed_request_stay_out_of_the_log(server, payload):
    start = len(server.output())
    answer = raw_request(server, payload.encode("latin-1"))
    assert answer.startswith("HTTP/1.1 400 ")
    server.wait_for_output(lambda out: "Invalid request from" in out[start:])
    time.sleep(0.2)
    assert SECRET not in server.output()[start:]


def test_secrets_of_a_request_cut_short_stay_out_of_the_log(server):
    """gunicorn's debug line for a client that leaves mid-request quoted all it had read."""
    start = len(server.output())
    with connect(server) as client:
        client.sendall(
            f"GET /api/me?access_token={SECRET} HTTP/1.1\r\nCookie: {SECRET}\r\n".encode()
        )
        client.shutdown(socket.SHUT_WR)
        read_answer(client, 5)
    time.sleep(0.5)
    assert SECRET not in server.output()[start:]


DUPLICATE_HOST = b"GET /api/health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"


@pytest.mark.parametrize(
    ("payload", "status", "error", "message"),
    [
        (b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400, "bad_request",
         "A header is malformed."),
        (DUPLICATE_HOST, 400, "bad_request", "The Host header is repeated."),
        (b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, "bad_request",
         "A header is continued on the next line (obsolete line folding)."),
        (b"GET api/health HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request",
         "The request line is malformed."),
        (LOGIN + b"Transfer-Encoding: xchunked\r\n\r\n", 501, "not_implemented",
         "The request's transfer coding is not supported."),
    ],
    ids=["nul-in-header", "duplicate-host", "obs-fold", "request-line", "unknown-coding"],
)  # fmt: skip
def test_gunicorn_s_own_errors_say_what_was_wrong(server, payload, status, error, message):
    answer = raw_request(server, payload)
    assert answer.startswith(f"HTTP/1.1 {status} {http.client.responses[status]}\r\n"), answer
    said = assert_json_error(answer, status, error)
    assert said == message
    assert said != ERROR_CODES[400][1]


def test_a_head_over_the_buffer_is_refused_at_once(server):
    """Each connection buffers at most 64 KiB of head: more is a 431 then and
    there, not memory held until the deadline."""
    client = connect(server)
    client.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    for i in range(70):  # 70 headers of 1 KiB, each under gunicorn's own limits
        try:
            client.sendall(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000))
        except OSError:
            break
    answer = read_answer(client, 5)
    client.close()
    assert time.monotonic() - started < READ_TIMEOUT - 1
    assert_json_error(answer, 431, "request_header_fields_too_large")


def health_answers_promptly(server):
    started = time.monotonic()
    response = requests.get(f"{server.url}/api/health/live", timeout=3)
    assert response.status_code == 200
    return time.monotonic() - started


def test_a_negative_chunk_size_is_refused_not_looped_on(server):
    """int("-10", 16) is -16: a scan that took it stepped back forever."""
    client = connect(server)
    client.sendall(LOGIN + b"Transfer-Encoding: chunked\r\n\r\n-10\r\n")
    assert health_answers_promptly(server) < 2
    message = assert_json_error(read_answer(client, 3), 400, "bad_request")
    assert message == "The request body's chunked encoding is broken."
    client.close()


def test_a_content_length_over_the_buffer_is_refused_without_a_thread(server):
    """Given a thread, a body announced and never sent held it while gunicorn
    drained it: more such clients than threads stopped the server."""
    clients = [connect(server) for _ in range(6)]
    for client in clients:
        client.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
    answers = [read_answer(client, 3) for client in clients]
    assert health_answers_promptly(server) < 2
    for client, answer in zip(clients, answers, strict=True):
        client.close()
        assert assert_json_error(answer, 413, "payload_too_large")


def test_a_body_found_broken_after_the_answer_gets_no_second_answer(server):
    client = connect(server)
    client.sendall(
        b"GET /api/health/live HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"
    )
    answer = read_answer(client, 3)  # until the server closes the connection
    client.close()
    assert answer.startswith("HTTP/1.1 200 ")
    assert answer.count("HTTP/1.1 ") == 1


def test_clients_that_keep_a_closed_connection_open_do_not_freeze_the_worker(server):
    """gthread waited in its event loop, up to 2 s each, for such a client to
    close first (util.close_graceful): three of them froze the worker 6 s."""
    clients = [connect(server) for _ in range(3)]
    for client in clients:
        client.sendall(b"GET /api/health/live HTTP/1.0\r\n\r\n")  # no keep-alive
        client.settimeout(3)
        assert client.recv(12) == b"HTTP/1.0 200"  # answered, and kept open here
    assert health_answers_promptly(server) < 1
    for client in clients:
        answer = read_answer(client, 3)  # to the end: the server closed its side
        client.close()
        assert answer.endswith('{"status":"ok"}\n'), answer
