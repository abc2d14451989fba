"""TOTP (RFC 6238) and recovery codes: the second factor after a password.

The secret is kept encrypted under ENCRYPTION_KEYS (api/encryption.py), never
under the JWT key: a leaked database alone gives no codes. A code is accepted
for the current 30 s step or one either side (RFC 6238 §5.2 allows a step of
drift), and only for a step after the last one accepted: the step is
advanced by one conditional UPDATE, so the same code presented twice, on two
workers or two instances at once, is accepted once.

Recovery codes are 80 random bits each and kept as SHA-256 hashes (as the
links' tokens are: nothing to guess, so a fast hash); one is used up by
deleting its row, so it too works once.
"""

import base64
import hashlib
import hmac
import io
import secrets
from datetime import datetime, timedelta

import pyotp
import segno
from flask import current_app
from flask_smorest import abort
from sqlalchemy import BigInteger, DateTime, ForeignKey, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from api import encryption
from api.accounts import events
from api.clock import as_utc, utcnow
from api.database import after_commit
from api.extensions import db
from api.web.metrics import SECOND_FACTORS

DIGITS = 6
PERIOD = 30
DRIFT_STEPS = 1
ENROLMENT_LIFETIME = timedelta(minutes=10)
RECOVERY_CODE_COUNT = 10
TOTP = "totp"
RECOVERY_CODE = "recovery_code"
NOTHING_PENDING = ()  # confirm(): another request confirmed it first


