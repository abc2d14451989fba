"""Second factors on the demo page, as a new user meets them, in Debian's
Chromium against the real server under gunicorn: TOTP from its QR code's
secret, recovery codes, the login's second step, and passkeys on a virtual
authenticator (Chrome DevTools Protocol).

`pytest -s` prints the access token's claims after each kind of login."""

import json
import time

import pyotp
import pytest

from tests.e2e.test_browser import wait_until_true

PASSWORD = "correct horse battery"
SIGNED_IN = "Token Generated successfully!!"
LOGGED_OUT = "You are not logged in."
ASKED_FOR_A_CODE = "Password accepted: now a code from your app, or a recovery code."
WRONG_CODE = "The code is wrong, already used, or out of date."  # the API's message
NO_PASSKEYS = ["No passkeys yet."]
SCAN = "Scan the QR code, then confirm with a code from your app."
LOG_IN_AGAIN = "Log in again to change your second factor or passkeys."
LOG_IN_TO_CREATE_A_TOKEN = "Log in again to create a token."


@pytest.fixture
def page(chromium, localhost_api):
    context = chromium.new_context()  # each test its own cookies and authenticator
    page = context.new_page()
    page.goto(f"{localhost_api.url}/")
    yield page
    context.close()


class VirtualAuthenticator:
    """A platform authenticator inside the browser: its user is always
    verified, and its credentials stay on it (discoverable: resident keys)."""

    OPTIONS = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        added = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": self.OPTIONS})
        self.id = {"authenticatorId": added["authenticatorId"]}

    def credentials(self):
        return self.cdp.send("WebAuthn.getCredentials", self.id)["credentials"]

    def clear(self):
        self.cdp.send("WebAuthn.clearCredentials", self.id)


@pytest.fixture
def authenticator(page):
    return VirtualAuthenticator(page)


def result(page):
    return page.text_content("#result")


def act(page, selector):
    """Click, and the message the page shows for it (each click shows one)."""
    page.evaluate("document.getElementById('result').textContent = ''")
    page.click(selector)
    wait_until_true(page, "document.getElementById('result').textContent !== ''")
    return result(page)


def texts(page, selector):
    return [text.strip() for text in page.locator(selector).all_text_contents()]


def register_and_log_in(page, username):
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    assert act(page, "#register") == f"Registered {username}"
    assert act(page, "#get-token") == SIGNED_IN


def password_login(page, username):
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    return act(page, "#get-token")


def claims_after(page, username, login):
    """The details, and in them the access token's claims (GET /api/auth/token)."""
    assert act(page, "#show-details") == username
    claims = json.loads(page.text_content("#claims"))
    print(f"\nAccess token claims after {login}:\n{json.dumps(claims, indent=2)}")
    return claims


def events(page):
    """Recent activity, newest first: each entry's text after its time."""
    return [text.split(" · ", 1)[1] for text in texts(page, "#events li")]


def refreshed(page, username):
    """The details after a silent refresh: the access token is no longer fresh."""
    assert page.evaluate("refresh()")  # what the page does on token_expired
    claims = claims_after(page, username, "a refresh")
    assert claims["fresh"] is False
    return claims


def wrong_code(totp):
    """Six digits that no step within the accepted drift gives."""
    now = time.time()
    valid = {totp.at(now + drift) for drift in (-60, -30, 0, 30, 60)}
    return next(code for code in ("000000", "111111", "222222") if code not in valid)


