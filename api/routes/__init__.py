"""Every route, one module per URL area:

    auth.py        /api/auth/register, login, cookie/login, refresh, logout, token
    sessions.py    /api/auth/sessions
    me.py          /api/me, /api/me/password, /api/me/events
    email.py       /api/auth/email/verify, /api/me/email, /api/me/email/verification,
                   /api/auth/password/forgot, /api/auth/password/reset
    mfa.py         /api/me/mfa/totp, totp/confirm, recovery-codes; /api/auth/mfa
    passkeys.py    /api/me/passkeys, /api/auth/passkey/options, /api/auth/passkey/login,
                   /api/auth/cookie/passkey/login
    tokens.py      /api/me/tokens (personal access tokens)
    notes.py       /api/notes (the example of an owner-scoped resource)
    admin.py       /api/admin/users
    health.py      /api/health, /api/health/live, /api/health/ready
    well_known.py  /.well-known/jwks.json
    oauth.py       /oauth/token, /oauth/introspect, /.well-known/oauth-authorization-server
    pages.py       / (the demo page; also at /verify-email, /reset-password), /api/docs/assets

Each view's decorators come in one order: the route, its OpenAPI doc, the
token check, the body or query, the response, and last the rate limits. So a
limit counts the attempts it guards (a password tried, a refresh made), not
requests refused before them for a missing token or a malformed body, and
its keys come from a body that has passed its schema (a username of at most
64 characters).
"""

# Importing a route module adds its views to their groups.
from api.routes import (  # noqa: F401
    admin,
    auth,
    email,
    health,
    me,
    mfa,
    notes,
    oauth,
    pages,
    passkeys,
    sessions,
    tokens,
    well_known,
)
from api.routes.groups import GROUPS


def register(app, api):
    for group in GROUPS:
        api.register_blueprint(group)
    app.register_blueprint(pages.blp)
