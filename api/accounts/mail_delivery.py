"""Delivery of the outbox: claim a due mail, send it, record what happened.

Exactly once across threads, workers and instances: a due mail is claimed in
one atomic statement that also leases it (on PostgreSQL its row is picked
with FOR UPDATE SKIP LOCKED, so concurrent claimers take different mails;
SQLite runs one writer at a time). The lease is a fresh owner value and a
deadline; the send's outcome is written only while the owner value is still
ours. A worker that dies mid-send holds its lease until the deadline; then the
mail is due again and another worker sends it.

Failures (the server down, a 4xx or 5xx) are retried after 5 s, 10 s, 20 s …
at most 300 s apart, until MAIL_RETRY_HORIZON after the mail was queued; then
it is given up, logged at error level (its id and recipient's domain alone)
and counted. Runs as a daemon thread in every gunicorn worker
(MAIL_DELIVERY=thread, gunicorn.conf.py) or in `flask mail deliver` processes.
"""

import logging
import os
import signal
import smtplib
import socket
import threading
import time
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from api.accounts.mail_transport import compose, transport
from api.accounts.outbox import NEW_MAIL, OutboxMail, body_parts, recipient_domain
from api.clock import as_utc, utcnow
from api.encryption import DecryptionError
from api.extensions import db
from api.web.metrics import MAILS

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 300
POLL_SECONDS = 1
# After a pass failed as a whole (the database down), wait longer: one log line
# every few seconds per worker is enough.
FAILED_PASS_PAUSE_SECONDS = 5
# A send is about ten socket waits (connect, EHLO, STARTTLS, EHLO, AUTH, MAIL,
# RCPT, DATA, the body, QUIT), each bounded by MAIL_SEND_TIMEOUT. A dozen
# timeouts is more than a live send can take, so no other worker ever takes a
# mail whose send is still going on; yet a dead worker's mail is retried soon.
LEASE_IN_TIMEOUTS = 12
# Recording a sent mail is retried this often, this far apart (within the lease).
RECORD_ATTEMPTS = 5
RECORD_RETRY_SECONDS = 2
CLAIMED = (
    OutboxMail.id,
    OutboxMail.recipient,
    OutboxMail.subject,
    OutboxMail.message_id,
    OutboxMail.body,
    OutboxMail.created_at,
    OutboxMail.attempts,
    OutboxMail.lease_owner,
)


def retry_delay(attempts):
    """After the `attempts`-th failed attempt: 5 s, 10 s, 20 s … capped at 300 s."""
    seconds = FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 16)
    return timedelta(seconds=min(seconds, MAX_RETRY_SECONDS))


def lease_length():
    return timedelta(seconds=LEASE_IN_TIMEOUTS * current_app.config["MAIL_SEND_TIMEOUT"])


