"""RFC 6749 §5.2's error codes: what /oauth/* answers (api/web/errors.py
turns any other 400 into `invalid_request`) and what its metrics count."""

CODES = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
)
