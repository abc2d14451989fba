"""Who a request speaks for: the one module that decides.

A protected view is wrapped in `token_required` (or `roles_required`). It
picks the token the contract says decides (a bearer header alone, else the
cookies) and has flask-jwt-extended verify it, through the loaders registered
in `init_app`:

1. `verification_key`: a token not shaped as this API mints them is refused
   (api/auth/claims.py); otherwise the key its `kid` names, pinned to that
   key's one algorithm (api/auth/keyring.py), checks the signature, `exp`,
   `nbf`, `iss` and `aud`.
2. `session_revoked`, then `load_user`: both answer from one look-up
   (`look_up`): the token's user, and whether its session is revoked.
   With the database as revocation store that is one read of the user joined
   to the session; with Redis, one Redis call and one read of the user.

The view then has `get_current_user()` (a read-only TokenUser: the user as
the database had them when the request was authenticated) and `get_jwt()`.
"""

from dataclasses import dataclass
from functools import wraps

from flask import abort as abort_with
from flask import current_app, g, request
from flask_jwt_extended import get_current_user, get_jwt, get_jwt_header, verify_jwt_in_request
from flask_jwt_extended.exceptions import (
    CSRFError,
    FreshTokenRequired,
    InvalidHeaderError,
    NoAuthorizationError,
)
from flask_smorest import abort
from sqlalchemy import bindparam, select

from api.accounts import users
from api.accounts.users import User
from api.auth import (
    hmac_keys,
    parse_cache,
    passkeys,
    personal_tokens,
    revocation,
    scopes,
    sessions,
    token_user,
)
from api.auth.claims import check_token_shape, is_client_token, is_multi_factor
from api.auth.sessions import LoginSession
from api.database import read_row
from api.extensions import jwt
from api.schemas import MAX_ID
from api.web.errors import bearer_challenge, error_response, token_error
from api.web.openapi import document_scope


def token_required(refresh=False, fresh=False, mfa=False, scope=None, user=True):
    """A valid access token (or refresh token, `refresh=True`; straight from a
    login, `fresh=True`) whose user and session are live; else 401.
    `mfa=True`: from a login that proved two factors (see `require_mfa`).

    `user=False`, for a view that reads only the token's claims: its session
    and whether its account is live are checked, as on every route, in the
    same one read, but the user's row is not read: `get_current_user()` is an
    UnreadUser.

    `scope` (api/auth/scopes.py): what the route does, for tokens that may do
    only some things. A user's login token holds every scope; a personal
    access token is taken only on a route that names one of its scopes, and
    never on one that names none (the account, session and admin routes);
    a client's token has no user, so no user route takes it. The OpenAPI
    document lists the scope on the operation (api/web/openapi.py)."""
    if scope is not None and scope not in scopes.SCOPES:
        raise ValueError(f"unknown scope {scope!r}: add it to api/auth/scopes.py's SCOPES")
    if scope is not None and (refresh or fresh or mfa):
        # A personal access token proves no login: it would pass over them.
        raise ValueError("a route that needs a login (refresh, fresh, mfa) names no scope")
    if not user and (refresh or scope is not None):
        # A refresh reads the session itself; a personal access token is its user's row.
        raise ValueError("only an access token's claims can be read without the user")

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            locations, bearer = token_sources(refresh)
            if bearer is not None and personal_tokens.looks_like_one(bearer):
                _accept_personal_token(bearer, scope)
            else:
                if not user:
                    g.token_claims_only = True
                verify_jwt_in_request(refresh=refresh, locations=locations)
                if fresh:
                    require_fresh()
                if mfa:
                    require_mfa()
            return current_app.ensure_sync(view)(*args, **kwargs)

        return document_scope(wrapper, scope)

    return decorator


def _accept_personal_token(text, scope):
    """Authenticate a request by a personal access token: 401 unless it is
    live, 403 insufficient_scope unless it holds the route's scope. The view
    then finds its user where flask-jwt-extended puts a login token's
    (api/internals.py lists the reach), and claims that say what it is."""
    found = personal_tokens.find(text)
    if found is None:
        abort_with(token_error("invalid_token", "The token is invalid."))
    if found.expired:
        abort_with(token_error("token_expired", "The personal access token has expired."))
    if scope is None or scope not in found.scopes:
        refuse_scope(scope)
    personal_tokens.touch(found)
    g._jwt_extended_jwt_user = {"loaded_user": found.user}
    g._jwt_extended_jwt_header = {}
    g._jwt_extended_jwt = {
        "sub": str(found.user.id),
        "type": "personal",
        "scope": scopes.joined(found.scopes),
        "sid": None,  # no login session: an event it causes names none
        "jti": None,
    }


def refuse_scope(scope):
    """403 insufficient_scope with RFC 6750 §3.1's challenge; `scope`: what
    the route needs (None: no token that is not a login may use it)."""
    challenge = 'Bearer error="insufficient_scope"'
    if scope is not None:
        challenge += f', scope="{scope}"'
    message = (
        f"This token lacks the scope {scope}."
        if scope is not None
        else "Only a login's token may do this, not a personal access token."
    )
    abort_with(
        error_response(403, "insufficient_scope", message, headers={"WWW-Authenticate": challenge})
    )


