"""Secrets this API hands out as text and keeps only as hashes: personal
access tokens (api/auth/personal_tokens.py) and clients' secrets
(api/oauth/clients.py).

Base62 text needs no escaping anywhere it travels (a header, HTTP Basic, a
form, a URL) and selects whole on a double-click. A secret of 178 or 256
random bits has nothing to guess, so a fast hash (SHA-256) is enough to keep
it; a slow one would only slow every request that presents it.
"""

import hashlib
import secrets
import string

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def random_base62(length):
    return "".join(secrets.choice(BASE62) for _ in range(length))


def stored_hash(text):
    """What the database keeps of a secret: its SHA-256, in hex. Text that is
    no UTF-8 (a lone surrogate) hashes all the same, to match nothing."""
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
