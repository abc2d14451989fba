"""Passkeys (WebAuthn): a logged-in user registers one, then logs in with it
alone, no password (CONTRACT.md). py_webauthn checks each ceremony; this
module keeps the credentials and their sign counters; the challenges, each
good for one answer within five minutes, are api/auth/webauthn_challenges.py's.

- Registration demands a discoverable credential (residentKey required) and
  user verification, and takes no attestation ("none"): the API trusts the
  key, not a vendor's statement about it. A credential id is registered once.
- A login demands user verification, a known credential whose user handle
  is its owner's, a live account, and a sign counter that went forward
  (when either count is non-zero): it is advanced by one conditional UPDATE,
  so an answer replayed at the same time on another worker fails.
- The user handle (WebAuthn's user.id) is the account id as text,
  `str(id).encode()`: stable, unique, and no personal information (no
  username or address), which is what WebAuthn asks of it. An id SQLite
  hands out again after an account is deleted cannot log in as the old
  account: its passkeys were deleted with it, and a login looks the
  credential up first, then checks that the handle is its owner's.
"""

from datetime import datetime

from flask import current_app
from flask_smorest import abort
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    LargeBinary,
    String,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    generate_challenge,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from api.accounts import events
from api.accounts.users import User
from api.auth import webauthn_challenges as challenges
from api.auth.webauthn_challenges import LOGIN, REGISTER
from api.auth.webauthn_challenges import WebAuthnChallenge as Challenge
from api.clock import utcnow
from api.extensions import db
from api.web.metrics import SECOND_FACTORS

PASSKEY = "passkey"  # the metric's method label
# What py_webauthn's parsers raise on a malformed answer besides its own
# exceptions (base64, CBOR and COSE garbage): all mean "does not verify".
MALFORMED = (WebAuthnException, ValueError, KeyError, IndexError, TypeError)


# WebAuthn §5.8.3: a credential id is at most 1023 bytes; a longer one is
# no authenticator's (and would outgrow PostgreSQL's index).
MAX_CREDENTIAL_ID = 1023


class Passkey(db.Model):
    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # WebAuthn caps a credential id at 1023 bytes.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(MAX_CREDENTIAL_ID), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE
    sign_count: Mapped[int] = mapped_column(BigInteger)  # an unsigned 32-bit count
    transports: Mapped[list] = mapped_column(JSON)
    # Backup eligible: a synced passkey ("swk" in amr), not one held by a single device ("hwk").
    synced: Mapped[bool]
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Refused(Exception):
    """A ceremony that does not verify; the reason is for the log alone.
    `owner`: the user whose known passkey answered, when one did."""

    def __init__(self, reason, owner=None):
        super().__init__(reason)
        self.owner = owner


def user_handle(user_id):
    return str(user_id).encode()


def expected_party():
    """(RP id, origins) an answer must name, as api/auth/relying_party.py resolved them."""
    config = current_app.config
    return config["WEBAUTHN_RP_ID"], config["WEBAUTHN_ORIGINS"]


# Registration


def registration_options(user, session_id):
    """Creation options for the user (a TokenUser), their challenge pending
    for `session_id` in place of any older one; committed."""
    challenge = generate_challenge()
    challenges.keep(REGISTER, challenge, user_id=user.id, session_id=session_id)
    options = generate_registration_options(
        rp_id=current_app.config["WEBAUTHN_RP_ID"],
        rp_name=current_app.config["WEBAUTHN_RP_NAME"],
        user_name=user.username,
        user_id=user_handle(user.id),
        challenge=challenge,
        timeout=int(challenges.LIFETIME.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(passkey) for passkey in listing(user.id)],
    )
    return options_to_json_dict(options)


def _descriptor(passkey):
    transports = [AuthenticatorTransport(value) for value in passkey.transports]
    return PublicKeyCredentialDescriptor(id=passkey.credential_id, transports=transports)


def register(user_id, session_id, name, credential):
    """The new passkey of the session's pending registration; committed, with
    its `passkey_added` event. Else 400 webauthn_failed (the challenge used up)."""
    try:
        passkey = _verified_passkey(user_id, session_id, name, credential)
    except Refused as exc:
        _refuse(exc)
    db.session.add(passkey)
    try:
        db.session.flush()  # its id, for the event
    except IntegrityError:  # the same credential, registered meanwhile
        db.session.rollback()
        _refuse(Refused("credential registered meanwhile"))
    events.record("passkey_added", user_id, session_id, passkey_id=passkey.id, name=name)
    db.session.commit()
    SECOND_FACTORS.labels(PASSKEY, "ok").inc()
    return passkey


