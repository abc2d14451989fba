"""A software authenticator (one EC P-256 passkey) and the browser around it:
it answers the server's options as navigator.credentials.create() and
.get() would, in the JSON a browser's toJSON() gives (base64url).

Each answer can be spoiled one way at a time (origin, RP id, flags, sign
count, user handle, signature), so that a test shows the server refusing
exactly that."""

import base64
import hashlib
import json
import secrets
import struct

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.helpers import bearer

ORIGIN = "http://localhost:8000"  # TestingConfig's APP_URL, 127.0.0.1 as browsers need it
RP_ID = "localhost"

# authenticatorData flags (WebAuthn §6.1)
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """`synced`: backup eligible and backed up (BE|BS), as a synced passkey;
    `counter`: keeps a sign count (a security key) or sends 0 (most synced ones);
    `id_length`: of its credential id, in bytes."""

    def __init__(self, synced=False, counter=True, id_length=32):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(id_length)
        self.synced = synced
        self.counter = counter
        self.sign_count = 0
        self.user_handle = None

    def flags(self, user_verified=True):
        flags = UP | (UV if user_verified else 0)
        return flags | (BE | BS if self.synced else 0)

    def cose_key(self):
        numbers = self.key.public_key().public_numbers()
        x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
        # kty EC2, alg ES256, crv P-256, x, y (RFC 9053)
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: x, -3: y})

    def create(self, options, origin=ORIGIN, rp_id=RP_ID, user_verified=True):
        """navigator.credentials.create()'s answer to the creation options."""
        self.user_handle = unb64url(options["user"]["id"])
        client_data = client_data_json("webauthn.create", options["challenge"], origin)
        attested = (
            bytes(16)  # AAGUID: none, as with attestation "none"
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self.cose_key()
        )
        auth_data = self.auth_data(rp_id, self.flags(user_verified) | AT) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return self.credential(
            {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            }
        )

    def get(self, options, origin=ORIGIN, rp_id=RP_ID, user_verified=True, sign_count=None,
            user_handle=None):  # fmt: skip
        """navigator.credentials.get()'s answer to the request options (its
        own count goes up by one unless `sign_count` says which to send)."""
        if sign_count is None:
            self.sign_count += 1 if self.counter else 0
            sign_count = self.sign_count
        client_data = client_data_json("webauthn.get", options["challenge"], origin)
        auth_data = self.auth_data(rp_id, self.flags(user_verified), sign_count)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        handle = self.user_handle if user_handle is None else user_handle
        return self.credential(
            {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(handle),
            }
        )

    def auth_data(self, rp_id, flags, sign_count=0):
        rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
        return rp_id_hash + bytes([flags]) + struct.pack(">I", sign_count)

    def credential(self, response):
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }


def client_data_json(type_, challenge, origin):
    return json.dumps(
        {"type": type_, "challenge": challenge, "origin": origin, "crossOrigin": False}
    ).encode()


def spoil_signature(credential):
    """The same answer with one bit of its signature flipped."""
    signature = bytearray(unb64url(credential["response"]["signature"]))
    signature[-1] ^= 0x01
    spoiled = json.loads(json.dumps(credential))
    spoiled["response"]["signature"] = b64url(bytes(signature))
    return spoiled


# The API's passkey routes, driven as a page would drive them.

OPTIONS = "/api/me/passkeys/options"
PASSKEYS = "/api/me/passkeys"
LOGIN = "/api/auth/passkey/login"
COOKIE_LOGIN = "/api/auth/cookie/passkey/login"


def creation_options(client, token):
    response = client.post(OPTIONS, headers=bearer(token))
    assert response.status_code == 200, response.json
    return response.json


def finish(client, token, credential, name="Laptop"):
    return client.post(
        PASSKEYS, json={"name": name, "credential": credential}, headers=bearer(token)
    )


def add(client, token, key, name="Laptop"):
    response = finish(client, token, key.create(creation_options(client, token)), name)
    assert response.status_code == 201, response.json
    return response.json


def login_options(client):
    response = client.post("/api/auth/passkey/options", json={})
    assert response.status_code == 200, response.json
    return response.json


def log_in(client, key, path=LOGIN, **answer):
    """A whole login: options, the authenticator's answer (`answer` spoils it), the login."""
    start = login_options(client)
    credential = key.get(start["options"], **answer)
    return client.post(path, json={"challenge_id": start["challenge_id"], "credential": credential})


def two_factor_pair(client, key):
    """The token pair of a login with `key`: it proved two factors, as adding
    or removing a passkey needs once the account has one."""
    response = log_in(client, key)
    assert response.status_code == 200, response.json
    return response.json
