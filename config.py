"""Configuration classes, read from the environment at import time.

`APP_CONFIG` picks one (development, testing, production). Every value the
contract lists can be overridden by an environment variable of the same name.
"""

import os
from datetime import timedelta

_TRUE = {"1", "true", "yes", "on"}


class ConfigError(SystemExit):
    """A configuration that cannot work.

    A SystemExit, so that whatever starts the app (gunicorn, the flask CLI,
    python) stops with this one line on stderr and exit status 1, not a traceback.
    """

    def __init__(self, message):
        super().__init__(f"error: {message}")
        self.message = message


def env_str(name, default=None):
    value = os.environ.get(name)
    return default if value in (None, "") else value


def env_bool(name, default):
    value = os.environ.get(name)
    return default if value in (None, "") else value.strip().lower() in _TRUE


def env_int(name, default, low=1, high=None):
    raw = env_str(name, default)
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high else f"of at least {low}"
        raise ConfigError(f"{name} must be a whole number {bounds}, not {raw!r}")
    return value


def env_seconds(name, default):
    return timedelta(seconds=env_int(name, default, high=10 * 365 * 24 * 3600))


def env_seconds_or_none(name):
    """Seconds if the variable is set, else None (the setting's default is another's)."""
    return env_seconds(name, None) if env_str(name) else None


