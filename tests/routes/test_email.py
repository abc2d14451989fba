"""The account's address and recovery (api/routes/email.py): every flow with
its mail read from a real SMTP server, every bad link, on SQLite and on
PostgreSQL + Redis."""

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine

from api.accounts import events
from api.accounts.mail_delivery import deliver_due
from api.clock import utcnow
from tests.helpers import PASSWORD, Fresh, assert_error, bearer, me, refresh
from tests.mail_support import LINK, text_of

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def app(make_store_app, mail_settings):
    return make_store_app(**mail_settings, APP_URL="https://app.example/")


@pytest.fixture
def client(app):
    return app.test_client()


class Inbox:
    """What the app has mailed: its outbox delivered to the real SMTP sink."""

    def __init__(self, app, sink):
        self.app, self.sink = app, sink

    def messages(self):
        deliver_due(self.app)
        return list(self.sink.messages)

    def to(self, address):
        return [m for m in self.messages() if m["To"] == address]

    def last_token(self, address, path):
        """The token of the newest mail to `address` whose link opens `path`."""
        links = [LINK.findall(text_of(m)) for m in self.to(address)]
        wanted = f"https://app.example/{path}?"
        (link,) = [found for found in links if found and found[0].startswith(wanted)][-1]
        return parse_qs(urlsplit(link).query)["token"][0]


@pytest.fixture
def inbox(app, smtp_sink):
    return Inbox(app, smtp_sink)


def register(client, username="bob", email="bob@example.com"):
    body = {"username": username, "password": PASSWORD}
    if email is not None:
        body["email"] = email
    response = client.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.json
    return response.json


def login(client, username="bob", password=PASSWORD):
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return response.json


def verify(client, token):
    return client.post("/api/auth/email/verify", json={"token": token})


def reset(client, token, password=NEW_PASSWORD):
    return client.post("/api/auth/password/reset", json={"token": token, "new_password": password})


def forgot(client, address, **kwargs):
    return client.post("/api/auth/password/forgot", json={"email": address}, **kwargs)


def event_types(app, user_id):
    with app.app_context():
        from api.extensions import db

        return [e.type for e in db.session.scalars(events.listing(user_id=user_id))]


# Registration and verification


def test_registration_with_an_email_mails_a_verification_link(client, inbox):
    user = register(client)
    assert user["email"] == "bob@example.com"
    assert user["email_verified"] is False
    assert user["mfa_enabled"] is False
    (mail,) = inbox.to("bob@example.com")
    text = text_of(mail)
    assert mail["Subject"] == "Flask JWT API: Confirm your email address"
    assert len(LINK.findall(text)) == 1  # exactly one link
    assert "Flask JWT API" in text and "24 hours" in text and "If it was not you" in text
    assert mail.get_content_type() == "text/plain"
    token = inbox.last_token("bob@example.com", "verify-email")
    # As sent, the link is whole on one line (no quoted-printable "=3D" or soft breaks).
    assert f"https://app.example/verify-email?token={token}\n" in mail.as_string()


def test_registration_without_an_email_mails_nothing(client, inbox):
    response = client.post("/api/auth/register", json={"username": "bob", "password": PASSWORD})
    assert response.status_code == 201
    assert response.json["email"] is None and response.json["email_verified"] is False
    assert inbox.messages() == []


def test_the_link_verifies_the_address_once(app, client, inbox):
    user = register(client)
    token = inbox.last_token("bob@example.com", "verify-email")
    response = verify(client, token)
    assert response.status_code == 200
    assert response.json["email_verified"] is True and response.json["id"] == user["id"]
    assert me(client, login(client)["access_token"]).json["email_verified"] is True
    assert_error(verify(client, token), 400, "link_invalid")  # used
    assert event_types(app, user["id"]).count("email_verified") == 1


