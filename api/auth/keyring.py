"""Which key signs and which keys verify.

HS*: one secret, no `kid`. RS*/PS*/ES*/EdDSA: key pairs, each with a `kid`
(the RFC 7638 thumbprint of its public key) and the one algorithm it is pinned
to, from one of:

- JWT_KEY_DIR, a directory of private keys (PEM or OpenSSH). The newest file
  signs; older ones verify until every token they signed has expired (the
  refresh lifetime after a newer key appeared), then retire by themselves.
  `flask keys rotate` adds a key. Before signing or verifying, every process
  checks the directory's mtime (one stat) and rereads it when it changed, and
  at least once a minute; so a key that one worker or instance signs with is
  known to all of them (files appear by an atomic rename, whole), while an
  unknown kid alone never makes a process reread it.
- JWT_PRIVATE_KEY_FILE (and JWT_PUBLIC_KEY_FILE): one fixed pair.
- neither, in development: a key directory generated once in the instance folder.
"""

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field

from flask_jwt_extended.exceptions import JWTDecodeError

from api.auth.key_files import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    KeyConfigError,
    check_pair,
    check_secret,
    ensure_dev_material,
    generate_private_key,
    hmac_secret,
    is_production,
    key_algorithm,
    load_private_key,
    load_public_key,
    private_pem,
    public_jwk,
    read_setting,
)

log = logging.getLogger(__name__)
# Retired keys stay a minute longer than their last token, for clock steps.
RETIRE_MARGIN_SECONDS = 60
# Reread the directory at least this often, so keys retire on time.
FULL_RELOAD_SECONDS = 60


@dataclass(frozen=True)
class Key:
    kid: str | None
    algorithm: str
    signing_key: object
    verification_key: object
    created: float = 0.0
    file: str = ""


@dataclass(frozen=True)
class KeySet:
    keys: tuple  # newest first; keys[0] signs
    by_kid: dict = field(default_factory=dict)

    @classmethod
    def of(cls, keys):
        return cls(tuple(keys), {key.kid: key for key in keys})

    def jwks(self):
        return {"keys": [public_jwk(key.verification_key, key.algorithm) for key in self.keys]}


class HMACRing:
    path = None

    def __init__(self, algorithm, secret):
        self.key = Key(None, algorithm, secret, secret)
        self.decode_algorithms = [algorithm]

    def signer(self):
        return self.key

    def verifier(self, header):
        if header.get("alg") != self.key.algorithm:
            raise JWTDecodeError("algorithm not allowed")
        if "kid" in header:
            raise JWTDecodeError("no kid is issued under HS*")
        return self.key

    def key_set(self):
        return KeySet.of([])

    def jwks(self):
        return {"keys": []}


class PairRing:
    """A fixed set of key pairs."""

    path = None
    # PyJWT's own list; verifier() pins each token to its key's one algorithm.
    decode_algorithms = list(ASYMMETRIC_ALGORITHMS)

    def __init__(self, keys):
        self._set = KeySet.of(keys)
        self._jwks = self._set.jwks()

    def key_set(self):
        return self._set

    def signer(self):
        return self.key_set().keys[0]

    def find(self, kid):
        return self.key_set().by_kid.get(kid)

    def verifier(self, header):
        key = self.find(header.get("kid"))
        if key is None:
            raise JWTDecodeError("unknown kid")
        if header.get("alg") != key.algorithm:
            raise JWTDecodeError("algorithm not allowed for this key")
        return key

    def jwks(self):
        return self._jwks


class DirectoryRing(PairRing):
    """Key pairs from a directory that `flask keys rotate` adds to."""

    def __init__(self, path, preferred, retire_after):
        self.path = path
        self.preferred = preferred
        self.retire_after = retire_after
        self._lock = threading.Lock()
        self._parsed = {}  # (file, stat) -> Key: a reread parses only new files
        self._stamp = self._dir_stamp()
        self._set, self._jwks = self._read()
        self._next_full = time.monotonic() + FULL_RELOAD_SECONDS

    def key_set(self):
        if self._dir_stamp() != self._stamp or time.monotonic() >= self._next_full:
            self._reload()
        return self._set

    def jwks(self):
        self.key_set()
        return self._jwks

    def _dir_stamp(self):
        # A key added, renamed or removed changes the directory's mtime: every
        # process sees it before signing or verifying, at the cost of one stat.
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def _reload(self):
        with self._lock:
            stamp = self._dir_stamp()
            try:
                self._set, self._jwks = self._read()
            except KeyConfigError as exc:
                # Keep verifying with what was loaded; a bad file must not stop the service.
                log.error("key directory %s not reloaded: %s", self.path, exc)
            self._stamp = stamp
            self._next_full = time.monotonic() + FULL_RELOAD_SECONDS

    def _read(self):
        keys = read_key_dir(self.path, self.preferred, self._parsed)
        if not keys:
            raise KeyConfigError(f"JWT_KEY_DIR={self.path} holds no key: {FIRST_KEY_HINT}")
        live = [key for key in keys if not retired(key, keys, self.retire_after)]
        key_set = KeySet.of(live)
        return key_set, key_set.jwks()


# `flask keys rotate` names its files <unix time>-<algorithm>-<kid>.pem.
ROTATED_NAME = re.compile(r"\A(\d+(?:\.\d+)?)-([A-Za-z0-9]+)-[A-Za-z0-9_-]+\.pem\Z")


def key_file_facts(file):
    """When a key file joined the directory, and the algorithm it was made for.

    Rotate's names say both. For any other file, the later of its mtime and
    ctime: moving or copying a file in sets its ctime, while `mv` and `cp -p`
    keep an old mtime that would otherwise retire the keys already in use.
    """
    match = ROTATED_NAME.match(os.path.basename(file))
    if match:
        return float(match[1]), match[2]
    stat = os.stat(file)
    return max(stat.st_mtime, stat.st_ctime), None


