"""Scopes: what a token that is not a user's own login may do (RFC 6749 §3.3).

A route names the one scope it needs where it is declared,
`token_required(scope=NOTES_READ)`; api/web/openapi.py lists it on the
operation. A user's access token holds every scope; a personal access token
(api/auth/personal_tokens.py) and a client's token (api/oauth/) hold the
scopes they were given. A route that names no scope (the account, session
and admin routes) is for a user's own login only.
"""

PROFILE_READ = "profile:read"
NOTES_READ = "notes:read"
NOTES_WRITE = "notes:write"

# Every scope, with what it allows; the order is the documents' (OpenAPI, RFC 8414).
SCOPES = {
    PROFILE_READ: "Read the user's profile (GET /api/me).",
    NOTES_READ: "Read the user's notes.",
    NOTES_WRITE: "Create, change and delete the user's notes.",
}
ALL = tuple(SCOPES)


def parse(text):
    """RFC 6749 §3.3: a list delimited by spaces (U+0020, nothing else), in
    the canonical order, each once; None when one is unknown."""
    asked = set(text.split(" ")) - {""}
    if not asked <= set(ALL):
        return None
    return tuple(scope for scope in ALL if scope in asked)


def joined(scopes):
    return " ".join(scopes)
