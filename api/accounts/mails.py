"""The account mails, rendered from api/templates/mail/ and queued in the outbox.

Each is queued in the request's transaction (api/accounts/outbox.py), so it is
sent if and only if the change that caused it commits. A mail that carries a
link has exactly one: APP_URL + a path, the token in its query (CONTRACT.md).
"""

from urllib.parse import urlencode

from flask import current_app, render_template

from api.accounts import one_time_tokens, outbox
from api.accounts.one_time_tokens import LIFETIMES, RESET_PASSWORD, VERIFY_EMAIL
from api.auth.key_files import is_production
from api.clock import utcnow
from config import ConfigError, app_url

# The paths of the app (the demo page at APP_URL, or a client's SPA) that
# open the links.
LINK_PATHS = {VERIFY_EMAIL: "verify-email", RESET_PASSWORD: "reset-password"}
SUBJECTS = {
    VERIFY_EMAIL: "Confirm your email address",
    RESET_PASSWORD: "Reset your password",
    "email_change_notice": "Your account's email address is being changed",
}


def init_app(app):
    """APP_URL, checked; production has no default: behind a proxy this
    server cannot know the address its users reach, and a wrong one breaks
    every link."""
    config = app.config
    if config.get("APP_URL"):
        config["APP_URL"] = app_url(config["APP_URL"])
    elif is_production(config):
        raise ConfigError(
            "APP_URL must be set in production: the https:// address of the app that "
            "opens the links in mails (APP_URL + verify-email, reset-password)"
        )
    else:
        config["APP_URL"] = f"http://{page_host(config['HOST'])}:{config['PORT']}/"


def page_host(host):
    """The name a browser should use for this server: `localhost` for a
    loopback address, since passkeys need a domain (browsers refuse an IP
    address as WebAuthn's RP id) and cookies belong to one host name."""
    return "localhost" if host in ("127.0.0.1", "::1") else host


def link(kind, token):
    return current_app.config["APP_URL"] + LINK_PATHS[kind] + "?" + urlencode({"token": token})


def send_verification(user, address):
    """A new verification link to `address` (the older one dies)."""
    token = one_time_tokens.issue(user.id, VERIFY_EMAIL, address)
    send_link(user, VERIFY_EMAIL, address, token)


def send_link(user, kind, address, token):
    """The verification or reset mail, to `address`."""
    lifetime = LIFETIMES[kind]
    expires_at = (utcnow() + lifetime).strftime("%Y-%m-%d %H:%M UTC")
    _queue(address, kind, username=user.username, link=link(kind, token),
           expires_at=expires_at, lifetime=in_words(lifetime))  # fmt: skip


def in_words(lifetime):
    """ "24 hours", "30 minutes": how long a link lives, for people."""
    minutes = int(lifetime.total_seconds()) // 60
    if minutes % 60:
        return f"{minutes} minutes"
    return f"{minutes // 60} hours" if minutes != 60 else "1 hour"


def send_change_notice(user, old_address, new_address):
    """To the old (verified) address, as soon as a change is asked for: its
    owner learns of it while the change can still be stopped."""
    _queue(old_address, "email_change_notice", username=user.username, new_address=new_address)


def _queue(address, template, **values):
    app_name = current_app.config["APP_NAME"]
    text = render_template(f"mail/{template}.txt", app_name=app_name, **values)
    outbox.enqueue(address, f"{app_name}: {SUBJECTS[template]}", text)
