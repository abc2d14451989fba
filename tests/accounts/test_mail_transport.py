"""MAIL_URL: what each form means, what is refused (never quoting a password),
production's refusals, SMTP AUTH against a real server, and the log transport."""

import logging
import secrets

import pytest
from cryptography.fernet import Fernet

from api import create_app
from api.accounts import outbox
from api.accounts.mail_delivery import deliver_due
from api.accounts.mail_transport import LogTransport, SmtpTransport, parse
from api.accounts.outbox import OutboxMail
from api.extensions import db
from config import ConfigError
from tests.mail_support import SmtpSink

LINK = "http://127.0.0.1:8000/reset-password?token=log-me-in-development"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.org:2525", SmtpTransport("mail.example.org", 2525)),
        ("smtp://mail.example.org", SmtpTransport("mail.example.org", 25)),
        ("smtps://mail.example.org", SmtpTransport("mail.example.org", 465, tls=True)),
        ("smtps://mail.example.org:4650", SmtpTransport("mail.example.org", 4650, tls=True)),
        (
            "smtp://mail.example.org:587?starttls=true",
            SmtpTransport("mail.example.org", 587, starttls=True),
        ),
        ("smtp://h:587?starttls=false", SmtpTransport("h", 587)),
        (
            "smtp://apikey:p%40ss%3Aword@smtp.example.org:587/?starttls=true",
            SmtpTransport("smtp.example.org", 587, False, True, "apikey", "p@ss:word"),
        ),
        ("smtp://user@h:25", SmtpTransport("h", 25, username="user")),
    ],
)
def test_mail_urls(url, expected):
    assert parse(url) == expected


def test_log_url():
    assert isinstance(parse("log:"), LogTransport)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://user:hunter2@mail.example.org:25", "scheme is not one of these"),
        ("mail.example.org:25", "scheme is not one of these"),
        ("smtp://user:hunter2@:25", "has no host"),
        ("smtp://user:hunter2@mail.example.org:99999", "port must be a number"),
        ("smtp://user:hunter2@mail.example.org:twentyfive", "port must be a number"),
        ("smtp://user:hunter2@mail.example.org:25/inbox", "must have no path"),
        ("smtp://user:hunter2@mail.example.org:25?tls=yes", "may only be starttls"),
        ("smtp://user:hunter2@mail.example.org:25?starttls=maybe", "may only be starttls"),
        ("smtps://user:hunter2@mail.example.org?starttls=true", "TLS already"),
        ("smtp://user:hunter2\uff03@mail.example.org:25", "is not a URL"),
        ("smtp://user:hunter2@[::1:25", "is not a URL"),
    ],
)
def test_a_bad_url_is_refused_in_one_line_without_its_password(url, complaint):
    with pytest.raises(ConfigError) as refused:
        parse(url)
    message = str(refused.value)
    assert complaint in message
    assert "\n" not in message and "hunter2" not in message and "twentyfive" not in message


def test_the_transport_never_shows_its_password():
    transport = parse("smtp://user:hunter2@mail.example.org:25")
    assert "hunter2" not in repr(transport)


def production(**overrides):
    settings = {
        "APP_CONFIG": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "JWT_SECRET_KEY": secrets.token_urlsafe(48),
        "ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "MAIL_URL": None,
        "APP_URL": "https://app.example.org/",
    }
    return create_app({**settings, **overrides})


@pytest.mark.parametrize(
    ("mail_url", "complaint"),
    [
        (None, "error: MAIL_URL must be set in production (smtp://… or smtps://…)"),
        (
            "log:",
            "error: MAIL_URL=log: would write one-time links to the server log; "
            "production needs smtp:// or smtps://",
        ),
    ],
)
def test_production_refuses_to_start_without_smtp(mail_url, complaint):
    with pytest.raises(ConfigError) as refused:
        production(MAIL_URL=mail_url)
    assert str(refused.value) == complaint


def test_production_starts_with_smtp():
    app = production(MAIL_URL="smtps://user:pw@mail.example.org")
    assert app.extensions["mail_transport"].tls


def test_production_refuses_a_password_sent_in_clear():
    with pytest.raises(ConfigError) as refused:
        production(MAIL_URL="smtp://user:hunter2@mail.example.org:587")
    assert str(refused.value) == (
        "error: MAIL_URL would send its password unencrypted: use smtps:// or ?starttls=true"
    )
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "smtp://user:pw@mail.example.org:587?starttls=true",
        "smtp://user:pw@127.0.0.1:25",  # a relay on this host: nothing crosses a network
        "smtp://mail.example.org:25",  # no password to show
    ],
)
def test_production_takes_smtp_that_shows_no_password(url):
    assert production(MAIL_URL=url).extensions["mail_transport"].host


def test_development_defaults_to_the_log(make_app):
    assert isinstance(make_app(MAIL_URL=None).extensions["mail_transport"], LogTransport)


def test_an_unknown_delivery_mode_is_refused(make_app):
    with pytest.raises(ConfigError, match="MAIL_DELIVERY must be thread or off, not 'cron'"):
        make_app(MAIL_DELIVERY="cron")


def queue_one(app):
    with app.app_context():
        mail = outbox.enqueue("bob@example.com", "Reset your password", f"Open:\n{LINK}\n")
        db.session.commit()
        return mail.id


def test_the_log_transport_writes_the_whole_text_at_info(app, caplog):
    mail_id = queue_one(app)
    with caplog.at_level(logging.INFO):
        assert deliver_due(app) == 1
    [record] = [r for r in caplog.records if LINK in r.getMessage()]
    assert record.levelno == logging.INFO and record.name == app.logger.name
    assert "mail to bob@example.com" in record.getMessage()
    assert "Reset your password" in record.getMessage()
    with app.app_context():
        assert db.session.get(OutboxMail, mail_id).sent_at is not None


@pytest.fixture
def auth_sink():
    sink = SmtpSink(credentials=("mailer", "p@ss word")).start()
    yield sink
    sink.stop()


def test_smtp_auth_with_the_credentials_of_the_url(make_app, auth_sink):
    app = make_app(MAIL_URL=f"smtp://mailer:p%40ss%20word@127.0.0.1:{auth_sink.port}")
    queue_one(app)
    assert deliver_due(app) == 1
    assert len(auth_sink.wait_for(1)) == 1


def test_a_wrong_password_is_retried_and_not_recorded(make_app, auth_sink):
    app = make_app(MAIL_URL=f"smtp://mailer:hunter2@127.0.0.1:{auth_sink.port}")
    mail_id = queue_one(app)
    assert deliver_due(app) == 0
    with app.app_context():
        mail = db.session.get(OutboxMail, mail_id)
        assert mail.last_error == "SMTPAuthenticationError 535"
        assert mail.next_attempt_at is not None
    assert auth_sink.messages == []
