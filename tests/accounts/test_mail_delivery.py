"""Delivery of the outbox over real SMTP (aiosmtpd): once, with retries and
back-off while the server is down or refuses, given up after the horizon, and
exactly once however many claim at the same time."""

import logging
import smtplib
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
import time_machine
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from api.accounts import mail_delivery, outbox
from api.accounts.mail_delivery import DeliveryLoop, deliver_due, lease_length
from api.accounts.outbox import OutboxMail
from api.clock import as_utc
from api.extensions import db
from tests.mail_support import text_of

START = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
LINK = "http://127.0.0.1:8000/verify-email?token=link-token-0123456789"


def counted(outcome):
    return REGISTRY.get_sample_value("jwt_api_mails_total", {"outcome": outcome})


@pytest.fixture
def mail_app(make_store_app, mail_settings):
    return make_store_app(**mail_settings)


def queue(app, count=1, html=None):
    with app.app_context():
        mails = [
            outbox.enqueue(f"user{n}@example.com", f"Mail {n}", f"Hello\n{LINK}\n", html)
            for n in range(count)
        ]
        db.session.commit()
        return [mail.id for mail in mails]


def stored(app, mail_id):
    with app.app_context():
        mail = db.session.get(OutboxMail, mail_id)
        db.session.expunge(mail)
        return mail


def test_a_mail_is_sent_once_with_its_headers_and_parts(mail_app, smtp_sink):
    sent_before = counted("sent")
    [mail_id] = queue(mail_app, html=f"<p><a href='{LINK}'>Confirm</a></p>")
    assert deliver_due(mail_app) == 1
    assert deliver_due(mail_app) == 0
    [message] = smtp_sink.wait_for(1)
    mail = stored(mail_app, mail_id)
    assert message["From"] == "Flask JWT API <no-reply@localhost>"
    assert message["To"] == "user0@example.com"
    assert message["Subject"] == "Mail 0"
    assert message["Message-ID"] == mail.message_id
    assert parsedate_to_datetime(message["Date"]) == as_utc(mail.created_at).replace(microsecond=0)
    assert text_of(message) == f"Hello\n{LINK}\n"
    assert LINK in message.get_body(preferencelist=("html",)).get_content()
    assert smtp_sink.envelopes == [("no-reply@localhost", ["user0@example.com"])]
    assert mail.sent_at is not None and mail.body is None and mail.attempts == 1
    assert counted("sent") == sent_before + 1
    assert len(smtp_sink.wait_for(2, timeout=0.2)) == 1


def test_smtp_down_retries_within_10_s_and_delivers_once_it_is_up(mail_app, smtp_sink):
    retried_before = counted("retried")
    smtp_sink.stop()
    with time_machine.travel(START, tick=False) as traveller:
        [mail_id] = queue(mail_app)
        assert deliver_due(mail_app) == 0
        mail = stored(mail_app, mail_id)
        assert as_utc(mail.next_attempt_at) - START <= timedelta(seconds=10)
        assert mail.last_error == "ConnectionRefusedError: Connection refused"
        assert counted("retried") == retried_before + 1
        assert deliver_due(mail_app) == 0  # not due yet
        smtp_sink.start()
        traveller.shift(10)
        assert deliver_due(mail_app) == 1
    assert [m["Message-ID"] for m in smtp_sink.wait_for(1)] == [mail.message_id]
    assert stored(mail_app, mail_id).attempts == 2


def test_the_back_off_doubles_from_5_s_to_at_most_300_s(mail_app, smtp_sink):
    smtp_sink.refuse("451 4.3.0 try again later")
    delays = []
    with time_machine.travel(START, tick=False) as traveller:
        [mail_id] = queue(mail_app)
        for _ in range(9):
            attempted_at = datetime.now(UTC)
            assert deliver_due(mail_app) == 0
            due = as_utc(stored(mail_app, mail_id).next_attempt_at)
            delays.append((due - attempted_at).total_seconds())
            traveller.move_to(due)
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert stored(mail_app, mail_id).last_error == "SMTPDataError 451"


def test_a_permanent_refusal_is_retried_too_with_the_same_message_id(mail_app, smtp_sink):
    smtp_sink.refuse("550 5.7.1 not now")
    with time_machine.travel(START, tick=False) as traveller:
        [mail_id] = queue(mail_app)
        assert deliver_due(mail_app) == 0
        assert stored(mail_app, mail_id).last_error == "SMTPDataError 550"
        smtp_sink.accept()
        traveller.shift(5)
        assert deliver_due(mail_app) == 1
    [message] = smtp_sink.wait_for(1)
    assert message["Message-ID"] == stored(mail_app, mail_id).message_id


