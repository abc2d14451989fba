"""The buffering worker's framing (api/web/gunicorn_worker.py), without a
server: when a request has arrived whole. The worker itself is tested live in
tests/e2e/test_gunicorn_hardening.py."""

import pytest

from api.web.gunicorn_worker import SERVE, TOO_LARGE, WAIT, arrival

CHUNKED = b"POST /api/notes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
LIMIT = 64 * 1024


@pytest.mark.parametrize(
    ("data", "state"),
    [
        (CHUNKED + b"3\r\nabc\r\n", WAIT),
        (CHUNKED + b"3\r\nabc\r\n0\r\n\r\n", SERVE),
        (CHUNKED + b"3;name=value\r\nabc\r\n0\r\n\r\n", SERVE),
        (CHUNKED + b"-10\r\n", SERVE),  # broken: the parser refuses it
        (CHUNKED + b"+3\r\nabc\r\n", SERVE),
        (CHUNKED + b"zz\r\n", SERVE),
        (b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", WAIT),
        (b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde", SERVE),
        (b"GET / HTTP/1.1\r\nContent-Length: 200000\r\n\r\n", TOO_LARGE),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", SERVE),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", WAIT),
    ],
)
def test_when_a_request_has_arrived(data, state):
    assert arrival(data, LIMIT, {}) == state


def test_chunks_already_read_are_not_parsed_again():
    progress = {}
    assert arrival(CHUNKED + b"3\r\nabc\r\n1\r\n", LIMIT, progress) == WAIT
    assert progress["chunks"] == len(CHUNKED) + 8
    # A resumed scan starts where the complete chunks ended: what is before
    # that point is not looked at again (here it is replaced by garbage).
    garbled = CHUNKED + b"XXXXXXXX1\r\nd\r\n0\r\n\r\n"
    assert arrival(garbled, LIMIT, progress) == SERVE
    assert progress["chunks"] == len(CHUNKED) + 14


def test_the_head_is_read_once_per_request():
    progress = {}
    assert arrival(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", LIMIT, progress) == WAIT
    assert progress["head"][1] == 5
    # The framing read the first time holds: the head is not parsed again
    # (here it is altered to a length of 9, which would still wait).
    assert arrival(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabcde", LIMIT, progress) == SERVE
