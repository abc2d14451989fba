"""Verify this API's access tokens in another service, from the JWKS URL alone.

    .venv/bin/python examples/verify_with_jwks.py http://127.0.0.1:8000 <access token>

Run it with the project's venv (`make run` makes it): it needs PyJWT and
cryptography, which the system Python may lack. It applies only when the API
signs with an asymmetric JWT_ALGORITHM (RS256, ES256, EdDSA, ...; e.g.
`JWT_ALGORITHM=ES256 make run`): under HS256, the default, the key is a
secret, so the JWK Set is empty by design and nothing outside the API can
verify its tokens; the script says so and exits non-zero.

The other service needs PyJWT (and cryptography), the API's base URL, and the
issuer and audience it expects; no secret. PyJWKClient fetches the JWK Set,
caches it, and fetches it again when a token names a kid it has not seen (a
rotated key). Revocation is not visible from here: a logged-out session's
access token stays valid for such a verifier until it expires (60 s);
resource_server.py, beside it, also asks POST /oauth/introspect, which sees it.

A client's token (POST /oauth/token) verifies with the same keys, but speaks
for a client, not a user: its `sub` is the client's id, and it carries
`client_id` and `scope`. This refuses it unless told (`--clients`).
"""

import argparse
import json
import sys

try:
    import jwt
except ImportError:
    sys.exit("PyJWT is missing: run this with the project's .venv/bin/python (make run makes it)")

NO_KEYS = (
    "no keys: {url} is an empty JWK Set. The API signs with an HMAC secret "
    "(JWT_ALGORITHM HS256, the default, or HS384/HS512), which is never published: "
    "only the API can verify its tokens. Verifying from the JWK Set needs an "
    "asymmetric JWT_ALGORITHM (RS256, ES256, EdDSA, ...)."
)


def verify(token, base_url, issuer="flask-jwt-api", audience="flask-jwt-api", clients=False):
    """A user's access token's claims. `clients=True` takes a client's token
    too (POST /oauth/token): its `sub` is the client's id, not a user's, and
    it has `client_id`, so a service that takes both must tell them apart."""
    client = jwt.PyJWKClient(f"{base_url}/.well-known/jwks.json")
    signing_key = client.get_signing_key_from_jwt(token)  # chosen by the token's kid
    if jwt.get_unverified_header(token).get("typ") != "at+jwt":
        raise jwt.InvalidTokenError("not an access token")  # RFC 9068
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=[signing_key.algorithm_name],  # the key's own, never the token's choice
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "sub", "jti"]},
    )
    if "client_id" in claims and not clients:
        raise jwt.InvalidTokenError("a client's token, which speaks for no user")
    return claims


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("token")
    parser.add_argument("--issuer", default="flask-jwt-api")
    parser.add_argument("--audience", default="flask-jwt-api")
    parser.add_argument(
        "--clients", action="store_true", help="take a client's token (client credentials) too"
    )
    args = parser.parse_args()
    jwks_url = f"{args.base_url}/.well-known/jwks.json"
    try:
        # Under HS* the JWK Set is empty by design: say so, not PyJWT's error.
        if not jwt.PyJWKClient(jwks_url, cache_jwk_set=False).fetch_data().get("keys"):
            sys.exit(NO_KEYS.format(url=jwks_url))
        claims = verify(args.token, args.base_url, args.issuer, args.audience, args.clients)
    except jwt.PyJWTError as exc:
        sys.exit(f"invalid: {exc}")
    print(json.dumps(claims, sort_keys=True))


if __name__ == "__main__":
    main()
