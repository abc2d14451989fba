"""The demo page in a real browser: Debian's Chromium driven by Playwright,
against the real server under gunicorn."""

import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import requests

from deploy.processes import ROOT, Gunicorn, free_port, server_env, wait_for_port
from tests.mail_support import SmtpSink, text_of

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = ROOT / "artifacts" / "demo.png"
# Without the background-networking flags Chromium keeps dialling out, which
# this closed network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def static_site(directory, port):
    """A plain static server: another origin for the page, or an attacker's."""
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for_port(port)
    return process


@pytest.fixture(scope="module")
def origins(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is not installed (make test installs it)")
        pytest.skip("Debian's chromium is not installed: apt-get install chromium")
    root = tmp_path_factory.mktemp("browser")
    spa_port, attacker_port = free_port(), free_port()
    spa = f"http://127.0.0.1:{spa_port}"
    mail = SmtpSink().start()  # a real SMTP server: the mails a new user gets
    env = server_env(
        root,
        JWT_COOKIE_SECURE="false",
        JWT_ACCESS_TOKEN_EXPIRES="3",  # short, to see the silent refresh
        CORS_ORIGINS=spa,
        RATELIMIT_ENABLED="false",
        MAIL_URL=mail.url,
    )
    # The mails' links open the page served by the API itself.
    env["APP_URL"] = f"http://127.0.0.1:{env['PORT']}/"
    api = Gunicorn(env, root / "gunicorn.log").start()
    # The same page, served from a second origin, as an SPA on another host would be.
    site = root / "site"
    (site / "static").mkdir(parents=True)
    for name in ("index.html", "demo.js", "demo.css"):
        target = site / name if name == "index.html" else site / "static" / name
        shutil.copy(ROOT / "api" / "static" / name, target)
    attacker = root / "attacker"
    attacker.mkdir()
    (attacker / "index.html").write_text("<!doctype html><title>Win a prize</title>")
    servers = [static_site(site, spa_port), static_site(attacker, attacker_port)]
    yield {"api": api, "spa": spa, "attacker": f"http://127.0.0.1:{attacker_port}", "mail": mail}
    for server in servers:
        server.terminate()
        server.wait(timeout=10)
    api.stop()
    mail.stop()


@pytest.fixture
def page(origins):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        # The demo page's Content-Security-Policy refuses eval, which
        # Playwright's wait_for_function polls with: poll from outside instead.
        page.wait_for_function = lambda expression, arg=None, **_: wait_until_true(
            page, expression, arg
        )
        yield page
        context.close()
        browser.close()


def wait_until_true(page, expression, arg=None, timeout=15):
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"never true: {expression}"
        page.wait_for_timeout(25)


def log_in(page, url, username):
    page.goto(url)
    register_and_log_in(page, username)


def register_and_log_in(page, username):
    page.fill("#username", username)
    page.fill("#password", "correct horse battery")
    page.click("#register")
    page.wait_for_function("document.getElementById('result').textContent.startsWith('Registered')")
    page.click("#get-token")
    page.wait_for_function(
        "document.getElementById('result').textContent === 'Token Generated successfully!!'"
    )


def result(page):
    return page.text_content("#result")


LOGGED_OUT = "You are not logged in."


def test_demo_flow_on_the_same_origin(page, origins):
    api = origins["api"].url
    log_in(page, f"{api}/", "alice")
    page.wait_for_function(
        "document.getElementById('countdown').textContent.startsWith('Access token expires in')"
    )
    page.click("#show-details")
    page.wait_for_selector("#details:not([hidden])")
    assert '"username": "alice"' in page.text_content("#user")
    assert '"type": "access"' in page.text_content("#claims")
    assert result(page) == "alice"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.click("#logout")
    page.wait_for_function("document.getElementById('result').textContent === 'Logged out'")
    page.click("#show-details")
    page.wait_for_function(f"document.getElementById('result').textContent === '{LOGGED_OUT}'")


def test_tokens_are_out_of_reach_of_page_scripts(page, origins):
    log_in(page, f"{origins['api'].url}/", "bob")
    cookies = page.evaluate("document.cookie")
    assert "csrf_access_token=" in cookies  # readable, to echo in X-CSRF-TOKEN
    assert "access_token_cookie" not in cookies  # httpOnly
    assert "refresh_token_cookie" not in cookies


def test_silent_refresh_when_the_access_token_expires(page, origins):
    api = origins["api"]
    log_in(page, f"{api.url}/", "carol")
    page.reload()  # the csrf values must outlive a reload of the page
    before = len(api.access_records("/api/auth/refresh", 200))
    page.wait_for_timeout(3500)  # the access token lives 3 s
    page.click("#show-details")
    page.wait_for_selector("#details:not([hidden])")
    assert result(page) == "carol"
    # The page answered token_expired by refreshing once, then called again;
    # the second call of "Show details" shared that one refresh.
    assert api.wait_for_access("/api/auth/token", 200)
    page.wait_for_timeout(300)
    assert len(api.access_records("/api/auth/refresh", 200)) == before + 1


def test_a_logged_out_visitor_sees_no_error(page, origins):
    page.goto(f"{origins['api'].url}/")
    assert result(page) == LOGGED_OUT  # on load, with no request
    register_and_log_in(page, "grace")
    page.click("#logout")
    page.wait_for_function("document.getElementById('result').textContent === 'Logged out'")
    for button in ("#show-details", "#logout"):
        page.evaluate("document.getElementById('result').textContent = ''")
        page.click(button)
        page.wait_for_function(f"document.getElementById('result').textContent === '{LOGGED_OUT}'")
    assert "No token" not in page.text_content("body")


def test_a_new_login_replaces_the_details_shown(page, origins):
    log_in(page, f"{origins['api'].url}/", "heidi")
    page.click("#show-details")
    page.wait_for_selector("#details:not([hidden])")
    assert '"username": "heidi"' in page.text_content("#user")
    register_and_log_in(page, "ivan")  # another user, on the same page
    assert page.is_hidden("#details")
    assert "heidi" not in page.text_content("#details")
    page.click("#show-details")
    page.wait_for_function("document.getElementById('result').textContent === 'ivan'")
    assert '"username": "ivan"' in page.text_content("#user")
    assert "heidi" not in page.text_content("#details")


def test_the_countdown_survives_a_reload(page, origins):
    log_in(page, f"{origins['api'].url}/", "judy")
    page.reload()  # the page asks GET /api/auth/token for the exp
    page.wait_for_function(
        "document.getElementById('countdown').textContent.startsWith('Access token expire')"
    )
    assert result(page) == "None"  # logged in: neither an error nor the logged-out text


def test_the_demo_page_loads_nothing_missing_and_links_to_the_docs(page, origins):
    server, api = origins["api"], origins["api"].url
    icons = len(server.access_records("/favicon.ico"))
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))
    page.goto(f"{api}/")
    page.wait_for_load_state("networkidle")
    # Chromium asks for the icon itself (no page event): the server's log tells.
    assert len(server.wait_for_access("/favicon.ico", count=icons + 1, timeout=1)) == icons
    assert errors == []
    docs = page.get_by_role("link", name="API docs")
    assert docs.is_visible()
    docs.click()
    page.wait_for_url(f"{api}/api/docs")
    page.locator("#operations-login-post_api_auth_login").wait_for()
    # Served from another origin, the page links to the API's docs.
    page.goto(f"{origins['spa']}/?api={api}")
    assert page.get_attribute("#docs-link", "href") == f"{api}/api/docs"