def require_fresh():
    """401 fresh_token_required unless the token is straight from a login.
    Checked here, after the token's session and user were looked up, not by
    flask-jwt-extended before them: a client's token, which has no user, is
    then refused as such (403), not sent to log in again."""
    claims = get_jwt()
    if claims.get("fresh") is not True:
        raise FreshTokenRequired("a fresh token is required", get_jwt_header(), claims)


def require_mfa():
    """403 unless the token's login proved two factors (password and code, or
    a user-verified passkey; RFC 8176 `amr`). The contract has no code of its own for it; the
    challenge is RFC 9470's step-up, so a client knows to log in again with
    a second factor rather than ask for a role."""
    if not is_multi_factor(get_jwt().get("amr")):
        abort(
            403,
            message="This needs a login with a second factor (a code or a passkey).",
            headers=bearer_challenge("insufficient_user_authentication"),
        )


def changes_factors(view):
    """For a route that adds, renews or removes a second factor or a passkey,
    or finishes adding one (after its `token_required`: a registration
    started before the account's first passkey is checked again when it is
    finished): an account with a passkey changes them only
    from a login that proved two factors. Its password alone still logs in
    (a passkey is a login of its own, not a second step), so without this a
    stolen password would add the thief's passkey, whose logins pass as two
    factors (`require_mfa`, ADMIN_MFA_REQUIRED), or remove the owner's.
    With TOTP on, a password alone logs in no more, and turning it on ended
    every other session: the sessions left proved a code, or are the one
    that turned it on. An account with no factor gets its first from the
    password alone: there is nothing else to ask for."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if passkeys.exists_for(get_current_user().id):
            require_mfa()
        return current_app.ensure_sync(view)(*args, **kwargs)

    return wrapper


def second_factor_if_enrolled(view):
    """For a route that makes a new long-lived credential (after its
    `token_required(fresh=True)`): a user with TOTP or a passkey makes it
    only from a login that proved two factors, so that a stolen password,
    or the one session that turned TOTP on, cannot mint one."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        user = get_current_user()
        if user.mfa_enabled or passkeys.exists_for(user.id):
            require_mfa()
        return current_app.ensure_sync(view)(*args, **kwargs)

    return wrapper


def roles_required(*roles, mfa_setting=None):
    """An access token whose user holds every one of `roles`; else 403.
    `mfa_setting`: the name of a setting that, when true, also demands a
    login with a second factor (`require_mfa`).

    The user's stored roles decide, not the token's claim: a demotion revokes
    the user's sessions at once anyway (api/routes/admin.py), and this way a
    token minted a moment before it cannot slip through.
    """

    def decorator(view):
        @token_required()
        @wraps(view)
        def wrapper(*args, **kwargs):
            if not set(roles) <= set(get_current_user().roles):
                abort(403, message="You may not do this.")
            if mfa_setting and current_app.config[mfa_setting]:
                require_mfa()
            return current_app.ensure_sync(view)(*args, **kwargs)

        return wrapper

    return decorator


def token_sources(refresh=False):
    """(locations, bearer): where flask-jwt-extended is to look for the token,
    and the bearer header's token text, if one came.

    A request with a bearer header is judged by that header alone, whatever
    cookies come with it.

    flask-jwt-extended falls back to the cookies when the scheme is not spelled
    exactly "Bearer" or is given twice; RFC 7235 makes the scheme
    case-insensitive, so it is normalised here (a rewrite of the header that
    api/internals.py lists) and the cookies are left out.
    """
    header = request.headers.get("Authorization", "")
    parts = [part.split() for part in header.split(",") if part.strip()]
    bearer = [words for words in parts if words[0].lower() == "bearer"]
    if not bearer:
        _refuse_non_ascii_csrf(refresh)
        return None, None  # the configured order: headers, then cookies
    if len(bearer) > 1:
        raise InvalidHeaderError("more than one bearer token")
    if len(bearer[0]) == 1:
        raise NoAuthorizationError("a bearer scheme without a token")
    bearer[0][0] = "Bearer"
    request.environ["HTTP_AUTHORIZATION"] = ", ".join(" ".join(words) for words in parts)
    return ["headers"], (bearer[0][1] if len(bearer[0]) == 2 else None)


def _refuse_non_ascii_csrf(refresh):
    """hmac.compare_digest raises TypeError on non-ASCII text: where
    flask-jwt-extended is about to compare, refuse such a value first."""
    config = current_app.config
    kind = "REFRESH" if refresh else "ACCESS"
    if request.method not in config["JWT_CSRF_METHODS"]:
        return
    if config[f"JWT_{kind}_COOKIE_NAME"] not in request.cookies:
        return
    if not request.headers.get(config[f"JWT_{kind}_CSRF_HEADER_NAME"], "").isascii():
        raise CSRFError("CSRF double submit tokens do not match")


