// The tutorial's Welcome page as a small SPA on the cookie flow: the tokens
// live in httpOnly cookies; this script only ever sees the csrf values, which
// it echoes in X-CSRF-TOKEN on unsafe requests.
"use strict";

// ?api=https://api.example.org when the page is served from another origin:
// an http(s) origin only, never a javascript: or data: URL (it becomes the
// docs link's href). Served by the API itself, the page's Content-Security-
// Policy lets it talk to its own origin alone, so a link with ?api= cannot
// make it send a password anywhere else.
const API = apiOrigin(new URLSearchParams(location.search).get("api"));

function apiOrigin(value) {
  if (!value) return "";
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.origin : "";
  } catch {
    return "";
  }
}
// The mails' links open this page at APP_URL + verify-email or reset-password,
// with a one-time token in the query. The page takes the token out of the
// address bar and history at once (it stays in this variable only until it
// is sent), so it is never bookmarked, shared, or shown again.
const link = takeLinkToken();
// The csrf values from the login and refresh bodies. Kept per tab, so that a
// reload can still refresh: the refresh value's cookie (Path=/api/auth) is
// never readable here, nor are any of the API's cookies on another site.
const csrf = {
  get access() { return sessionStorage.getItem("csrf_access_token"); },
  get refresh() { return sessionStorage.getItem("csrf_refresh_token"); },
};
let expiresAt = null;
let refreshing = null;
// From a password login that answered mfa_required: kept in memory only,
// until the code that finishes the login is sent.
let mfaToken = null;

const $ = (id) => document.getElementById(id);
const show = (text) => { $("result").textContent = text; };

// No token at all is the logged-out state, not an error; other errors show.
function report(data) {
  if (data.error !== "missing_token") return show(data.message);
  forget();
  show("You are not logged in.");
}

// The details shown belong to one access token: gone when it changes, and
// with them a TOTP secret or recovery codes still on the screen.
function clearDetails() {
  $("details").hidden = true;
  for (const id of ["user", "email-status", "claims", "sessions", "events", "mfa-status",
    "passkeys", "tokens"]) $(id).textContent = "";
  closeTotpPanels();
  closeTokenPanels();
}

// {kind: "verify-email" | "reset-password", token} when the page was opened
// from a mail's link, else null; either way the address bar keeps no token.
function takeLinkToken() {
  const kind = location.pathname.split("/").pop();
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  if (!["verify-email", "reset-password"].includes(kind) || !token) return null;
  params.delete("token");
  const query = params.toString();
  // The page's own address (APP_URL), without the link's path and token.
  history.replaceState(null, "", new URL(query ? `./?${query}` : "./", location.href));
  return { kind, token };
}

// An element with text and children; server text only ever as text.
function element(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children.filter((child) => child !== null));
  return node;
}

function time(iso) {
  const node = element("time", null, new Date(iso).toLocaleString());
  node.dateTime = iso;
  return node;
}

// The caller's live sessions: this one, or a Revoke button on each other one.
function showSessions(sessions) {
  $("sessions").replaceChildren(...sessions.map((session) => {
    const item = element("li", session.current ? "current" : null,
      session.ip || "unknown address", " · last used ", time(session.last_used_at),
      " · ends ", time(session.expires_at),
      session.current ? " (this one)" : null,
      element("span", "agent", session.user_agent || "unknown browser"));
    if (!session.current) {
      const button = element("button", null, "Revoke");
      button.type = "button";
      button.addEventListener("click", () => revoke(session.id));
      item.insertBefore(button, item.lastChild);
    }
    return item;
  }));
}

// The last security events, newest first: how a login was made (password,
// password+totp, passkey…) and why one failed, when the event says.
function showEvents(events) {
  if (events.length === 0) return $("events").replaceChildren(element("li", null, "Nothing yet."));
  $("events").replaceChildren(...events.map((event) => {
    const details = event.details || {};
    return element("li", null,
      time(event.at), " · ", element("strong", "type", event.type),
      details.method ? element("span", "method", ` · ${details.method}`) : null,
      " · ", event.ip || "unknown address",
      details.reason ? element("span", "reason", ` · ${details.reason}`) : null);
  }));
}

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.split("=")[1]) : null;
}

