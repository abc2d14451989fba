"""Parse each token once, not four times.

To verify one request, flask-jwt-extended asks PyJWT about the token four
times (its claims, its header, the verified decode, its header again), and
PyJWT parses the token's segments afresh each time (base64 with a check of
every character, then the header's JSON): about half the cost of verifying.
Clients also present the same token for its whole life (an access token for
60 s).

That parse is a pure function of the token's text and verifies nothing, so it
is kept here, per process, for the most recent tokens. Everything that
verifies still runs on every call: the signature with the pinned algorithm and
key, `exp`, `nbf`, `iss`, `aud`, the token's shape (api/auth/claims.py), the
revocation check. A token that fails to parse is never kept.

Anyone can send tokens, forged ones included, so what is kept is bounded:
texts of at most MAX_TOKEN_LENGTH characters (this API's tokens are under
1,000) whose header is flat (names to strings, numbers, booleans), at most
MAX_TOKENS of them: a few MB per process at worst. Anything else is parsed
each time, as without this module.
"""

from functools import lru_cache

from jwt import api_jws

MAX_TOKENS = 1024
MAX_TOKEN_LENGTH = 2048
_FLAT = (str, int, float, bool, type(None))


class _NotKept(Exception):
    """Carries a parse that must not be kept (lru_cache keeps no exception)."""


def install():
    """Give PyJWT's shared PyJWS object (the one flask-jwt-extended's
    jwt.decode and jwt.get_unverified_header use) a memory. Idempotent."""
    jws = api_jws._jws_global_obj
    if getattr(jws, "parse_cache", None) is not None:
        return
    parse_afresh = jws._load

    @lru_cache(maxsize=MAX_TOKENS)
    def remembered(token):
        parsed = parse_afresh(token)
        if not all(isinstance(value, _FLAT) for value in parsed[2].values()):
            raise _NotKept(parsed)
        return parsed

    def load(token):
        if not isinstance(token, str | bytes) or len(token) > MAX_TOKEN_LENGTH:
            return parse_afresh(token)
        try:
            payload, signing_input, header, signature = remembered(token)
        except _NotKept as not_kept:
            return not_kept.args[0]
        # Callers own the header they get (flask-jwt-extended keeps it in g);
        # a flat one is copied whole by dict().
        return payload, signing_input, dict(header), signature

    jws._load = load
    jws.parse_cache = remembered
