"""Clients: other services that get tokens of their own (RFC 6749 §4.4,
client credentials). Made, listed, deleted and given new secrets by
`flask clients …` (api/cli.py); there is no HTTP route that changes them.

- `client_id`: `cid_` and 22 random base62 characters (131 bits). Not a
  secret, but not guessable either: knowing one buys an attacker nothing.
- The secret: `csec_` and 43 random base62 characters (256 bits), shown once.
  Only its SHA-256 is kept: a fast hash is enough for a secret that long
  (there is nothing to guess), and it is compared in constant time.
- Both are base62, so nothing in them needs escaping in HTTP Basic (RFC 6749
  §2.3.1 form-encodes the id and the secret before base64) or in a form body.
"""

import hmac
import re
from datetime import datetime

from authlib.oauth2.rfc6749 import ClientMixin
from flask import current_app
from sqlalchemy import JSON, DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from api.auth import scopes
from api.auth.secret_text import random_base62, stored_hash
from api.clock import utcnow
from api.extensions import db

ID_PREFIX = "cid_"
SECRET_PREFIX = "csec_"  # noqa: S105 - a prefix for secret scanners, not a secret
ID_RANDOM_LENGTH = 22  # 22 × log2(62) ≈ 131 bits
SECRET_RANDOM_LENGTH = 43  # 43 × log2(62) ≈ 256 bits
ID_PATTERN = re.compile(rf"{ID_PREFIX}[0-9A-Za-z]{{{ID_RANDOM_LENGTH}}}")
MAX_NAME_LENGTH = 64
GRANT_TYPE = "client_credentials"
# RFC 6749 §2.3.1 and RFC 8414's names for the two ways a client sends its secret.
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class Client(db.Model, ClientMixin):
    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME_LENGTH))
    secret_hash: Mapped[str] = mapped_column(String(64))
    # In api.auth.scopes.ALL's order.
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # None until `flask clients rotate-secret`; tokens issued before it are
    # inactive to introspection (api/oauth/introspection.py).
    secret_rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Authlib's ClientMixin: what its client authentication and grant ask.

    def get_client_id(self):
        return self.client_id

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(stored_hash(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in AUTH_METHODS

    def check_grant_type(self, grant_type):
        return grant_type == GRANT_TYPE

    def get_allowed_scope(self, scope):
        """The scopes a token request asking for `scope` gets (space-separated):
        every one of the client's when it asks for none; None when it asks for
        one the client was not given, or one that does not exist."""
        if scope is None or not scope.strip(" "):
            return scopes.joined(self.scopes)
        asked = scopes.parse(scope)
        if asked is None or not set(asked) <= set(self.scopes):
            return None
        return scopes.joined(asked)


def find(client_id):
    """The client `client_id` names, or None. A text that is no client id of
    ours is None without a database read (and no NUL or megabyte reaches SQL)."""
    if not isinstance(client_id, str) or ID_PATTERN.fullmatch(client_id) is None:
        return None
    return db.session.get(Client, client_id)


def check_name(name):
    """A name for people reading `flask clients list`: 1 to 64 printable characters."""
    if not 0 < len(name) <= MAX_NAME_LENGTH or not name.isprintable() or name != name.strip():
        raise ValueError(f"a name is 1 to {MAX_NAME_LENGTH} printable characters")
    return name


def create(name, client_scopes):
    """A new client; (client, secret). The secret is for the caller to show
    once: only its hash is kept. `client_scopes`: a tuple from scopes.parse."""
    if db.session.scalar(select(Client).where(Client.name == check_name(name))) is not None:
        # `flask clients list` shows names: two alike would be told apart by id alone.
        raise ValueError(f"a client named {name!r} exists already")
    secret = SECRET_PREFIX + random_base62(SECRET_RANDOM_LENGTH)
    client = Client(
        client_id=ID_PREFIX + random_base62(ID_RANDOM_LENGTH),
        name=name,
        secret_hash=stored_hash(secret),
        scopes=list(client_scopes),
        created_at=utcnow(),
    )
    db.session.add(client)
    db.session.commit()
    _audit("created, scopes %s", client.client_id, scopes.joined(client.scopes))
    return client, secret


def listing():
    return db.session.scalars(select(Client).order_by(Client.created_at, Client.client_id)).all()


def delete(client_id):
    """Forget the client: its secret fails at once, and its tokens are
    inactive to introspection. False when there is no such client."""
    client = find(client_id)
    if client is None:
        return False
    db.session.delete(client)
    db.session.commit()
    _audit("deleted", client_id)
    return True


def rotate_secret(client_id):
    """A new secret for the client (None when there is no such client); the
    old one fails from the next request on."""
    client = find(client_id)
    if client is None:
        return None
    secret = SECRET_PREFIX + random_base62(SECRET_RANDOM_LENGTH)
    client.secret_hash = stored_hash(secret)
    client.secret_rotated_at = utcnow()
    db.session.commit()
    _audit("given a new secret", client_id)
    return secret


def _audit(what, client_id, *args):
    """A line in the log for each change: a client has no user, so no
    security event records it. Never the secret."""
    current_app.logger.info(f"oauth client %s {what}", client_id, *args)
