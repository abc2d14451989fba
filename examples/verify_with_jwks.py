"""Verify this API's access tokens in another service, from the JWKS URL alone.

    python examples/verify_with_jwks.py http://127.0.0.1:8000 <access token>

The other service needs PyJWT (and cryptography), the API's base URL, and the
issuer and audience it expects; no secret. PyJWKClient fetches the JWK Set,
caches it, and fetches it again when a token names a kid it has not seen (a
rotated key). Revocation is not visible from here: a logged-out session's
access token stays valid for such a verifier until it expires (60 s).
"""

import argparse
import json
import sys

import jwt


def verify(token, base_url, issuer="flask-jwt-api", audience="flask-jwt-api"):
    client = jwt.PyJWKClient(f"{base_url}/.well-known/jwks.json")
    signing_key = client.get_signing_key_from_jwt(token)  # chosen by the token's kid
    if jwt.get_unverified_header(token).get("typ") != "at+jwt":
        raise jwt.InvalidTokenError("not an access token")  # RFC 9068
    return jwt.decode(
        token,
        signing_key.key,
        algorithms=[signing_key.algorithm_name],  # the key's own, never the token's choice
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "sub", "jti"]},
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("token")
    parser.add_argument("--issuer", default="flask-jwt-api")
    parser.add_argument("--audience", default="flask-jwt-api")
    args = parser.parse_args()
    try:
        claims = verify(args.token, args.base_url, args.issuer, args.audience)
    except jwt.PyJWTError as exc:
        sys.exit(f"invalid: {exc}")
    print(json.dumps(claims, sort_keys=True))


if __name__ == "__main__":
    main()