async function call(method, path, body, csrfValue) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrfValue) headers["X-CSRF-TOKEN"] = csrfValue;
  try {
    const response = await fetch(API + path, {
      method,
      headers,
      credentials: "include",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = response.status === 204 ? null : await response.json();
    return { response, data };
  } catch (error) {
    // Network down, CORS refused, or a proxy's HTML page instead of JSON.
    return { response: { ok: false, status: 0 }, data: { message: "The API cannot be reached." } };
  }
}

// Unsafe calls carry the access token's csrf value; an expired access token
// is refreshed once, silently, and the call made again.
async function api(method, path, body) {
  const unsafe = method !== "GET";
  let result = await call(method, path, body, unsafe ? csrfAccess() : null);
  if (result.response.status === 401 && result.data.error === "token_expired") {
    if (await refresh()) {
      result = await call(method, path, body, unsafe ? csrfAccess() : null);
    }
  }
  return result;
}

const csrfAccess = () => csrf.access || cookie("csrf_access_token");

function remember(session) {
  sessionStorage.setItem("csrf_access_token", session.csrf_access_token);
  sessionStorage.setItem("csrf_refresh_token", session.csrf_refresh_token);
  expiresAt = Date.now() + session.expires_in * 1000;
  clearDetails();
}

function forget() {
  sessionStorage.removeItem("csrf_access_token");
  sessionStorage.removeItem("csrf_refresh_token");
  expiresAt = null;
  clearDetails();
}

// One refresh at a time: calls that meet token_expired together share it, so
// none presents the refresh token the first one has just rotated out.
function refresh() {
  refreshing = refreshing || doRefresh().finally(() => { refreshing = null; });
  return refreshing;
}

async function doRefresh() {
  const { response, data } = await call("POST", "/api/auth/refresh", undefined, csrf.refresh);
  if (!response.ok) {
    report(data);
    return false;
  }
  remember(data);
  return true;
}

function credentials() {
  return { username: $("username").value, password: $("password").value };
}

// Every way of logging in ends here, with the cookie login's answer.
function signedIn(session) {
  mfaToken = null;
  $("mfa").reset();
  $("mfa").hidden = true;
  remember(session);
  show("Token Generated successfully!!");
}

// The email is optional: an empty field sends none.
$("register").addEventListener("click", async () => {
  const email = $("email").value.trim();
  const body = email ? { ...credentials(), email } : credentials();
  const { response, data } = await call("POST", "/api/auth/register", body);
  if (!response.ok) return show(data.message);
  show(data.email ? `Registered ${data.username}: check ${data.email} for the verification link`
    : `Registered ${data.username}`);
});

$("credentials").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { response, data } = await call("POST", "/api/auth/cookie/login", credentials());
  if (data.error === "mfa_required") return askForSecondFactor(data);
  if (!response.ok) return show(data.message);
  signedIn(data);
});

// The password was right; the login ends with a code (POST /api/auth/mfa).
// The API's message speaks to developers: the page says it for the user.
function askForSecondFactor(data) {
  mfaToken = data.mfa_token;
  $("mfa").reset();
  $("mfa").hidden = false;
  $("mfa-code").focus();
  show("Password accepted: now a code from your app, or a recovery code.");
}

$("mfa").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { mfa_token: mfaToken, code: $("mfa-code").value.trim() };
  const { response, data } = await call("POST", "/api/auth/mfa", body);
  if (response.ok) return signedIn(data);
  // A wrong code: another may do. The mfa token used, too old, or dead after
  // too many wrong codes: the login starts over, as the message says.
  if (["invalid_token", "token_expired"].includes(data.error)) {
    mfaToken = null;
    $("mfa").hidden = true;
  }
  show(data.message);
});

// A login with no password: the API's challenge, signed by a passkey the
// browser finds for this site (a discoverable credential).
$("passkey-login").addEventListener("click", async () => {
  if (!passkeysAvailable()) return;
  const options = await call("POST", "/api/auth/passkey/options", {});
  if (!options.response.ok) return show(options.data.message);
  const credential = await passkey("get", options.data.options);
  if (!credential) return;
  const body = { challenge_id: options.data.challenge_id, credential };
  const { response, data } = await call("POST", "/api/auth/cookie/passkey/login", body);
  if (!response.ok) return show(data.message);
  signedIn(data);
});

$("forgot-link").addEventListener("click", (event) => {
  event.preventDefault();
  $("forgot").hidden = false;
  $("forgot-email").focus();
});

// The same answer whether or not an account has the address: the API says
// nothing about who has an account, and neither does the page.
$("forgot").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { data } = await call("POST", "/api/auth/password/forgot", { email: $("forgot-email").value });
  show(data.message);
});

