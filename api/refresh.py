"""Token refresh: a new pair, in the transport the refresh token came in."""

from flask_jwt_extended import get_current_user, get_jwt, get_jwt_request_location

from api import limits, metrics, sessions, tokens
from api.auth import token_required
from api.cookies import cookie_session
from api.json_http import REFRESH_AUTH_DOC, Blueprint
from api.schemas import CookieSessionSchema, TokenPairSchema

blp = Blueprint("refresh", __name__, url_prefix="/api/auth", description="Refresh tokens")


@blp.post("/refresh")
@blp.doc(**REFRESH_AUTH_DOC)
@blp.doc(responses={"200": {
    "description": "A new pair: in the body (header mode), or as cookies (cookie mode)",
    "content": {"application/json": {"schema": {"oneOf": [
        {"$ref": "#/components/schemas/TokenPair"},
        {"$ref": "#/components/schemas/CookieSession"},
    ]}}},
}})  # fmt: skip
@limits.refresh_per_address
@token_required(refresh=True)
def refresh():
    """Swap a refresh token for a new pair (rotation); cookie mode answers with new cookies."""
    user = get_current_user()
    claims = get_jwt()
    in_cookies = get_jwt_request_location() == "cookies"
    # The session carries on; only a password login makes a fresh token.
    pair = tokens.issue_pair(user, claims["sid"], fresh=False, cookies=in_cookies)
    sessions.rotate(claims, pair)
    metrics.REFRESHES.labels("ok").inc()
    if in_cookies:
        return CookieSessionSchema().dump(cookie_session(user, pair))
    return TokenPairSchema().dump(pair)