@pytest.mark.parametrize("taken", ["bob@example.com", "BOB@Example.COM"])
def test_an_address_belongs_to_one_account_whatever_its_case(client, inbox, taken):
    register(client)
    body = {"username": "eve", "password": PASSWORD, "email": taken}
    assert_error(client.post("/api/auth/register", json=body), 409, "email_taken")
    assert len(inbox.messages()) == 1  # none for the refused registration


@pytest.mark.parametrize(
    "address",
    [
        "bob@example.com\r\nBcc: victim@example.com",
        "bob@example.com\nBcc: victim@example.com",
        "bob@exa\rmple.com",
        "not an address",
        "bob@",
        "a" * 245 + "@example.com",  # 257 characters
        "",
        17,
        '"bob"@example.com',  # quoted: one mailbox with bob@, spelled otherwise
        "b\\ob@example.com",
        "b\x01ob@example.com",
        "bob@exam\x7fple.com",
        "bob\u2028@example.com",
    ],
)
def test_a_bad_address_is_a_validation_error(client, inbox, address):
    body = {"username": "bob", "password": PASSWORD, "email": address}
    response = client.post("/api/auth/register", json=body)
    assert_error(response, 422, "validation_error")
    assert "email" in response.json["details"]
    assert_error(forgot(client, address), 422, "validation_error")
    assert inbox.messages() == []


def test_one_mailbox_has_one_spelling(client, inbox):
    user = register(client, "hans", "Hans@München.DE")
    assert user["email"] == "Hans@xn--mnchen-3ya.de"  # the domain as DNS has it
    body = {"username": "eve", "password": PASSWORD, "email": "hans@XN--MNCHEN-3YA.de"}
    assert_error(client.post("/api/auth/register", json=body), 409, "email_taken")
    assert forgot(client, "HANS@münchen.de").status_code == 202
    inbox.last_token("Hans@xn--mnchen-3ya.de", "reset-password")


# Bad links


def test_unknown_and_tampered_links_are_invalid(client, inbox):
    register(client)
    token = inbox.last_token("bob@example.com", "verify-email")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, "x", token + "x"):
        assert_error(verify(client, bad), 400, "link_invalid")
        assert_error(reset(client, bad), 400, "link_invalid")
    assert verify(client, token).status_code == 200  # refusals used nothing up


def test_a_link_of_the_other_kind_is_invalid_and_not_used_up(client, inbox):
    register(client)
    verification = inbox.last_token("bob@example.com", "verify-email")
    assert forgot(client, "bob@example.com").status_code == 202
    reset_token = inbox.last_token("bob@example.com", "reset-password")
    assert_error(reset(client, verification), 400, "link_invalid")
    assert_error(verify(client, reset_token), 400, "link_invalid")
    assert verify(client, verification).status_code == 200
    assert reset(client, reset_token).status_code == 204


def test_a_verification_link_expires_after_24_hours(client, inbox):
    with time_machine.travel(utcnow(), tick=False) as traveller:
        register(client)
        token = inbox.last_token("bob@example.com", "verify-email")
        traveller.shift(timedelta(hours=24, seconds=1))
        assert_error(verify(client, token), 400, "link_expired")


def test_a_reset_link_expires_after_30_minutes(client, inbox):
    register(client)
    with time_machine.travel(utcnow(), tick=False) as traveller:
        assert forgot(client, "bob@example.com").status_code == 202
        token = inbox.last_token("bob@example.com", "reset-password")
        traveller.shift(timedelta(minutes=29, seconds=59))
        assert reset(client, token, "first new password").status_code == 204
        assert forgot(client, "bob@example.com").status_code == 202
        late = inbox.last_token("bob@example.com", "reset-password")
        traveller.shift(timedelta(minutes=30, seconds=1))
        assert_error(reset(client, late), 400, "link_expired")
    login(client, password="first new password")


def test_a_newer_link_kills_the_older_one(client, inbox):
    register(client)
    first = inbox.last_token("bob@example.com", "verify-email")
    pair = login(client)
    resend = client.post("/api/me/email/verification", headers=bearer(pair["access_token"]))
    assert resend.status_code == 202
    second = inbox.last_token("bob@example.com", "verify-email")
    assert second != first
    assert_error(verify(client, first), 400, "link_invalid")
    assert verify(client, second).status_code == 200


