"""gunicorn's threaded worker, made to wait for a request before giving it a
thread, and to say in its own words what was wrong with one it refuses.

gthread gives a connection a thread as soon as its first bytes arrive, and the
thread then blocks until the rest comes: a few clients that send part of a
request and go quiet hold every thread, and the server stops answering. nginx
in front buffers requests (deploy/nginx.conf); for gunicorn facing clients
itself, this worker's event loop reads each request without blocking and hands
it to a thread only once it has arrived: its head, and its body up to
BODY_BUFFER bytes. One that has not arrived GUNICORN_REQUEST_READ_TIMEOUT
seconds (default 10) after it began is answered 408 and closed.
"""

import contextlib
import logging
import re
import selectors
import socket
import threading
import time
from functools import partial
from http import HTTPStatus

from gunicorn import http, util
from gunicorn.http import errors
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import ThreadWorker

from api.web.errors import ERROR_CODES, snake_case
from config import Config, env_int

READ_TIMEOUT = env_int("GUNICORN_REQUEST_READ_TIMEOUT", "10", high=600)
# Over the app's own limit, so that it decides on a body from what is buffered.
BODY_BUFFER = 2 * Config.MAX_CONTENT_LENGTH

# The most of a request's head a connection may buffer: nginx's default
# (large_client_header_buffers 4 8k) twice over. gunicorn's own limit (100
# fields of 8 KiB) would let each of a worker's 1000 connections hold 800 KiB.
HEAD_BUFFER = 64 * 1024

# How long, and for how many bytes, a connection being closed waits for its
# client to close first (gunicorn's util.close_graceful, RFC 9112 §9.6).
LINGER_SECONDS, LINGER_BYTES = 2.0, 65536

WAIT, SERVE, CONTINUE, TOO_LARGE, HEAD_TOO_LARGE = (
    "wait",
    "serve",
    "continue",
    "too large",
    "head too large",
)
CHUNKED = "chunked"


def arrival(data, head_limit, progress):
    """Whether a request's bytes so far are all a thread will read. Malformed
    ones are served too: the parser refuses them from what is here.

    `progress` is the connection's, for this request: its head's framing,
    read once, and where the chunks read so far end, so that each read costs
    what it brought, not what came before it.
    """
    if "head" not in progress:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if data.count(b"\n") != data.count(b"\r\n"):
                return SERVE  # bare LF: the parser refuses it
            return HEAD_TOO_LARGE if len(data) > head_limit else WAIT
        head = bytes(data[: end + 2]).lower()
        # Such a client waits to be told before it sends its body (RFC 9110 §10.1.1).
        expects = re.search(rb"\nexpect:[ \t]*100-continue[ \t]*\r", head)
        http11 = head.split(b"\r\n", 1)[0].endswith(b" http/1.1")
        progress["head"] = (end + 4, framing(head), bool(expects and http11))
    start, frame, continues = progress["head"]
    if frame is None:
        return SERVE
    if frame == CHUNKED:
        if chunked_body_ends(data, start, progress):
            return SERVE
        if len(data) - start > BODY_BUFFER:
            return TOO_LARGE
    elif frame > BODY_BUFFER:
        # Given a thread, a body over the buffer (which the app would refuse)
        # would hold the thread while gunicorn drains it.
        return TOO_LARGE
    elif len(data) - start >= frame:
        return SERVE
    return CONTINUE if continues else WAIT


def framing(head):
    """From a lowercased head: CHUNKED, the Content-Length, or None for no
    body to wait for (none, or framing the parser refuses)."""
    lengths = re.findall(rb"\ncontent-length:([^\r]*)", head)
    codings = re.findall(rb"\ntransfer-encoding:([^\r]*)", head)
    if codings and not lengths and codings[-1].split(b",")[-1].strip() == b"chunked":
        return CHUNKED
    if len(lengths) == 1 and not codings and lengths[0].strip().isdigit():
        return int(lengths[0])
    return None


# A chunk-size line: hex digits (never a sign: int() would take "-10"), then
# any extensions. Anything else is broken, for the parser to refuse.
CHUNK_SIZE_LINE = re.compile(rb"[0-9A-Fa-f]{1,16}(;[^\r\n]*)?\Z")


def chunked_body_ends(data, start, progress):
    """Whether a chunked body, from `start` in `data`, has arrived whole (or
    is broken: the parser says so). Each call parses only the chunks that
    completed since the last one: `progress["chunks"]` is where those end."""
    pos = progress.get("chunks", start)
    while (eol := data.find(b"\r\n", pos)) >= 0:
        line = bytes(data[pos:eol])
        if not CHUNK_SIZE_LINE.match(line):
            return True
        size = int(line.split(b";")[0], 16)
        if size == 0:
            return data.find(b"\r\n\r\n", eol) >= 0  # the end of the trailers
        pos = eol + 2 + size + 2
        if pos > len(data):
            return False  # this chunk is still arriving
        progress["chunks"] = pos
    return False


