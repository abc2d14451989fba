"""Authlib's authorization server as this API runs it: one grant (client
credentials), one extra endpoint (introspection), and the rules RFC 6749
states that Authlib leaves to its users:

- A client authenticates by HTTP Basic or by `client_id` and
  `client_secret` in the body (RFC 6749 §2.3.1), never by both at once
  (§2.3: `invalid_request`). Whatever it tried, a failure is `401
  invalid_client` with `WWW-Authenticate: Basic` and one message, whether
  the client exists or not (Authlib answers 400 to a failed body
  authentication, and says which of the two it was).
- Parameters come from the form body only (§3.2: the query string would put
  a secret in logs), each once (§3.1, §3.2: `invalid_request`).
- Over plain HTTP, only from a loopback address (RFC 6749 §1.6 and §3.2):
  the connection decides (its scheme after TRUSTED_PROXY_HOPS, its peer),
  as well as Authlib's look at the URL, which a Host header can name
  `localhost` from anywhere. Behind a TLS proxy, TRUSTED_PROXY_HOPS lets the
  API see the request was HTTPS. Otherwise `invalid_request`.
- Every error is the contract's envelope in RFC 6749 §5.2's shape
  (api/web/errors.py adds `error_description` under /oauth/), with a
  message of ours where the error raised has none (Authlib's own texts
  name no request input).
"""

