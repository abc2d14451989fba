"""Every route, one module per URL area:

    auth.py        /api/auth/register, login, cookie/login, refresh, logout, token
    sessions.py    /api/auth/sessions
    me.py          /api/me, /api/me/password
    notes.py       /api/notes (the example of an owner-scoped resource)
    admin.py       /api/admin/users
    health.py      /api/health, /api/health/live, /api/health/ready
    well_known.py  /.well-known/jwks.json
    pages.py       / (the demo page), /api/docs/assets

Each view's decorators come in one order: the route, its OpenAPI doc, rate
limits (the cheapest refusal, counting every attempt), the token check, the
body or query, the response.
"""

# Importing a route module adds its views to their groups.
from api.routes import admin, auth, health, me, notes, pages, sessions, well_known  # noqa: F401
from api.routes.groups import GROUPS


def register(app, api):
    for group in GROUPS:
        api.register_blueprint(group)
    app.register_blueprint(pages.blp)
