"""The WebAuthn relying party (api/auth/passkeys.py): its id, its name and
the origins of the pages that use passkeys, resolved once at start.

A browser lets a page use passkeys of an RP id that is the page's host or a
parent domain of it, never an IP address, and puts the page's origin in
every answer it signs: the server checks both. Unset, they come from
APP_URL's origin; a loopback address (the development default,
http://127.0.0.1:8000/) becomes "localhost", which browsers accept, so the
demo page's passkeys work at http://localhost:8000/.
"""

import ipaddress
import re
from urllib.parse import urlsplit

from config import ConfigError

LOCALHOST = "localhost"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Letters, digits and hyphens in dot-separated labels: a host as browsers send it.
DOMAIN = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\Z")


def init_app(app):
    """Resolve WEBAUTHN_RP_ID, WEBAUTHN_RP_NAME and WEBAUTHN_ORIGINS in place
    (after APP_URL: api/accounts/mails.py), or stop with a ConfigError."""
    config = app.config
    if config["WEBAUTHN_ORIGINS"]:
        origins = [parse_origin(text) for text in config["WEBAUTHN_ORIGINS"]]
    else:
        origins = [default_origin(config["APP_URL"])]
    config["WEBAUTHN_ORIGINS"] = [format_origin(*origin) for origin in origins]
    config["WEBAUTHN_RP_ID"] = resolve_rp_id(config["WEBAUTHN_RP_ID"], origins, app.logger)
    config["WEBAUTHN_RP_NAME"] = config["WEBAUTHN_RP_NAME"] or config["APP_NAME"]


def parse_origin(text, setting="WEBAUTHN_ORIGINS"):
    """(scheme, host, port) of an origin such as https://app.example; the
    port is None when it is the scheme's default, as browsers write it."""
    parts = urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname or ""
    if (
        parts.scheme not in DEFAULT_PORTS
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or port == -1
        or not (DOMAIN.match(host) or is_ip(host))
    ):
        raise ConfigError(
            f"{setting} must hold origins such as https://app.example (a scheme, a host "
            f"and perhaps a port; no path), not {text!r}"
        )
    return parts.scheme, host, None if port == DEFAULT_PORTS[parts.scheme] else port


def default_origin(app_url):
    parts = urlsplit(app_url)
    scheme, host, port = parse_origin(f"{parts.scheme}://{parts.netloc}", "APP_URL")
    if is_ip(host) and ipaddress.ip_address(host).is_loopback:
        host = LOCALHOST
    return scheme, host, port


def format_origin(scheme, host, port):
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def resolve_rp_id(configured, origins, logger):
    """The configured id, checked against every origin, or the first origin's host."""
    if configured is None:
        host = origins[0][1]
        if is_ip(host):
            # Not a start failure: passkeys cannot work here, the rest of the API can.
            logger.warning(
                "passkeys will not work: %s is an IP address, which browsers refuse as a "
                "WebAuthn RP id; set WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS to a domain's",
                host,
            )
        configured = host
    elif not DOMAIN.match(configured.lower()) or is_ip(configured):
        raise ConfigError(
            f"WEBAUTHN_RP_ID must be a domain such as app.example, not {configured!r}"
        )
    configured = configured.lower()
    for _scheme, host, _port in origins:
        if host != configured and not host.endswith("." + configured):
            raise ConfigError(
                f"WEBAUTHN_RP_ID {configured!r} must be the host of every origin in "
                f"WEBAUTHN_ORIGINS or a parent domain of it, and {host!r} is neither"
            )
    return configured


def is_ip(host):
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