def new_owner():
    """Unique per claim; host and pid make a stuck lease's holder findable."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def claim():
    """The next due mail, leased to us (committed), or None."""
    now = utcnow()
    until = now + lease_length()
    due_now = OutboxMail.next_attempt_at <= now
    # A read first: every worker polls each second, and on SQLite even an
    # UPDATE that matches nothing takes the one write lock from the requests.
    if db.session.execute(select(OutboxMail.id).where(due_now).limit(1)).first() is None:
        db.session.rollback()
        return None
    next_due = (
        select(OutboxMail.id)
        .where(due_now)
        .order_by(OutboxMail.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(OutboxMail)
        .where(OutboxMail.id == next_due, due_now)
        # Due again when the lease ends: a dead worker's mail comes back by itself.
        .values(
            lease_owner=new_owner(),
            lease_until=until,
            next_attempt_at=until,
            attempts=OutboxMail.attempts + 1,
        )
        .returning(*CLAIMED)
        .execution_options(synchronize_session=False)
    )
    row = db.session.execute(statement).one_or_none()
    db.session.commit()
    return row


def _finish(mail, **values):
    """Record an outcome, if the lease is still ours; True if it was."""
    statement = (
        update(OutboxMail)
        .where(OutboxMail.id == mail.id, OutboxMail.lease_owner == mail.lease_owner)
        .values(lease_owner=None, lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    ours = db.session.execute(statement).rowcount == 1
    db.session.commit()
    if not ours:
        log.warning(
            "mail %s: its lease ran out during the attempt; another worker has it",
            mail.id,
            extra={"mail_id": mail.id},
        )
    return ours


def sent(mail):
    """Record a send the server accepted. Should the database fail just then,
    the record is tried again for a while: a mail left leased would be sent
    again once its lease ran out (docs/operations.md, "Mail")."""
    finished = {"next_attempt_at": None, "body": None, "last_error": None}
    for attempt in range(RECORD_ATTEMPTS):
        try:
            if _finish(mail, sent_at=utcnow(), **finished):
                MAILS.labels("sent").inc()
            return
        except DBAPIError:
            db.session.rollback()
            if attempt == RECORD_ATTEMPTS - 1:
                raise
            log.warning("mail %s sent, but not yet recorded: the database failed", mail.id)
            time.sleep(RECORD_RETRY_SECONDS)


def past_horizon(mail):
    return utcnow() - as_utc(mail.created_at) >= current_app.config["MAIL_RETRY_HORIZON"]


def failed(mail, reason):
    now = utcnow()
    if past_horizon(mail):
        give_up(mail, reason)
        return
    delay = retry_delay(mail.attempts)
    if _finish(mail, next_attempt_at=now + delay, last_error=reason):
        MAILS.labels("retried").inc()
        log.warning(
            "mail %s to a recipient at %s not sent (%s); attempt %d, next in %d s",
            mail.id,
            recipient_domain(mail.recipient),
            reason,
            mail.attempts,
            delay.total_seconds(),
            extra={"mail_id": mail.id},
        )


def give_up(mail, reason):
    values = {"next_attempt_at": None, "body": None, "last_error": reason}
    if _finish(mail, gave_up_at=utcnow(), **values):
        MAILS.labels("given_up").inc()
        domain = recipient_domain(mail.recipient)
        log.error(
            "mail %s to a recipient at %s given up after %d attempts: %s",
            mail.id,
            domain,
            mail.attempts,
            reason,
            extra={"mail_id": mail.id, "recipient_domain": domain},
        )


def describe(error):
    """What went wrong, short, with nothing the server or the mail said."""
    code = getattr(error, "smtp_code", None)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        code = next(iter(error.recipients.values()), (None,))[0]
    if code is not None:
        return f"{type(error).__name__} {code}"[:200]
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"[:200]
    return type(error).__name__


def deliver_one():
    """Claim and attempt one due mail: True sent, False not, None when none was due."""
    mail = claim()
    if mail is None:
        return None
    if mail.attempts > 1 and past_horizon(mail):
        # Claimed again after its lease ran out (a worker died in each send):
        # the horizon holds for these too.
        give_up(mail, "retry horizon passed")
        return False
    try:
        text, html = body_parts(mail.body)
    except (DecryptionError, TypeError):
        give_up(mail, "body cannot be decrypted (its ENCRYPTION_KEYS key is gone)")
        return False
    try:
        message = compose(mail, text, html)
    except ValueError:  # a header no retry can make valid
        give_up(mail, "the message cannot be composed")
        return False
    try:
        transport().send(message)
    except (smtplib.SMTPException, OSError) as error:
        failed(mail, describe(error))
        return False
    except Exception as error:  # a bug must not stop the other mails
        log.exception("mail %s: unexpected failure", mail.id, extra={"mail_id": mail.id})
        failed(mail, type(error).__name__)
        return False
    sent(mail)
    return True


def deliver_due(app, limit=None, stopping=None):
    """One pass: attempt every due mail (at most `limit`); returns how many were sent."""
    count = handled = 0
    with app.app_context():
        while limit is None or handled < limit:
            if stopping is not None and stopping.is_set():
                break
            outcome = deliver_one()
            if outcome is None:
                break
            handled += 1
            count += outcome
    return count


class DeliveryLoop:
    """Passes about every second, or at once when this process commits a mail;
    any failure is logged and the loop goes on."""

    def __init__(self, app):
        self.app = app
        self.stopping = threading.Event()
        self.thread = None

    def run(self):
        while not self.stopping.is_set():
            NEW_MAIL.clear()
            pause = POLL_SECONDS
            try:
                deliver_due(self.app, stopping=self.stopping)
            except Exception:
                log.exception("mail delivery pass failed; trying again")
                pause = FAILED_PASS_PAUSE_SECONDS
            NEW_MAIL.wait(pause)

    def start_thread(self):
        self.thread = threading.Thread(target=self.run, name="mail-delivery", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout=None):
        """Ends after the mail in hand, if any (at most a send's timeouts)."""
        self.stopping.set()
        NEW_MAIL.set()
        if self.thread is not None:
            self.thread.join(timeout)


def start_in_background(app):
    """The delivery thread of a gunicorn worker, unless MAIL_DELIVERY=off."""
    if app.config["MAIL_DELIVERY"] != "thread":
        return None
    return DeliveryLoop(app).start_thread()


def run_in_foreground(app):
    """`flask mail deliver`: until SIGTERM or Ctrl-C, after the mail in hand."""
    loop = DeliveryLoop(app)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: loop.stop())
    loop.run()