def test_demo_flow_from_another_origin_through_cors(page, origins):
    api = origins["api"].url
    log_in(page, f"{origins['spa']}/?api={api}", "dave")
    page.click("#show-details")
    page.wait_for_selector("#details:not([hidden])")
    assert '"username": "dave"' in page.text_content("#user")
    page.click("#logout")
    page.wait_for_function("document.getElementById('result').textContent === 'Logged out'")


def test_forged_cross_site_post_without_the_csrf_header_is_refused(page, origins):
    api = origins["api"].url
    log_in(page, f"{api}/", "erin")
    attacker = page.context.new_page()
    attacker.goto(origins["attacker"])
    # The browser sends the victim's cookies; it cannot add the csrf header.
    attacker.evaluate(
        "url => fetch(url, {method: 'POST', credentials: 'include', mode: 'no-cors'})",
        f"{api}/api/auth/logout",
    )
    refused = origins["api"].wait_for_access("/api/auth/logout", 403)
    assert [(r["method"], r["status"]) for r in refused] == [("POST", 403)]
    page.click("#show-details")  # the victim's session is untouched
    page.wait_for_selector("#details:not([hidden])")
    assert result(page) == "erin"


def test_api_docs_render_the_operations_without_console_errors(page, origins):
    api = origins["api"].url
    errors = []

    def console(message):
        # Chromium's own /favicon.ico request included: the API answers it 204.
        if message.type == "error":
            errors.append(f"{message.text} ({message.location['url']})")

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status}: {r.url}"))
    page.goto(f"{api}/api/docs")
    login = page.locator("#operations-login-post_api_auth_login")
    login.wait_for()
    assert "/api/auth/login" in login.text_content()
    spec = requests.get(f"{api}/api/openapi.json", timeout=10).json()
    methods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
    operations = sum(len(methods & set(path)) for path in spec["paths"].values())
    assert page.locator(".opblock").count() == operations  # all of them, not only the first
    info = page.locator(".information-container .info")
    for scheme in ("bearerAuth", "cookieAuth", "refreshCookieAuth", "csrfHeader"):
        assert scheme in info.text_content()  # the description, rendered
    assert info.locator("a[href='/']").count() == 1  # the link to the demo page
    page.wait_for_load_state("networkidle")
    assert errors == []


