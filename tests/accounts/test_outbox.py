"""The outbox: a mail is written with the change that caused it, or not at all;
its body is encrypted at rest and erased once it is sent."""

from datetime import timedelta

import pytest
import time_machine
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text

from api.accounts import outbox
from api.accounts.mail_delivery import deliver_due
from api.accounts.outbox import OutboxMail
from api.accounts.users import User
from api.clock import utcnow
from api.extensions import db

LINK = "http://127.0.0.1:8000/reset-password?token=s3cret-bearer-token"


def queued():
    return REGISTRY.get_sample_value("jwt_api_mails_total", {"outcome": "queued"})


def mail_count():
    return db.session.scalar(select(func.count()).select_from(OutboxMail))


def test_a_mail_commits_with_the_callers_change(store_app):
    before = queued()
    with store_app.app_context():
        db.session.add(User(username="bob", password_hash="x"))
        outbox.enqueue("bob@example.com", "Welcome", f"Hello\n{LINK}\n")
        assert queued() == before  # not before the commit
        db.session.commit()
        assert mail_count() == 1
    assert queued() == before + 1


def test_a_mail_is_lost_with_the_callers_rollback_and_not_counted(store_app):
    before = queued()
    outbox.NEW_MAIL.clear()
    with store_app.app_context():
        db.session.add(User(username="bob", password_hash="x"))
        outbox.enqueue("bob@example.com", "Welcome", LINK)
        db.session.rollback()
        assert mail_count() == 0
        db.session.commit()  # a later commit does not count the lost mail
    assert queued() == before
    assert not outbox.NEW_MAIL.is_set()


def test_a_commit_wakes_the_delivery_thread(app):
    outbox.NEW_MAIL.clear()
    with app.app_context():
        outbox.enqueue("bob@example.com", "Welcome", LINK)
        assert not outbox.NEW_MAIL.is_set()
        db.session.commit()
    assert outbox.NEW_MAIL.is_set()


def test_the_body_is_encrypted_at_rest(store_app):
    with store_app.app_context():
        outbox.enqueue("bob@example.com", "Reset", f"Open {LINK}", f"<a href='{LINK}'>reset</a>")
        db.session.commit()
        raw = db.session.execute(text("SELECT body FROM mail_outbox")).scalar_one()
        assert "s3cret-bearer-token" not in raw
        assert outbox.body_parts(raw) == (f"Open {LINK}", f"<a href='{LINK}'>reset</a>")


def test_the_body_is_erased_once_sent_and_the_metadata_kept(make_store_app, mail_settings):
    store_app = make_store_app(**mail_settings)
    with store_app.app_context():
        outbox.enqueue("bob@example.com", "Reset", LINK)
        db.session.commit()
    assert deliver_due(store_app) == 1
    with store_app.app_context():
        mail = db.session.scalars(select(OutboxMail)).one()
        assert mail.body is None
        assert (mail.recipient, mail.subject, mail.attempts) == ("bob@example.com", "Reset", 1)
        assert mail.sent_at is not None and mail.next_attempt_at is None


@pytest.mark.parametrize("field", ["to", "subject"])
def test_a_header_with_a_line_break_is_refused(app, field):
    values = {"to": "bob@example.com", "subject": "Hi", field: "x\r\nBcc: eve@example.com"}
    with app.app_context(), pytest.raises(ValueError, match="CR or LF"):
        outbox.enqueue(values["to"], values["subject"], "text")


def test_each_mail_has_its_own_message_id_in_the_senders_domain(app):
    app.config["MAIL_FROM"] = "Example <no-reply@mail.example.org>"
    with app.app_context():
        first = outbox.enqueue("a@example.com", "Hi", "text")
        second = outbox.enqueue("b@example.com", "Hi", "text")
    assert first.message_id != second.message_id
    assert first.message_id.endswith("@mail.example.org>")


def test_prune_forgets_finished_mails_past_the_retention(store_app):
    start = utcnow()
    with store_app.app_context():
        with time_machine.travel(start - timedelta(days=8), tick=False):
            old_sent = outbox.enqueue("a@example.com", "old sent", "x")
            outbox.enqueue("b@example.com", "old pending", "x")
        recent_sent = outbox.enqueue("c@example.com", "recent sent", "x")
        db.session.flush()
        old_sent.next_attempt_at = recent_sent.next_attempt_at = None
        db.session.commit()
        assert outbox.prune() == 1
        subjects = set(db.session.scalars(select(OutboxMail.subject)))
    assert subjects == {"old pending", "recent sent"}  # a pending mail is never forgotten


@pytest.mark.parametrize(
    ("recipient", "domain"),
    [("bob@example.com", "example.com"), ("not an address", "?"), ("bob@", "?")],
)
def test_logs_name_the_recipients_domain_alone(recipient, domain):
    assert outbox.recipient_domain(recipient) == domain
