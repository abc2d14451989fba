"""An account's address and the way back in: verification, change, forgotten
password and reset.

Each flow commits once: its change, its one-time token, its mail (queued in
the outbox) and its security event together, or none of them.
"""

from typing import NamedTuple

from flask_smorest import abort
from sqlalchemy.exc import IntegrityError

from api.accounts import events, mails, one_time_tokens, users
from api.accounts.one_time_tokens import RESET_PASSWORD, VERIFY_EMAIL
from api.auth import mfa_challenges, personal_tokens, sessions
from api.extensions import db


def same_address(first, second):
    return first is not None and second is not None and first.lower() == second.lower()


def check_free(address, user_id):
    owner = users.find_by_email(address)
    if owner is not None and owner.id != user_id:
        users.abort_email_taken()


def unverified_address(user):
    """Where a verification resend goes: the address asked for, else the
    account's own while it is unverified."""
    if user.pending_email:
        return user.pending_email
    return None if user.email_verified else user.email


def resend_verification(user):
    address = unverified_address(user)
    if address is None:
        abort(409, error="nothing_to_verify", message="This account has no address to verify.")
    mails.send_verification(user, address)
    db.session.commit()


def change_email(user, address):
    """The new address counts once its link is opened; a verified old one is
    told at once, while the change can still be stopped (by a new password).
    Returns whether a link was mailed."""
    if same_address(address, user.email) and user.email_verified:
        # Back to the address the account has: no change is pending any more.
        user.pending_email = None
        one_time_tokens.revoke_kind(user.id, VERIFY_EMAIL)
        db.session.commit()
        return False
    check_free(address, user.id)
    if same_address(address, user.email):
        user.pending_email = None  # the account's own, still unverified
    else:
        user.pending_email = address
        if user.email and user.email_verified:
            mails.send_change_notice(user, user.email, address)
    mails.send_verification(user, address)
    db.session.commit()
    return True


def verify(token):
    """Open a verification link: the address it was sent to becomes the
    account's, verified. Answers the user."""
    redeemed = one_time_tokens.find(token, VERIFY_EMAIL)
    user = users.lock(redeemed.user_id)
    one_time_tokens.use_up(redeemed)
    if user.disabled:
        one_time_tokens.abort_link_invalid()
    if same_address(redeemed.email, user.pending_email):
        check_free(redeemed.email, user.id)
        user.email, user.pending_email = redeemed.email, None
        # Reset links mailed to the old address must not outlive the move.
        one_time_tokens.revoke_kind(user.id, RESET_PASSWORD)
        events.record("email_changed", user.id)
    elif same_address(redeemed.email, user.email):
        events.record("email_verified", user.id)
    else:  # the address is no longer the account's, nor asked for
        one_time_tokens.abort_link_invalid()
    user.email_verified = True
    commit_or_email_taken()
    return user


def commit_or_email_taken():
    try:
        db.session.commit()
    except IntegrityError:  # another account took the address meanwhile
        db.session.rollback()
        users.abort_email_taken()


def forgot_password(address):
    """A reset link to the account whose own address this is, if any, at the
    address as the account has it (not as the caller typed it).

    The caller's answer is the same either way, and so is its time: both ways
    make a token and a mail and commit an event; for an unknown address the
    token and mail are dropped unsent, and the event names no account."""
    # Locked: of concurrent requests, each link issued kills the one before.
    user = users.find_by_email(address, lock=True)
    known = user is not None and not user.disabled
    if known:
        address = user.email
    else:
        user = NOBODY
    # No query may flush the decoy's rows (user 0 is no account): none runs.
    with db.session.no_autoflush:
        token = one_time_tokens.issue(user.id, RESET_PASSWORD, address)
        mails.send_link(user, RESET_PASSWORD, address, token)
        if not known:
            db.session.rollback()
    events.record("password_reset_requested", user.id if known else None)
    db.session.commit()


class Decoy(NamedTuple):
    id: int
    username: str


NOBODY = Decoy(id=0, username="nobody")


def reset_password(token, new_password):
    """Open a reset link: a new password, every session, link and personal
    access token of the user ended (on every instance at once), and the
    address it reached verified."""
    redeemed = one_time_tokens.find(token, RESET_PASSWORD)
    user = users.lock(redeemed.user_id)
    one_time_tokens.use_up(redeemed)
    if user.disabled or not same_address(redeemed.email, user.email):
        # The account's address has changed since: the link went elsewhere.
        one_time_tokens.abort_link_invalid()
    users.set_password(user, new_password)
    forget_links(user)
    ended = sessions.revoke_all(user.id, reason="password_reset")
    tokens = personal_tokens.remove_all(user.id)
    user.email_verified = True  # the link reached the address
    events.record("password_reset", user.id, sessions_revoked=len(ended), tokens_revoked=tokens)
    db.session.commit()


def forget_links(user):
    """A new password ends every link of the user, any change of address
    asked for (perhaps by whoever the password change shuts out), and any
    login waiting for its second factor with the old password."""
    one_time_tokens.revoke_all(user.id)
    mfa_challenges.revoke_all(user.id)
    user.pending_email = None