def read_key_dir(path, preferred, parsed=None):
    """The directory's keys, newest first (ties: the later name first)."""
    parsed = {} if parsed is None else parsed
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise KeyConfigError(
            f"JWT_KEY_DIR={path} cannot be read: {exc.strerror}; {FIRST_KEY_HINT}"
        ) from exc
    keys = []
    for name in names:
        file = os.path.join(path, name)
        if name.startswith(".") or name.endswith(".pub") or not os.path.isfile(file):
            continue
        stat = os.stat(file)
        cache_key = (file, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, preferred)
        if cache_key not in parsed:
            parsed[cache_key] = load_key_file(file, f"{file}.pub", preferred)
        keys.append(parsed[cache_key])
    return sorted(keys, key=lambda key: (key.created, key.file), reverse=True)


def retired(key, keys, retire_after):
    """Retired once the key that replaced it has signed for longer than any
    token lives: from then on, no token this key signed can still be valid."""
    newer = [other.created for other in keys if other.created > key.created]
    return bool(newer) and min(newer) + retire_after < time.time()


def load_key_file(private_file, public_file=None, preferred=None, setting=None):
    """A key pair from files. `setting`: the file was named by that setting, so
    its public file, if one is named, must be there too."""
    label = setting or private_file
    data = read_setting(setting or "the key file", private_file)
    try:
        private_key = load_private_key(data)
    except KeyConfigError as exc:
        raise KeyConfigError(f"{label} {exc.message}") from exc
    public_key = private_key.public_key()
    if public_file and (setting or os.path.exists(public_file)):
        public_label = "JWT_PUBLIC_KEY_FILE" if setting else public_file
        public_key = load_public_key(read_setting(public_label, public_file))
        check_pair(private_key, public_key, public_label, label)
    created, named = key_file_facts(private_file)
    try:
        algorithm = key_algorithm(private_key, named or preferred)
    except KeyConfigError as exc:
        raise KeyConfigError(f"{label} is {exc.message}") from exc
    if named and algorithm != named:
        raise KeyConfigError(f"{label} is named for {named} but is a key for {algorithm}")
    kid = public_jwk(public_key, algorithm)["kid"]
    return Key(kid, algorithm, private_key, public_key, created, private_file)


def load_keyring(config, instance_path):
    """The app's key ring, checked: any problem stops the start with one line."""
    if is_production(config):
        # Flask's own secret: nothing may be signed with a guessable one.
        check_secret("SECRET_KEY", config.get("SECRET_KEY"), production=True)
    algorithm = config["JWT_ALGORITHM"]
    if algorithm in HMAC_ALGORITHMS:
        return HMACRing(algorithm, hmac_secret(config, instance_path))
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        supported = ", ".join(HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS)
        raise KeyConfigError(f"JWT_ALGORITHM={algorithm!r} is not supported; use {supported}")
    ring = _pair_ring(config, instance_path, algorithm)
    signer = ring.signer()
    if signer.algorithm != algorithm:
        raise KeyConfigError(
            f"JWT_ALGORITHM={algorithm} but the signing key is for {signer.algorithm}"
        )
    return ring


def _pair_ring(config, instance_path, algorithm):
    retire_after = config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds() + RETIRE_MARGIN_SECONDS
    if config.get("JWT_KEY_DIR"):
        if config.get("JWT_GENERATE_DEV_KEY"):
            add_first_key(config["JWT_KEY_DIR"], algorithm)
        return DirectoryRing(config["JWT_KEY_DIR"], algorithm, retire_after)
    if config.get("JWT_PRIVATE_KEY_FILE"):
        key = load_key_file(
            config["JWT_PRIVATE_KEY_FILE"],
            config.get("JWT_PUBLIC_KEY_FILE"),
            preferred=algorithm,
            setting="JWT_PRIVATE_KEY_FILE",
        )
        return PairRing([key])
    if config.get("JWT_GENERATE_DEV_KEY"):
        folder = ensure_dev_material(
            instance_path,
            algorithm.lower(),
            lambda: {"jwt_key": private_pem(generate_private_key(algorithm))},
        )
        return DirectoryRing(folder, algorithm, retire_after)
    raise KeyConfigError(
        f"JWT_ALGORITHM={algorithm} needs JWT_KEY_DIR or JWT_PRIVATE_KEY_FILE "
        "(make a key with `flask keys rotate` or `ssh-keygen -t rsa|ecdsa|ed25519 -f jwt_key`)"
    )


# `flask keys rotate` needs the app, and the app needs a key: the first one
# comes from api/auth/first_key.py (development makes it by itself).
FIRST_KEY_HINT = "make the first key with `python -m api.auth.first_key DIR --algorithm ALG`"


def add_first_key(path, algorithm):
    """A key in `path` (made, private, if missing) unless it holds one already."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if not read_key_dir(path, algorithm):
        add_key(path, algorithm)


def add_key(path, algorithm, created=None):
    """Write a new signing key into a key directory, whole, by atomic rename.
    Its name records when it was made and its algorithm (see ROTATED_NAME)."""
    private_key = generate_private_key(algorithm)
    kid = public_jwk(private_key.public_key(), algorithm)["kid"]
    scratch = os.path.join(path, f".{kid}.tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(private_key))
    made = time.time() if created is None else created
    os.rename(scratch, os.path.join(path, f"{made:.6f}-{algorithm}-{kid}.pem"))
    return kid


def init_app(app):
    app.extensions["keyring"] = load_keyring(app.config, app.instance_path)
