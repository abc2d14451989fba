"""/.well-known/jwks.json (api/routes/well_known.py): empty under HS256, and
cacheable. (The keys in it: tests/auth/test_keyring.py.)"""

from api.auth.keyring import add_key
from tests.helpers import keyed_app


def test_jwks_is_empty_under_hs256(client):
    response = client.get("/.well-known/jwks.json")
    assert response.json == {"keys": []}


def test_jwks_is_cacheable(make_app, key_dir):
    add_key(str(key_dir), "ES256")
    client = keyed_app(make_app, "ES256", key_dir).test_client()
    response = client.get("/.well-known/jwks.json")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert "Pragma" not in response.headers
    etag = response.headers["ETag"]
    again = client.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