def test_a_password_change_kills_every_link(client, inbox):
    register(client)
    verification = inbox.last_token("bob@example.com", "verify-email")
    assert forgot(client, "bob@example.com").status_code == 202
    reset_token = inbox.last_token("bob@example.com", "reset-password")
    pair = login(client)
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    response = client.put("/api/me/password", json=body, headers=bearer(pair["access_token"]))
    assert response.status_code == 204
    assert_error(verify(client, verification), 400, "link_invalid")
    assert_error(reset(client, reset_token), 400, "link_invalid")


def test_a_newer_reset_link_kills_the_older_one(client, inbox):
    register(client)
    assert forgot(client, "bob@example.com").status_code == 202
    first = inbox.last_token("bob@example.com", "reset-password")
    assert forgot(client, "bob@example.com").status_code == 202
    second = inbox.last_token("bob@example.com", "reset-password")
    assert_error(reset(client, first), 400, "link_invalid")
    assert reset(client, second).status_code == 204


def test_a_reset_link_to_an_address_the_account_left_is_invalid(client, inbox):
    verified_bob(client, inbox)
    assert forgot(client, "bob@example.com").status_code == 202
    old_link = inbox.last_token("bob@example.com", "reset-password")
    assert change(client, login(client)["access_token"], "robert@example.org").status_code == 202
    assert verify(client, inbox.last_token("robert@example.org", "verify-email")).status_code == 200
    # Whoever still reads the old mailbox cannot take the account.
    assert_error(reset(client, old_link), 400, "link_invalid")
    login(client)  # the password is unchanged


def test_links_of_a_disabled_account_do_nothing(app, client, inbox):
    register(client)
    verification = inbox.last_token("bob@example.com", "verify-email")
    assert forgot(client, "bob@example.com").status_code == 202
    reset_token = inbox.last_token("bob@example.com", "reset-password")
    set_user(app, 1, disabled=True)
    assert_error(verify(client, verification), 400, "link_invalid")
    assert_error(reset(client, reset_token), 400, "link_invalid")
    set_user(app, 1, disabled=False)  # refused, not used up
    assert verify(client, verification).status_code == 200
    assert reset(client, reset_token).status_code == 204


def test_concurrent_uses_of_one_link_let_exactly_one_in(app, client, inbox):
    register(client)
    assert forgot(client, "bob@example.com").status_code == 202
    token = inbox.last_token("bob@example.com", "reset-password")
    start = threading.Barrier(4)

    def use(n):
        start.wait()
        return reset(app.test_client(), token, f"new password number {n}").status_code

    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(use, range(4)))
    assert codes == [204, 400, 400, 400]


def set_user(app, user_id, **values):
    with app.app_context():
        from api.accounts.users import User
        from api.extensions import db

        user = db.session.get(User, user_id)
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


@pytest.mark.parametrize(
    "body",
    [{}, {"token": ""}, {"token": 5}, {"token": "x" * 257}, {"token": "t", "extra": 1}],
)
def test_verify_validation(client, body):
    assert_error(client.post("/api/auth/email/verify", json=body), 422, "validation_error")


def test_a_reset_refused_for_its_password_keeps_the_link(client, inbox):
    register(client)
    assert forgot(client, "bob@example.com").status_code == 202
    token = inbox.last_token("bob@example.com", "reset-password")
    assert_error(reset(client, token, "short"), 422, "validation_error")
    assert reset(client, token).status_code == 204


# Resend