def database_url(url):
    """Point postgres:// and postgresql:// URLs (as hosts hand them out) at psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def app_url(url):
    """An http(s) URL ending in "/", so that a path can be appended."""
    if not url.startswith(("http://", "https://")) or any(c in url for c in "?#\r\n "):
        raise ConfigError(f"APP_URL must be an http:// or https:// URL with no query, not {url!r}")
    return url if url.endswith("/") else url + "/"


class Config:
    ENV_NAME = "base"
    SECRET_KEY = env_str("SECRET_KEY")
    SQLALCHEMY_DATABASE_URI = database_url(env_str("DATABASE_URL", "sqlite:///app.db"))
    # No ping before each use of a pooled connection: it would double the
    # round trips of every request. A dropped connection fails once instead
    # and the pool starts afresh (api/database.py). Connections to a server are
    # also recycled after 30 minutes (api/database.py), inside idle timeouts.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False}
    MAX_CONTENT_LENGTH = 64 * 1024
    HOST = env_str("HOST", "127.0.0.1")
    PORT = env_int("PORT", "8000", high=65535)
    # The base of the links in mails: the app that opens them at APP_URL +
    # verify-email and reset-password (docs/clients.md). Unset: this API's own
    # demo page, http://HOST:PORT/ (localhost for 127.0.0.1), outside production
    # (api/accounts/mails.py).
    # Never taken from a request's Host header, which a caller could point at
    # a site of theirs to receive someone's reset link.
    APP_URL = env_str("APP_URL")
    # The name mails are signed with.
    APP_NAME = env_str("APP_NAME", "Flask JWT API")

    # Signing keys: see api/auth/key_files.py. JWT_SECRET_KEY falls back to SECRET_KEY,
    # as flask-jwt-extended does.
    JWT_ALGORITHM = env_str("JWT_ALGORITHM", "HS256")
    JWT_SECRET_KEY = env_str("JWT_SECRET_KEY")
    JWT_PRIVATE_KEY_FILE = env_str("JWT_PRIVATE_KEY_FILE")
    JWT_PUBLIC_KEY_FILE = env_str("JWT_PUBLIC_KEY_FILE")
    # A directory of keys that `flask keys rotate` adds to (api/auth/keyring.py).
    JWT_KEY_DIR = env_str("JWT_KEY_DIR")
    # Development only: with no key configured, one is generated once into the
    # instance folder and shared by every worker.
    JWT_GENERATE_DEV_KEY = False

    # Keys for secrets kept encrypted at rest (api/encryption.py): Fernet keys,
    # comma-separated, newest first (it encrypts; all decrypt), so they rotate.
    # Entries are kept as written, empty ones included, for api/encryption.py
    # to refuse with a message. Development generates one, as it does JWT keys.
    ENCRYPTION_KEYS = (
        env_str("ENCRYPTION_KEYS", "").split(",") if env_str("ENCRYPTION_KEYS") else []
    )
    ENCRYPTION_GENERATE_DEV_KEY = False

    JWT_ACCESS_TOKEN_EXPIRES = env_seconds("JWT_ACCESS_TOKEN_EXPIRES", "60")
    JWT_REFRESH_TOKEN_EXPIRES = env_seconds("JWT_REFRESH_TOKEN_EXPIRES", str(14 * 24 * 3600))
    # A rotated-out refresh token presented again within this many seconds
    # (tabs and retries racing) is "superseded"; after it, "reused" (theft).
    JWT_REFRESH_GRACE_SECONDS = env_int("JWT_REFRESH_GRACE_SECONDS", "10", low=0, high=3600)
    # Access tokens that POST /oauth/token gives a client (another service):
    # no refresh token, so a client asks again when its token runs out.
    OAUTH_TOKEN_EXPIRES = env_seconds("OAUTH_TOKEN_EXPIRES", "300")
    # A login session ends this long after the login however it is used, or
    # when it has not been refreshed for SESSION_IDLE_TIMEOUT (default: the
    # refresh token's lifetime, when unset); a refresh after either is `session_expired`.
    SESSION_MAX_AGE = env_seconds("SESSION_MAX_AGE", str(30 * 24 * 3600))
    SESSION_IDLE_TIMEOUT = env_seconds_or_none("SESSION_IDLE_TIMEOUT")
    # Security events older than this are forgotten by `flask events prune`.
    SECURITY_EVENTS_RETENTION = env_seconds("SECURITY_EVENTS_RETENTION", str(180 * 24 * 3600))
    # Passkeys (api/auth/passkeys.py): the relying party's id (a domain: the
    # origins' host or a parent of it), its name shown by authenticators, and
    # the origins whose pages may use them. Unset: from APP_URL's origin,
    # with "localhost" for a loopback address, which browsers refuse as an id.
    WEBAUTHN_RP_ID = env_str("WEBAUTHN_RP_ID")
    WEBAUTHN_RP_NAME = env_str("WEBAUTHN_RP_NAME")
    WEBAUTHN_ORIGINS = [
        origin.strip() for origin in env_str("WEBAUTHN_ORIGINS", "").split(",") if origin.strip()
    ]
    # Administrators' routes demand a login with a second factor.
    ADMIN_MFA_REQUIRED = env_bool("ADMIN_MFA_REQUIRED", False)
    JWT_ISSUER = env_str("JWT_ISSUER", "flask-jwt-api")
    JWT_AUDIENCE = env_str("JWT_AUDIENCE", "flask-jwt-api")

    # Mail (api/accounts/mail_transport.py, mail_delivery.py). MAIL_URL:
    # smtp://[user:password@]host:port (?starttls=true), smtps://… (TLS), or
    # log: (each mail written to the server log). Unset: log: in development;
    # production refuses to start without it, and refuses log:.
    MAIL_URL = env_str("MAIL_URL")
    MAIL_FROM = env_str("MAIL_FROM", "Flask JWT API <no-reply@localhost>")
    # thread: every gunicorn worker delivers the outbox in a background thread
    # (so `make run` alone sends mail). off: `flask mail deliver` processes do.
    MAIL_DELIVERY = env_str("MAIL_DELIVERY", "thread")
    # The SMTP socket timeout, in seconds; a send's lease is derived from it.
    MAIL_SEND_TIMEOUT = env_int("MAIL_SEND_TIMEOUT", "10", high=300)
    # A mail SMTP keeps failing is retried this long after it was queued, then given up.
    MAIL_RETRY_HORIZON = env_seconds("MAIL_RETRY_HORIZON", str(24 * 3600))
    # Sent and given-up mails (their bodies erased already) are forgotten after
    # this by `flask mail prune`.
    MAIL_RETENTION = env_seconds("MAIL_RETENTION", str(7 * 24 * 3600))

    # Transport: the Authorization header first, so that it alone decides when
    # present; cookies for browsers, with flask-jwt-extended's CSRF double submit.
    JWT_TOKEN_LOCATION = ["headers", "cookies"]
    JWT_COOKIE_SECURE = env_bool("JWT_COOKIE_SECURE", False)
    JWT_COOKIE_SAMESITE = env_str("JWT_COOKIE_SAMESITE", "Lax")
    JWT_COOKIE_CSRF_PROTECT = True
    JWT_ACCESS_COOKIE_PATH = "/"
    JWT_ACCESS_CSRF_COOKIE_PATH = "/"
    JWT_REFRESH_COOKIE_PATH = "/api/auth"
    JWT_REFRESH_CSRF_COOKIE_PATH = "/api/auth"

    # Optional: the revocation store and rate-limit storage; without it the
    # database is the revocation store and holds the rate-limit counts.
    REDIS_URL = env_str("REDIS_URL")
    REDIS_KEY_PREFIX = env_str("REDIS_KEY_PREFIX", "jwt-api:")

    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
    RATELIMIT_LOGIN = env_str("RATELIMIT_LOGIN", "10 per minute")
    RATELIMIT_REFRESH = env_str("RATELIMIT_REFRESH", "60 per minute")
    # Forgot-password, the verification resend and a change of address: per
    # client address and per address mailed (api/web/limits.py).
    RATELIMIT_EMAIL = env_str("RATELIMIT_EMAIL", "5 per hour")
    # POST /oauth/token: per client address and per client id (api/web/limits.py).
    RATELIMIT_OAUTH_TOKEN = env_str("RATELIMIT_OAUTH_TOKEN", "30 per minute")
    RATELIMIT_HEADERS_ENABLED = True

    # argon2id, OWASP's recommended minimum: 19 MiB, 2 iterations, 1 lane.
    ARGON2_TIME_COST = 2
    ARGON2_MEMORY_COST = 19 * 1024
    ARGON2_PARALLELISM = 1

    # Origins of browser SPAs on other sites, comma-separated; none by default.
    CORS_ORIGINS = [o.strip() for o in env_str("CORS_ORIGINS", "").split(",") if o.strip()]

    # Behind a reverse proxy: how many proxies in front of gunicorn to trust
    # for X-Forwarded-For/-Proto (werkzeug's ProxyFix). 0, the default, trusts
    # none: a client could otherwise pick the address its rate limits count.
    TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", "0", low=0, high=10)
    LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
    # Prometheus metrics at /metrics (keep it off the public internet: deploy/).
    METRICS_ENABLED = env_bool("METRICS_ENABLED", True)

    API_TITLE = "Flask JWT API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    # Interactive docs from this server's own copy of Swagger UI: they work offline.
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = "/api/docs/assets/"


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    JWT_GENERATE_DEV_KEY = True
    ENCRYPTION_GENERATE_DEV_KEY = True
    # On 127.0.0.1 every user tried is one client address: 5 mails an hour
    # would lock a first try out after a few registrations and resets, and
    # 10 logins a minute a first try of TOTP (each login with a code costs two).
    RATELIMIT_EMAIL = env_str("RATELIMIT_EMAIL", "60 per hour")
    RATELIMIT_LOGIN = env_str("RATELIMIT_LOGIN", "60 per minute")


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-that-is-long-enough-0123456789"  # noqa: S105
    SQLALCHEMY_DATABASE_URI = "sqlite://"
    JWT_ALGORITHM = "HS256"
    JWT_SECRET_KEY = "testing-jwt-secret-that-is-long-enough-0123456789"  # noqa: S105
    JWT_PRIVATE_KEY_FILE = None
    JWT_PUBLIC_KEY_FILE = None
    JWT_KEY_DIR = None
    ENCRYPTION_KEYS = ["LpHr5U4IjBDXhvUHQ3gVGBE1sWc_Z9zYkq1tvr8a6Cg="]  # noqa: S105
    JWT_ACCESS_TOKEN_EXPIRES = timedelta(seconds=60)
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=14)
    JWT_ISSUER = "flask-jwt-api"
    JWT_AUDIENCE = "flask-jwt-api"
    JWT_COOKIE_SECURE = False
    JWT_COOKIE_SAMESITE = "Lax"
    REDIS_URL = None
    CORS_ORIGINS = []
    # Tests deliver the outbox themselves (mail_delivery.deliver_due).
    MAIL_URL = "log:"
    MAIL_DELIVERY = "off"
    # Off unless a test turns it on: most tests log in more than 10 times a minute.
    RATELIMIT_ENABLED = False
    # Cheap hashing keeps the suite fast; production parameters are tested apart.
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 8
    ARGON2_PARALLELISM = 1


class ProductionConfig(Config):
    ENV_NAME = "production"
    JWT_COOKIE_SECURE = env_bool("JWT_COOKIE_SECURE", True)


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_env():
    name = env_str("APP_CONFIG", "development")
    if name not in CONFIGS:
        raise ConfigError(f"APP_CONFIG must be one of {', '.join(CONFIGS)}, not {name!r}")
    return CONFIGS[name]
