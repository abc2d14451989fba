"""Another service that accepts this API's user access tokens: it verifies each
one from the JWKS, then asks the API whether it is still live (RFC 7662).

    API_URL=http://127.0.0.1:8000 CLIENT_ID=… CLIENT_SECRET=… \\
        .venv/bin/python examples/resource_server.py
    curl -H "Authorization: Bearer $ACCESS" http://127.0.0.1:8001/hello

The signature says who signed a token, not that its session is still open: a
user who logs out, or whose session is revoked, holds an access token that
verifies until it expires. So after the JWKS check this service asks
`POST /oauth/introspect`, with the client credentials `flask clients create`
printed, on every request, and refuses what the API calls inactive. It keeps
the public keys (PyJWKClient's cache: a key does not stop being the API's when
a user logs out) and no answer about a token, which would let a revoked one
in for as long as it was kept.

Settings, from the environment:
    API_URL        the API's base URL (default http://127.0.0.1:8000)
    CLIENT_ID      this service's client id (flask clients create NAME --scopes "…")
    CLIENT_SECRET  its secret
    API_ISSUER     the tokens' iss, the API's JWT_ISSUER (default flask-jwt-api)
    API_AUDIENCE   the tokens' aud, the API's JWT_AUDIENCE (default flask-jwt-api)
    HOST, PORT     where this service listens (default 127.0.0.1:8001)

The API must sign with an asymmetric JWT_ALGORITHM (RS256, ES256, EdDSA, …):
under HS256, the default, its JWK Set is empty and only the API itself can
verify its tokens (see verify_with_jwks.py). Run it with the project's venv,
which has Flask, PyJWT and cryptography; it needs nothing else.
"""

import base64
import json
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

try:
    import jwt
    from flask import Flask, jsonify, request
except ImportError:
    sys.exit("Flask or PyJWT is missing: run this with the project's .venv/bin/python")

# Asymmetric algorithms only: a JWK Set publishes public keys, and a token
# that names an HMAC algorithm must never be checked with one as a secret.
ALGORITHMS = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "jti"]

log = logging.getLogger("resource_server")


@dataclass(frozen=True)
class Settings:
    api_url: str
    client_id: str
    client_secret: str
    issuer: str = "flask-jwt-api"
    audience: str = "flask-jwt-api"

    @classmethod
    def from_environment(cls, env=os.environ):
        missing = [name for name in ("CLIENT_ID", "CLIENT_SECRET") if not env.get(name)]
        if missing:
            sys.exit(
                f"{' and '.join(missing)} not set: make a client with "
                '`flask --app wsgi clients create NAME --scopes "profile:read"` '
                "and pass what it prints"
            )
        return cls(
            api_url=env.get("API_URL", "http://127.0.0.1:8000").rstrip("/"),
            client_id=env["CLIENT_ID"],
            client_secret=env["CLIENT_SECRET"],
            issuer=env.get("API_ISSUER", "flask-jwt-api"),
            audience=env.get("API_AUDIENCE", "flask-jwt-api"),
        )


class Refused(Exception):
    """An answer other than 200, in the API's error envelope."""

    def __init__(self, status, error, message):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def bearer_token():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "missing_token", "Send an access token: Authorization: Bearer <token>.")
    return token.strip()


class Verifier:
    def __init__(self, settings):
        self.settings = settings
        # The public keys, kept (and fetched again for a kid not seen yet:
        # a rotated key). Never an answer about a token.
        self.keys = jwt.PyJWKClient(f"{settings.api_url}/.well-known/jwks.json")
        credentials = ":".join(  # RFC 6749 §2.3.1: each part form-encoded first
            urllib.parse.quote(part, safe="")
            for part in (settings.client_id, settings.client_secret)
        )
        self.basic = "Basic " + base64.b64encode(credentials.encode()).decode()

    def user_claims(self, token):
        """The claims of a live user access token; Refused for anything else."""
        claims = self.signed_claims(token)
        if "client_id" in claims:  # a client's own token: no user behind it
            raise Refused(403, "forbidden", "This route takes a user's access token.")
        answer = self.introspect(token)
        # The API's word on this very token: live, and the same subject.
        if answer.get("active") is not True or answer.get("jti") != claims["jti"]:
            raise Refused(401, "token_revoked", "The token is no longer active.")
        return {**claims, "username": answer.get("username")}

    def signed_claims(self, token):
        try:
            if jwt.get_unverified_header(token).get("typ") != "at+jwt":
                raise jwt.InvalidTokenError("not an access token")  # RFC 9068 §2.1
            key = self.keys.get_signing_key_from_jwt(token)  # by the token's kid
            if key.algorithm_name not in ALGORITHMS:
                raise jwt.InvalidTokenError("not an asymmetric key")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm_name],  # the key's own, never the token's choice
                issuer=self.settings.issuer,
                audience=self.settings.audience,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Refused(401, "token_expired", "The access token has expired.") from exc
        except jwt.PyJWKClientConnectionError as exc:
            raise Refused(503, "service_unavailable", "The API's keys cannot be read.") from exc
        except jwt.PyJWTError as exc:
            raise Refused(401, "invalid_token", "The access token is not valid.") from exc
        if claims.get("type") != "access":
            raise Refused(401, "wrong_token_type", "An access token is needed.")
        return claims

    def introspect(self, token):
        """RFC 7662, asked on every request. Unreachable, or refusing this
        service's credentials: 503, never let through."""
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
        asked = urllib.request.Request(  # noqa: S310 - the configured API URL
            f"{self.settings.api_url}/oauth/introspect",
            data=body.encode(),
            headers={
                "Authorization": self.basic,
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(asked, timeout=5) as answer:  # noqa: S310
                return json.load(answer)
        except urllib.error.HTTPError as exc:
            # 401 invalid_client: a wrong CLIENT_ID or CLIENT_SECRET, or a deleted client.
            log.error("introspection refused: %s %s", exc.code, exc.read()[:200])
        except (OSError, ValueError) as exc:
            log.error("introspection failed: %s", exc)
        raise Refused(503, "service_unavailable", "The API cannot tell whether the token is live.")


def create_app(settings):
    app = Flask(__name__)
    verifier = Verifier(settings)

    @app.errorhandler(Refused)
    def refused(exc):
        response = jsonify(error=exc.error, message=exc.message)
        response.status_code = exc.status
        if exc.status == 401:  # RFC 6750 §3
            code = "invalid_request" if exc.error == "missing_token" else "invalid_token"
            response.headers["WWW-Authenticate"] = f'Bearer error="{code}"'
        return response

    @app.get("/hello")
    def hello():
        claims = verifier.user_claims(bearer_token())
        return {"message": f"Hello, {claims['username']}.", "sub": claims["sub"]}

    return app


def main():
    logging.basicConfig(level=logging.INFO)
    settings = Settings.from_environment()
    app = create_app(settings)
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8001"))
    app.run(host=host, port=port)  # Flask's own server: an example, not a deployment


if __name__ == "__main__":
    main()
