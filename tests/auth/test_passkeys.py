"""The relying party's settings, resolved at start (api/auth/relying_party.py),
and what api/auth/passkeys.py keeps: a user's passkeys and challenges go
with the user, an administrator's reset removes them, expired challenges go."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import create_engine, func, select, text

from api.accounts.users import User
from api.auth import passkeys
from api.auth.passkeys import Passkey
from api.auth.webauthn_challenges import WebAuthnChallenge
from api.clock import utcnow
from api.extensions import db
from config import ConfigError
from tests.helpers import AuthActions, assert_error, bearer, claims_of, wait_for_a_lock_wait
from tests.webauthn_support import OPTIONS, Authenticator, add, two_factor_pair

# The relying party


def relying_party(app):
    config = app.config
    return config["WEBAUTHN_RP_ID"], config["WEBAUTHN_ORIGINS"], config["WEBAUTHN_RP_NAME"]


def test_by_default_the_demo_page_on_localhost_is_the_relying_party(make_app):
    # APP_URL's default is http://localhost:8000/; a loopback address given is
    # named localhost all the same: browsers refuse an IP address as an RP id.
    assert relying_party(make_app()) == ("localhost", ["http://localhost:8000"], "Flask JWT API")
    app = make_app(APP_URL="http://[::1]:8001/", APP_NAME="Notes")
    assert relying_party(app) == ("localhost", ["http://localhost:8001"], "Notes")


@pytest.mark.parametrize(
    ("app_url", "rp_id", "origin"),
    [
        ("https://app.example.org/spa/", "app.example.org", "https://app.example.org"),
        ("https://App.Example.org:443/", "app.example.org", "https://app.example.org"),
        ("https://app.example.org:8443/", "app.example.org", "https://app.example.org:8443"),
        ("http://app.example.org:80/", "app.example.org", "http://app.example.org"),
    ],
)
def test_unset_it_is_app_urls_origin(make_app, app_url, rp_id, origin):
    assert relying_party(make_app(APP_URL=app_url))[:2] == (rp_id, [origin])


def test_an_rp_id_may_be_a_parent_domain_of_every_origin(make_app):
    app = make_app(
        WEBAUTHN_RP_ID="Example.ORG",
        WEBAUTHN_RP_NAME="Example",
        WEBAUTHN_ORIGINS=["https://app.example.org/", " https://example.org:443", "https://a.b.example.org:8443"],
    )  # fmt: skip
    assert relying_party(app) == (
        "example.org",
        ["https://app.example.org", "https://example.org", "https://a.b.example.org:8443"],
        "Example",
    )


def test_configured_origins_alone_give_the_first_ones_host(make_app):
    app = make_app(WEBAUTHN_ORIGINS=["https://app.example.org", "https://app.example.org:8443"])
    assert relying_party(app)[:2] == (
        "app.example.org",
        ["https://app.example.org", "https://app.example.org:8443"],
    )


def test_an_rp_id_alone_is_checked_against_app_url(make_app):
    assert make_app(APP_URL="https://app.example.org/", WEBAUTHN_RP_ID="example.org")
    with pytest.raises(ConfigError, match="'example.com' must be the host"):
        make_app(APP_URL="https://app.example.org/", WEBAUTHN_RP_ID="example.com")


@pytest.mark.parametrize(
    "origin",
    [
        "ftp://app.example.org",
        "app.example.org",
        "https://app.example.org/login",
        "https://app.example.org/?next=1",
        "https://app.example.org/#top",
        "https://bob@app.example.org",
        "https://app.example.org:99999",
        "https://",
        "https://exa mple.org",
        "https://-bad.example.org",
    ],
)
def test_a_malformed_origin_stops_the_start(make_app, origin):
    with pytest.raises(ConfigError, match="WEBAUTHN_ORIGINS must hold origins"):
        make_app(WEBAUTHN_ORIGINS=[origin])


@pytest.mark.parametrize(
    ("rp_id", "origins"),
    [
        ("evil.example", ["https://app.example.org"]),
        ("example.org", ["https://badexample.org"]),  # a suffix, not a parent domain
        ("app.example.org", ["https://example.org"]),  # a child of the origin's host
        ("example.org", ["https://app.example.org", "https://other.example"]),
    ],
)
def test_an_rp_id_that_is_no_origins_host_nor_parent_stops_the_start(make_app, rp_id, origins):
    with pytest.raises(ConfigError, match="must be the host of every origin"):
        make_app(WEBAUTHN_RP_ID=rp_id, WEBAUTHN_ORIGINS=origins)


@pytest.mark.parametrize("rp_id", ["127.0.0.1", "https://example.org", "example.org:443", "a b"])
def test_an_rp_id_that_is_no_domain_stops_the_start(make_app, rp_id):
    with pytest.raises(ConfigError, match="WEBAUTHN_RP_ID must be a domain"):
        make_app(WEBAUTHN_RP_ID=rp_id, WEBAUTHN_ORIGINS=["https://example.org"])


def test_an_ip_address_for_app_url_starts_but_warns(make_app, caplog):
    app = make_app(APP_URL="http://10.0.0.5:8000/")
    assert relying_party(app)[:2] == ("10.0.0.5", ["http://10.0.0.5:8000"])
    assert "passkeys will not work: 10.0.0.5 is an IP address" in caplog.text


def test_the_resolved_settings_reach_the_options(make_app):
    app = make_app(APP_URL="https://app.example.org/", WEBAUTHN_RP_NAME="Renamed")
    client = app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    options = client.post("/api/me/passkeys/options", headers=bearer(token)).json
    assert options["rp"] == {"id": "app.example.org", "name": "Renamed"}
    login = client.post("/api/auth/passkey/options", json={}).json["options"]
    assert login["rpId"] == "app.example.org"


# What is kept


def with_passkey(client, auth, username, key):
    """A new user with `key` registered (from their password login: their first)."""
    add(client, auth.registered_pair(username)["access_token"], key, name="Key")


def add_passkey(client, auth, username, key=None):
    """A user with a passkey, and a registration pending in a session of a
    login with it (another passkey needs a login that proved two factors)."""
    key = key or Authenticator()
    with_passkey(client, auth, username, key)
    token = two_factor_pair(client, key)["access_token"]
    assert client.post(OPTIONS, headers=bearer(token)).status_code == 200


def count(model, user_id=None):
    query = select(func.count()).select_from(model)
    if user_id is not None:
        query = query.where(model.user_id == user_id)
    return db.session.scalar(query)


def user_id(username):
    return db.session.scalar(select(User.id).where(User.username == username))


def test_a_registration_keeps_the_key_its_count_transports_and_whether_it_is_synced(
    app, auth, client
):
    hardware, synced = Authenticator(), Authenticator(synced=True, counter=False)
    with_passkey(client, auth, "bob", hardware)
    with_passkey(client, auth, "alice", synced)
    with app.app_context():
        kept = {p.user_id: p for p in db.session.scalars(select(Passkey))}
        bob, alice = kept[user_id("bob")], kept[user_id("alice")]
        assert (bob.synced, alice.synced) == (False, True)
        assert bob.credential_id == hardware.credential_id
        assert bob.public_key == hardware.cose_key()
        assert (bob.sign_count, bob.transports) == (0, ["internal", "hybrid"])


def test_remove_all_takes_the_users_passkeys_and_pending_registrations(app, auth, client):
    add_passkey(client, auth, "bob")
    add_passkey(client, auth, "alice")
    with app.app_context():
        bob = user_id("bob")
        assert passkeys.remove_all(bob) == 1
        db.session.rollback()  # pending until the caller commits
        assert count(Passkey, bob) == 1
        assert passkeys.remove_all(bob) == 1
        db.session.commit()
        assert (count(Passkey, bob), count(WebAuthnChallenge, bob)) == (0, 0)
        alice = user_id("alice")
        assert (count(Passkey, alice), count(WebAuthnChallenge, alice)) == (1, 1)


# PostgreSQL: SQLite, as this app opens it, does not enforce foreign keys
# (no route deletes a user; an administrator disables one).
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_deleted_users_passkeys_and_challenges_go_with_them(make_store_app):
    app = make_store_app()
    client = app.test_client()
    add_passkey(client, AuthActions(client), "bob")
    with app.app_context():
        assert (count(Passkey), count(WebAuthnChallenge)) == (1, 1)
        db.session.delete(db.session.get(User, user_id("bob")))
        db.session.commit()
        assert (count(Passkey), count(WebAuthnChallenge)) == (0, 0)


def test_expired_challenges_go_when_options_are_asked_for(app, client):
    with time_machine.travel(utcnow(), tick=False) as traveller:
        client.post("/api/auth/passkey/options", json={})
        client.post("/api/auth/passkey/options", json={})
        traveller.shift(timedelta(minutes=5))
        client.post("/api/auth/passkey/options", json={})
        with app.app_context():
            assert count(WebAuthnChallenge) == 1


# PostgreSQL, driven deterministically: another login holds the passkey's row
# in a transaction of its own while this one waits for it.
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_of_two_logins_with_one_sign_count_at_once_one_wins(make_store_app, backend):
    app = make_store_app()
    client = app.test_client()
    key = Authenticator()
    with_passkey(client, AuthActions(client), "bob", key)
    start = client.post("/api/auth/passkey/options", json={}).json
    body = {
        "challenge_id": start["challenge_id"],
        "credential": key.get(start["options"], sign_count=5),
    }
    engine = create_engine(backend["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as other, ThreadPoolExecutor(1) as pool:
            other.begin()
            # The other login, with the same count (a cloned key), has read 0 and moved it to 5.
            other.execute(text("UPDATE passkeys SET sign_count = 5"))
            login = pool.submit(app.test_client().post, "/api/auth/passkey/login", json=body)
            with engine.connect() as watcher:
                wait_for_a_lock_wait(watcher)
            other.commit()
            response = login.result(timeout=30)
    finally:
        engine.dispose()
    assert_error(response, 400, "webauthn_failed")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_option_calls_of_one_session_at_once_leave_one_registration(make_store_app, backend):
    app = make_store_app()
    client = app.test_client()
    token = AuthActions(client).registered_pair()["access_token"]
    sid = claims_of(token)["sid"]
    engine = create_engine(backend["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as other, ThreadPoolExecutor(1) as pool:
            other.begin()
            # The other call has stored its challenge and not yet committed.
            other.execute(
                text(
                    "INSERT INTO webauthn_challenges VALUES "
                    "('other', 'register', 1, :sid, 'x', now() + interval '5 minutes')"
                ),
                {"sid": sid},
            )
            call = pool.submit(
                app.test_client().post, "/api/me/passkeys/options", headers=bearer(token)
            )
            with engine.connect() as watcher:
                wait_for_a_lock_wait(watcher)
            other.commit()
            response = call.result(timeout=30)
        assert response.status_code == 200, response.json
        with engine.connect() as conn:
            ids = conn.execute(text("SELECT id FROM webauthn_challenges")).scalars().all()
        assert len(ids) == 1 and ids != ["other"]  # this call's replaced the other's
    finally:
        engine.dispose()
    credential = Authenticator().create(response.json)
    body = {"name": "Key", "credential": credential}
    assert client.post("/api/me/passkeys", json=body, headers=bearer(token)).status_code == 201