import base64
import ipaddress
from urllib.parse import unquote

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import (
    InsecureTransportError,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import jsonify
from flask import request as flask_request

from api.oauth import clients, introspection, tokens
from api.oauth.clients import AUTH_METHODS
from api.web import limits
from api.web.errors import error_response

REALM = "oauth"
# What an error answer keeps of Authlib's headers (it adds Cache-Control itself).
KEPT_HEADERS = ("WWW-Authenticate", "Retry-After")
# Our messages, by error code, where the error raised has none of its own.
MESSAGES = {
    "invalid_request": "The request is malformed or a parameter is missing.",
    "invalid_client": "Client authentication failed.",
    "invalid_scope": "A scope asked for is unknown, or not granted to this client.",
    "unsupported_grant_type": "The only grant_type here is client_credentials.",
    "unauthorized_client": "This client may not use this grant type.",
}


class ClientAuthenticationFailed(InvalidClientError):
    """RFC 6749 §5.2: 401 and a challenge in the scheme the client may use."""

    status_code = 401
    description = (
        "Client authentication failed: an unknown client, a wrong secret, or no "
        "credentials (send them by HTTP Basic or as client_id and client_secret)."
    )

    def get_headers(self):
        challenge = f'Basic realm="{REALM}", charset="UTF-8"'
        return [*super(InvalidClientError, self).get_headers(), ("WWW-Authenticate", challenge)]


class BodyPayload(FlaskOAuth2Payload):
    """The form body's parameters only (Authlib's reads the query string too)."""

    @property
    def data(self):
        return self._request.form


class BodyRequest(FlaskOAuth2Request):
    def __init__(self, request):
        super().__init__(request)
        self.payload = BodyPayload(request)


def basic_credentials(header):
    """(client_id, secret) from an `Authorization: Basic` header, or None.
    Authlib's parser raises on base64 with non-ASCII characters or text that
    is no UTF-8 (a 500); here such a header is simply no credentials."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return None
    client_id, colon, secret = text.partition(":")
    if not colon:
        return None
    # RFC 6749 §2.3.1: both were form-encoded before base64.
    return unquote(client_id), unquote(secret)


def authenticate_basic(query_client, request):
    credentials = basic_credentials(request.headers.get("Authorization"))
    if credentials is None:
        return None
    client = query_client(credentials[0])
    if client is not None and client.check_client_secret(credentials[1]):
        return client
    return None


def _from_loopback():
    try:
        peer = ipaddress.ip_address(flask_request.remote_addr or "")
    except ValueError:
        return False
    # A dual-stack socket (HOST=::) sees IPv4's 127.0.0.1 as ::ffff:127.0.0.1.
    return (getattr(peer, "ipv4_mapped", None) or peer).is_loopback


def check_parameters(request):
    if any(len(values) > 1 for values in request.payload.datalist.values()):
        raise InvalidRequestError("A parameter is given more than once.")


class ClientRateLimited(OAuth2Error):
    """The client's own budget of tokens is spent (api/web/limits.py)."""

    error = "rate_limited"
    status_code = 429
    description = "Too many tokens for this client; try again later."

    def __init__(self, retry_after):
        super().__init__()
        self.retry_after = retry_after

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


class ClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_token_request(self):
        super().validate_token_request()  # the client proved its secret
        wait = limits.spend_client_budget(self.request.client.client_id)
        if wait is not None:
            raise ClientRateLimited(wait)

    def validate_requested_scope(self):
        # RFC 6749 §3.3 lets a server grant less than asked; refusing says
        # plainly that a scope was not granted, rather than leaving the
        # client to find out from a 403 later.
        if self.client.get_allowed_scope(self.request.payload.scope) is None:
            raise InvalidScopeError(MESSAGES["invalid_scope"])


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def check_params(self, request, client):
        # token_type_hint is ignored, as RFC 7662 §2.1 allows: every kind is
        # looked for anyway (Authlib answers an unknown hint with a 401).
        if "token" not in request.form:
            raise InvalidRequestError("The token parameter is missing.")

    def query_token(self, token_string, token_type_hint):
        return introspection.describe(token_string)

    def check_permission(self, token, client, request):
        # Any authenticated client may ask about any token: introspection is
        # for resource servers, which are handed tokens issued to others.
        return True

    def introspect_token(self, token):
        return dict(token.answer)


def _keep_nothing(_token, _request):
    """Authlib's save_token: a client's token is a JWT that verifies by
    itself; nothing about it is stored."""


class AuthorizationServer(FlaskAuthorizationServer):
    def __init__(self):
        super().__init__(query_client=clients.find, save_token=_keep_nothing)
        self.register_token_generator(ClientCredentials.GRANT_TYPE, tokens.generate)
        self.register_grant(ClientCredentials)
        self.register_endpoint(Introspection)
        self.register_client_auth_method("client_secret_basic", authenticate_basic)

    def create_oauth2_request(self, request):
        if isinstance(request, OAuth2Request):
            return request  # made once per request, below
        try:
            if not (flask_request.is_secure or _from_loopback()):
                raise InsecureTransportError()
            return BodyRequest(flask_request)
        except InsecureTransportError as exc:
            raise InvalidRequestError(
                "OAuth needs HTTPS (or a loopback address). Behind a TLS proxy, "
                "set TRUSTED_PROXY_HOPS."
            ) from exc

    def create_token_response(self, request=None):
        try:
            oauth_request = self.create_oauth2_request(request)
            check_parameters(oauth_request)
            if not oauth_request.payload.grant_type:
                raise InvalidRequestError("The grant_type parameter is missing.")
        except OAuth2Error as error:
            return self.handle_error_response(None, error)
        return super().create_token_response(oauth_request)

    def create_endpoint_response(self, name, request=None):
        try:
            oauth_request = self.create_oauth2_request(request)
            check_parameters(oauth_request)
        except OAuth2Error as error:
            return self.handle_error_response(None, error)
        return super().create_endpoint_response(name, oauth_request)

    def authenticate_client(self, request, methods, endpoint="token"):
        if "Authorization" in request.headers and "client_secret" in request.form:
            raise InvalidRequestError("Authenticate one way only: HTTP Basic or the body.")
        basic = basic_credentials(request.headers.get("Authorization"))
        named = request.form.get("client_id")
        if basic is not None and named is not None and named != basic[0]:
            raise InvalidRequestError("The body's client_id is not the one HTTP Basic names.")
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as exc:
            raise ClientAuthenticationFailed() from exc

    def handle_response(self, status_code, payload, headers):
        if status_code < 400:
            # Flask's JSON, as every other answer of this API (a final newline
            # for curl); Authlib's headers (Cache-Control: no-store) kept.
            response = jsonify(payload)
            response.status_code = status_code
            response.headers.update(headers)
            return response
        error = payload.get("error") or "invalid_request"
        message = payload.get("error_description") or MESSAGES.get(
            error, MESSAGES["invalid_request"]
        )
        kept = {name: value for name, value in headers if name in KEPT_HEADERS}
        return error_response(status_code, error, message, headers=kept)


authorization = AuthorizationServer()