// What to do when a link is refused (used, superseded, tampered, or too old):
// ask for a new mail, which is always possible.
const NEW_LINK = {
  "verify-email": "Log in and click “Resend verification” for a new mail.",
  "reset-password": "Ask for a new mail with “Forgot password?”.",
};

function linkRefused(kind, data) {
  if (!["link_invalid", "link_expired"].includes(data.error)) return show(data.message);
  show(`${data.message} ${NEW_LINK[kind]}`);
  if (kind === "reset-password") $("forgot").hidden = false;
}

async function verifyEmail(token) {
  show("Verifying your email…");
  const { response, data } = await call("POST", "/api/auth/email/verify", { token });
  if (!response.ok) return linkRefused("verify-email", data);
  show(`Email ${data.email} verified.`);
}

// The reset link asks for the new password first; the token stays in memory.
function askForNewPassword(token) {
  $("reset").hidden = false;
  $("new-password").focus();
  show("Choose a new password.");
  $("reset").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { token, new_password: $("new-password").value };
    const { response, data } = await call("POST", "/api/auth/password/reset", body);
    if (!response.ok) return linkRefused("reset-password", data);
    $("reset").reset();
    $("reset").hidden = true;
    forget();  // every session ended with the reset, this tab's too
    show("Password changed; log in with the new password.");
  });
}

// The user, the token's claims, the sessions and the recent activity; shown
// again after a revoke, and on every click (a login elsewhere shows up then).
async function showDetails(done) {
  const me = await api("GET", "/api/me");
  if (!me.response.ok) {
    clearDetails();
    return report(me.data);
  }
  const [token, sessions, events, passkeys, tokens] = await Promise.all([
    api("GET", "/api/auth/token"),
    api("GET", "/api/auth/sessions"),
    api("GET", "/api/me/events?per_page=10"),
    api("GET", "/api/me/passkeys"),
    api("GET", "/api/me/tokens"),
  ]);
  const failed = [token, sessions, events, passkeys, tokens].find((answer) => !answer.response.ok);
  if (failed) {
    clearDetails();
    return report(failed.data);
  }
  $("user").textContent = JSON.stringify(me.data, null, 2);
  showEmail(me.data);
  showSecondFactor(me.data);
  showPasskeys(passkeys.data);
  showTokens(tokens.data);
  showFreshness(token.data.fresh === true);
  $("claims").textContent = JSON.stringify(token.data, null, 2);
  showSessions(sessions.data);
  showEvents(events.data);
  $("details").hidden = false;
  show(done || me.data.username);
}

// The address and whether its link was opened; resending makes sense only
// for an unverified one.
function showEmail(user) {
  $("email-status").textContent = !user.email ? "No email: add one to be able to reset the password."
    : `${user.email} (${user.email_verified ? "verified" : "not verified"})`;
  $("resend-verification").hidden = !user.email || user.email_verified;
}

$("resend-verification").addEventListener("click", async () => {
  const { data } = await api("POST", "/api/me/email/verification");
  report(data);
});

// A new address needs a token straight from a password login (not from a refresh).
$("change-email").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { response, data } = await api("PUT", "/api/me/email", { email: $("new-email").value });
  if (response.ok) $("change-email").reset();
  if (data.error === "fresh_token_required") return show("Log in again to change your email.");
  report(data);
});

// The routes that change a factor want a token straight from a login. The
// page knows from the claims whether it has one, but the API is the judge: a
// token refreshed in another tab is refused here all the same.
function refused(data, what) {
  if (data.error !== "fresh_token_required") return report(data);
  showFreshness(false);
  show(`Log in again to ${what}.`);
}

// A token from a refresh changes no factor: its controls are off, with the
// reason beside them, rather than open an input the API will refuse.
function showFreshness(fresh) {
  for (const node of document.querySelectorAll(".needs-fresh, #passkeys button")) {
    node.disabled = !fresh;
  }
  for (const hint of document.querySelectorAll(".fresh-hint")) hint.hidden = fresh;
  if (!fresh) closePanel("totp-disable");
}

function showSecondFactor(user) {
  $("mfa-status").textContent = user.mfa_enabled
    ? "TOTP is on: logins ask for a code from your app."
    : "TOTP is off: a password alone logs in.";
  // No second enrolment while one is on the screen.
  $("totp-start").hidden = user.mfa_enabled || !$("totp-enrol").hidden;
  $("totp-off").hidden = !user.mfa_enabled;
  $("new-recovery-codes").hidden = !user.mfa_enabled;
}

function closePanel(id) {
  $(id).reset();
  $(id).hidden = true;
  panelSays(id, "");
}

