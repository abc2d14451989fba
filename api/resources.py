"""Protected resources: what an access token unlocks."""

from flask_jwt_extended import get_current_user, get_jwt

from api.auth import token_required
from api.json_http import READ_AUTH_DOC, Blueprint
from api.schemas import TokenClaimsSchema, UserSchema

blp = Blueprint("resources", __name__, url_prefix="/api", description="Protected resources")


@blp.get("/me")
@blp.doc(**READ_AUTH_DOC)
@blp.response(200, UserSchema)
@token_required()
def me():
    """The user the access token belongs to."""
    return get_current_user()


@blp.get("/auth/token")
@blp.doc(**READ_AUTH_DOC)
@blp.response(200, TokenClaimsSchema)
@token_required()
def token_claims():
    """The presented access token's claims (the tutorial's "Show details")."""
    return get_jwt()
