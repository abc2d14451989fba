"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in a thread of the test process.

`SmtpSink` keeps what it accepts as parsed messages. It can refuse (answer
DATA with a 4xx or 5xx) and stall (hold a DATA open until released, as a
server that hangs), and it can be stopped and started again on its port, as
an SMTP server that is down for a while.
"""

import asyncio
import email
import email.policy
import logging
import re
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from deploy.processes import free_port

LINK = re.compile(r"https?://\S+")
# aiosmtpd logs every command it hears at INFO: noise in a failing test's output.
logging.getLogger("mail.log").setLevel(logging.WARNING)


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        sink = self.sink
        if sink.stall_next.is_set():
            sink.stall_next.clear()
            sink.stalled.set()
            # The client never hears a 250: for it the mail was not accepted.
            while not sink.released.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 stalled, then dropped"
        if sink.refusal:
            return sink.refusal
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with sink.changed:
            sink.messages.append(message)
            sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            sink.changed.notify_all()
        return "250 OK"


class SmtpSink:
    def __init__(self, port=None, credentials=None):
        self.port = port or free_port()
        # (user, password): AUTH offered, over plain TCP (it is 127.0.0.1).
        self.credentials = credentials
        self.messages = []
        self.envelopes = []
        self.changed = threading.Condition()
        self.refusal = None
        self.stall_next = threading.Event()
        self.stalled = threading.Event()
        self.released = threading.Event()
        self._controller = None

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        auth = {}
        if self.credentials:
            auth = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
            }
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **auth)
        self._controller.start()
        return self

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        user, password = self.credentials
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    def stop(self):
        if self._controller is not None:
            self.released.set()
            self._controller.stop()
            self._controller = None

    def refuse(self, reply="451 4.3.0 try again later"):
        """Answer every DATA with `reply` (a 4xx or 5xx line) until accept()."""
        self.refusal = reply

    def accept(self):
        self.refusal = None

    def stall(self):
        """The next DATA hangs until release() (or stop()); `stalled` is set
        while it does."""
        self.released.clear()
        self.stalled.clear()
        self.stall_next.set()

    def release(self):
        self.released.set()

    def wait_for(self, count, timeout=10):
        """The messages once there are at least `count` (fewer after `timeout` s)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.messages) < count and (left := deadline - time.monotonic()) > 0:
                self.changed.wait(left)
            return list(self.messages)

    def links(self):
        """Every link in the text parts received, in order."""
        found = []
        for message in self.messages:
            found += LINK.findall(text_of(message))
        return found


def text_of(message):
    """The text part, its line ends as the sender wrote them (SMTP sends CRLF)."""
    return message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
