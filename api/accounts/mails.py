"""The account mails, rendered from api/templates/mail/ and queued in the outbox.

Each is queued in the request's transaction (api/accounts/outbox.py), so it is
sent if and only if the change that caused it commits. A mail that carries a
link has exactly one: APP_URL + a path, the token in its query (CONTRACT.md).
"""

from urllib.parse import urlencode

from flask import current_app, render_template

from api.accounts import one_time_tokens, outbox
from api.accounts.one_time_tokens import LIFETIMES, RESET_PASSWORD, VERIFY_EMAIL
from api.clock import utcnow

# The paths of the app (the demo page at APP_URL, or a client's SPA) that
# open the links.
LINK_PATHS = {VERIFY_EMAIL: "verify-email", RESET_PASSWORD: "reset-password"}
SUBJECTS = {
    VERIFY_EMAIL: "Confirm your email address",
    RESET_PASSWORD: "Reset your password",
    "email_change_notice": "Your account's email address is being changed",
}


def link(kind, token):
    return current_app.config["APP_URL"] + LINK_PATHS[kind] + "?" + urlencode({"token": token})


def send_verification(user, address):
    """A new verification link to `address` (the older one dies)."""
    token = one_time_tokens.issue(user.id, VERIFY_EMAIL, address)
    send_link(user, VERIFY_EMAIL, address, token)


def send_link(user, kind, address, token):
    """The verification or reset mail, to `address`."""
    expires_at = (utcnow() + LIFETIMES[kind]).strftime("%Y-%m-%d %H:%M UTC")
    _queue(address, kind, username=user.username, link=link(kind, token), expires_at=expires_at)


def send_change_notice(user, old_address, new_address):
    """To the old (verified) address, as soon as a change is asked for: its
    owner learns of it while the change can still be stopped."""
    _queue(old_address, "email_change_notice", username=user.username, new_address=new_address)


def _queue(address, template, **values):
    app_name = current_app.config["APP_NAME"]
    text = render_template(f"mail/{template}.txt", app_name=app_name, **values)
    outbox.enqueue(address, f"{app_name}: {SUBJECTS[template]}", text)
