"""A client's access token (RFC 9068's shape, api/auth/claims.py): a JWT
whose `sub` and `client_id` are the client's id, with the scopes granted,
signed by the key ring like every token of this API, so that another service
verifies it with /.well-known/jwks.json alone. No refresh token: a client
asks again with its secret when the token runs out (RFC 6749 §4.4.3).
"""

import uuid

from authlib.oauth2.rfc6749 import InvalidScopeError
from flask import current_app

from api.auth import claims as claim_rules
from api.auth.minting import sign
from api.clock import utcnow


def generate(grant_type, client, user=None, scope=None, expires_in=None, **_ignored):
    """Authlib's token generator (AuthorizationServer.register_token_generator):
    the token response of RFC 6749 §5.1."""
    granted = client.get_allowed_scope(scope)
    if granted is None:  # the grant has refused it already; never mint past it
        raise InvalidScopeError()
    lifetime = claim_rules.lifetime("client")
    return {
        "access_token": sign(claims(client.client_id, granted, lifetime)),
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": granted,
    }


def claims(client_id, granted, lifetime):
    config = current_app.config
    now = int(utcnow().timestamp())
    return {
        "iss": config["JWT_ISSUER"],
        "aud": config["JWT_AUDIENCE"],
        "sub": client_id,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        "type": "access",
        "client_id": client_id,
        "scope": granted,
    }