class BufferingThreadWorker(ThreadWorker):
    """gthread, with requests read by the event loop before a thread serves them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arriving = set()
        self.lingering = {}  # socket: [deadline, bytes drained]
        cfg = self.cfg
        # As much head as gunicorn's parser reads before refusing it as too large.
        field = (cfg.limit_request_field_size or 8190) + 2
        limit = (cfg.limit_request_line or 8190) + cfg.limit_request_fields * field + 8
        self.head_limit = min(limit, HEAD_BUFFER)

    def buffers(self, conn):
        # What only a thread can read: TLS, HTTP/2, PROXY protocol, uwsgi.
        cfg = self.cfg
        return not (
            cfg.is_ssl
            or conn.is_http2
            or cfg.proxy_protocol != "off"
            or cfg.protocol != "http"
            or negotiation.prior_knowledge_allowed(cfg, conn.client)
        )

    def enqueue_req(self, conn):
        """Where every request passes before a thread: a new connection's, a
        kept-alive one's, and one its client sent behind the last."""
        if not self.buffers(conn):
            super().enqueue_req(conn)
            return
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.received = bytearray(conn.parser.unreader.take_buffered())
        conn.deadline = time.monotonic() + READ_TIMEOUT
        conn.continued = False
        conn.progress = {}
        conn.sock.setblocking(False)
        self.read_request(conn)

    def read_request(self, conn, _fileobj=None):
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            data = None
        except OSError:
            data = b""
        if data == b"":
            self.drop(conn)  # the client left
            return
        conn.received += data or b""
        state = arrival(conn.received, self.head_limit, conn.progress)
        if state == SERVE:
            self.serve(conn)
        elif state == TOO_LARGE:
            self.refuse(conn, 413)
        elif state == HEAD_TOO_LARGE:
            self.refuse(conn, 431)
        else:
            if state == CONTINUE and not conn.continued:
                # gunicorn sends its own once the body is here; a client takes
                # any number of 1xx (RFC 9110 §15.2). A client gone is seen on
                # the next read.
                conn.continued = True
                with contextlib.suppress(OSError):
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            if conn not in self.arriving:
                self.arriving.add(conn)
                self.poller.register(
                    conn.sock, selectors.EVENT_READ, partial(self.read_request, conn)
                )

    def stop_reading(self, conn):
        if conn in self.arriving:
            self.arriving.discard(conn)
            self.poller.unregister(conn.sock)

    def serve(self, conn):
        self.stop_reading(conn)
        conn.parser.unreader.unread(bytes(conn.received))
        conn.received = None
        conn.data_ready = True  # gthread would wait for bytes that were read here
        super().enqueue_req(conn)

    def drop(self, conn):
        self.stop_reading(conn)
        self.nr_conns -= 1
        conn.close()

    def refuse(self, conn, status):
        addr = conn.client[0] if isinstance(conn.client, tuple) else conn.client
        self.log.warning("Invalid request from ip=%s: %s", addr, refusal(status)[2])
        with contextlib.suppress(OSError):
            util.write_error(conn.sock, status, HTTPStatus(status).phrase, "")
        self.drop(conn)

    def finish_request(self, conn, fs):
        # gthread ends a connection it does not keep with util.close_graceful,
        # which waits in the event loop, up to 2 s, for the client to close
        # first: a client that kept its end open froze the whole worker that
        # long. The same linger, waiting in the poller instead.
        conn.close = partial(self.close_lingering, conn)
        super().finish_request(conn, fs)

    def close_lingering(self, conn, graceful=False):
        sock = conn.sock
        if not graceful or len(self.lingering) >= self.worker_connections:
            util.close(sock)
            return
        try:
            sock.shutdown(socket.SHUT_WR)  # the answer is whole: FIN
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, partial(self.drain_lingering, sock))
        except (OSError, ValueError, KeyError):
            util.close(sock)
            return
        self.lingering[sock] = [time.monotonic() + LINGER_SECONDS, 0]

    def drain_lingering(self, sock, _fileobj=None):
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.lingering[sock][1] += len(data)
        if not data or self.lingering[sock][1] >= LINGER_BYTES:
            self.end_lingering(sock)

    def end_lingering(self, sock):
        del self.lingering[sock]
        with contextlib.suppress(OSError, ValueError, KeyError):
            self.poller.unregister(sock)
        util.close(sock)

    def murder_pending(self):
        """Called by the event loop at least once a second, and while stopping."""
        super().murder_pending()
        now = time.monotonic()
        for sock in [s for s, (end, _) in self.lingering.items() if end <= now or not self.alive]:
            self.end_lingering(sock)
        for conn in [c for c in self.arriving if c.deadline <= now or not self.alive]:
            if conn.received:
                if conn.deadline <= now:
                    self.refuse(conn, 408)
            else:
                self.drop(conn)  # nothing sent yet: no request to answer

    def handle_request(self, req, conn):
        # A backstop for what no buffer holds (a body over it, a response to a
        # client that stops reading): no socket wait in a thread outlasts this.
        conn.sock.settimeout(READ_TIMEOUT)
        return super().handle_request(req, conn)

    def _keepalive_after(self, conn, keepalive):
        # The answer has gone out when gunicorn drains the body the app did not
        # read: one found broken then ends the connection, not a second answer.
        try:
            return super()._keepalive_after(conn, keepalive)
        except errors.ParseException:
            return False

    def handle_error(self, req, client, addr, exc):
        _answering.message = describe(exc)
        try:
            super().handle_error(req, client, addr, quoting_nothing(exc, _answering.message))
        finally:
            _answering.message = None


