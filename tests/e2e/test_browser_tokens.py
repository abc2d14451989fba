"""Personal access tokens on the demo page, as a new user meets them, in
Debian's Chromium against the real server under gunicorn: a token made on the
page, shown once, used from plain HTTP as a script would (curl's view), and
deleted on the page; and the new login the page asks for when the API wants
a fresher one."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.e2e.test_browser import wait_until_true
from tests.e2e.test_browser_mfa import (
    PASSWORD,
    SIGNED_IN,
    VirtualAuthenticator,
    act,
    password_login,
    refreshed,
    register_and_log_in,
    texts,
)

SHOWN_ONCE = "Copy this token now: it won't be shown again."
NO_TOKENS = ["No tokens yet."]
LOG_IN_TO_CREATE = "Log in again to create a token."
STEP_UP = (
    "Log in again with your second factor (a code from your app, or a passkey) to create a token."
)
PAT = re.compile(r"pat_[0-9A-Za-z]{36}")


def created(name):
    return f"Token “{name}” created: copy it now, it won't be shown again."


@pytest.fixture
def page(chromium, localhost_api):
    context = chromium.new_context()
    # The Copy button's clipboard, read back by the test.
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=localhost_api.url)
    page = context.new_page()
    page.goto(f"{localhost_api.url}/")
    yield page
    context.close()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def as_a_script(localhost_api, method, path, token, **kwargs):
    """What curl sees: plain HTTP with the token, no browser, no cookies."""
    url = f"{localhost_api.url}{path}"
    return requests.request(method, url, headers=bearer(token), timeout=10, **kwargs)


def click(page, locator):
    """act() for a locator (a list item's button): the message the click shows."""
    page.evaluate("document.getElementById('result').textContent = ''")
    locator.click()
    wait_until_true(page, "document.getElementById('result').textContent !== ''")
    return page.text_content("#result")


def fill_token_form(page, name, scopes, days):
    page.fill("#token-name", name)
    for scope in scopes:
        page.check(f"#token-scopes input[value='{scope}']")
    page.fill("#token-days", str(days))


def the_token_item(page):
    (item,) = page.locator("#tokens li").all()
    return item


def test_a_token_made_on_the_page_reads_notes_and_is_refused_for_writing(page, localhost_api):
    register_and_log_in(page, "tom")
    assert act(page, "#show-details") == "tom"
    assert texts(page, "#tokens li") == NO_TOKENS
    assert page.is_hidden("#token-shown")

    # No scope ticked: said by the page, nothing sent.
    page.fill("#token-name", "notes reader")
    assert act(page, "#create-token") == "Pick at least one scope."
    assert page.text_content("#new-token .message") == "Pick at least one scope."

    fill_token_form(page, "notes reader", ["notes:read"], 7)
    assert act(page, "#create-token") == created("notes reader")
    token = page.input_value("#token-value")
    assert PAT.fullmatch(token), token
    assert page.is_visible("#token-shown")
    assert page.text_content("#token-shown .warning") == SHOWN_ONCE
    # The form is empty again, for another token.
    assert page.input_value("#token-name") == "" and page.input_value("#token-days") == "30"
    assert page.locator("#token-scopes input:checked").count() == 0
    assert page.text_content("#new-token .message") == ""

    item = the_token_item(page)
    assert item.locator(".name").text_content() == "notes reader"
    assert item.locator(".scope").text_content() == "notes:read"
    assert "never used" in item.text_content()
    created_at, expires_at = (
        datetime.fromisoformat(item.locator("time").nth(i).get_attribute("datetime"))
        for i in (0, 1)
    )
    assert abs(expires_at - created_at - timedelta(days=7)) < timedelta(minutes=1)
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)

    assert act(page, "#copy-token") == "Token copied to the clipboard."
    assert page.evaluate("navigator.clipboard.readText()") == token

    # From plain HTTP, as curl would: it reads notes, and only that.
    notes = as_a_script(localhost_api, "GET", "/api/notes", token)
    assert notes.status_code == 200, notes.text
    assert notes.json() == []
    written = as_a_script(
        localhost_api, "POST", "/api/notes", token, json={"title": "t", "body": "b"}
    )
    assert written.status_code == 403, written.text
    assert written.json()["error"] == "insufficient_scope"
    challenge = written.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="notes:write"' in challenge
    me = as_a_script(localhost_api, "GET", "/api/me", token)  # profile:read was not ticked
    assert me.status_code == 403 and me.json()["error"] == "insufficient_scope"

    # Shown that once: not after a reload, nor anywhere in the list.
    page.reload()
    assert act(page, "#show-details") == "tom"
    assert page.is_hidden("#token-shown") and page.input_value("#token-value") == ""
    assert token not in page.content()
    item = the_token_item(page)
    assert "last used" in item.text_content() and "never used" not in item.text_content()
    assert texts(page, "#events .type")[0] == "token_created"

    # Deleting asks first: dismissed, the token stays and still works.
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    delete = item.get_by_role("button", name="Delete")
    assert click(page, delete) == "The token “notes reader” stays."
    assert asked == ["Delete the token “notes reader”? Whatever uses it is refused at once."]
    assert as_a_script(localhost_api, "GET", "/api/notes", token).status_code == 200
    # Accepted: gone from the list, and refused from the next request on.
    page.once("dialog", lambda dialog: dialog.accept())
    assert click(page, delete) == "Token “notes reader” deleted."
    assert texts(page, "#tokens li") == NO_TOKENS
    assert texts(page, "#events .type")[0] == "token_revoked"
    refused = as_a_script(localhost_api, "GET", "/api/notes", token)
    assert refused.status_code == 401, refused.text
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_shown_token_leaves_with_done_or_its_deletion(page, localhost_api):
    register_and_log_in(page, "tina")
    assert act(page, "#show-details") == "tina"
    fill_token_form(page, "backup", ["notes:read", "notes:write", "profile:read"], 365)
    assert act(page, "#create-token") == created("backup")
    token = page.input_value("#token-value")
    assert the_token_item(page).locator(".scope").text_content() == (
        "profile:read notes:read notes:write"
    )
    assert as_a_script(localhost_api, "GET", "/api/me", token).json()["username"] == "tina"
    assert act(page, "#token-done") == "The token is off the page: it cannot be shown again."
    assert page.is_hidden("#token-shown") and token not in page.content()

    # A token deleted while on the screen goes off the screen too.
    fill_token_form(page, "short-lived", ["notes:read"], 1)
    assert act(page, "#create-token") == created("short-lived")
    assert sorted(texts(page, "#tokens .name")) == ["backup", "short-lived"]
    item = page.locator("#tokens li", has_text="short-lived")
    page.once("dialog", lambda dialog: dialog.accept())
    assert click(page, item.get_by_role("button", name="Delete")) == "Token “short-lived” deleted."
    assert page.is_hidden("#token-shown") and page.input_value("#token-value") == ""
    assert texts(page, "#tokens .name") == ["backup"]

    # Logging out takes the list and any shown token off the page.
    fill_token_form(page, "another", ["notes:read"], 1)
    assert act(page, "#create-token") == created("another")
    assert act(page, "#logout") == "Logged out"
    assert page.is_hidden("#details") and page.input_value("#token-value") == ""
    assert texts(page, "#tokens li") == []


