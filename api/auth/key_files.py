"""Key material: secrets and key files loaded and checked once, then handed to
PyJWT as key objects (a PEM string would be parsed again on every token).
api/auth/keyring.py decides which key signs and which keys verify.
"""

import base64
import hashlib
import json
import os
import secrets
import shutil
import tempfile

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from config import ConfigError

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256")
EC_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS + tuple(EC_CURVES) + ("EdDSA",)
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


def check_secret(name, value, production, min_bytes=MIN_SECRET_BYTES):
    """Refuse a secret that is missing, short, or (in production) a placeholder."""
    if not value:
        raise KeyConfigError(f"{name} is not set: {_SECRET_HINT}")
    if len(value.encode()) < min_bytes:
        raise KeyConfigError(f"{name} is shorter than {min_bytes} bytes: {_SECRET_HINT}")
    lowered = value.lower()
    if production and (len(set(value)) < 12 or any(w in lowered for w in PLACEHOLDER_WORDS)):
        raise KeyConfigError(f"{name} looks like a placeholder, not random: {_SECRET_HINT}")


def hmac_secret(config, instance_path):
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
    check_secret(name, secret, is_production(config), min_bytes)
    return secret.encode()


def load_private_key(data):
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            return serialization.load_ssh_private_key(data, password=None)
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyConfigError("is not an unencrypted PEM or OpenSSH private key") from exc


def load_public_key(data):
    try:
        if data.lstrip().startswith((b"ssh-", b"ecdsa-")):
            return serialization.load_ssh_public_key(data.strip())
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyConfigError("JWT_PUBLIC_KEY_FILE is not a PEM or OpenSSH public key") from exc


def key_algorithm(private_key, preferred):
    """The algorithm a key signs with: its type decides, and for RSA the
    configured RS*/PS* (RS256 when another family is configured)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_BITS:
            raise KeyConfigError(
                f"a {private_key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits are needed"
            )
        return preferred if preferred in RSA_ALGORITHMS else "RS256"
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        for algorithm, curve in EC_CURVES.items():
            if isinstance(private_key.curve, curve):
                return algorithm
        curve = private_key.curve.name
        raise KeyConfigError(f"an EC key on {curve}; ES256 needs P-256, ES384 P-384")
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise KeyConfigError(f"a {type(private_key).__name__}, which no supported algorithm uses")


def check_pair(private_key, public_key, public_label, private_label):
    if _public_der(private_key.public_key()) != _public_der(public_key):
        raise KeyConfigError(f"{public_label} does not match {private_label}")


def public_jwk(public_key, algorithm):
    """The public key as a JWK (RFC 7517), with its kid and pinned alg."""
    jwk = get_default_algorithms()[algorithm].to_jwk(public_key, as_dict=True)
    return {**jwk, "kid": thumbprint(jwk), "alg": algorithm, "use": "sig"}


def thumbprint(jwk):
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _public_der(public_key):
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_private_key(algorithm, rsa_bits=3072):
    if algorithm in RSA_ALGORITHMS:
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if algorithm in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[algorithm]())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyConfigError(f"{algorithm} does not use a key pair")


def private_pem(private_key):
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_key_files(algorithm="RS256", rsa_bits=3072):
    """A new pair as PEM files: {"jwt_key": private, "jwt_key.pub": public}."""
    private_key = generate_private_key(algorithm, rsa_bits)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"jwt_key": private_pem(private_key), "jwt_key.pub": public_pem}


def generate_rsa_files(bits=3072):
    return generate_key_files("RS256", bits)


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


def read_setting(name, path):
    try:
        return _read(path)
    except OSError as exc:
        raise KeyConfigError(f"{name}={path} cannot be read: {exc.strerror}") from exc


def is_production(config):
    return config.get("ENV_NAME") == "production"
