"""The application factory: it reads like a table of contents."""

import os
from collections.abc import Mapping

from api import cli, database, encryption, oauth, routes
from api.accounts import mail_transport, mails, passwords
from api.auth import cookies, identity, keyring, relying_party, revocation
from api.extensions import api, jwt
from api.web import (
    application,
    cors,
    errors,
    json_bodies,
    limits,
    logs,
    metrics,
    no_sessions,
    openapi,
    proxies,
)
from config import CONFIGS, config_from_env


def create_app(config=None):
    """Build the app. `config`: a config class, its name, or a mapping of
    overrides on top of the class that APP_CONFIG (or the mapping's own
    APP_CONFIG key) names."""
    # INSTANCE_PATH: where the default SQLite file and development keys live.
    instance_path = os.environ.get("INSTANCE_PATH")
    app = application.Application(
        __name__, instance_path=os.path.abspath(instance_path) if instance_path else None
    )
    load_config(app, config)
    register_plumbing(app)
    register_extensions(app)
    routes.register(app, api)
    errors.init_app(app)
    cli.init_app(app)
    return app


def load_config(app, config):
    overrides = dict(config) if isinstance(config, Mapping) else {}
    if isinstance(config, str) or "APP_CONFIG" in overrides:
        config = CONFIGS[overrides.pop("APP_CONFIG", config)]
    elif config is None or overrides:
        config = config_from_env()
    app.config.from_object(config)
    app.config.update(overrides)


def register_plumbing(app):
    """What every request crosses first: its id and log lines, its timing, and
    the client's address behind trusted proxies; no cookie session."""
    logs.init_app(app)
    metrics.init_app(app)
    proxies.init_app(app)
    no_sessions.init_app(app)


def register_extensions(app):
    """Keys first: a bad key stops the start before anything else is built."""
    keyring.init_app(app)
    encryption.init_app(app)
    cookies.check_cookie_config(app.config)
    mail_transport.init_app(app)
    mails.init_app(app)
    relying_party.init_app(app)  # from APP_URL, just resolved
    oauth.init_app(app)
    database.init_app(app)
    passwords.init_app(app)
    revocation.init_app(app)
    identity.init_app(app)
    jwt.init_app(app)
    openapi.init_app(app, api)
    json_bodies.init_app(app)
    limits.init_app(app)
    cors.init_app(app)
