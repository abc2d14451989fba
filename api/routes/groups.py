"""The OpenAPI document's groups (its tags), one flask-smorest blueprint each.

The route modules are by URL area; each of their views joins the group it is
documented under, and every view names its whole path. The order here is the
document's.
"""

from api.web.json_bodies import Blueprint

login = Blueprint("login", __name__, description="Register and log in")
refresh = Blueprint("refresh", __name__, description="Refresh tokens")
resources = Blueprint("resources", __name__, description="Protected resources")
account = Blueprint("account", __name__, description="Sessions and password")
email = Blueprint("email", __name__, description="Email address and password recovery")
notes = Blueprint("notes", __name__, description="The caller's notes")
mfa = Blueprint("mfa", __name__, description="Second factor: TOTP and recovery codes")
passkeys = Blueprint("passkeys", __name__, description="Passkeys (WebAuthn)")
tokens = Blueprint(
    "tokens", __name__, description="Personal access tokens: scoped tokens for scripts and CI"
)
admin = Blueprint("admin", __name__, description="User administration")
health = Blueprint("health", __name__, description="Health")
jwks = Blueprint("jwks", __name__, description="Verification keys")
oauth = Blueprint(
    "oauth",
    __name__,
    description="OAuth 2.0 for other services: client credentials, introspection, metadata",
)

GROUPS = (
    login,
    refresh,
    resources,
    account,
    email,
    mfa,
    passkeys,
    tokens,
    notes,
    admin,
    health,
    jwks,
    oauth,
)