def test_resend_for_a_verified_address_or_none_is_nothing_to_verify(client, inbox):
    register(client)
    assert verify(client, inbox.last_token("bob@example.com", "verify-email")).status_code == 200
    pair = login(client)
    response = client.post("/api/me/email/verification", headers=bearer(pair["access_token"]))
    assert_error(response, 409, "nothing_to_verify")
    register(client, "ann", email=None)
    ann = login(client, "ann")
    response = client.post("/api/me/email/verification", headers=bearer(ann["access_token"]))
    assert_error(response, 409, "nothing_to_verify")
    assert len(inbox.messages()) == 1


def test_resend_needs_a_token(client):
    assert_error(client.post("/api/me/email/verification"), 401, "missing_token")


# Change of address


def verified_bob(client, inbox):
    user = register(client)
    assert verify(client, inbox.last_token("bob@example.com", "verify-email")).status_code == 200
    return user


def change(client, access_token, address):
    return client.put("/api/me/email", json={"email": address}, headers=bearer(access_token))


def test_a_change_counts_once_the_new_address_is_verified(app, client, inbox):
    user = verified_bob(client, inbox)
    pair = login(client)
    assert change(client, pair["access_token"], "robert@example.org").status_code == 202
    # Until the link is opened, the account keeps its verified address.
    body = me(client, pair["access_token"]).json
    assert (body["email"], body["email_verified"]) == ("bob@example.com", True)
    (notice,) = [m for m in inbox.to("bob@example.com") if "changed" in m["Subject"]]
    assert "robert@example.org" in text_of(notice) and not LINK.findall(text_of(notice))
    token = inbox.last_token("robert@example.org", "verify-email")
    response = verify(client, token)
    assert response.status_code == 200
    assert (response.json["email"], response.json["email_verified"]) == (
        "robert@example.org",
        True,
    )
    assert "email_changed" in event_types(app, user["id"])
    # The old address no longer finds the account; the new one does.
    assert forgot(client, "bob@example.com").status_code == 202
    assert forgot(client, "robert@example.org").status_code == 202
    assert not [m for m in inbox.to("bob@example.com") if "Reset" in m["Subject"]]
    inbox.last_token("robert@example.org", "reset-password")


def test_an_unverified_new_address_is_not_verified_by_the_old_link(client, inbox):
    register(client)
    old_link = inbox.last_token("bob@example.com", "verify-email")
    pair = login(client)
    assert change(client, pair["access_token"], "robert@example.org").status_code == 202
    assert_error(verify(client, old_link), 400, "link_invalid")  # superseded
    # No notice: the old address was never verified.
    assert len(inbox.to("bob@example.com")) == 1
    token = inbox.last_token("robert@example.org", "verify-email")
    assert verify(client, token).json["email"] == "robert@example.org"


def test_a_change_needs_a_fresh_token(client, inbox):
    verified_bob(client, inbox)
    refreshed = refresh(client, login(client)["refresh_token"]).json
    response = change(client, refreshed["access_token"], "robert@example.org")
    assert_error(response, 401, "fresh_token_required")
    assert inbox.to("robert@example.org") == []


@pytest.mark.parametrize("address", ["new@example.org\r\nBcc: x@example.org", "new@\nexample.org"])
def test_a_change_to_an_address_with_a_line_break_is_a_validation_error(client, inbox, address):
    verified_bob(client, inbox)
    response = change(client, login(client)["access_token"], address)
    assert_error(response, 422, "validation_error")
    assert "email" in response.json["details"]


def test_a_change_to_a_taken_address_is_refused(client, inbox):
    verified_bob(client, inbox)
    register(client, "ann", email=None)
    ann = login(client, "ann")
    assert_error(change(client, ann["access_token"], "BOB@example.com"), 409, "email_taken")
    assert inbox.to("BOB@example.com") == []


def test_an_address_taken_before_its_link_is_opened_is_refused(app, client, inbox):
    verified_bob(client, inbox)
    assert change(client, login(client)["access_token"], "shared@example.org").status_code == 202
    token = inbox.last_token("shared@example.org", "verify-email")
    register(client, "ann", "shared@example.org")
    assert_error(verify(client, token), 409, "email_taken")
    body = me(client, login(client)["access_token"]).json
    assert body["email"] == "bob@example.com"
    # Refused, not used up: once the address is free again, the link works.
    set_user(app, 2, email=None)
    assert verify(client, token).json["email"] == "shared@example.org"