def test_after_the_horizon_a_mail_is_given_up_logged_and_counted(mail_app, smtp_sink, caplog):
    given_up_before = counted("given_up")
    smtp_sink.refuse()
    with time_machine.travel(START, tick=False) as traveller:
        [mail_id] = queue(mail_app)
        assert deliver_due(mail_app) == 0
        traveller.shift(timedelta(hours=24) - timedelta(seconds=1))
        assert deliver_due(mail_app) == 0  # still within the horizon: retried
        assert stored(mail_app, mail_id).gave_up_at is None
        traveller.shift(10)
        with caplog.at_level(logging.INFO):
            assert deliver_due(mail_app) == 0
    mail = stored(mail_app, mail_id)
    assert mail.gave_up_at is not None and mail.next_attempt_at is None
    assert mail.body is None and mail.attempts == 3
    assert counted("given_up") == given_up_before + 1
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.mail_id == mail_id and record.recipient_domain == "example.com"
    assert f"mail {mail_id} to a recipient at example.com given up" in record.getMessage()
    for r in caplog.records:
        assert "link-token" not in r.getMessage() and "user0@" not in r.getMessage()


def test_concurrent_claimers_send_each_mail_exactly_once(make_store_app, mail_settings, smtp_sink):
    apps = [make_store_app(**mail_settings) for _ in range(2)]
    ids = queue(apps[0], count=50)
    start = threading.Barrier(4)
    sent = []

    def claimer(app):
        start.wait()
        sent.append(deliver_due(app))

    threads = [threading.Thread(target=claimer, args=(apps[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    messages = smtp_sink.wait_for(50)
    assert sum(sent) == 50
    assert len(smtp_sink.wait_for(51, timeout=0.3)) == 50
    copies = Counter(message["Message-ID"] for message in messages)
    assert set(copies.values()) == {1}
    assert {stored(apps[0], i).attempts for i in ids} == {1}


def test_an_expired_lease_is_reclaimed_and_the_late_worker_changes_nothing(
    mail_app, smtp_sink, caplog
):
    sent_before = counted("sent")
    with time_machine.travel(START, tick=False) as traveller:
        [mail_id] = queue(mail_app)
        with mail_app.app_context():
            dead = mail_delivery.claim()  # a worker killed while it sends
            lease = lease_length()
        assert deliver_due(mail_app) == 0  # leased
        traveller.shift(lease - timedelta(seconds=1))
        assert deliver_due(mail_app) == 0
        traveller.shift(2)
        assert deliver_due(mail_app) == 1
        with mail_app.app_context(), caplog.at_level(logging.WARNING):
            mail_delivery.sent(dead)  # had it lived: its lease is gone
    assert len(smtp_sink.wait_for(1)) == 1
    assert stored(mail_app, mail_id).attempts == 2
    assert counted("sent") == sent_before + 1
    assert "its lease ran out" in caplog.text


def test_a_mail_whose_every_send_dies_is_given_up_after_the_horizon(mail_app, smtp_sink):
    # Each claim's worker dies mid-send (the lease runs out, nothing recorded):
    # once the horizon has passed, the next claim gives the mail up unsent.
    given_up_before = counted("given_up")
    with time_machine.travel(START, tick=False) as traveller:
        [mail_id] = queue(mail_app)
        with mail_app.app_context():
            mail_delivery.claim()
            lease = lease_length()
        traveller.shift(timedelta(hours=24))
        with mail_app.app_context():
            mail_delivery.claim()
        traveller.shift(lease + timedelta(seconds=1))
        assert deliver_due(mail_app) == 0
    mail = stored(mail_app, mail_id)
    assert mail.gave_up_at is not None and mail.last_error == "retry horizon passed"
    assert smtp_sink.messages == []
    assert counted("given_up") == given_up_before + 1


def test_a_sent_mail_is_recorded_though_the_database_fails_once(mail_app, smtp_sink, monkeypatch):
    # The server took it; the first record fails: recorded on the next try,
    # not left leased to be sent again.
    real_finish, failures = mail_delivery._finish, iter([True])

    def flaky_finish(mail, **values):
        if values.get("sent_at") and next(failures, False):
            raise OperationalError("UPDATE", {}, Exception("server closed the connection"))
        return real_finish(mail, **values)

    monkeypatch.setattr(mail_delivery, "_finish", flaky_finish)
    monkeypatch.setattr(mail_delivery, "RECORD_RETRY_SECONDS", 0)
    [mail_id] = queue(mail_app)
    assert deliver_due(mail_app) == 1
    assert stored(mail_app, mail_id).sent_at is not None
    assert len(smtp_sink.wait_for(1)) == 1


def test_a_mail_that_cannot_be_composed_is_given_up_at_once(mail_app, smtp_sink):
    # A vertical tab in the address: no retry could ever send it.
    with mail_app.app_context():
        mail = outbox.enqueue("bob\x0b@example.com", "Hello", "Hello\n")
        db.session.commit()
        mail_id = mail.id
    assert deliver_due(mail_app) == 0
    mail = stored(mail_app, mail_id)
    assert mail.gave_up_at is not None and mail.attempts == 1
    assert mail.last_error == "the message cannot be composed"
    assert smtp_sink.messages == []


def test_the_lease_outlasts_a_dozen_socket_timeouts(app):
    app.config["MAIL_SEND_TIMEOUT"] = 10
    with app.app_context():
        assert lease_length() == timedelta(seconds=120)


def test_a_body_that_cannot_be_decrypted_is_given_up(make_store_app, mail_settings, smtp_sink):
    [mail_id] = queue(make_store_app(**mail_settings))
    other_key = make_store_app(**mail_settings, ENCRYPTION_KEYS=[Fernet.generate_key().decode()])
    assert deliver_due(other_key) == 0
    mail = stored(other_key, mail_id)
    assert mail.gave_up_at is not None and "cannot be decrypted" in mail.last_error
    assert smtp_sink.messages == []


@pytest.fixture
def thread_app(make_app, mail_settings, tmp_path):
    """A file database: the delivery thread and the test use it together."""
    return make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db", **mail_settings)


def test_the_delivery_thread_sends_a_committed_mail_and_stops_cleanly(thread_app, smtp_sink):
    loop = DeliveryLoop(thread_app).start_thread()
    try:
        queue(thread_app)
        assert len(smtp_sink.wait_for(1, timeout=5)) == 1
    finally:
        loop.stop(timeout=5)
    assert not loop.thread.is_alive()


def test_the_delivery_thread_survives_a_failed_pass(thread_app, smtp_sink, monkeypatch, caplog):
    real = mail_delivery.deliver_due
    calls = []

    def failing_once(app, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return real(app, **kwargs)

    monkeypatch.setattr(mail_delivery, "deliver_due", failing_once)
    monkeypatch.setattr(mail_delivery, "FAILED_PASS_PAUSE_SECONDS", 0.05)
    queue(thread_app)
    loop = DeliveryLoop(thread_app).start_thread()
    try:
        assert len(smtp_sink.wait_for(1, timeout=5)) == 1
    finally:
        loop.stop(timeout=5)
    assert "mail delivery pass failed" in caplog.text


def test_no_thread_when_delivery_is_off(app):
    assert app.config["MAIL_DELIVERY"] == "off"
    assert mail_delivery.start_in_background(app) is None


def test_flask_mail_test_queues_a_mail_that_is_delivered(thread_app, smtp_sink):
    result = thread_app.test_cli_runner().invoke(args=["mail", "test", "--to", "ops@example.com"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Queued test mail ")
    assert deliver_due(thread_app) == 1
    [message] = smtp_sink.wait_for(1)
    assert message["To"] == "ops@example.com"
    assert "its mail settings work" in text_of(message)


def test_flask_mail_prune_says_what_it_forgot(thread_app):
    result = thread_app.test_cli_runner().invoke(args=["mail", "prune"])
    assert result.exit_code == 0, result.output
    assert result.output == "Pruned 0 sent or given-up mails older than 7 days.\n"


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@example.com": (550, b"no")}),
            "SMTPRecipientsRefused 550",
        ),
        (
            smtplib.SMTPAuthenticationError(535, b"bad password hunter2"),
            "SMTPAuthenticationError 535",
        ),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "ConnectionRefusedError: Connection refused",
        ),
        (TimeoutError(), "TimeoutError"),
    ],
)
def test_a_failure_is_described_without_what_the_server_said(error, described):
    assert mail_delivery.describe(error) == described