function closeTotpPanels() {
  closePanel("totp-enrol");
  closePanel("totp-disable");
  $("totp-qr").removeAttribute("src");
  $("totp-secret").textContent = "";
  showRecoveryCodes([]);
}

// The answer to a panel's form, shown in the panel too: the result line is
// at the top of the page, out of sight of the panel.
function panelSays(id, text) {
  $(id).querySelector(".message").textContent = text;
}

// Also in the panel, for the code typed there, if the panel is still open.
function panelRefused(id, data, what) {
  refused(data, what);
  if (!$(id).hidden) panelSays(id, $("result").textContent);
}

// Shown once, as the API answers them; an empty list hides them.
function showRecoveryCodes(codes) {
  $("recovery-codes").replaceChildren(...codes.map((code) => element("li", null, code)));
  $("recovery").hidden = codes.length === 0;
}

// The QR code is an SVG document: shown as an image (no script of it ever
// runs), from a data: URL, the one kind the page's policy allows besides its own.
$("totp-start").addEventListener("click", async () => {
  const { response, data } = await api("POST", "/api/me/mfa/totp");
  if (!response.ok) return refused(data, "turn on TOTP");
  closeTotpPanels();
  const svg = new TextEncoder().encode(data.qr_svg);
  $("totp-qr").src = `data:image/svg+xml;base64,${base64(svg)}`;
  $("totp-secret").textContent = data.secret;
  $("totp-enrol").hidden = false;
  $("totp-start").hidden = true;
  $("totp-enrol").scrollIntoView({ block: "nearest" });
  $("totp-code").focus({ preventScroll: true });
  show("Scan the QR code, then confirm with a code from your app.");
});

// A code as the app shows it ("123 456") is one the API takes.
$("totp-enrol").addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = $("totp-code").value.trim();
  const { response, data } = await api("POST", "/api/me/mfa/totp/confirm", { code });
  if (!response.ok) return panelRefused("totp-enrol", data, "turn on TOTP");
  closeTotpPanels();
  showRecoveryCodes(data.recovery_codes);
  await showDetails("TOTP is on. Keep the recovery codes: they are shown only this once.");
});

// Abandoned: TOTP stays off (a pending secret is replaced by the next start).
$("totp-cancel").addEventListener("click", () => {
  closeTotpPanels();
  $("totp-start").hidden = false;
  show("TOTP stays off.");
});

$("totp-off").addEventListener("click", () => {
  showRecoveryCodes([]);
  panelSays("totp-disable", "");
  $("totp-disable").hidden = false;
  $("totp-off-code").focus();
  show("Turning TOTP off takes a code from your app, or a recovery code.");
});

$("totp-disable").addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = $("totp-off-code").value.trim();
  const { response, data } = await api("DELETE", "/api/me/mfa/totp", { code });
  if (!response.ok) return panelRefused("totp-disable", data, "turn TOTP off");
  closeTotpPanels();
  await showDetails("TOTP is off.");
});

$("new-recovery-codes").addEventListener("click", async () => {
  const { response, data } = await api("POST", "/api/me/mfa/recovery-codes");
  if (!response.ok) return refused(data, "make new recovery codes");
  closeTotpPanels();
  showRecoveryCodes(data.recovery_codes);
  await showDetails("New recovery codes: the old ones no longer work.");
});

// The caller's passkeys: name, when added, when last used, and Remove.
function showPasskeys(passkeys) {
  if (passkeys.length === 0) {
    return $("passkeys").replaceChildren(element("li", null, "No passkeys yet."));
  }
  $("passkeys").replaceChildren(...passkeys.map((key) => {
    const remove = element("button", null, "Remove");
    remove.type = "button";
    remove.addEventListener("click", () => removePasskey(key.id));
    return element("li", "passkey", element("strong", "name", key.name),
      " · added ", time(key.created_at),
      " · ", key.last_used_at ? element("span", null, "last used ", time(key.last_used_at))
        : "never used",
      remove);
  }));
}

async function removePasskey(id) {
  const { response, data } = await api("DELETE", `/api/me/passkeys/${encodeURIComponent(id)}`);
  if (!response.ok) return refused(data, "remove a passkey");
  await showDetails("Passkey removed.");
}

$("add-passkey").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!passkeysAvailable()) return;
  const name = $("passkey-name").value.trim();
  const options = await api("POST", "/api/me/passkeys/options");
  if (!options.response.ok) return refused(options.data, "add a passkey");
  const credential = await passkey("create", options.data);
  if (!credential) return;
  const { response, data } = await api("POST", "/api/me/passkeys", { name, credential });
  if (!response.ok) return report(data);
  $("add-passkey").reset();
  await showDetails(`Passkey “${data.name}” added.`);
});