def test_a_password_change_cancels_a_pending_change(client, inbox):
    verified_bob(client, inbox)
    pair = login(client)
    assert change(client, pair["access_token"], "thief@example.org").status_code == 202
    link = inbox.last_token("thief@example.org", "verify-email")
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert (
        client.put("/api/me/password", json=body, headers=bearer(pair["access_token"])).status_code
        == 204
    )
    assert_error(verify(client, link), 400, "link_invalid")
    # Nor can a resend bring it back: nothing is pending any more.
    resend = client.post("/api/me/email/verification", headers=bearer(pair["access_token"]))
    assert_error(resend, 409, "nothing_to_verify")


def test_changing_back_to_the_verified_address_cancels_the_change(client, inbox):
    verified_bob(client, inbox)
    pair = login(client)
    assert change(client, pair["access_token"], "robert@example.org").status_code == 202
    link = inbox.last_token("robert@example.org", "verify-email")
    assert change(client, pair["access_token"], "Bob@Example.com").status_code == 202
    assert_error(verify(client, link), 400, "link_invalid")
    assert me(client, pair["access_token"]).json["email"] == "bob@example.com"


# Forgot and reset


FORGOT_BODY = {"message": "If an account has this address, a reset link is on its way."}


def test_forgot_answers_alike_and_mails_only_an_accounts_own_address(client, inbox):
    verified_bob(client, inbox)
    assert change(client, login(client)["access_token"], "pending@example.org").status_code == 202
    before = len(inbox.messages())
    for address in ("nobody@example.com", "pending@example.org", "BOB@EXAMPLE.COM"):
        response = forgot(client, address)
        assert (response.status_code, response.json) == (202, FORGOT_BODY)
    mails = inbox.messages()[before:]
    assert [m["To"] for m in mails] == ["bob@example.com"]  # the account's, as stored
    assert mails[0]["Subject"] == "Flask JWT API: Reset your password"
    text = text_of(mails[0])
    assert len(LINK.findall(text)) == 1 and "30 minutes" in text and "If it was not you" in text


def test_forgot_mails_nothing_to_a_disabled_account(app, client, inbox):
    register(client)
    with app.app_context():
        from api.accounts.users import User
        from api.extensions import db

        db.session.get(User, 1).disabled = True
        db.session.commit()
    before = len(inbox.messages())
    assert forgot(client, "bob@example.com").json == FORGOT_BODY
    assert len(inbox.messages()) == before


def test_a_reset_ends_every_session_and_verifies_the_address(app, client, inbox):
    user = register(client)
    sessions = [login(client), login(client)]
    body = {"name": "ci", "scopes": ["notes:read"]}
    headers = {"Authorization": f"Bearer {sessions[0]['access_token']}"}
    pat = client.post("/api/me/tokens", json=body, headers=headers).json["token"]
    assert client.get("/api/notes", headers={"Authorization": f"Bearer {pat}"}).status_code == 200
    assert forgot(client, "bob@example.com").status_code == 202
    token = inbox.last_token("bob@example.com", "reset-password")
    assert reset(client, token).status_code == 204
    for pair in sessions:
        assert_error(me(client, pair["access_token"]), 401, "token_revoked")
        assert_error(refresh(client, pair["refresh_token"]), 401, "token_revoked")
    assert_error(
        client.get("/api/notes", headers={"Authorization": f"Bearer {pat}"}), 401, "invalid_token"
    )
    response = client.post("/api/auth/login", json={"username": "bob", "password": PASSWORD})
    assert_error(response, 401, "invalid_credentials")
    assert me(client, login(client, password=NEW_PASSWORD)["access_token"]).json["email_verified"]
    assert_error(reset(client, token), 400, "link_invalid")  # used
    with app.app_context():
        from api.extensions import db

        (event,) = db.session.scalars(events.listing(user["id"], "password_reset"))
        assert event.details == {"sessions_revoked": 2, "tokens_revoked": 1}