def test_the_api_message_is_shown_for_a_refused_body(page, localhost_api):
    register_and_log_in(page, "ted")
    assert act(page, "#show-details") == "ted"
    fill_token_form(page, "too long", ["notes:read"], 366)
    body = {"name": "too long", "scopes": ["notes:read"], "expires_in_days": 366}
    login = requests.post(
        f"{localhost_api.url}/api/auth/login",
        json={"username": "ted", "password": PASSWORD},
        timeout=10,
    ).json()
    api = requests.post(
        f"{localhost_api.url}/api/me/tokens",
        json=body,
        headers=bearer(login["access_token"]),
        timeout=10,
    )
    assert api.status_code == 422 and api.json()["error"] == "validation_error"
    # The browser's own check (max=365) would stop the form: lifted, the API judges.
    page.evaluate("document.getElementById('token-days').removeAttribute('max')")
    assert act(page, "#create-token") == api.json()["message"]
    assert page.text_content("#new-token .message") == api.json()["message"]
    assert page.is_hidden("#token-shown") and texts(page, "#tokens li") == NO_TOKENS


def test_after_a_refresh_the_page_asks_for_a_new_login(page, localhost_api):
    register_and_log_in(page, "rae")
    assert act(page, "#show-details") == "rae"
    assert page.is_hidden("#tokens-section .fresh-hint")
    refreshed(page, "rae")
    assert texts(page, "#tokens-section .fresh-hint") == [LOG_IN_TO_CREATE]
    for control in ("#token-name", "#token-days", "#create-token"):
        assert page.is_disabled(control), control

    # The API is the judge: a page whose view of freshness is out of date
    # (a refresh in another tab) is refused, and says what to do.
    page.evaluate("document.querySelectorAll('#new-token .needs-fresh')"
                  ".forEach((node) => { node.disabled = false; })")  # fmt: skip
    fill_token_form(page, "late", ["notes:read"], 1)
    assert act(page, "#create-token") == LOG_IN_TO_CREATE
    assert page.text_content("#new-token .message") == LOG_IN_TO_CREATE
    assert page.is_disabled("#create-token")
    assert page.is_hidden("#token-shown") and texts(page, "#tokens li") == NO_TOKENS

    assert password_login(page, "rae") == SIGNED_IN
    assert act(page, "#show-details") == "rae"
    fill_token_form(page, "on time", ["notes:read"], 1)
    assert act(page, "#create-token") == created("on time")


def test_with_a_passkey_a_token_needs_a_login_with_it(page, localhost_api):
    authenticator = VirtualAuthenticator(page)
    register_and_log_in(page, "pat")
    assert act(page, "#show-details") == "pat"
    page.fill("#passkey-name", "This laptop")
    assert act(page, "#add-passkey-button") == "Passkey “This laptop” added."
    assert len(authenticator.credentials()) == 1

    # A password alone no longer makes a token for this account: RFC 9470's
    # step-up (403, insufficient_user_authentication), said as a new login.
    assert act(page, "#logout") == "Logged out"
    assert password_login(page, "pat") == SIGNED_IN
    assert act(page, "#show-details") == "pat"
    fill_token_form(page, "ci", ["notes:read"], 30)
    assert act(page, "#create-token") == STEP_UP
    assert page.text_content("#new-token .message") == STEP_UP
    assert page.is_hidden("#token-shown") and texts(page, "#tokens li") == NO_TOKENS

    assert act(page, "#logout") == "Logged out"
    assert act(page, "#passkey-login") == SIGNED_IN
    assert act(page, "#show-details") == "pat"
    fill_token_form(page, "ci", ["notes:read"], 30)
    assert act(page, "#create-token") == created("ci")
    token = page.input_value("#token-value")
    assert as_a_script(localhost_api, "GET", "/api/notes", token).status_code == 200
