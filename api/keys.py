"""Signing keys: loaded and checked once at start-up, then handed to PyJWT as
key objects (a PEM string would be parsed again on every token)."""

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from config import ConfigError

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256")
MIN_SECRET_BYTES = 32
# RFC 7518 §3.2: an HMAC key at least as long as the hash output.
MIN_HMAC_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
MIN_RSA_BITS = 2048
# Placeholders copied from tutorials; refused in production however long.
PLACEHOLDER_WORDS = (
    "changeme",
    "change-me",
    "change_me",
    "secret-key",
    "secret_key",
    "example",
    "placeholder",
)
DEV_KEYS_DIR = "dev-keys"


_SECRET_HINT = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"  # noqa: S105


class KeyConfigError(ConfigError):
    """A signing key or secret is missing, weak or unreadable (one-line message)."""


@dataclass(frozen=True)
class SigningKeys:
    algorithm: str
    signing_key: object
    verification_key: object


def load_signing_keys(config, instance_path):
    if _is_production(config):
        # Flask's own secret: nothing may be signed with a guessable one.
        check_secret("SECRET_KEY", config.get("SECRET_KEY"), production=True)
    algorithm = config["JWT_ALGORITHM"]
    if algorithm in HMAC_ALGORITHMS:
        secret = _hmac_secret(config, instance_path)
        return SigningKeys(algorithm, secret, secret)
    if algorithm in RSA_ALGORITHMS:
        private_key, public_key = _rsa_key_pair(config, instance_path)
        return SigningKeys(algorithm, private_key, public_key)
    supported = ", ".join(HMAC_ALGORITHMS + RSA_ALGORITHMS)
    raise KeyConfigError(f"JWT_ALGORITHM={algorithm!r} is not supported; use one of {supported}")


def check_secret(name, value, production, min_bytes=MIN_SECRET_BYTES):
    """Refuse a secret that is missing, short, or (in production) a placeholder."""
    if not value:
        raise KeyConfigError(f"{name} is not set: {_SECRET_HINT}")
    if len(value.encode()) < min_bytes:
        raise KeyConfigError(f"{name} is shorter than {min_bytes} bytes: {_SECRET_HINT}")
    lowered = value.lower()
    if production and (len(set(value)) < 12 or any(w in lowered for w in PLACEHOLDER_WORDS)):
        raise KeyConfigError(f"{name} looks like a placeholder, not random: {_SECRET_HINT}")


def _hmac_secret(config, instance_path):
    # flask-jwt-extended's rule: JWT_SECRET_KEY, else SECRET_KEY.
    name = "JWT_SECRET_KEY" if config.get("JWT_SECRET_KEY") else "SECRET_KEY"
    secret = config.get(name)
    if not secret and config.get("JWT_GENERATE_DEV_KEY"):
        folder = ensure_dev_material(instance_path, "hmac", lambda: {"secret": _new_secret()})
        name = "the development key"
        secret = _read_dev_file(folder, "secret").decode()
    if not secret:
        name = "JWT_SECRET_KEY"  # the one to set
    elif name == "SECRET_KEY":
        name = "SECRET_KEY (used as JWT_SECRET_KEY, which is not set)"
    min_bytes = MIN_HMAC_BYTES[config["JWT_ALGORITHM"]]
    check_secret(name, secret, _is_production(config), min_bytes)
    return secret.encode()


def _rsa_key_pair(config, instance_path):
    private_file = config.get("JWT_PRIVATE_KEY_FILE")
    public_file = config.get("JWT_PUBLIC_KEY_FILE")
    if not private_file and config.get("JWT_GENERATE_DEV_KEY"):
        folder = ensure_dev_material(instance_path, "rsa", generate_rsa_files)
        for name in ("jwt_key", "jwt_key.pub"):
            _read_dev_file(folder, name)
        private_file = os.path.join(folder, "jwt_key")
        public_file = os.path.join(folder, "jwt_key.pub")
    if not private_file:
        raise KeyConfigError(
            f"JWT_ALGORITHM={config['JWT_ALGORITHM']} needs JWT_PRIVATE_KEY_FILE "
            "(make a pair with `flask keys generate` or `ssh-keygen -t rsa -b 3072 -f jwt_key`)"
        )
    private_key = load_private_key(_read_setting("JWT_PRIVATE_KEY_FILE", private_file))
    public_key = private_key.public_key()
    if public_file:
        public_key = load_public_key(_read_setting("JWT_PUBLIC_KEY_FILE", public_file))
    _check_rsa_pair(private_key, public_key)
    return private_key, public_key


def load_private_key(data):
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            return serialization.load_ssh_private_key(data, password=None)
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyConfigError(
            "JWT_PRIVATE_KEY_FILE is not an unencrypted PEM or OpenSSH private key"
        ) from exc


def load_public_key(data):
    try:
        if data.lstrip().startswith((b"ssh-", b"ecdsa-")):
            return serialization.load_ssh_public_key(data.strip())
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyConfigError("JWT_PUBLIC_KEY_FILE is not a PEM or OpenSSH public key") from exc


def _check_rsa_pair(private_key, public_key):
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise KeyConfigError("JWT_PRIVATE_KEY_FILE is not an RSA key, as RS*/PS* algorithms need")
    if private_key.key_size < MIN_RSA_BITS:
        raise KeyConfigError(
            f"JWT_PRIVATE_KEY_FILE is a {private_key.key_size}-bit RSA key; "
            f"at least {MIN_RSA_BITS} bits are needed"
        )
    if _public_der(private_key.public_key()) != _public_der(public_key):
        raise KeyConfigError("JWT_PUBLIC_KEY_FILE does not match JWT_PRIVATE_KEY_FILE")


def _public_der(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_rsa_files(bits=3072):
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"jwt_key": private_pem, "jwt_key.pub": public_pem}


def write_private_files(folder, files):
    """Write key files readable by their owner only."""
    os.makedirs(folder, exist_ok=True)
    for name, data in files.items():
        fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def ensure_dev_material(instance_path, kind, make_files):
    """Create development key files once, shared by every process.

    Files are written into a private temporary folder that is then renamed into
    place: rename is atomic, so when several gunicorn workers race, exactly one
    folder wins and every worker reads the same key.
    """
    target = os.path.join(instance_path, DEV_KEYS_DIR, kind)
    if os.path.isdir(target):
        return target
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(dir=parent, prefix=f".{kind}-")
    try:
        write_private_files(scratch, make_files())
        os.rename(scratch, target)
    except OSError:
        if not os.path.isdir(target):
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _new_secret():
    return secrets.token_urlsafe(48).encode()


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _read_dev_file(folder, name):
    try:
        return _read(os.path.join(folder, name))
    except OSError as exc:
        raise KeyConfigError(
            f"the development key in {folder} is incomplete: delete that folder to make a new one"
        ) from exc


def _read_setting(name, path):
    try:
        return _read(path)
    except OSError as exc:
        raise KeyConfigError(f"{name}={path} cannot be read: {exc.strerror}") from exc


def _is_production(config):
    return config.get("ENV_NAME") == "production"
