"""The application factory: it reads like a table of contents."""

import os
from collections.abc import Mapping

from flask import Flask

from config import CONFIGS, ConfigError, config_from_env

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "migrations")


def create_app(config=None):
    """Build the app. `config`: a config class, its name, or a mapping of
    overrides on top of the class that APP_CONFIG (or the mapping's own
    APP_CONFIG key) names."""
    # INSTANCE_PATH: where the default SQLite file and development keys live.
    instance_path = os.environ.get("INSTANCE_PATH")
    app = Flask(__name__, instance_path=os.path.abspath(instance_path) if instance_path else None)
    load_config(app, config)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def load_config(app, config):
    overrides = dict(config) if isinstance(config, Mapping) else {}
    if isinstance(config, str) or "APP_CONFIG" in overrides:
        config = CONFIGS[overrides.pop("APP_CONFIG", config)]
    elif config is None or overrides:
        config = config_from_env()
    app.config.from_object(config)
    app.config.update(overrides)


def register_extensions(app):
    from api import browser, cookies, json_http, limits, logs, metrics, revocation, tokens, users
    from api.extensions import api, db, jwt, migrate
    from api.keyring import load_keyring

    logs.init_app(app)
    metrics.init_app(app)
    trust_proxies(app)
    app.extensions["keyring"] = load_keyring(app.config, app.instance_path)
    cookies.check_cookie_config(app.config)
    init_database(app, db)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    users.init_app(app)
    revocation.init_app(app)
    tokens.init_app(app)
    jwt.init_app(app)
    api.init_app(app)
    json_http.document_security(api)
    json_http.init_app(app)
    limits.init_app(app)
    browser.init_app(app)


def trust_proxies(app):
    """Behind TRUSTED_PROXY_HOPS proxies, the client's address and scheme are
    the ones the nearest proxies saw; a header from anyone else is ignored."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def init_database(app, db):
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from api import reads

    config = app.config
    if not config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Not SQLite's: an in-memory database lives only as long as its connection.
        options = config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        options.setdefault("pool_recycle", 1800)
    try:
        db.init_app(app)  # builds the engine: a bad URL or a missing driver fails here
        reads.init_app(app)
        reads.end_sessions_whatever_the_connection(app)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"DATABASE_URL cannot be used: {exc}") from exc


def register_blueprints(app):
    from api import account, admin, health, jwks, login, notes, refresh, resources
    from api.extensions import api

    for module in (login, refresh, resources, account, notes, admin, health, jwks):
        api.register_blueprint(module.blp)


def register_errorhandlers(app):
    from api import errors

    errors.init_app(app)


def register_commands(app):
    from api import cli

    cli.init_app(app)
