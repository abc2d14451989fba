"""OAuth 2.0 for other services (CONTRACT.md, "Machine access"): clients,
the token endpoint (client credentials), introspection and the server's
metadata. Authlib does the protocol; this package says what a client is,
what its token holds and what introspection answers.

    clients.py        the Client model (table oauth_clients), secrets kept as hashes
    server.py         Authlib's AuthorizationServer: client authentication, the grant, errors
    tokens.py         a client's access token: its claims, signed by api/auth/minting.py
    introspection.py  what RFC 7662 answers about a token of any kind

The routes are api/routes/oauth.py; `flask clients …` is in api/cli.py.
"""
