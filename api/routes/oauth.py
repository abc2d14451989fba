"""OAuth 2.0 for other services (api/oauth/): `POST /oauth/token` (client
credentials), `POST /oauth/introspect` (RFC 7662) and
`GET /.well-known/oauth-authorization-server` (RFC 8414).

Authlib reads the form bodies and answers; these views count the answers.
The bodies are documented, not parsed by a schema: a schema's 422 is not
one of RFC 6749's errors. A client authenticates by HTTP Basic (its id and
secret) or with `client_id` and `client_secret` in the body (RFC 6749
§2.3.1); the operations' descriptions say so.
"""

from urllib.parse import urlsplit

from flask import current_app, url_for

from api.auth import scopes
from api.oauth.clients import AUTH_METHODS, GRANT_TYPE
from api.oauth.server import authorization
from api.routes import groups
from api.schemas import (
    AuthorizationServerMetadataSchema,
    ClientTokenRequestSchema,
    ClientTokenSchema,
    IntrospectionRequestSchema,
    IntrospectionSchema,
    OAuthErrorSchema,
)
from api.web import limits
from api.web.json_bodies import FORM
from api.web.metrics import INTROSPECTIONS, OAUTH_TOKEN_RESULTS, OAUTH_TOKENS


def form_body(schema):
    """A form body, from a client: HTTP Basic, or its id and secret in the form
    (which no OpenAPI security scheme can say)."""
    return {
        "requestBody": {"required": True, "content": {FORM: {"schema": schema}}},
        "security": [{"clientBasicAuth": []}, {}],
    }


def oauth_errors(view):
    """The errors an OAuth endpoint answers, in RFC 6749 §5.2's shape."""
    view = groups.oauth.alt_response(
        400,
        schema=OAuthErrorSchema,
        description="invalid_request, invalid_scope, unsupported_grant_type",
    )(view)
    return groups.oauth.alt_response(
        401,
        schema=OAuthErrorSchema,
        description="invalid_client (with WWW-Authenticate: Basic)",
    )(view)


@groups.oauth.post("/oauth/token")
@groups.oauth.doc(**form_body(ClientTokenRequestSchema))
@groups.oauth.response(200, ClientTokenSchema)
@oauth_errors
@limits.oauth_per_address
def token():
    """A client's access token (client credentials, RFC 6749 §4.4).

    A JWT the JWKS verifies, with the scopes asked for (all the client's by
    default); no refresh token. The client authenticates by HTTP Basic
    (`client_id:client_secret`) or with both in the form, not both ways."""
    response = authorization.create_token_response()
    if response.status_code != 429:  # counted in jwt_api_rate_limit_hits_total
        result = "issued" if response.status_code == 200 else response.json["error"]
        OAUTH_TOKENS.labels(result if result in OAUTH_TOKEN_RESULTS else "invalid_request").inc()
    return response


@groups.oauth.post("/oauth/introspect")
@groups.oauth.doc(**form_body(IntrospectionRequestSchema))
@groups.oauth.response(200, IntrospectionSchema)
@oauth_errors
@limits.failed_client_per_address
def introspect():
    """Whether a token is live now (RFC 7662).

    A user's access token (inactive at once when its session ends), a
    client's token or a personal access token; `{"active": false}` for
    anything else, refresh tokens included. The caller is a client: HTTP
    Basic (`client_id:client_secret`) or both in the form."""
    response = authorization.create_endpoint_response("introspection")
    if response.status_code == 200:
        INTROSPECTIONS.labels("active" if response.json["active"] else "inactive").inc()
    return response


def public_url(issuer, endpoint):
    """An endpoint's address on the issuer's host when the issuer is the API's
    https URL, as RFC 8414 has it (the Host header, which any client writes,
    names nothing then), with the path the app serves it at (url_for's, its
    mount point included); else, as in development, at the address asked."""
    parts = urlsplit(issuer)
    if parts.scheme.lower() == "https" and parts.netloc:
        return f"https://{parts.netloc}{url_for(endpoint)}"
    return url_for(endpoint, _external=True)


@groups.oauth.get("/.well-known/oauth-authorization-server")
@groups.oauth.response(200, AuthorizationServerMetadataSchema)
def metadata():
    """This server's OAuth metadata (RFC 8414)."""
    methods = list(AUTH_METHODS)
    issuer = current_app.config["JWT_ISSUER"]
    return {
        # RFC 8414 §2 wants an https URL: set JWT_ISSUER to the API's public URL.
        "issuer": issuer,
        "token_endpoint": public_url(issuer, "oauth.token"),
        "jwks_uri": public_url(issuer, "jwks.jwks"),
        "introspection_endpoint": public_url(issuer, "oauth.introspect"),
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": methods,
        "introspection_endpoint_auth_methods_supported": methods,
        "scopes_supported": list(scopes.ALL),
        # REQUIRED by RFC 8414 §2 whatever the grants, so present; empty, as
        # there is no authorization endpoint (hence no authorization_endpoint,
        # which §2 requires only of servers with a grant that uses one).
        "response_types_supported": [],
    }