def test_api_docs_work_offline_and_call_login(page, origins):
    api = origins["api"].url
    requests.post(
        f"{api}/api/auth/register",
        json={"username": "frank", "password": "correct horse battery"},
        timeout=10,
    )
    hosts = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    page.goto(f"{api}/api/docs")
    login = page.locator("#operations-login-post_api_auth_login")
    login.locator(".opblock-summary").click()
    login.locator("button.try-out__btn").click()
    body = '{"username": "frank", "password": "correct horse battery"}'
    login.locator("textarea.body-param__text").fill(body)
    login.locator("button.execute").click()
    status = login.locator(".live-responses-table tbody .response-col_status")
    status.first.wait_for()
    assert status.first.text_content().strip().startswith("200")
    assert "access_token" in login.locator(".live-responses-table").text_content()
    assert hosts == {api.split("/")[2]}  # nothing fetched from anywhere else


def texts(page, selector):
    return [text.strip() for text in page.locator(selector).all_text_contents()]


def test_details_show_the_recent_activity_and_this_session(page, origins):
    page.goto(f"{origins['api'].url}/")
    page.fill("#username", "kate")
    page.fill("#password", "correct horse battery")
    page.click("#register")
    page.wait_for_function("document.getElementById('result').textContent === 'Registered kate'")
    page.fill("#password", "not the password")
    page.click("#get-token")
    page.wait_for_function(
        "document.getElementById('result').textContent === 'Wrong username or password.'"
    )
    page.fill("#password", "correct horse battery")
    page.click("#get-token")
    page.wait_for_function(
        "document.getElementById('result').textContent === 'Token Generated successfully!!'"
    )
    page.click("#show-details")
    page.wait_for_selector("#details:not([hidden])")
    assert result(page) == "kate"
    # Recent activity, newest first: the login, then the failed attempt and why.
    assert texts(page, "#events .type") == ["login", "login_failed"]
    login, failed = page.locator("#events li").all()
    assert "127.0.0.1" in login.text_content()
    assert failed.locator(".reason").text_content().strip(" ·") == "wrong_password"
    assert login.locator(".reason").count() == 0
    # One session, this one, with its end.
    sessions = page.locator("#sessions li")
    assert sessions.count() == 1
    session = sessions.first.text_content()
    assert "(this one)" in session and " · ends " in session and "127.0.0.1" in session
    assert "HeadlessChrome" in session  # its user agent
    assert sessions.first.get_by_role("button", name="Revoke").count() == 0
    ends = sessions.first.locator("time").nth(1).get_attribute("datetime")
    assert datetime.fromisoformat(ends) > datetime.now(UTC)
    # Cleared with the rest of the details, by a new login.
    register_and_log_in(page, "kate-again")
    assert page.is_hidden("#details")
    assert texts(page, "#events li") == [] and texts(page, "#sessions li") == []


