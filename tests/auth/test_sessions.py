"""Login sessions (api/auth/sessions.py): refresh-token rotation, reuse
detection and its grace window, concurrent refreshes, and pruning; every rule
on SQLite, PostgreSQL, and PostgreSQL with Redis as the revocation store."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.helpers import AuthActions, assert_error, bearer, enable_totp, me, mfa_token_of, refresh


@pytest.fixture
def client(store_app):
    """On each store (conftest's `auth` uses this client too)."""
    return store_app.test_client()


def test_rotation_replaces_the_refresh_token(auth, client):
    pair = auth.registered_pair()
    new = refresh(client, pair["refresh_token"])
    assert new.status_code == 200
    newer = refresh(client, new.json["refresh_token"])
    assert newer.status_code == 200
    assert me(client, newer.json["access_token"]).status_code == 200


def test_replaced_token_within_grace_is_superseded_and_changes_nothing(auth, client):
    pair = auth.registered_pair()
    new = refresh(client, pair["refresh_token"]).json
    again = refresh(client, pair["refresh_token"])
    assert_error(again, 401, "refresh_token_superseded")
    assert again.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # Nothing was revoked: the newer tokens, and the old access token, still work.
    assert me(client, new["access_token"]).status_code == 200
    assert me(client, pair["access_token"]).status_code == 200
    assert refresh(client, new["refresh_token"]).status_code == 200


def test_replaced_token_after_grace_is_reuse_and_revokes_the_session(auth, client):
    with time_machine.travel(datetime(2026, 11, 28, 12, tzinfo=UTC), tick=False) as traveller:
        pair = auth.registered_pair()
        other = auth.login()
        new = refresh(client, pair["refresh_token"]).json
        traveller.shift(timedelta(seconds=11))
        reused = refresh(client, pair["refresh_token"])
        assert_error(reused, 401, "refresh_token_reused")
        # The whole session, newest tokens included, is gone at once.
        assert_error(me(client, new["access_token"]), 401, "token_revoked")
        assert_error(refresh(client, new["refresh_token"]), 401, "token_revoked")
        # Other sessions are untouched.
        assert me(client, other["access_token"]).status_code == 200


def test_grace_is_counted_from_each_tokens_own_rotation(auth, client):
    with time_machine.travel(datetime(2026, 11, 28, 12, tzinfo=UTC), tick=False) as traveller:
        pair = auth.registered_pair()
        second = refresh(client, pair["refresh_token"]).json
        traveller.shift(timedelta(seconds=5))
        third = refresh(client, second["refresh_token"]).json
        traveller.shift(timedelta(seconds=3))
        # First generation, rotated 8 s ago: still within the 10 s window.
        assert_error(refresh(client, pair["refresh_token"]), 401, "refresh_token_superseded")
        traveller.shift(timedelta(seconds=3))
        # Now 11 s: reuse, even though the second generation is within its window.
        assert_error(refresh(client, pair["refresh_token"]), 401, "refresh_token_reused")
        assert_error(me(client, third["access_token"]), 401, "token_revoked")


def test_grace_window_is_configurable(make_store_app):
    app = make_store_app(JWT_REFRESH_GRACE_SECONDS=0)
    client = app.test_client()
    pair = AuthActions(client).registered_pair()
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=1), tick=False):
        assert refresh(client, pair["refresh_token"]).status_code == 200
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=2), tick=False):
        assert_error(refresh(client, pair["refresh_token"]), 401, "refresh_token_reused")


def test_concurrent_refreshes_with_one_token_exactly_one_wins(store_app):
    client = store_app.test_client()
    pair = AuthActions(client).registered_pair()
    racers = 8
    barrier = threading.Barrier(racers)
    results = []

    def race():
        own = store_app.test_client()
        barrier.wait()
        response = refresh(own, pair["refresh_token"])
        results.append((response.status_code, (response.json or {}).get("error")))

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == sorted(
        [(200, None)] + [(401, "refresh_token_superseded")] * (racers - 1), key=str
    )


def test_prune_forgets_expired_rotated_tokens(store_app, auth, client):
    from api.auth.sessions import LoginSession, RotatedRefreshToken
    from api.extensions import db

    pair = auth.registered_pair()
    refresh(client, pair["refresh_token"])
    runner = store_app.test_cli_runner()
    output = runner.invoke(args=["sessions", "prune"]).output
    assert "Pruned 0 expired rotated refresh tokens and 0 ended sessions" in output
    with time_machine.travel(datetime.now(UTC) + timedelta(days=15), tick=False):
        output = runner.invoke(args=["sessions", "prune"]).output
    assert "Pruned 1 expired rotated refresh tokens and 1 ended sessions" in output
    with store_app.app_context():
        assert db.session.query(RotatedRefreshToken).count() == 0
        assert db.session.query(LoginSession).count() == 0


def test_prune_forgets_expired_mfa_tokens_and_passkey_challenges(store_app, auth, client):
    from api.auth.mfa_challenges import MfaChallenge
    from api.auth.webauthn_challenges import WebAuthnChallenge
    from api.extensions import db

    enable_totp(client, auth.registered_pair()["access_token"])
    mfa_token_of(client)
    assert client.post("/api/auth/passkey/options", json={}).status_code == 200
    runner = store_app.test_cli_runner()
    output = runner.invoke(args=["sessions", "prune"]).output
    assert "Pruned 0 expired mfa tokens, 0 passkey challenges" in output
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=6), tick=False):
        output = runner.invoke(args=["sessions", "prune"]).output
    assert "Pruned 1 expired mfa tokens, 1 passkey challenges" in output
    with store_app.app_context():
        assert db.session.query(MfaChallenge).count() == 0
        assert db.session.query(WebAuthnChallenge).count() == 0


def test_prune_forgets_totp_enrolments_never_confirmed(store_app, auth, client):
    from api.auth.totp import TotpCredential
    from api.extensions import db

    started = client.post(
        "/api/me/mfa/totp", headers=bearer(auth.registered_pair()["access_token"])
    )
    assert started.status_code == 200
    runner = store_app.test_cli_runner()
    assert "and 0 unconfirmed TOTP enrolments" in runner.invoke(args=["sessions", "prune"]).output
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=11), tick=False):
        output = runner.invoke(args=["sessions", "prune"]).output
    assert "and 1 unconfirmed TOTP enrolments" in output
    with store_app.app_context():
        assert db.session.query(TotpCredential).count() == 0  # nothing was on: no row left