def test_totp_turned_on_from_the_qr_code_then_asked_for_at_login(page):
    register_and_log_in(page, "tess")
    assert act(page, "#show-details") == "tess"
    assert page.text_content("#mfa-status").startswith("TOTP is off")
    assert page.is_hidden("#totp-off") and page.is_hidden("#new-recovery-codes")
    assert page.locator(".fresh-hint:visible").count() == 0  # a login's token: fresh

    # No second enrolment while one is on the screen; abandoned, the button is back.
    assert act(page, "#totp-start") == SCAN
    assert page.is_visible("#totp-enrol") and page.is_hidden("#totp-start")
    assert act(page, "#totp-cancel") == "TOTP stays off."
    assert page.is_hidden("#totp-enrol") and page.is_visible("#totp-start")

    # The QR code, drawn (the page's policy let the data: image in), and its secret.
    assert act(page, "#totp-start") == SCAN
    assert page.get_attribute("#totp-qr", "src").startswith("data:image/svg+xml;base64,")
    wait_until_true(page, "document.getElementById('totp-qr').naturalWidth > 0")
    totp = pyotp.TOTP(page.text_content("#totp-secret"))
    # A wrong code: said in the panel too, by the code box, and the panel stays.
    page.fill("#totp-code", wrong_code(totp))
    assert act(page, "#totp-confirm") == WRONG_CODE
    assert page.text_content("#totp-enrol .message") == WRONG_CODE
    assert act(page, "#show-details") == "tess"  # drawn again: still one enrolment
    assert page.is_visible("#totp-enrol") and page.is_hidden("#totp-start")
    # The code as the app shows it, "123 456": the box takes the space.
    spent = totp.now()
    page.fill("#totp-code", f"{spent[:3]} {spent[3:]}")
    assert page.input_value("#totp-code") == f"{spent[:3]} {spent[3:]}"
    assert act(page, "#totp-confirm") == (
        "TOTP is on. Keep the recovery codes: they are shown only this once."
    )
    first_codes = texts(page, "#recovery-codes li")
    assert len(set(first_codes)) == 10
    assert page.is_hidden("#totp-enrol") and page.get_attribute("#totp-qr", "src") is None
    assert page.text_content("#mfa-status").startswith("TOTP is on")
    assert page.is_hidden("#totp-start")
    assert events(page)[:2] == ["mfa_enabled · totp · 127.0.0.1", "mfa_failed · totp · 127.0.0.1"]

    # A new set of recovery codes, once; the old set is refused below.
    assert act(page, "#new-recovery-codes") == "New recovery codes: the old ones no longer work."
    codes = texts(page, "#recovery-codes li")
    assert len(set(codes)) == 10 and not set(codes) & set(first_codes)

    # The password alone no longer logs in: a code box, and a wrong code stays out.
    assert act(page, "#logout") == "Logged out"
    assert page.input_value("#password") == "" and page.input_value("#username") == "tess"
    assert page.is_hidden("#recovery") and texts(page, "#recovery-codes li") == []
    assert page.is_hidden("#mfa")
    assert password_login(page, "tess") == ASKED_FOR_A_CODE
    assert page.is_visible("#mfa")
    page.fill("#mfa-code", wrong_code(totp))
    assert act(page, "#verify") == WRONG_CODE
    assert page.is_visible("#mfa")
    assert act(page, "#show-details") == LOGGED_OUT
    page.fill("#mfa-code", spent)  # the confirmation's code: its step is used
    assert act(page, "#verify") == WRONG_CODE
    # The next step's code (one step of drift is allowed).
    page.fill("#mfa-code", totp.at(time.time() + 30))
    assert act(page, "#verify") == SIGNED_IN
    assert page.is_hidden("#mfa")
    claims = claims_after(page, "tess", "a password and a TOTP code")
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert events(page)[:2] == [
        "login · password+totp · 127.0.0.1",
        "mfa_failed · totp · 127.0.0.1",
    ]

    # Turned off with a recovery code of the new set (the old set's is refused).
    assert act(page, "#totp-off").startswith("Turning TOTP off takes a code")
    page.fill("#totp-off-code", first_codes[0])
    assert act(page, "#totp-off-confirm") == WRONG_CODE
    page.fill("#totp-off-code", codes[0])
    assert act(page, "#totp-off-confirm") == "TOTP is off."
    assert page.is_hidden("#totp-disable")
    assert page.text_content("#mfa-status").startswith("TOTP is off")
    assert texts(page, "#events .type")[0] == "mfa_disabled"
    assert act(page, "#logout") == "Logged out"
    assert password_login(page, "tess") == SIGNED_IN
    assert claims_after(page, "tess", "a password alone")["amr"] == ["pwd"]

    # Refreshed, the token changes no factor: the page says so instead of
    # opening an input the API would refuse.
    refreshed(page, "tess")
    assert texts(page, ".fresh-hint:visible") == [LOG_IN_AGAIN] * 2 + [LOG_IN_TO_CREATE_A_TOKEN]
    for control in ("#totp-start", "#passkey-name", "#add-passkey-button"):
        assert page.is_disabled(control), control


