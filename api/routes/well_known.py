"""`/.well-known/jwks.json`: the public keys that verify this API's tokens,
for any service that trusts them (`{"keys": []}` under HS*)."""

import hashlib
import json

from flask import current_app, make_response, request

from api.routes import groups
from api.schemas import JWKSetSchema

# Verifiers may cache this long; PyJWKClient refetches at once on an unknown kid.
MAX_AGE_SECONDS = 300


@groups.jwks.get("/.well-known/jwks.json")
@groups.jwks.response(200, JWKSetSchema)
def jwks():
    """The current verification keys as a JWK Set (RFC 7517)."""
    body = json.dumps(current_app.extensions["keyring"].jwks(), sort_keys=True)
    response = make_response(body)
    response.content_type = "application/json"
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE_SECONDS}"
    response.set_etag(hashlib.sha256(body.encode()).hexdigest())
    return response.make_conditional(request)
