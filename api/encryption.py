"""Secrets kept encrypted at rest (mail bodies holding one-time links, TOTP
secrets): Fernet (AES-128-CBC and HMAC-SHA256) under ENCRYPTION_KEYS.

ENCRYPTION_KEYS is a comma-separated list, newest first: the first key
encrypts, any of them decrypts, so a new key is put first and the old ones
stay until everything they encrypted is gone or re-encrypted (`rotate`).
Development generates one key, once, into the instance folder; any other
configuration refuses to start without one.

`python -m api.encryption` prints a new key without the app: production
refuses to start without a key, so the first one cannot come from `flask`.
"""

import os
import sys

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from api.auth.key_files import ensure_dev_material
from config import ConfigError

EXTENSION = "encryption"
DEV_KEY_KIND = "encryption"
DEV_KEY_FILE = "key"
MAKE_KEY_HINT = "make one with: python -m api.encryption"
ROTATION_HINT = (
    "Put it first in ENCRYPTION_KEYS (comma-separated, newest first) and keep the old keys "
    "after it until nothing they encrypted is left; with several instances, add it last "
    "everywhere before moving it first (docs/operations.md#encryption-keys)."
)


class DecryptionError(Exception):
    """No configured key opens this value: its key was removed, or it is not ours."""


class EncryptionConfigError(ConfigError):
    """ENCRYPTION_KEYS is missing or holds something that is not a key (one line)."""


def new_key():
    """A new key as ENCRYPTION_KEYS takes it: 32 random bytes in url-safe base64."""
    return Fernet.generate_key().decode()


def init_app(app):
    entries = key_entries(app.config.get("ENCRYPTION_KEYS"))
    if not entries and app.config.get("ENCRYPTION_GENERATE_DEV_KEY"):
        entries = [dev_key(app.instance_path)]
    app.extensions[EXTENSION] = MultiFernet(parse_keys(entries))


def key_entries(setting):
    """The setting as a list; a string (a mapping override) is split like the variable."""
    if setting is None:
        return []
    if isinstance(setting, str):
        setting = setting.split(",") if setting.strip() else []
    return [entry.strip() for entry in setting]


def parse_keys(entries):
    # Messages name an entry by its place, never by its text: it is a secret.
    if not entries:
        raise EncryptionConfigError(f"ENCRYPTION_KEYS is not set: {MAKE_KEY_HINT}")
    keys = []
    for place, entry in enumerate(entries, start=1):
        where = f"ENCRYPTION_KEYS entry {place} of {len(entries)}"
        if not entry:
            raise EncryptionConfigError(f"{where} is empty (a stray comma?)")
        try:
            keys.append(Fernet(entry))
        except ValueError:
            raise EncryptionConfigError(
                f"{where} is not a Fernet key (32 bytes in url-safe base64): {MAKE_KEY_HINT}"
            ) from None
    return keys


def dev_key(instance_path):
    """The development key: made once, shared by every worker (an atomic rename)."""
    folder = ensure_dev_material(
        instance_path, DEV_KEY_KIND, lambda: {DEV_KEY_FILE: new_key().encode()}
    )
    try:
        with open(os.path.join(folder, DEV_KEY_FILE)) as file:
            return file.read().strip()
    except OSError:
        raise EncryptionConfigError(
            f"the development encryption key in {folder} is unreadable: "
            "delete that folder to make a new one (what it encrypted is then lost)"
        ) from None


def _fernet():
    return current_app.extensions[EXTENSION]


def encrypt(text: str) -> str:
    return _fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no key in ENCRYPTION_KEYS decrypts this value") from None


def rotate(token: str) -> str:
    """The same text encrypted under the newest key (for re-encrypting stored values)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no key in ENCRYPTION_KEYS decrypts this value") from None


def main():
    # The key alone on stdout, so that $(python -m api.encryption) is the key.
    print(new_key())
    print(ROTATION_HINT, file=sys.stderr)


if __name__ == "__main__":
    main()