class TotpCredential(db.Model):
    """A user's TOTP: the secret in use (TOTP is on), and one being enrolled.

    An enrolment belongs to the login session that started it: only a token
    of that session confirms it (CONTRACT.md), so a second session (a thief's
    or another tab's) cannot finish it with a code of its own app.
    """

    __tablename__ = "totp_credentials"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str | None] = mapped_column(Text)  # encrypted
    # The last step a code was accepted for: no code of it or before it again.
    last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_secret: Mapped[str | None] = mapped_column(Text)  # encrypted
    pending_session_id: Mapped[str | None] = mapped_column(String(32))
    pending_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecoveryCode(db.Model):
    __tablename__ = "recovery_codes"
    __table_args__ = (db.Index("ix_recovery_codes_user_id_code_hash", "user_id", "code_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))


def start_enrolment(user, session_id):
    """A new pending secret for `user` (a TokenUser), owned by this session;
    committed. TOTP in use, if any, stays on until the new secret is confirmed."""
    secret = pyotp.random_base32()
    try:
        _keep_pending(user.id, secret, session_id)
    except IntegrityError:  # a first enrolment at once made the row (SQLite locks none)
        db.session.rollback()
        _keep_pending(user.id, secret, session_id)
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(
        name=user.username, issuer_name=current_app.config["APP_NAME"]
    )
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": qr_svg(uri)}


def _keep_pending(user_id, secret, session_id):
    credential = db.session.get(TotpCredential, user_id) or TotpCredential(
        user_id=user_id, last_step=0
    )
    credential.pending_secret = encryption.encrypt(secret)
    credential.pending_session_id = session_id
    credential.pending_since = utcnow()
    db.session.add(credential)
    db.session.commit()


def qr_svg(text):
    """The QR code of `text` as a standalone SVG document (with its
    namespace, so that it also shows as an <img> data: URL)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, border=4, xmldecl=False)
    return out.getvalue().decode()


def pending_secret(user_id, session_id):
    """The secret this session is enrolling, or None (none, another
    session's, or started over ENROLMENT_LIFETIME ago: an enrolment left
    waiting must not be finished days later, by whoever holds the session)."""
    credential = db.session.get(TotpCredential, user_id)
    if credential is None or credential.pending_secret is None:
        return None
    if not hmac.compare_digest(credential.pending_session_id or "", session_id):
        return None
    if as_utc(credential.pending_since) + ENROLMENT_LIFETIME <= utcnow():
        return None
    return encryption.decrypt(credential.pending_secret)


def confirm(user, session_id, code):
    """Turn TOTP on with the secret this session is enrolling, if `code` is
    one of its codes: returns the new recovery codes (pending until the caller
    commits), or None for a wrong code. `user`: the locked User."""
    credential = db.session.get(TotpCredential, user.id)
    read = credential.pending_secret if credential else None
    step = matching_step(pending_secret(user.id, session_id), code)
    if step is None:
        return None
    # Conditional: of two confirmations at once (SQLite locks no row), one
    # turns it on; the other finds nothing pending and shows no codes.
    confirmed = db.session.execute(
        update(TotpCredential)
        .where(
            TotpCredential.user_id == user.id,
            TotpCredential.pending_secret == read,
            TotpCredential.pending_session_id == session_id,
        )
        .values(
            secret=read,
            pending_secret=None,
            pending_session_id=None,
            pending_since=None,
            last_step=step,
            enabled_at=utcnow(),
        )
    )
    if confirmed.rowcount != 1:
        return NOTHING_PENDING
    user.mfa_enabled = True
    return replace_recovery_codes(user.id)


def matching_step(secret, code):
    """The time step `code` is the code of, within the drift allowed; or None."""
    if secret is None or not is_totp_code(code):
        return None
    code = without_spaces(code)
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    now = totp.timecode(utcnow())
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def is_totp_code(code):
    code = without_spaces(code)
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def without_spaces(code):
    """Apps show a code as "123 456", and people type it so."""
    return "".join(code.split())


def kind_of(code):
    """What a code looks like: six digits are a TOTP code, anything else a
    recovery code."""
    return TOTP if is_totp_code(code) else RECOVERY_CODE


def check_code(user_id, code):
    """Use up `code`, a TOTP or a recovery code of the user's: returns which
    kind it was (TOTP or RECOVERY_CODE), or None when it is wrong, reused or
    out of the window. Pending until the caller commits."""
    if kind_of(code) == TOTP:
        return TOTP if _use_totp_step(user_id, code) else None
    return RECOVERY_CODE if _use_recovery_code(user_id, code) else None


def _use_totp_step(user_id, code):
    secret = db.session.scalar(
        select(TotpCredential.secret).where(TotpCredential.user_id == user_id)
    )
    step = matching_step(encryption.decrypt(secret) if secret else None, code)
    if step is None:
        return False
    # Compare-and-set: of two requests with the same code, one moves the step.
    advanced = db.session.execute(
        update(TotpCredential)
        .where(TotpCredential.user_id == user_id, TotpCredential.last_step < step)
        .values(last_step=step)
    )
    return advanced.rowcount == 1


def _use_recovery_code(user_id, code):
    used = db.session.execute(
        delete(RecoveryCode).where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == recovery_code_hash(code),
        )
    )
    return used.rowcount == 1


def replace_recovery_codes(user_id):
    """A new set of recovery codes in place of the old; returns them, the
    only time they are seen. Pending until the caller commits."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(
        RecoveryCode(user_id=user_id, code_hash=recovery_code_hash(code)) for code in codes
    )
    return codes


def new_recovery_code():
    """80 random bits as 16 base32 letters, in four groups to read and type."""
    text = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def recovery_code_hash(code):
    """Typed as shown, in capitals, or without the dashes: the same code."""
    canonical = "".join(char for char in code.lower() if char.isalnum())
    return hashlib.sha256(canonical.encode()).hexdigest()


def methods(user_id):
    """The kinds of code the user can send: TOTP, and recovery codes while any are left."""
    any_left = select(RecoveryCode.id).where(RecoveryCode.user_id == user_id).limit(1)
    return [TOTP, RECOVERY_CODE] if db.session.scalar(any_left) is not None else [TOTP]


def refuse_code(user_id, session_id, step, code):
    """A wrong code: nothing of the attempt is kept but its record;
    committed, counted, then `400 invalid_code`."""
    kind = kind_of(code)
    db.session.rollback()
    events.record("mfa_failed", user_id, session_id, step=step, method=kind)
    db.session.commit()
    SECOND_FACTORS.labels(kind, "failed").inc()
    abort_invalid_code()


def abort_invalid_code():
    abort(400, error="invalid_code", message="The code is wrong, already used, or out of date.")


def count_success(method):
    """Counted once the caller's transaction (the login, the change) commits."""
    after_commit(SECOND_FACTORS.labels(method, "ok").inc)


def turn_off(user):
    """TOTP off and its recovery codes gone; pending until the caller commits.
    `user`: the locked User."""
    db.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    user.mfa_enabled = False


def prune_enrolments():
    """Forget enrolments left unconfirmed past ENROLMENT_LIFETIME (their
    encrypted secrets), and the rows they leave empty; pending until the
    caller commits. How many."""
    stale = TotpCredential.pending_since <= utcnow() - ENROLMENT_LIFETIME
    forgotten = db.session.execute(
        update(TotpCredential)
        .where(stale)
        .values(pending_secret=None, pending_session_id=None, pending_since=None)
    ).rowcount
    db.session.execute(
        delete(TotpCredential).where(
            TotpCredential.secret.is_(None), TotpCredential.pending_secret.is_(None)
        )
    )
    return forgotten


def rotate_secrets():
    """Re-encrypt every stored secret under the newest ENCRYPTION_KEYS key
    (after a new key is put first), so that older keys can then be removed.
    Returns how many secrets were re-encrypted."""
    count = 0
    # Locked: a confirmation meanwhile must not be written over with the old secret.
    for credential in db.session.scalars(select(TotpCredential).with_for_update()):
        for field in ("secret", "pending_secret"):
            value = getattr(credential, field)
            if value is not None:
                setattr(credential, field, encryption.rotate(value))
                count += 1
    db.session.commit()
    return count
