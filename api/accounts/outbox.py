"""The mail outbox: every mail the API accepts is a row here before it is sent.

`enqueue()` adds the mail to the caller's pending changes, so it is written in
the same transaction as the change that caused it (a new account, a reset
asked for) or not at all; api/accounts/mail_delivery.py sends it afterwards.
The body is stored encrypted (api/encryption.py): a reset link is a bearer
secret until it is used. Once a mail is sent or given up, its body is erased
and its metadata kept for a while (`flask mail prune`).

State lives in `next_attempt_at`: when the mail is next due, or NULL once it
is sent or given up. The due query is then a range scan of its index, up to
now, which finished mails (NULL) sort after. A claim pushes it to the lease's end, so that a
worker that dies mid-send leaves a mail that falls due again by itself.
"""

import json
import threading
from datetime import datetime
from email.headerregistry import Address
from email.utils import make_msgid, parseaddr

from flask import current_app
from sqlalchemy import BigInteger, DateTime, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from api.clock import utcnow
from api.database import after_commit
from api.encryption import decrypt, encrypt, rotate
from api.extensions import db
from api.web.metrics import MAILS

# Set when a request of this process commits a mail: the delivery thread
# (api/accounts/mail_delivery.py) wakes at once rather than at its next poll.
NEW_MAIL = threading.Event()


class OutboxMail(db.Model):
    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(255))
    # The same on every attempt, so a receiver can drop a duplicate.
    message_id: Mapped[str] = mapped_column(String(255))
    # Encrypted JSON {"text", "html"}; NULL once sent or given up.
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # NULL once sent or given up (see the module's docstring).
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # Who holds the mail while it is sent, and until when: one value per claim.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gave_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last failure's kind and SMTP code: never the body or a credential.
    last_error: Mapped[str | None] = mapped_column(String(200))


def enqueue(to, subject, text, html=None):
    """Add a mail to db.session, uncommitted: the caller's commit sends it.

    CR or LF in the recipient or subject would forge headers: refused here,
    in the request, rather than failing every attempt later."""
    for value in (to, subject):
        if "\r" in value or "\n" in value:
            raise ValueError("a mail header value cannot hold CR or LF")
    now = utcnow()
    mail = OutboxMail(
        recipient=to,
        subject=subject,
        message_id=make_msgid(domain=sender_domain()),
        body=encrypt(json.dumps({"text": text, "html": html})),
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    db.session.add(mail)
    after_commit(_committed)
    return mail


def _committed():
    MAILS.labels("queued").inc()
    NEW_MAIL.set()


def sender_domain():
    address = parseaddr(current_app.config["MAIL_FROM"])[1]
    return address.rpartition("@")[2] or "localhost"


def recipient_domain(recipient):
    """What logs may say of a recipient: the domain alone."""
    try:
        return Address(addr_spec=recipient).domain or "?"
    except (ValueError, IndexError):
        return "?"


def body_parts(stored):
    """(text, html or None) of an encrypted body; raises DecryptionError."""
    parts = json.loads(decrypt(stored))
    return parts["text"], parts.get("html")


def rotate_bodies():
    """Re-encrypt the bodies of mails not yet sent under the newest key
    (`flask encryption rotate`); returns how many."""
    count = 0
    # Locked: a delivery meanwhile may forget a sent mail's body.
    waiting = select(OutboxMail).where(OutboxMail.body.is_not(None)).with_for_update()
    for mail in db.session.scalars(waiting):
        mail.body = rotate(mail.body)
        count += 1
    db.session.commit()
    return count


def prune():
    """Forget sent and given-up mails older than MAIL_RETENTION; returns how many."""
    cutoff = utcnow() - current_app.config["MAIL_RETENTION"]
    finished = OutboxMail.next_attempt_at.is_(None)
    deleted = db.session.execute(delete(OutboxMail).where(finished, OutboxMail.created_at < cutoff))
    db.session.commit()
    return deleted.rowcount