// WebAuthn exists on secure pages only: https, or http://localhost; and its
// RP id is a domain name, never an IP address (Chromium's raw answer to one
// is "This is an invalid domain.").
function passkeysAvailable() {
  if (onIpAddress()) {
    show($("passkeys-ip-hint").textContent);
    return false;
  }
  if (window.PublicKeyCredential && navigator.credentials) return true;
  show("Passkeys need a secure page (https, or http://localhost) in a browser that has them.");
  return false;
}

// IPv4, or IPv6 (which location.hostname has in brackets).
const onIpAddress = () => /^(\d{1,3}\.){3}\d{1,3}$|^\[/.test(location.hostname);

// This page at localhost, same port, path and query: where passkeys work.
function hintPasskeysAtLocalhost() {
  const url = new URL(location.href);
  url.hostname = "localhost";
  url.hash = "";
  const anchor = element("a", null, url.href);
  anchor.href = url.href;
  $("passkeys-ip-hint").replaceChildren(
    "Passkeys need a domain name: open this page at ", anchor, " instead.");
  $("passkeys-ip-hint").hidden = false;
}

// The browser's ceremony ("create" or "get") on the API's JSON options: the
// credential as JSON for the API, or null once the page says why there is none.
async function passkey(ceremony, options) {
  try {
    const publicKey = ceremony === "create" ? creationOptions(options) : requestOptions(options);
    return credentialJSON(await navigator.credentials[ceremony]({ publicKey }));
  } catch (error) {
    show(error.name === "NotAllowedError" ? "No passkey was used: cancelled, or none for this site."
      : error.message);
    return null;
  }
}

// The JSON helpers of WebAuthn Level 3 where the browser has them; else the
// same by hand: the binary fields travel as base64url text.
function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: bytes(json.challenge),
    user: { ...json.user, id: bytes(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map(withBinaryId),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return {
    ...json,
    challenge: bytes(json.challenge),
    allowCredentials: (json.allowCredentials || []).map(withBinaryId),
  };
}

const withBinaryId = (descriptor) => ({ ...descriptor, id: bytes(descriptor.id) });

function credentialJSON(credential) {
  if (credential.toJSON) return credential.toJSON();
  const answer = credential.response;
  const response = { clientDataJSON: base64url(answer.clientDataJSON) };
  if (answer.attestationObject) {  // registration
    response.attestationObject = base64url(answer.attestationObject);
    response.transports = answer.getTransports ? answer.getTransports() : [];
  } else {  // login
    response.authenticatorData = base64url(answer.authenticatorData);
    response.signature = base64url(answer.signature);
    response.userHandle = answer.userHandle ? base64url(answer.userHandle) : null;
  }
  return {
    id: credential.id,
    rawId: base64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment,
    response,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

function base64(buffer) {
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

const base64url = (buffer) => base64(buffer).replace(/\+/g, "-").replace(/\//g, "_")
  .replace(/=+$/, "");

// atob takes base64 without its padding.
const bytes = (text) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")),
  (c) => c.charCodeAt(0));

// Personal access tokens: name, scopes, dates, and Delete. The token itself
// is in the answer to its creation alone (the API keeps a hash): the page
// shows it that once, in memory only, until "Done", a login change or a reload.
let shownTokenId = null;

function showTokens(tokens) {
  if (tokens.length === 0) {
    return $("tokens").replaceChildren(element("li", null, "No tokens yet."));
  }
  $("tokens").replaceChildren(...tokens.map((token) => {
    const remove = element("button", null, "Delete");
    remove.type = "button";
    remove.addEventListener("click", () => deleteToken(token));
    const expired = new Date(token.expires_at) <= new Date();
    return element("li", "token", element("strong", "name", token.name),
      " · ", element("span", "scope", token.scopes.join(" ")),
      " · created ", time(token.created_at),
      expired ? " · expired " : " · expires ", time(token.expires_at),
      " · ", token.last_used_at ? element("span", null, "last used ", time(token.last_used_at))
        : "never used",
      remove);
  }));
}

function closeTokenPanels() {
  shownTokenId = null;
  $("token-value").value = "";
  $("token-shown").hidden = true;
  panelSays("token-shown", "");
  $("new-token").reset();
  panelSays("new-token", "");
}

// RFC 9470's step-up challenge: the account has a second factor (TOTP or a
// passkey) and this login did not use it. As with a refreshed token, the
// way on is a new login; the API's message speaks to developers.
function stepUpRequired(response) {
  const challenge = response.headers ? response.headers.get("WWW-Authenticate") || "" : "";
  return response.status === 403 && challenge.includes("insufficient_user_authentication");
}

$("new-token").addEventListener("submit", async (event) => {
  event.preventDefault();
  const scopes = [...document.querySelectorAll("#token-scopes input:checked")]
    .map((box) => box.value);
  if (scopes.length === 0) {
    show("Pick at least one scope.");
    return panelSays("new-token", $("result").textContent);
  }
  const body = {
    name: $("token-name").value.trim(),
    scopes,
    expires_in_days: Number($("token-days").value),
  };
  const { response, data } = await api("POST", "/api/me/tokens", body);
  if (stepUpRequired(response)) {
    show("Log in again with your second factor (a code from your app, or a passkey) "
      + "to create a token.");
    return panelSays("new-token", $("result").textContent);
  }
  if (!response.ok) return panelRefused("new-token", data, "create a token");
  showNewToken(data);
  // Only the list is drawn again, and with no silent refresh: a refresh, or a
  // failure, clears the details, and the token must stay until it is copied.
  const list = await call("GET", "/api/me/tokens");
  if (list.response.ok) showTokens(list.data);
  show(`Token “${data.name}” created: copy it now, it won't be shown again.`);
});

function showNewToken(created) {
  $("new-token").reset();
  panelSays("new-token", "");
  panelSays("token-shown", "");
  shownTokenId = created.id;
  $("token-value").value = created.token;
  $("token-shown").hidden = false;
  $("token-shown").scrollIntoView({ block: "nearest" });
  $("token-value").select();
}

// The clipboard needs a secure page (https, or http://localhost); elsewhere
// the token is selected for a Ctrl+C.
$("copy-token").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("token-value").value);
    show("Token copied to the clipboard.");
  } catch {
    $("token-value").select();
    show("The browser refused the clipboard: the token is selected, copy it with Ctrl+C.");
  }
  panelSays("token-shown", $("result").textContent);
});

$("token-done").addEventListener("click", () => {
  closeTokenPanels();
  show("The token is off the page: it cannot be shown again.");
});

// Whatever uses the token is refused from the next request on: ask first.
async function deleteToken(token) {
  if (!confirm(`Delete the token “${token.name}”? Whatever uses it is refused at once.`)) {
    return show(`The token “${token.name}” stays.`);
  }
  const path = `/api/me/tokens/${encodeURIComponent(token.id)}`;
  const { response, data } = await api("DELETE", path);
  if (!response.ok) return report(data);
  if (token.id === shownTokenId) closeTokenPanels();
  await showDetails(`Token “${token.name}” deleted.`);
}

async function revoke(id) {
  const { response, data } = await api("DELETE", `/api/auth/sessions/${encodeURIComponent(id)}`);
  if (!response.ok) return report(data);
  await showDetails("Session revoked");
}

$("show-details").addEventListener("click", () => showDetails());

$("logout").addEventListener("click", async () => {
  const { response, data } = await api("POST", "/api/auth/logout");
  if (!response.ok) return report(data);
  forget();
  $("password").value = "";  // the username stays, for the next login
  show("Logged out");
});

setInterval(() => {
  if (expiresAt === null) {
    $("countdown").textContent = "";
    return;
  }
  const left = expiresAt - Date.now();
  $("countdown").textContent = left > 0
    ? `Access token expires in ${Math.ceil(left / 1000)} s`
    : "Access token expired: the next call refreshes it";
}, 250);

// Served from another origin: the docs are the API's.
if (API) $("docs-link").href = API + "/api/docs";
if (onIpAddress()) hintPasskeysAtLocalhost();

// On load, a login from before a reload: its tokens are in httpOnly cookies,
// so the API tells the access token's expiry. No csrf value: not logged in.
// Then a mail's link, whose result is what the page shows.
if (csrfAccess()) {
  call("GET", "/api/auth/token").then(({ response, data }) => {
    if (response.ok) expiresAt = data.exp * 1000;
    else if (data.error === "token_expired") expiresAt = 0;
    else if (!link) report(data);  // the link's result stays in view
  });
} else if (!link) {
  show("You are not logged in.");
}
if (link && link.kind === "verify-email") verifyEmail(link.token);
else if (link) askForNewPassword(link.token);
