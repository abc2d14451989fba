"""HMAC secrets checked once, not on every token.

PyJWT prepares the key on each decode and encode: for HS256/384/512 that is
three scans of the secret for the shapes of asymmetric keys (PEM, SSH, DER),
so that a public key can never serve as an HMAC secret. The answer depends on
the secret alone, and this API has one or two, so each secret's is kept. The
check still runs once per secret and refuses as before; the signature is
computed and compared on every token.

Installed through PyJWT's public registry (`jwt.register_algorithm`), in
place of its own HMAC algorithms, for every caller of PyJWT in the process.
"""

import jwt
from jwt.algorithms import HMACAlgorithm

HASHES = {
    "HS256": HMACAlgorithm.SHA256,
    "HS384": HMACAlgorithm.SHA384,
    "HS512": HMACAlgorithm.SHA512,
}
MAX_SECRETS = 16  # a secret and the one it rotates from, with room to spare


class CheckedOnceHMAC(HMACAlgorithm):
    def __init__(self, hash_alg):
        super().__init__(hash_alg)
        self._prepared = {}

    def prepare_key(self, key):
        try:
            return self._prepared[key]
        except KeyError:
            prepared = super().prepare_key(key)  # a refused key raises: nothing kept
            if len(self._prepared) < MAX_SECRETS:
                self._prepared[key] = prepared
            return prepared
        except TypeError:  # not hashable: checked every time
            return super().prepare_key(key)


def install():
    """Idempotent: every app of the process shares PyJWT's registry."""
    for name, digest in HASHES.items():
        if isinstance(jwt.get_algorithm_by_name(name), CheckedOnceHMAC):
            continue
        jwt.unregister_algorithm(name)
        jwt.register_algorithm(name, CheckedOnceHMAC(digest))