def lock_current_user():
    """The caller's account as a model, locked for a change to its password,
    address or links. The token's session is checked again once the lock is
    held: a password change or reset that ended it while this request waited
    must not be followed by a change made with it (a thief racing the owner)."""
    user = users.lock(get_current_user().id)
    if user is None or not sessions.is_open(get_jwt()["sid"]):
        abort_with(token_error("token_revoked", "The token's session has ended."))
    return user


@dataclass(frozen=True)
class LookUp:
    """What one look-up found: the live user (None when gone or disabled)
    and whether the token's session is revoked."""

    user: token_user.TokenUser | None
    revoked: bool


NOBODY = LookUp(user=None, revoked=False)


@dataclass(frozen=True)
class UnreadUser:
    """The user of a route that reads only the token's claims
    (`token_required(user=False)`): known by id, not read."""

    id: int


def _statements():
    """Core statements, built once at import: they run on every request, and
    building one costs more than running it."""
    users, sessions = User.__table__, LoginSession.__table__
    user_by_id = select(*token_user.COLUMNS).where(users.c.id == bindparam("user_id"))
    session_matches = (sessions.c.user_id == users.c.id) & (
        sessions.c.id == bindparam("session_id")
    )
    user_and_session = (
        select(*token_user.COLUMNS, sessions.c.id.label("sid"), sessions.c.revoked_at)
        .select_from(users.outerjoin(sessions, session_matches))
        .where(users.c.id == bindparam("user_id"))
    )
    # A claims-only route's look-up: whether the account is live (gone or
    # disabled: invalid_token, as everywhere), not the user's row.
    account = select(users.c.disabled).where(users.c.id == bindparam("user_id"))
    account_and_session = (
        select(users.c.disabled, sessions.c.id.label("sid"), sessions.c.revoked_at)
        .select_from(users.outerjoin(sessions, session_matches))
        .where(users.c.id == bindparam("user_id"))
    )
    return user_by_id, user_and_session, account, account_and_session


USER_BY_ID, USER_AND_SESSION, ACCOUNT, ACCOUNT_AND_SESSION = _statements()


def look_up(claims, user=True):
    """The token's live user and whether its session is revoked (one read).
    `user=False`: whether the account is live, not its row; the user is then
    an UnreadUser."""
    user_id = parse_user_id(claims["sub"])
    if user_id is None:
        return NOBODY  # no such user: the user lookup refuses it, invalid_token
    params = {"user_id": user_id, "session_id": claims["sid"]}
    store = revocation.store()
    if not user:
        return _look_up_account(user_id, params, store)
    if store.in_database:
        row = read_row(USER_AND_SESSION, params)
        revoked = row is not None and (row.sid is None or row.revoked_at is not None)
        return LookUp(token_user.from_row(row), revoked)
    if store.is_revoked(claims["sid"]):
        return LookUp(user=None, revoked=True)
    return LookUp(token_user.from_row(read_row(USER_BY_ID, params)), revoked=False)


def _look_up_account(user_id, params, store):
    if store.in_database:
        row = read_row(ACCOUNT_AND_SESSION, params)
        revoked = row is not None and (row.sid is None or row.revoked_at is not None)
    else:
        if store.is_revoked(params["session_id"]):
            return LookUp(user=None, revoked=True)
        row, revoked = read_row(ACCOUNT, params), False
    if row is None or row.disabled:
        return LookUp(user=None, revoked=revoked)
    return LookUp(UnreadUser(user_id), revoked)


def parse_user_id(sub):
    """A token's `sub` as an id, or None: int() would take "²" or 5,000 digits."""
    digits = sub.isascii() and sub.isdigit() and len(sub) <= len(str(MAX_ID))
    return int(sub) if digits and int(sub) <= MAX_ID else None


def init_app(app):
    parse_cache.install()
    hmac_keys.install()

    # The key is chosen by kid and pinned to its one algorithm (api/auth/keyring.py).
    @jwt.decode_key_loader
    def verification_key(header, claims):
        check_token_shape(header, claims)
        return current_app.extensions["keyring"].verifier(header).verification_key

    # Every token, access or refresh, from every worker and instance. The
    # loader flask-jwt-extended calls before the user loader: the look-up
    # happens here, and is kept, for this token only, for the user loader.
    @jwt.token_in_blocklist_loader
    def session_revoked(_header, claims):
        if is_client_token(claims):
            # A client's token (POST /oauth/token) is for the services that
            # trust this API, and has no user here.
            abort(403, message="A client's token has no user: this API's user routes refuse it.")
        found = look_up(claims, user=not g.get("token_claims_only"))
        g.token_look_up = (claims["jti"], found)
        return found.revoked

    # Every token names a live user: a deleted or disabled one is refused.
    @jwt.user_lookup_loader
    def load_user(_header, claims):
        jti, found = g.pop("token_look_up", (None, None))
        return (found if jti == claims["jti"] else look_up(claims)).user

    config = app.config
    config["JWT_DECODE_ALGORITHMS"] = app.extensions["keyring"].decode_algorithms
    config["JWT_DECODE_ISSUER"] = config["JWT_ISSUER"]
    config["JWT_DECODE_AUDIENCE"] = config["JWT_AUDIENCE"]
