"""How mail leaves: MAIL_URL, read once at start, and the two transports.

- `smtp://[user:password@]host:port` (`?starttls=true` to upgrade the
  connection), `smtps://…` (TLS from the first byte): smtplib, certificates
  checked against the system's CAs.
- `log:`: each mail is written to the server log, whole, so that a `make run`
  user can follow its link. Development's default; production refuses it,
  since it would put one-time links in the log, and refuses to start with no
  MAIL_URL at all.

A bad MAIL_URL stops the start with one line that never quotes the URL (it
may hold a password).
"""

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

from api.auth.key_files import is_production
from api.clock import as_utc
from config import ConfigError

DELIVERY_MODES = ("thread", "off")
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
SHAPE = "smtp://[user:password@]host:port (?starttls=true), smtps://… or log:"
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int
    tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10

    def send(self, message):
        """Raises smtplib.SMTPException or OSError when the server is down or refuses."""
        context = ssl.create_default_context()
        if self.tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    def __repr__(self):  # no password in a log or a traceback
        return f"SmtpTransport({self.host}:{self.port}, tls={self.tls}, starttls={self.starttls})"


class LogTransport:
    def send(self, message):
        text = message.get_body(preferencelist=("plain",)).get_content()
        current_app.logger.info(
            "mail to %s (MAIL_URL is log:, it was not sent): %s\n\n%s",
            message["To"],
            message["Subject"],
            text,
            extra={"message_id": message["Message-ID"]},
        )


def parse(url, timeout=10):
    """The transport MAIL_URL names; ConfigError when it names none."""
    if url.strip() == "log:":
        return LogTransport()
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an IPv6 bracket left open, a character NFKC changes
        # Its text is not quoted: it may hold a password.
        raise ConfigError(f"MAIL_URL is not a URL; it must be {SHAPE}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise ConfigError(f"MAIL_URL must be {SHAPE}; its scheme is not one of these")
    if not parts.hostname:
        raise ConfigError(f"MAIL_URL has no host; it must be {SHAPE}")
    if parts.path not in ("", "/"):
        raise ConfigError(f"MAIL_URL must have no path; it must be {SHAPE}")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ConfigError("MAIL_URL's port must be a number from 1 to 65535") from None
    return SmtpTransport(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "smtps",
        starttls=_starttls(parts),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        timeout=timeout,
    )


def _starttls(parts):
    query = parse_qs(parts.query, keep_blank_values=True)
    values = query.pop("starttls", ["false"])
    if query or len(values) != 1 or values[0].lower() not in _TRUE + _FALSE:
        raise ConfigError("MAIL_URL's query may only be starttls=true or starttls=false")
    starttls = values[0].lower() in _TRUE
    if starttls and parts.scheme == "smtps":
        raise ConfigError("MAIL_URL: smtps:// is TLS already; starttls=true is for smtp://")
    return starttls


def init_app(app):
    config = app.config
    url = config.get("MAIL_URL")
    if is_production(config):
        if not url:
            raise ConfigError("MAIL_URL must be set in production (smtp://… or smtps://…)")
        if url.strip() == "log:":
            raise ConfigError(
                "MAIL_URL=log: would write one-time links to the server log; "
                "production needs smtp:// or smtps://"
            )
    if config["MAIL_DELIVERY"] not in DELIVERY_MODES:
        raise ConfigError(f"MAIL_DELIVERY must be thread or off, not {config['MAIL_DELIVERY']!r}")
    transport = parse(url or "log:", config["MAIL_SEND_TIMEOUT"])
    if is_production(config) and sends_password_in_clear(transport):
        raise ConfigError(
            "MAIL_URL would send its password unencrypted: use smtps:// or ?starttls=true"
        )
    app.extensions["mail_transport"] = transport


def sends_password_in_clear(transport):
    """A login over plain SMTP to another host: anyone on the path reads it."""
    plain = not (transport.tls or transport.starttls)
    remote = transport.host not in ("localhost", "127.0.0.1", "::1")
    return transport.username is not None and plain and remote


def transport():
    return current_app.extensions["mail_transport"]


def compose(mail, text, html):
    """The message of an outbox row: text/plain always, HTML as its alternative."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_FROM"]
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    # When it was written, not sent: the same on every attempt.
    message["Date"] = format_datetime(as_utc(mail.created_at))
    message["Message-ID"] = mail.message_id
    # Plain ASCII goes as it is (7bit), so a link stays one line, readable and
    # clickable in any client or log; anything else is quoted-printable.
    message.set_content(text, cte="7bit" if text.isascii() else "quoted-printable")
    if html:
        message.add_alternative(html, subtype="html")
    return message