def _verified_passkey(user_id, session_id, name, credential):
    expected = _take(
        Challenge.purpose == REGISTER,
        Challenge.user_id == user_id,
        Challenge.session_id == session_id,
    )
    rp_id, origins = expected_party()
    try:
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=expected,
            expected_rp_id=rp_id,
            expected_origin=origins,
            require_user_verification=True,
        )
        # Registration with attestation "none" never loads the key: make sure
        # it loads now, not at the first login.
        decoded_public_key_to_cryptography(
            decode_credential_public_key(verified.credential_public_key)
        )
    except MALFORMED as exc:
        raise Refused(str(exc)) from exc
    if len(verified.credential_id) > MAX_CREDENTIAL_ID:
        raise Refused("credential id longer than WebAuthn allows")
    if _find(verified.credential_id) is not None:
        raise Refused("credential already registered")
    return Passkey(
        user_id=user_id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[transport.value for transport in parsed.response.transports or ()],
        synced=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        name=name,
        created_at=utcnow(),
    )


# Login


def login_options():
    """(challenge_id, request options) for a login with any of this site's
    passkeys (discoverable: no allowCredentials); committed."""
    challenge = generate_challenge()
    challenge_id = challenges.keep(LOGIN, challenge)
    options = generate_authentication_options(
        rp_id=current_app.config["WEBAUTHN_RP_ID"],
        challenge=challenge,
        timeout=int(challenges.LIFETIME.total_seconds() * 1000),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return {"challenge_id": challenge_id, "options": options_to_json_dict(options)}


def authenticate(challenge_id, credential):
    """(user, synced) whose passkey answered the challenge; the new sign
    count is pending for the caller's commit (the session it opens). Else
    400 webauthn_failed, the challenge used up."""
    try:
        result = _check_assertion(challenge_id, credential)
    except Refused as exc:
        db.session.rollback()
        if exc.owner is not None:
            # A known key that failed (a bad signature, a count gone back: a
            # cloned key?) is the owner's business, as a wrong password is.
            events.record_alone("login_failed", exc.owner, method=PASSKEY, reason="passkey_refused")
        _refuse(exc)
    SECOND_FACTORS.labels(PASSKEY, "ok").inc()
    return result


def _check_assertion(challenge_id, credential):
    expected = _take(Challenge.purpose == LOGIN, Challenge.id == challenge_id)
    rp_id, origins = expected_party()
    try:
        parsed = parse_authentication_credential_json(credential)
    except MALFORMED as exc:
        raise Refused(str(exc)) from exc
    passkey = _find(parsed.raw_id) if len(parsed.raw_id) <= MAX_CREDENTIAL_ID else None
    if passkey is None:
        raise Refused("unknown credential")
    # Discoverable login: the authenticator names the account, and must name the key's owner.
    if parsed.response.user_handle != user_handle(passkey.user_id):
        raise Refused("user handle is not the credential owner's", passkey.user_id)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=expected,
            expected_rp_id=rp_id,
            expected_origin=origins,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except MALFORMED as exc:
        raise Refused(str(exc), passkey.user_id) from exc
    user = db.session.get(User, passkey.user_id)
    if user.disabled:
        raise Refused("user disabled", user.id)
    synced = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    _count_use(passkey.id, user.id, verified.new_sign_count, synced)
    return user, synced


def _count_use(passkey_id, owner, new_count, synced):
    """Advance the sign count only past the stored one (or 0 to 0, for
    authenticators that keep none): of two answers with one count, at once,
    one moves it. A passkey removed meanwhile moves nothing either."""
    moved_on = Passkey.sign_count < new_count if new_count else Passkey.sign_count == 0
    counted = db.session.execute(
        update(Passkey)
        .where(Passkey.id == passkey_id, moved_on)
        .values(sign_count=new_count, last_used_at=utcnow(), synced=synced)
    )
    if counted.rowcount != 1:
        raise Refused("sign count did not move forward, or the passkey is gone", owner)


def _take(*where):
    challenge = challenges.take(*where)
    if challenge is None:
        raise Refused("no such challenge, used already, or expired")
    return challenge


# The user's passkeys


def _find(credential_id):
    return db.session.scalar(select(Passkey).where(Passkey.credential_id == credential_id))


def exists_for(user_id):
    any_passkey = select(Passkey.id).where(Passkey.user_id == user_id).limit(1)
    return db.session.scalar(any_passkey) is not None


def listing(user_id):
    """The user's passkeys, oldest first."""
    query = select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.id)
    return db.session.scalars(query).all()


def remove(user_id, passkey_id, session_id):
    """Someone else's passkey, or none: 404. Committed with `passkey_removed`."""
    passkey = db.session.scalar(
        select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
    )
    if passkey is None:
        abort(404, message="No such passkey.")
    db.session.delete(passkey)
    events.record("passkey_removed", user_id, session_id, passkey_id=passkey.id, name=passkey.name)
    db.session.commit()


def remove_all(user_id):
    """Every passkey and pending registration of the user (an administrator's
    reset of their factors); pending until the caller commits. How many passkeys."""
    challenges.forget_all(user_id)
    return db.session.execute(delete(Passkey).where(Passkey.user_id == user_id)).rowcount


def _refuse(exc):
    SECOND_FACTORS.labels(PASSKEY, "failed").inc()
    current_app.logger.info("passkey refused: %s", exc)
    abort(400, error="webauthn_failed", message="The passkey could not be verified.")