def test_a_passkey_added_then_used_alone_to_log_in(page, authenticator, localhost_api):
    register_and_log_in(page, "pia")
    assert act(page, "#show-details") == "pia"
    assert texts(page, "#passkeys li") == NO_PASSKEYS
    assert page.is_hidden("#passkeys-ip-hint")  # localhost: a domain name
    page.fill("#passkey-name", "This laptop")
    assert act(page, "#add-passkey-button") == "Passkey “This laptop” added."
    (key,) = page.locator("#passkeys li").all()
    assert key.locator(".name").text_content() == "This laptop"
    assert "never used" in key.text_content()
    assert len(authenticator.credentials()) == 1
    assert texts(page, "#events .type")[0] == "passkey_added"

    # No username, no password: the authenticator's key for this site.
    assert act(page, "#logout") == "Logged out"
    page.fill("#username", "")
    page.fill("#password", "")
    assert act(page, "#passkey-login") == SIGNED_IN
    claims = claims_after(page, "pia", "a passkey")
    assert "user" in claims["amr"] and {"hwk", "swk"} & set(claims["amr"])
    assert events(page)[0] == "login · passkey · 127.0.0.1"
    (key,) = page.locator("#passkeys li").all()
    assert "last used" in key.text_content() and "never used" not in key.text_content()

    # Removed: the authenticator still holds the key, which the API now refuses.
    key.get_by_role("button", name="Remove").click()
    wait_until_true(page, "document.getElementById('result').textContent === 'Passkey removed.'")
    assert texts(page, "#passkeys li") == NO_PASSKEYS
    assert texts(page, "#events .type")[0] == "passkey_removed"
    assert act(page, "#logout") == "Logged out"
    assert act(page, "#passkey-login") not in (SIGNED_IN, "")
    assert localhost_api.wait_for_access("/api/auth/cookie/passkey/login", 400)
    assert act(page, "#show-details") == LOGGED_OUT

    # The same in a browser without WebAuthn Level 3's JSON helpers: the
    # page's own base64url conversions (no page load since: they stay deleted).
    authenticator.clear()
    page.evaluate(
        "delete PublicKeyCredential.parseCreationOptionsFromJSON;"
        "delete PublicKeyCredential.parseRequestOptionsFromJSON;"
        "delete PublicKeyCredential.prototype.toJSON"
    )
    assert page.evaluate(
        "!PublicKeyCredential.parseCreationOptionsFromJSON"
        " && !PublicKeyCredential.parseRequestOptionsFromJSON"
        " && !('toJSON' in PublicKeyCredential.prototype)"
    )
    assert password_login(page, "pia") == SIGNED_IN
    assert act(page, "#show-details") == "pia"
    page.fill("#passkey-name", "Old browser")
    assert act(page, "#add-passkey-button") == "Passkey “Old browser” added."
    assert texts(page, "#passkeys .name") == ["Old browser"]
    assert act(page, "#logout") == "Logged out"
    assert act(page, "#passkey-login") == SIGNED_IN
    assert act(page, "#show-details") == "pia"

    # Refreshed: no passkey is removed nor added until the next login.
    refreshed(page, "pia")
    remove = page.locator("#passkeys li").get_by_role("button", name="Remove")
    assert remove.is_disabled() and page.is_disabled("#add-passkey-button")
    assert texts(page, "#passkeys-section .fresh-hint") == [LOG_IN_AGAIN]


def test_on_an_ip_address_the_page_sends_passkeys_to_localhost(page, localhost_api):
    port = localhost_api.url.rsplit(":", 1)[1]
    page.goto(f"http://127.0.0.1:{port}/")
    hint = f"Passkeys need a domain name: open this page at http://localhost:{port}/ instead."
    assert page.text_content("#passkeys-ip-hint") == hint
    assert page.get_attribute("#passkeys-ip-hint a", "href") == f"http://localhost:{port}/"
    assert act(page, "#passkey-login") == hint  # not Chromium's "This is an invalid domain."