def test_no_link_token_or_password_reaches_an_event_or_the_log(app, client, inbox, caplog):
    user = register(client)
    verification = inbox.last_token("bob@example.com", "verify-email")
    assert verify(client, verification).status_code == 200
    assert forgot(client, "bob@example.com").status_code == 202
    token = inbox.last_token("bob@example.com", "reset-password")
    assert reset(client, token).status_code == 204
    with app.app_context():
        from api.extensions import db

        stored = [repr(vars(e)) for e in db.session.scalars(events.listing(user["id"]))]
    for secret in (token, verification, NEW_PASSWORD):
        assert not any(secret in text for text in stored)
        assert secret not in caplog.text


def test_links_are_stored_only_as_hashes(app, client, inbox):
    register(client)
    token = inbox.last_token("bob@example.com", "verify-email")
    with app.app_context():
        from sqlalchemy import text

        from api.extensions import db

        rows = db.session.execute(text("SELECT * FROM one_time_tokens")).all()
        outbox = db.session.execute(text("SELECT * FROM mail_outbox")).all()
    assert rows and not any(token in repr(row) for row in rows)
    assert not any(token in repr(row) for row in outbox)


# Rate limits (counts in Redis outlive a test: addresses and mailboxes of its own)


def limited_client(make_store_app, mail_settings):
    app = make_store_app(**mail_settings, RATELIMIT_ENABLED=True, RATELIMIT_EMAIL="3 per hour")
    return app.test_client()


def test_forgot_is_limited_per_address_mailed(make_store_app, mail_settings):
    client, fresh = limited_client(make_store_app, mail_settings), Fresh()
    victim = fresh.email("victim")
    for n in range(4):
        # Each from another client address: the mailbox's own budget still runs out.
        env = {"REMOTE_ADDR": fresh.addr(n + 1)}
        response = forgot(client, victim.upper() if n % 2 else victim, environ_base=env)
        assert response.status_code == (202 if n < 3 else 429)
    assert_error(response, 429, "rate_limited")
    assert "Retry-After" in response.headers


def test_forgot_is_limited_per_client_address(make_store_app, mail_settings):
    client, fresh = limited_client(make_store_app, mail_settings), Fresh()
    env = {"REMOTE_ADDR": fresh.addr()}
    addresses = [fresh.email(f"user{n}") for n in range(4)]
    codes = [forgot(client, address, environ_base=env).status_code for address in addresses]
    assert codes == [202, 202, 202, 429]


def test_registrations_mailing_one_address_share_its_budget(make_store_app, mail_settings):
    # Each registration with an address mails it: as many as forgot-password may.
    client, fresh = limited_client(make_store_app, mail_settings), Fresh()
    victim, codes = fresh.email("victim"), []
    for n in range(4):
        env = {"REMOTE_ADDR": fresh.addr(n + 1)}
        body = {"username": fresh.name(f"u{n}"), "password": PASSWORD, "email": victim}
        response = client.post("/api/auth/register", json=body, environ_base=env)
        codes.append(response.status_code)
        victim = victim.upper()  # another spelling of one mailbox
    assert codes == [201, 409, 409, 429]  # taken (no mail), then no budget left either


def test_resends_with_nothing_to_verify_spend_no_shared_budget(make_store_app, mail_settings):
    client, fresh = limited_client(make_store_app, mail_settings), Fresh()
    codes = []
    for n in range(5):
        name = fresh.name(f"u{n}")
        env = {"REMOTE_ADDR": fresh.addr(n + 1)}
        body = {"username": name, "password": PASSWORD}
        assert client.post("/api/auth/register", json=body, environ_base=env).status_code == 201
        access = client.post("/api/auth/login", json=body, environ_base=env).json["access_token"]
        resend = client.post("/api/me/email/verification", headers=bearer(access), environ_base=env)
        codes.append(resend.status_code)
    assert codes == [409] * 5


