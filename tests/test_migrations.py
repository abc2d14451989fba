"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.exc import SAWarning

from api import create_app
from api.extensions import db


def migrate_and_compare(url):
    app = create_app({"APP_CONFIG": "testing", "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn, warnings.catch_warnings():
            # SQLite cannot reflect expression indexes; SQLAlchemy and alembic say so.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", SAWarning)
            diffs = compare_metadata(MigrationContext.configure(conn), db.metadata)
            indexes = index_names(conn)
        downgrade(revision="base")
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
        db.engine.dispose()
    return diffs, indexes, tables


def index_names(conn):
    if conn.dialect.name == "sqlite":
        rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
        return {row[0] for row in rows}
    return {ix["name"] for ix in inspect(conn).get_indexes("users")}


def test_sqlite_migrations_match_models(tmp_path):
    diffs, indexes, tables = migrate_and_compare(f"sqlite:///{tmp_path}/app.db")
    assert diffs == []
    assert "uq_users_username_lower" in indexes
    assert tables == set()  # downgrade undoes everything


def test_postgres_migrations_match_models(postgres_url):
    diffs, indexes, tables = migrate_and_compare(postgres_url)
    assert diffs == []
    assert "uq_users_username_lower" in indexes
    assert tables == set()


def test_username_uniqueness_is_enforced_by_the_database(postgres_url):
    from api.accounts.users import User

    app = create_app({"APP_CONFIG": "testing", "SQLALCHEMY_DATABASE_URI": postgres_url})
    with app.app_context():
        upgrade()
        db.session.add(User(username="bob", password_hash="x"))
        db.session.commit()
        db.session.add(User(username="BOB", password_hash="x"))
        with pytest.raises(Exception, match="uq_users_username_lower"):
            db.session.commit()
        db.session.rollback()
        db.engine.dispose()
