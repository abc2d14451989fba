"""Who a request speaks for, and the tokens that say so.

`identity` decides: every protected view goes through its `token_required`,
which verifies the token and looks up its user and session once. The other
modules serve it: `claims` (what our tokens look like), `minting` (the only
place that signs them), `keyring`, `key_files` and `first_key` (which key signs
and which verify), `parse_cache` (PyJWT's parse kept per token), `revocation` (where a
revoked session is kept: the database, or Redis), `sessions` (login sessions, rotation, revocation)
and `cookies` (the browser transport).
"""