def test_resend_and_change_share_the_mailed_address_budget(make_store_app, mail_settings):
    client, fresh = limited_client(make_store_app, mail_settings), Fresh()
    # From an address of its own: Redis keeps other tests' counts for 127.0.0.1.
    env = {"REMOTE_ADDR": fresh.addr(99)}
    body = {"username": fresh.name("bob"), "password": PASSWORD, "email": fresh.email("bob")}
    assert client.post("/api/auth/register", json=body, environ_base=env).status_code == 201
    del body["email"]
    token = client.post("/api/auth/login", json=body, environ_base=env).json["access_token"]
    codes = []
    for n in range(4):
        env = {"REMOTE_ADDR": fresh.addr(n + 1)}
        resend = client.post("/api/me/email/verification", headers=bearer(token), environ_base=env)
        codes.append(resend.status_code)
    assert codes == [202, 202, 429, 429]  # the registration's mail was the first of three
    # Four accounts asking for one address: the address's budget, not each account's.
    codes, target = [], fresh.email("target")
    for n, name in enumerate(("ann", "cat", "dan", "eve")):
        env = {"REMOTE_ADDR": fresh.addr(10 + n)}
        body = {"username": fresh.name(name), "password": PASSWORD}
        assert client.post("/api/auth/register", json=body, environ_base=env).status_code == 201
        access = client.post("/api/auth/login", json=body, environ_base=env).json["access_token"]
        change = client.put(
            "/api/me/email", json={"email": target}, headers=bearer(access), environ_base=env
        )
        codes.append(change.status_code)
    assert codes == [202, 202, 202, 429]


# Enumeration


def test_forgot_takes_about_as_long_for_an_unknown_address(client, inbox):
    """Measured, as an attacker would: interleaved requests, medians compared.
    Both ways make a token and a mail and commit an event; were the unknown
    address's answer to skip that work, it would be several times faster."""
    register(client)

    def elapsed(address):
        start = time.perf_counter()
        assert forgot(client, address).status_code == 202
        return time.perf_counter() - start

    for _ in range(5):  # warm up both paths (templates, statements)
        elapsed("bob@example.com"), elapsed("nobody@example.com")
    known, unknown = [], []
    for _ in range(40):
        known.append(elapsed("bob@example.com"))
        unknown.append(elapsed("nobody@example.com"))
    slower, faster = sorted([statistics.median(known), statistics.median(unknown)], reverse=True)
    assert slower / faster < 1.5, (statistics.median(known), statistics.median(unknown))


def test_forgot_records_an_event_naming_the_account_only_if_there_is_one(app, client, inbox):
    user = register(client)
    assert forgot(client, "bob@example.com").status_code == 202
    assert forgot(client, "nobody@example.com").status_code == 202
    with app.app_context():
        from api.extensions import db

        found = db.session.scalars(events.listing(type_="password_reset_requested")).all()
        assert [(e.user_id, e.details) for e in found] == [(None, {}), (user["id"], {})]


def test_links_prune_forgets_links_a_week_past_their_expiry(app, client, inbox):
    with time_machine.travel(utcnow(), tick=False) as traveller:
        register(client)
        old = inbox.last_token("bob@example.com", "verify-email")
        traveller.shift(timedelta(days=8))  # 7 days past its 24 hours and more
        register(client, "ann", "ann@example.com")
        recent = inbox.last_token("ann@example.com", "verify-email")
        traveller.shift(timedelta(days=2))  # 1 day past its expiry
        result = app.test_cli_runner().invoke(args=["links", "prune"])
        assert result.exit_code == 0
        assert result.output == "Pruned 1 expired one-time links.\n"
        assert_error(verify(client, old), 400, "link_invalid")  # forgotten
        assert_error(verify(client, recent), 400, "link_expired")  # kept, still says why
