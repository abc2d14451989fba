"""GET /api/auth/token reads only what its answer needs (issue 16): the token's
session and whether its account is live, not the user's row. With the
database as store that is one read of both; with Redis, one Redis call and a
read of the account's one column. A revoked session, or a user gone or
disabled, is refused as on every route."""

import pytest

from api.auth.identity import token_required
from tests.helpers import AuthActions, assert_error, bearer, sqlite_statements


@pytest.fixture(params=["database", "redis"])
def store_app(request, make_app):
    if request.param == "redis":
        return make_app(**request.getfixturevalue("redis_settings"))
    return make_app()


def test_the_claims_need_no_user_row(store_app):
    client = store_app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    with sqlite_statements(store_app) as seen:
        claims = client.get("/api/auth/token", headers=bearer(token))
    assert claims.status_code == 200
    assert claims.json["type"] == "access"
    assert len(seen) == 1, seen
    assert seen[0].startswith("SELECT users.disabled"), seen
    assert "users.username" not in seen[0]
    with sqlite_statements(store_app) as seen:
        me = client.get("/api/me", headers=bearer(token))
    assert me.status_code == 200
    assert "users.username" in seen[0]


@pytest.mark.parametrize("gone", ["disabled", "deleted"])
def test_a_user_disabled_or_gone_is_refused_though_the_session_is_not_revoked(store_app, gone):
    """Disabling revokes the sessions at once; should that record be lost (a
    Redis restart without persistence, a change made in the database by
    hand), the account itself still refuses, as on /api/me."""
    from sqlalchemy import text

    from api.extensions import db

    client = store_app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    change = "UPDATE users SET disabled = 1" if gone == "disabled" else "DELETE FROM users"
    with store_app.app_context():
        db.session.execute(text(change))
        db.session.commit()
    for path in ("/api/auth/token", "/api/me"):
        assert_error(client.get(path, headers=bearer(token)), 401, "invalid_token")


@pytest.mark.parametrize("ending", ["logout", "all sessions"])
def test_a_revoked_session_s_claims_are_refused(store_app, ending):
    client = store_app.test_client()
    auth = AuthActions(client)
    token = auth.registered_pair()["access_token"]
    if ending == "logout":
        assert client.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    else:
        other = auth.login()["access_token"]
        assert client.delete("/api/auth/sessions", headers=bearer(other)).status_code == 204
    assert_error(client.get("/api/auth/token", headers=bearer(token)), 401, "token_revoked")


def test_another_user_s_session_id_is_no_session(make_app):
    """With the database as store the session read is keyed by the user too:
    claims naming another user's session (only a key holder could sign
    them) find none."""
    from api.auth import identity

    store_app = make_app()
    client = store_app.test_client()
    auth = AuthActions(client)
    bob = auth.registered_pair(username="bob")["access_token"]
    alice = auth.registered_pair(username="alice")["access_token"]
    bob_sid = client.get("/api/auth/token", headers=bearer(bob)).json["sid"]
    alice_claims = client.get("/api/auth/token", headers=bearer(alice)).json
    with store_app.test_request_context():
        found = identity.look_up({**alice_claims, "sid": bob_sid}, user=False)
    assert found.revoked


@pytest.mark.parametrize("options", [{"refresh": True}, {"scope": "notes:read"}])
def test_only_an_access_token_s_claims_can_go_without_the_user(options):
    with pytest.raises(ValueError, match="without the user"):
        token_required(user=False, **options)
