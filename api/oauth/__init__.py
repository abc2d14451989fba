"""OAuth 2.0 for other services (CONTRACT.md, "Machine access"): clients,
the token endpoint (client credentials), introspection and the server's
metadata. Authlib does the protocol; this package says what a client is,
what its token holds and what introspection answers.

    clients.py        the Client model (table oauth_clients), secrets kept as hashes
    server.py         Authlib's AuthorizationServer: client authentication, the grant, errors
    tokens.py         a client's access token: its claims, signed by api/auth/minting.py
    introspection.py  what RFC 7662 answers about a token of any kind
    errors.py         RFC 6749 §5.2's error codes

The routes are api/routes/oauth.py; `flask clients …` is in api/cli.py.
"""


def init_app(app):
    """In production, a word when JWT_ISSUER is not the API's https URL: RFC
    8414 discovery wants it, and until then the metadata's endpoint URLs come
    from the address each request named (its Host header). Not a start
    failure: tokens, introspection and the rest work without it."""
    issuer = app.config["JWT_ISSUER"]
    if app.config.get("ENV_NAME") == "production" and not issuer.lower().startswith("https://"):
        app.logger.warning(
            "JWT_ISSUER is %r, not an https URL: set it to the API's public URL "
            "(/.well-known/oauth-authorization-server names the issuer and builds "
            "its endpoints on it)",
            issuer,
        )
