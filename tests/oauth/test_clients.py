"""`flask clients …` (api/cli.py, api/oauth/clients.py): made, listed,
deleted and given new secrets by an operator; secrets kept only as hashes;
on SQLite and on PostgreSQL with Redis."""

import hashlib

import pytest
from sqlalchemy import text

from api.extensions import db
from tests.oauth.support import (
    CLIENT_ID,
    SECRET,
    Credentials,
    ask_token,
    assert_oauth_error,
    create_client,
    printed,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres+redis"], indirect=True)


def run(app, *args):
    return app.test_cli_runner().invoke(args=["clients", *args])


def test_create_prints_the_id_and_the_secret_once(store_app):
    result = run(store_app, "create", "billing", "--scopes", "notes:read profile:read")
    assert result.exit_code == 0, result.output
    assert CLIENT_ID.fullmatch(printed(result.output, "client_id"))
    assert SECRET.fullmatch(printed(result.output, "client_secret"))
    assert "will not be shown again" in result.output
    assert "profile:read notes:read" in result.output


def test_the_secret_is_stored_only_as_its_hash(store_app, service):
    with store_app.app_context():
        row = db.session.execute(text("SELECT * FROM oauth_clients")).mappings().one()
    assert row["secret_hash"] == hashlib.sha256(service.secret.encode()).hexdigest()
    assert not any(service.secret in str(value) for value in row.values())
    assert row["client_id"] == service.client_id
    assert row["name"] == "billing"
    assert row["secret_rotated_at"] is None


def test_every_client_has_its_own_id_and_secret(store_app, service):
    other = create_client(store_app, name="billing-2")
    assert other.client_id != service.client_id and other.secret != service.secret


def test_a_name_is_one_client_s(store_app, service):
    result = run(store_app, "create", "billing", "--scopes", "notes:read")
    assert result.exit_code != 0
    assert "a client named 'billing' exists already" in result.output
    assert len(run(store_app, "list").output.splitlines()) == 1


@pytest.mark.parametrize("scopes", ["admin", "notes:read admin", "", "  ", "notes:*"])
def test_an_unknown_or_missing_scope_is_refused(store_app, scopes):
    result = run(store_app, "create", "billing", "--scopes", scopes)
    assert result.exit_code != 0
    assert "--scopes takes one or more of profile:read, notes:read, notes:write" in result.output
    assert run(store_app, "list").output == ""


def test_scopes_are_required(store_app):
    result = run(store_app, "create", "billing")
    assert result.exit_code != 0
    assert "--scopes" in result.output


@pytest.mark.parametrize("name", ["", "x" * 65, "tab\there", " padded"])
def test_a_bad_name_is_refused(store_app, name):
    result = run(store_app, "create", name, "--scopes", "notes:read")
    assert result.exit_code != 0
    assert "not created" in result.output


def test_list_shows_no_secret(store_app, service):
    result = run(store_app, "list")
    assert result.exit_code == 0
    assert service.client_id in result.output
    assert "billing" in result.output and "profile:read notes:read" in result.output
    assert service.secret not in result.output and "csec_" not in result.output


def test_delete_makes_the_secret_fail_at_once(store_app, client, service):
    assert ask_token(client, service).status_code == 200
    result = run(store_app, "delete", service.client_id)
    assert result.exit_code == 0, result.output
    assert_oauth_error(ask_token(client, service), 401, "invalid_client")
    assert service.client_id not in run(store_app, "list").output


def test_rotate_secret_makes_the_old_one_fail_at_once(store_app, client, service):
    result = run(store_app, "rotate-secret", service.client_id)
    assert result.exit_code == 0, result.output
    assert "will not be shown again" in result.output
    new = Credentials(service.client_id, printed(result.output, "client_secret"))
    assert SECRET.fullmatch(new.secret) and new.secret != service.secret
    assert_oauth_error(ask_token(client, service), 401, "invalid_client")
    assert ask_token(client, new).status_code == 200
    assert "secret rotated" in run(store_app, "list").output


@pytest.mark.parametrize("command", ["delete", "rotate-secret"])
@pytest.mark.parametrize("client_id", ["cid_" + "x" * 22, "nonsense"])
def test_an_unknown_client_is_an_error(store_app, service, command, client_id):
    result = run(store_app, command, client_id)
    assert result.exit_code != 0
    assert f"no client '{client_id}'" in result.output
    assert service.client_id in run(store_app, "list").output


def test_each_change_is_logged_without_the_secret(store_app, caplog):
    with caplog.at_level("INFO"):
        made = create_client(store_app, name="audited")
        rotated = run(store_app, "rotate-secret", made.client_id).output
        run(store_app, "delete", made.client_id)
    new_secret = rotated.split("client_secret:")[1].split()[0]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("oauth client")]
    assert lines == [
        f"oauth client {made.client_id} created, scopes profile:read notes:read",
        f"oauth client {made.client_id} given a new secret",
        f"oauth client {made.client_id} deleted",
    ]
    assert made.secret not in caplog.text and new_secret not in caplog.text
