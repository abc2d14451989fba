"""The account's address and the way back in: `/api/auth/email/verify`,
`/api/me/email`, `/api/me/email/verification`, `/api/auth/password/forgot`
and `/api/auth/password/reset` (api/accounts/email_flows.py does the work)."""

from flask_jwt_extended import get_current_user

from api.accounts import email_flows, users
from api.auth.identity import lock_current_user, token_required
from api.extensions import db
from api.routes import groups
from api.schemas import (
    AcceptedSchema,
    EmailSchema,
    PasswordResetSchema,
    UserSchema,
    VerifyEmailSchema,
)
from api.web import limits
from api.web.openapi import AUTH_DOC

blp = groups.email


def unverified_address_of_caller():
    # The rate limit's key: the mailbox a resend would write to.
    return email_flows.unverified_address(db.session.get(users.User, get_current_user().id))


@blp.post("/api/auth/email/verify")
@blp.arguments(VerifyEmailSchema)
@blp.response(200, UserSchema)
def verify_email(data):
    """Open a verification link: its address becomes the account's, verified.

    400 `link_invalid` (unknown, used, superseded, or a reset link),
    400 `link_expired` (after 24 hours), 409 `email_taken` (another account
    took the address since the link was sent). A refused link is not used up.
    """
    return email_flows.verify(data["token"])


@blp.post("/api/me/email/verification")
@blp.doc(**AUTH_DOC)
@token_required()
@blp.response(202, AcceptedSchema)
@limits.mail_sending(unverified_address_of_caller)
def resend_verification():
    """Mail a new verification link to the caller's unverified address.

    The older link stops working. 409 `nothing_to_verify` when the account has
    no unverified address; 429 `rate_limited` per client and per address mailed.
    """
    email_flows.resend_verification(lock_current_user())
    return {"message": "A new verification link is on its way."}


@blp.put("/api/me/email")
@blp.doc(**AUTH_DOC)
@token_required(fresh=True)
@blp.arguments(EmailSchema)
@blp.response(202, AcceptedSchema)
@limits.mail_sending(limits.body_email)
def change_email(data):
    """Ask to change the address (fresh token only); it counts once its link is opened.

    The link goes to the new address; a verified old address is told at once.
    409 `email_taken`; 429 `rate_limited` per client and per address mailed.
    """
    if not email_flows.change_email(lock_current_user(), data["email"]):
        return {"message": "This is the account's address already: no change is pending."}
    return {"message": "Open the link mailed to the new address to make it the account's."}


# The same answer whether or not an account has the address: it tells nobody which do.
FORGOT_ANSWER = {"message": "If an account has this address, a reset link is on its way."}


@blp.post("/api/auth/password/forgot")
@blp.arguments(EmailSchema)
@blp.response(202, AcceptedSchema)
@limits.mail_sending(limits.body_email)
def forgot_password(data):
    """Mail a password reset link to the account with this address, if there is one.

    The same answer, in about the same time, whether or not an account has the
    address. 429 `rate_limited` per client and per address.
    """
    email_flows.forgot_password(data["email"])
    return FORGOT_ANSWER


@blp.post("/api/auth/password/reset")
@blp.arguments(PasswordResetSchema)
@blp.response(204)
@limits.per_address
def reset_password(data):
    """Open a reset link: a new password; every session of the user ends.

    The address the link reached is marked verified; every other link of the
    user dies. 400 `link_invalid` / `link_expired` (after 30 minutes).
    """
    email_flows.reset_password(data["token"], data["new_password"])