@pytest.mark.parametrize("served", ["same origin", "another origin"])
def test_revoking_another_session_from_the_details(page, origins, served):
    api = origins["api"].url
    url = f"{api}/" if served == "same origin" else f"{origins['spa']}/?api={api}"
    username = "leo" if served == "same origin" else "mia"
    log_in(page, url, username)
    page.click("#show-details")
    page.wait_for_selector("#details:not([hidden])")
    assert page.locator("#sessions li").count() == 1
    # Another login, elsewhere: a session the page learns of when asked again.
    other = requests.post(
        f"{api}/api/auth/login",
        json={"username": username, "password": "correct horse battery"},
        headers={"User-Agent": "other-device/1.0"},
        timeout=10,
    ).json()
    page.click("#show-details")
    page.wait_for_function("document.querySelectorAll('#sessions li').length === 2")
    elsewhere = page.locator("#sessions li", has_text="other-device/1.0")
    assert "(this one)" not in elsewhere.text_content()
    assert "(this one)" in page.locator("#sessions li.current").text_content()
    assert page.get_by_role("button", name="Revoke").count() == 1  # not on this one
    elsewhere.get_by_role("button", name="Revoke").click()
    page.wait_for_function("document.getElementById('result').textContent === 'Session revoked'")
    page.wait_for_function("document.querySelectorAll('#sessions li').length === 1")
    assert "(this one)" in page.text_content("#sessions li")
    assert "other-device/1.0" not in page.text_content("#sessions")
    assert texts(page, "#events .type")[0] == "session_revoked"
    refused = requests.post(
        f"{api}/api/auth/refresh",
        headers={"Authorization": f"Bearer {other['refresh_token']}"},
        timeout=10,
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "token_revoked"
    page.click("#show-details")  # the page's own session goes on
    page.wait_for_function(f"document.getElementById('result').textContent === '{username}'")


# Email, verification and recovery, as a new user meets them: the mails come
# through the SMTP sink, and their links are opened in the page.

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new horse battery"
ASK_FOR_A_VERIFICATION = "Log in and click “Resend verification” for a new mail."
ASK_FOR_A_RESET = "Ask for a new mail with “Forgot password?”."


def mail_links(origins, address, kind, count=1):
    """The links of `kind` (verify-email, reset-password) mailed to `address`,
    oldest first, once there are `count` (the server delivers in the background)."""
    sink = origins["mail"]

    def links():
        return [
            link
            for message in sink.messages
            if message["To"] == address
            for link in re.findall(r"https?://\S+", text_of(message))
            if f"/{kind}?token=" in link
        ]

    with sink.changed:
        sink.changed.wait_for(lambda: len(links()) >= count, timeout=15)
        found = links()
    assert len(found) == count, f"{len(found)} {kind} links mailed to {address}"
    return found


def wait_for_result(page, text):
    page.wait_for_function(
        "text => document.getElementById('result').textContent === text", arg=text
    )


def wait_for_result_ending(page, text):
    page.wait_for_function(
        "text => document.getElementById('result').textContent.endsWith(text)", arg=text
    )


def register_with_email(page, origins, username):
    address = f"{username}@example.org"
    page.goto(f"{origins['api'].url}/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.fill("#email", address)
    page.click("#register")
    wait_for_result(page, f"Registered {username}: check {address} for the verification link")
    return address


def log_in_as(page, username, password=PASSWORD):
    page.evaluate("document.getElementById('result').textContent = ''")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#get-token")
    page.wait_for_function("document.getElementById('result').textContent !== ''")


def show_details(page):
    page.evaluate("document.getElementById('details').hidden = true")
    page.click("#show-details")
    page.wait_for_selector("#details:not([hidden])")


def assert_token_dropped(page, link):
    """The link's token is neither in the address bar nor kept by the page."""
    token = link.split("token=", 1)[1]
    assert "token=" not in page.url
    page_and_storage = (
        "[document.documentElement.outerHTML, {...sessionStorage}, {...localStorage}]"
    )
    kept = page.evaluate(f"JSON.stringify({page_and_storage})")
    assert token not in kept


def test_a_new_user_verifies_the_email_from_the_mail(page, origins):
    api = origins["api"].url
    address = register_with_email(page, origins, "nina")
    (link,) = mail_links(origins, address, "verify-email")
    assert link.startswith(f"{api}/verify-email?token=")  # APP_URL: this page
    referers = []
    page.on("request", lambda request: referers.append(request.headers.get("referer")))
    page.goto(link)
    wait_for_result(page, f"Email {address} verified.")
    assert page.url == f"{api}/"
    assert_token_dropped(page, link)
    assert len(referers) >= 3 and not any(referers)  # the page, its files, the POST
    page.go_back()  # the register page: the link's entry was replaced
    assert page.url == f"{api}/"
    # The details say so, with no resend to offer.
    log_in_as(page, "nina")
    show_details(page)
    assert page.text_content("#email-status") == f"{address} (verified)"
    assert page.is_hidden("#resend-verification")
    # The same link again: used, refused, and the page says what to do.
    page.goto(link)
    wait_for_result_ending(page, ASK_FOR_A_VERIFICATION)
    assert len(origins["api"].wait_for_access("/api/auth/email/verify", 400)) == 1
    assert page.url == f"{api}/"


def test_forgot_password_then_a_reset_from_the_mail_and_a_login(page, origins):
    api = origins["api"].url
    address = register_with_email(page, origins, "olga")
    page.click("#forgot-link")
    page.fill("#forgot-email", address)
    page.click("#send-reset")
    # What an address with no account gets too: the page tells no more.
    unknown = requests.post(
        f"{api}/api/auth/password/forgot", json={"email": "nobody@example.org"}, timeout=10
    )
    assert unknown.status_code == 202
    wait_for_result(page, unknown.json()["message"])
    (link,) = mail_links(origins, address, "reset-password")
    assert link.startswith(f"{api}/reset-password?token=")
    page.goto(link)
    page.wait_for_selector("#reset:not([hidden])")
    assert result(page) == "Choose a new password."
    assert page.url == f"{api}/"
    assert_token_dropped(page, link)
    page.fill("#new-password", NEW_PASSWORD)
    page.click("#set-password")
    wait_for_result(page, "Password changed; log in with the new password.")
    assert page.is_hidden("#reset")
    log_in_as(page, "olga")  # the old password is gone
    wait_for_result(page, "Wrong username or password.")
    log_in_as(page, "olga", NEW_PASSWORD)
    wait_for_result(page, "Token Generated successfully!!")
    show_details(page)
    assert page.text_content("#email-status") == f"{address} (verified)"  # the reset proved it
    assert "password_reset" in texts(page, "#events .type")
    # The used link: refused with the API's message, and the way to a new one.
    page.goto(link)
    page.fill("#new-password", "yet another horse battery")
    page.click("#set-password")
    wait_for_result_ending(page, ASK_FOR_A_RESET)
    assert result(page) != ASK_FOR_A_RESET  # the API's link_invalid message before it
    assert page.is_visible("#forgot")
    assert len(origins["api"].wait_for_access("/api/auth/password/reset", 400)) == 1


def test_the_details_resend_the_verification_and_change_the_email(page, origins):
    address = register_with_email(page, origins, "pablo")
    log_in_as(page, "pablo")
    show_details(page)
    assert page.text_content("#email-status") == f"{address} (not verified)"
    page.click("#resend-verification")
    wait_for_result(page, "A new verification link is on its way.")
    first, second = mail_links(origins, address, "verify-email", count=2)
    # In another tab: the first link was superseded by the resend; the second verifies.
    other = page.context.new_page()
    other.goto(first)
    wait_for_result_ending(other, ASK_FOR_A_VERIFICATION)
    other.goto(second)
    wait_for_result(other, f"Email {address} verified.")
    other.close()
    # This tab's details are older: its resend meets 409 nothing_to_verify, shown.
    page.click("#resend-verification")
    assert origins["api"].wait_for_access("/api/me/email/verification", 409)
    page.wait_for_function(
        "done => !['', done].includes(document.getElementById('result').textContent)",
        arg="A new verification link is on its way.",
    )
    # A fresh login (its access token lives 3 s) changes the address: the
    # link goes to the new one, which becomes the account's once opened.
    log_in_as(page, "pablo")
    show_details(page)
    page.fill("#new-email", "pablo.new@example.org")
    page.click("#change-email-button")
    wait_for_result(page, "Open the link mailed to the new address to make it the account's.")
    (link,) = mail_links(origins, "pablo.new@example.org", "verify-email")
    show_details(page)
    assert page.text_content("#email-status") == f"{address} (verified)"
    page.goto(link)
    wait_for_result(page, "Email pablo.new@example.org verified.")
    # Once the access token has been refreshed it is no longer fresh.
    page.wait_for_timeout(3500)
    show_details(page)
    assert page.text_content("#email-status") == "pablo.new@example.org (verified)"
    page.fill("#new-email", "pablo.third@example.org")
    page.click("#change-email-button")
    wait_for_result(page, "Log in again to change your email.")
    assert origins["api"].wait_for_access("/api/me/email", 401)


def test_a_bad_link_or_none_on_the_link_paths(page, origins):
    api = origins["api"].url
    page.goto(f"{api}/verify-email?token=not-a-token")
    wait_for_result_ending(page, ASK_FOR_A_VERIFICATION)
    assert page.url == f"{api}/"
    page.goto(f"{api}/reset-password")  # no token: the plain page
    assert result(page) == LOGGED_OUT
    assert page.is_hidden("#reset")


def test_a_crafted_api_parameter_cannot_make_the_page_a_phishing_form(page, origins):
    api = origins["api"].url
    # A javascript: URL is no API origin: the docs link stays this server's.
    page.goto(f"{api}/?api=javascript:document.title='PWNED'//")
    assert page.get_attribute("#docs-link", "href") == "api/docs"
    # Another origin, on the page the API serves: its policy blocks the request
    # that would carry the password there.
    page.add_init_script(
        "window.violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " (e) => window.violations.push(e.effectiveDirective));"
    )
    page.goto(f"{api}/?api={origins['attacker']}")
    page.fill("#username", "victim")
    page.fill("#password", "correct horse battery")
    page.click("#register")
    page.wait_for_function("window.violations.length > 0")
    assert page.evaluate("window.violations")[0] == "connect-src"
