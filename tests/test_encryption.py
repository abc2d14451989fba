"""ENCRYPTION_KEYS: secrets encrypted at rest, keys that rotate, a start
refused on a missing or malformed key, a development key made once."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from api import create_app, encryption
from api.accounts import outbox, users
from api.accounts.outbox import OutboxMail
from api.auth import totp
from api.auth.totp import TotpCredential
from api.encryption import DecryptionError, EncryptionConfigError, new_key
from api.extensions import db
from tests.helpers import totp_code

ROOT = Path(__file__).resolve().parent.parent
MAIL_BODY = "Reset your password: https://app.example.org/reset-password?token=abc123 ✓"


def encrypt_in(app, text):
    with app.app_context():
        return encryption.encrypt(text)


def decrypt_in(app, token):
    with app.app_context():
        return encryption.decrypt(token)


def run_python(args, **env):
    own = ("JWT_", "APP_", "SECRET", "ENCRYPTION_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    return subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_round_trip_hides_the_text(app):
    token = encrypt_in(app, MAIL_BODY)
    assert "abc123" not in token and "reset-password" not in token
    assert decrypt_in(app, token) == MAIL_BODY
    assert encrypt_in(app, MAIL_BODY) != token  # a fresh IV each time


def test_rotation_new_key_first_old_key_still_decrypts(make_app):
    old, new = new_key(), new_key()
    before = make_app(ENCRYPTION_KEYS=[old])
    after = make_app(ENCRYPTION_KEYS=[new, old])
    only_new, only_old = make_app(ENCRYPTION_KEYS=[new]), make_app(ENCRYPTION_KEYS=[old])
    made_before = encrypt_in(before, MAIL_BODY)
    assert decrypt_in(after, made_before) == MAIL_BODY
    made_after = encrypt_in(after, MAIL_BODY)
    assert decrypt_in(only_new, made_after) == MAIL_BODY  # the first key encrypts
    with pytest.raises(DecryptionError):
        decrypt_in(only_old, made_after)
    with after.app_context():
        rotated = encryption.rotate(made_before)
    assert decrypt_in(only_new, rotated) == MAIL_BODY


def test_the_setting_as_written_with_spaces_is_read(make_app):
    old, new = new_key(), new_key()
    token = encrypt_in(make_app(ENCRYPTION_KEYS=[old]), MAIL_BODY)
    assert decrypt_in(make_app(ENCRYPTION_KEYS=f" {new} , {old} "), token) == MAIL_BODY


def test_a_value_no_key_opens_raises_decryption_error(make_app):
    token = encrypt_in(make_app(ENCRYPTION_KEYS=[new_key()]), MAIL_BODY)
    other = make_app(ENCRYPTION_KEYS=[new_key()])
    for value in (token, "not a token at all", token[:-4] + "AAAA"):
        with pytest.raises(DecryptionError, match="no key in ENCRYPTION_KEYS"):
            decrypt_in(other, value)
        with pytest.raises(DecryptionError), other.app_context():
            encryption.rotate(value)


SECRET_LOOKING = "hunter2-correct-horse-battery-staple"
GOOD = "5c8GJbUJk1hQHbqV3Lqx1H6o9p8nJrXq0mI4dWcV2sE="  # noqa: S105 - a test key


@pytest.mark.parametrize(
    ("keys", "complaint", "secret"),
    [
        (SECRET_LOOKING, "ENCRYPTION_KEYS entry 1 of 1 is not a Fernet key", SECRET_LOOKING),
        # 31 bytes: valid base64, the wrong length.
        (f"{GOOD},{GOOD[:40]}=", "entry 2 of 2 is not a Fernet key", GOOD[:40]),
        (f"{GOOD},", "ENCRYPTION_KEYS entry 2 of 2 is empty", GOOD),
        (f"{GOOD},,{GOOD}", "ENCRYPTION_KEYS entry 2 of 3 is empty", GOOD),
        ("", "ENCRYPTION_KEYS is not set: make one with: python -m api.encryption", None),
    ],
    ids=["malformed", "short", "trailing-comma", "empty-entry", "missing"],
)
def test_production_refuses_to_start_with_one_line_naming_no_key(tmp_path, keys, complaint, secret):
    result = run_python(
        ["-c", "import wsgi"],
        APP_CONFIG="production",
        SECRET_KEY=Fernet.generate_key().decode() * 2,
        ENCRYPTION_KEYS=keys,
        INSTANCE_PATH=str(tmp_path),
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and complaint in lines[0]
    assert secret is None or secret not in result.stderr
    assert not (tmp_path / "dev-keys").exists()


def test_testing_config_without_keys_never_generates_one(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    with pytest.raises(EncryptionConfigError, match="ENCRYPTION_KEYS is not set"):
        make_app(ENCRYPTION_KEYS=[])
    assert not (tmp_path / "dev-keys").exists()


DEVELOPMENT = {
    "APP_CONFIG": "development",
    "ENCRYPTION_KEYS": [],
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "JWT_SECRET_KEY": None,
    "SECRET_KEY": None,
}


def test_development_makes_one_key_shared_by_every_app(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    first, second = create_app(DEVELOPMENT), create_app(DEVELOPMENT)
    key_file = tmp_path / "dev-keys" / "encryption" / "key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    Fernet(key_file.read_text())  # a usable key
    assert decrypt_in(second, encrypt_in(first, MAIL_BODY)) == MAIL_BODY
    # A key set by hand wins: the generated one does not decrypt its values.
    own = create_app({**DEVELOPMENT, "ENCRYPTION_KEYS": [new_key()]})
    with pytest.raises(DecryptionError):
        decrypt_in(own, encrypt_in(first, MAIL_BODY))


def test_cli_prints_a_usable_key_and_how_to_rotate(app, make_app):
    result = app.test_cli_runner().invoke(args=["encryption", "generate-key"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert "\n" not in key
    assert "Put it first in ENCRYPTION_KEYS" in result.stderr
    with_key = make_app(ENCRYPTION_KEYS=[key])
    assert decrypt_in(with_key, encrypt_in(with_key, MAIL_BODY)) == MAIL_BODY


def test_module_prints_a_usable_key_without_the_app():
    first, second = run_python(["-m", "api.encryption"]), run_python(["-m", "api.encryption"])
    assert first.returncode == 0, first.stderr
    keys = [first.stdout.strip(), second.stdout.strip()]
    assert keys[0] != keys[1]
    for key in keys:
        Fernet(key)
    assert "keep the old keys" in first.stderr


def test_rotate_re_encrypts_totp_secrets_and_waiting_mails_under_the_newest_key(make_app, tmp_path):
    old, new = new_key(), new_key()
    database = f"sqlite:///{tmp_path / 'rotate.db'}"
    before = make_app(SQLALCHEMY_DATABASE_URI=database, ENCRYPTION_KEYS=[old])
    with before.app_context():
        user = users.register("rotated", "password123", email="rotated@example.org")  # a mail waits
        enrolment = totp.start_enrolment(user, "session-1")
        db.session.commit()
        assert totp.confirm(user, "session-1", totp_code(enrolment["secret"])) is not None
        db.session.commit()
        user_id = user.id
    rotating = make_app(SQLALCHEMY_DATABASE_URI=database, ENCRYPTION_KEYS=[new, old])
    result = rotating.test_cli_runner().invoke(args=["encryption", "rotate"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 TOTP secrets and 1 mail bodies" in result.output
    # The old key is gone: everything it encrypted is readable all the same.
    after = make_app(SQLALCHEMY_DATABASE_URI=database, ENCRYPTION_KEYS=[new])
    with after.app_context():
        stored = db.session.get(TotpCredential, user_id)
        assert encryption.decrypt(stored.secret) == enrolment["secret"]
        mail = db.session.scalars(select(OutboxMail)).one()
        assert "rotated" in outbox.body_parts(mail.body)[0]