# What gunicorn's errors quote is the client's: never put in an answer or a log.
DESCRIPTIONS = (
    (errors.InvalidRequestLine, "The request line is malformed."),
    (errors.InvalidRequestMethod, "The request method is malformed."),
    (errors.InvalidHTTPVersion, "The HTTP version is malformed or not supported."),
    (errors.LimitRequestLine, "The URL is too long."),
    (errors.LimitRequestHeaders, "The request headers are too large."),
    (errors.ObsoleteFolding, "A header is continued on the next line (obsolete line folding)."),
    (errors.InvalidHeaderName, "A header name is malformed."),
    (errors.UnsupportedTransferCoding, "The request's transfer coding is not supported."),
    (errors.ExpectationFailed, "The Expect header asks for what this server does not do."),
    (errors.InvalidSchemeHeaders, "The scheme headers contradict each other."),
    (
        (errors.InvalidProxyLine, errors.InvalidProxyHeader),
        "The PROXY protocol header is malformed.",
    ),
    (
        (errors.InvalidChunkSize, errors.ChunkMissingTerminator, errors.InvalidChunkExtension),
        "The request body's chunked encoding is broken.",
    ),
)
NOT_UNDERSTOOD = "The request could not be understood."
# gunicorn names these (never the client's spelling) when it refuses them with the request.
REPEATED = {"HOST": "Host", "CONTENT-TYPE": "Content-Type"}
FRAMING = {"CONTENT-LENGTH": "Content-Length", "TRANSFER-ENCODING": "Transfer-Encoding"}

_answering = threading.local()  # what handle_error describes, for write_error below


def describe(exc):
    if isinstance(exc, errors.InvalidHeader):
        if getattr(exc, "req", None) is not None and exc.hdr in REPEATED:
            return f"The {REPEATED[exc.hdr]} header is repeated."
        if getattr(exc, "req", None) is not None and exc.hdr in FRAMING:
            return f"The {FRAMING[exc.hdr]} header is invalid."
        return "A header is malformed."
    for kinds, description in DESCRIPTIONS:
        if isinstance(exc, kinds):
            return description
    return NOT_UNDERSTOOD


def quoting_nothing(exc, description):
    """The parse error with `description` for its text: gunicorn's log line
    ("Invalid request from ip=...: <error>") quotes the text, and with it the
    request line or header as the client sent it, a query string's token included."""
    if not isinstance(exc, errors.ParseException):
        return exc
    kind = type(exc)
    described = BaseException.__new__(
        type(kind.__name__, (kind,), {"__str__": lambda _: description})
    )
    described.__dict__.update(vars(exc))  # its request, for the access line
    return described


def refusal(status):
    """The reason, code and message of an error answer gunicorn writes itself."""
    phrase = HTTPStatus(status).phrase
    error, message = ERROR_CODES.get(status) or (snake_case(phrase), f"{phrase}.")
    if status != 500:
        # ERROR_CODES' 400 is about a JSON body, which gunicorn never reads.
        fallback = NOT_UNDERSTOOD if status == 400 else message
        message = getattr(_answering, "message", None) or fallback
    return phrase, error, message


class ClientBytesFilter(logging.Filter):
    """gunicorn passes what a client sent as arguments of its own lines: the
    whole request read so far (a client that left mid-request, in a debug
    line), a URI with its query string. Only their kind and path are kept."""

    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(_without_client_bytes(arg) for arg in record.args)
        return True


def _without_client_bytes(arg):
    if isinstance(arg, (errors.ParseException, errors.NoMoreData)):
        return type(arg).__name__
    if isinstance(arg, str):
        return arg.split("?", 1)[0]
    return arg


CLIENT_BYTES_FILTER = ClientBytesFilter()
