"""The `flask` commands: `keys` (signing keys), `encryption generate-key`,
`users create`, `sessions prune`, `events prune`, `links prune`, `mail deliver|test|prune`,
`clients create|list|delete|rotate-secret`, `openapi-snapshot`."""

import json
import os
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError

from api import encryption
from api.accounts import events, mail_delivery, one_time_tokens, outbox, users
from api.accounts.passwords import passwords
from api.auth import mfa_challenges, personal_tokens, scopes, sessions, totp, webauthn_challenges
from api.auth.key_files import (
    ASYMMETRIC_ALGORITHMS,
    MIN_RSA_BITS,
    generate_key_files,
    write_private_files,
)
from api.auth.keyring import add_key, read_key_dir, retired
from api.clock import utcnow
from api.extensions import db
from api.oauth import clients
from api.schemas import RegisterSchema
from api.web import openapi

keys_cli = AppGroup("keys", help="Manage JWT signing keys.")


@keys_cli.command("generate")
@click.option(
    "--out",
    default="instance/jwt_key",
    show_default=True,
    help="Private key path; the public key goes beside it with .pub added.",
)
@click.option(
    "--algorithm",
    type=click.Choice(ASYMMETRIC_ALGORITHMS),
    default="RS256",
    show_default=True,
)
@click.option("--bits", default=3072, show_default=True, help="RSA key size.")
def generate(out, algorithm, bits):
    """Write a new key pair (PEM) for JWT_PRIVATE_KEY_FILE / JWT_PUBLIC_KEY_FILE."""
    if bits < MIN_RSA_BITS:
        raise click.BadParameter(f"at least {MIN_RSA_BITS} bits", param_hint="--bits")
    folder, name = os.path.split(os.path.abspath(out))
    files = generate_key_files(algorithm, bits)
    files = {name: files["jwt_key"], name + ".pub": files["jwt_key.pub"]}
    try:
        write_private_files(folder, files)
    except FileExistsError as exc:
        raise click.ClickException(f"{exc.filename} exists; refusing to overwrite a key") from exc
    click.echo(f"Wrote {out} and {out}.pub. To use them:")
    click.echo(
        f"  JWT_ALGORITHM={algorithm} JWT_PRIVATE_KEY_FILE={out} JWT_PUBLIC_KEY_FILE={out}.pub"
    )


def key_dir():
    path = current_app.extensions["keyring"].path
    if path is None:
        raise click.ClickException(
            "rotation needs a key directory: set JWT_KEY_DIR (with an RS/PS/ES/EdDSA algorithm)"
        )
    return path


def dir_keys():
    """The key directory, its keys (newest first), and a test for retirement."""
    path = key_dir()
    keys = read_key_dir(path, current_app.config["JWT_ALGORITHM"])
    retire_after = current_app.extensions["keyring"].retire_after
    return path, keys, lambda key: retired(key, keys, retire_after)


@keys_cli.command("rotate")
@click.option(
    "--algorithm",
    type=click.Choice(ASYMMETRIC_ALGORITHMS),
    help="Algorithm of the new key (default: JWT_ALGORITHM).",
)
def rotate(algorithm):
    """Add a new signing key; older keys keep verifying until their tokens expire."""
    path = key_dir()
    kid = add_key(path, algorithm or current_app.config["JWT_ALGORITHM"])
    click.echo(f"New signing key {kid} in {path}; running servers start signing with it now.")


@keys_cli.command("list")
def list_keys():
    """The keys in the key directory: which signs, which verify, which are retired."""
    _, keys, is_retired = dir_keys()
    for position, key in enumerate(keys):
        state = "signing" if position == 0 else "verifying"
        if is_retired(key):
            state = "retired"
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(key.created))
        click.echo(f"{key.kid}  {key.algorithm:6}  {created}  {state}")


@keys_cli.command("prune")
def prune_keys():
    """Delete retired keys: every token they signed has expired."""
    path, keys, is_retired = dir_keys()
    gone = [key for key in keys if is_retired(key)]
    for key in gone:
        for file in (key.file, f"{key.file}.pub"):
            if os.path.exists(file):
                os.remove(file)
    click.echo(f"Pruned {len(gone)} retired keys from {path}.")


encryption_cli = AppGroup("encryption", help="Manage ENCRYPTION_KEYS.")


@encryption_cli.command("generate-key")
def generate_encryption_key():
    """Print a new key for ENCRYPTION_KEYS (without the app: python -m api.encryption)."""
    # The key alone on stdout, so that $(flask encryption generate-key) is the key.
    click.echo(encryption.new_key())
    click.echo(encryption.ROTATION_HINT, err=True)


@encryption_cli.command("rotate")
def rotate_encryption():
    """Re-encrypt every stored secret (TOTP secrets, mails not yet sent)
    under the first key of ENCRYPTION_KEYS; then older keys can go."""
    secrets = totp.rotate_secrets()
    mails = outbox.rotate_bodies()
    click.echo(f"Re-encrypted {secrets} TOTP secrets and {mails} mail bodies under the newest key.")


users_cli = AppGroup("users", help="Manage users.")


@users_cli.command("create")
@click.argument("username")
@click.option("--admin", is_flag=True, help="Give the user the role admin too.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(username, admin, password_stdin):
    """Create a user (there are no default accounts: this makes the first admin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = RegisterSchema().load({"username": username, "password": password})
    except ValidationError as exc:
        raise click.ClickException(f"not created: {exc.messages}") from exc
    if users.find_by_username(data["username"]) is not None:
        raise click.ClickException(f"{username} exists")
    user = users.User(
        username=data["username"],
        password_hash=passwords().hash(data["password"]),
        roles=["admin", "user"] if admin else ["user"],
    )
    db.session.add(user)
    db.session.commit()
    click.echo(f"Created {user.username} (id {user.id}) with roles {', '.join(user.roles)}.")


sessions_cli = AppGroup("sessions", help="Manage login sessions.")


@sessions_cli.command("prune")
def prune():
    """Forget ended sessions, expired rotated refresh tokens, expired mfa
    tokens and passkey challenges, TOTP enrolments never confirmed, and
    personal access tokens expired over 30 days ago (run it daily)."""
    tokens, ended = sessions.prune()
    click.echo(f"Pruned {tokens} expired rotated refresh tokens and {ended} ended sessions.")
    mfa_tokens, challenges = mfa_challenges.prune(), webauthn_challenges.prune()
    enrolments = totp.prune_enrolments()
    db.session.commit()
    click.echo(
        f"Pruned {mfa_tokens} expired mfa tokens, {challenges} passkey challenges "
        f"and {enrolments} unconfirmed TOTP enrolments."
    )
    expired = personal_tokens.prune()
    click.echo(f"Pruned {expired} personal access tokens expired over 30 days ago.")


events_cli = AppGroup("events", help="Manage security events.")


@events_cli.command("prune")
def prune_events():
    """Forget security events older than SECURITY_EVENTS_RETENTION (run it daily)."""
    retention = current_app.config["SECURITY_EVENTS_RETENTION"]
    seconds = int(retention.total_seconds())
    older = f"{seconds // 86400} days" if seconds % 86400 == 0 else f"{seconds} seconds"
    click.echo(f"Pruned {events.prune()} security events older than {older}.")


links_cli = AppGroup("links", help="Manage one-time links (verification, reset).")


@links_cli.command("prune")
def prune_links():
    """Forget one-time links expired over 7 days ago (run it daily); until
    then an expired link answers link_expired rather than link_invalid."""
    click.echo(f"Pruned {one_time_tokens.prune()} expired one-time links.")


mail_cli = AppGroup("mail", help="Deliver, test and prune the mail outbox.")


@mail_cli.command("deliver")
def deliver_mail():
    """Deliver the outbox until stopped (SIGTERM, Ctrl-C): for MAIL_DELIVERY=off
    servers; run any number of these, each mail is sent once."""
    click.echo("Delivering mail; stop with Ctrl-C or SIGTERM.")
    mail_delivery.run_in_foreground(current_app._get_current_object())


@mail_cli.command("test")
@click.option("--to", "address", required=True, help="The address to send a test mail to.")
def test_mail(address):
    """Queue a test mail, to check the mail settings (a delivering server or
    `flask mail deliver` sends it)."""
    name = current_app.config["APP_NAME"]
    # No link: a mail that carries one carries a one-time token (CONTRACT.md).
    text = (
        f"This is a test mail from {name}: its mail settings work.\n"
        f"Queued by `flask mail test` at {utcnow():%Y-%m-%d %H:%M:%S} UTC.\n"
    )
    try:
        mail = outbox.enqueue(address, f"{name}: test mail", text)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Queued test mail {mail.id}.")


@mail_cli.command("prune")
def prune_mail():
    """Forget sent and given-up mails older than MAIL_RETENTION (run it daily)."""
    days = current_app.config["MAIL_RETENTION"].total_seconds() / 86400
    click.echo(f"Pruned {outbox.prune()} sent or given-up mails older than {days:g} days.")


clients_cli = AppGroup(
    "clients", help="Manage OAuth clients: other services that get tokens of their own."
)
SHOWN_ONCE = "Keep the secret now: it is stored only as a hash and will not be shown again."
LISTED_TIME = "%Y-%m-%dT%H:%M:%SZ"


@clients_cli.command("create")
@click.argument("name")
@click.option(
    "--scopes",
    "scope_text",
    required=True,
    help=f"Space-separated, some of: {' '.join(scopes.ALL)}.",
)
def create_client(name, scope_text):
    """Create a client; prints its client_id and client_secret, the secret this once."""
    granted = scopes.parse(scope_text)
    if not granted:
        raise click.ClickException(
            f"--scopes takes one or more of {', '.join(scopes.ALL)}; got {scope_text!r}"
        )
    try:
        client, secret = clients.create(name, granted)
    except ValueError as exc:
        raise click.ClickException(f"not created: {exc}") from exc
    click.echo(f"Created client {client.name!r} with scopes {scopes.joined(granted)}.")
    click.echo(f"client_id:     {client.client_id}")
    click.echo(f"client_secret: {secret}")
    click.echo(SHOWN_ONCE)


@clients_cli.command("list")
def list_clients():
    """The clients: id, creation, last new secret, scopes and name (never a secret)."""
    for client in clients.listing():
        rotated = client.secret_rotated_at
        secret = f"secret rotated {rotated:{LISTED_TIME}}" if rotated else "secret original"
        click.echo(
            f"{client.client_id}  created {client.created_at:{LISTED_TIME}}  {secret}  "
            f"{scopes.joined(client.scopes)}  {client.name}"
        )


@clients_cli.command("delete")
@click.argument("client_id")
def delete_client(client_id):
    """Delete a client: its secret fails at once; its tokens are inactive to
    introspection (services that only verify them by JWKS accept them until
    they expire, OAUTH_TOKEN_EXPIRES)."""
    if not clients.delete(client_id):
        raise click.ClickException(f"no client {client_id!r}")
    click.echo(f"Deleted client {client_id}.")


@clients_cli.command("rotate-secret")
@click.argument("client_id")
def rotate_client_secret(client_id):
    """Give a client a new secret; the old one fails at once."""
    secret = clients.rotate_secret(client_id)
    if secret is None:
        raise click.ClickException(f"no client {client_id!r}")
    click.echo(f"New secret for {client_id}; the old one no longer works.")
    click.echo(f"client_secret: {secret}")
    click.echo(SHOWN_ONCE)


@click.command("openapi-snapshot")
@click.argument("path", default="docs/openapi.json")
@with_appcontext
def openapi_snapshot(path):
    """Write the OpenAPI document as served, keys sorted, for review."""
    text = json.dumps(openapi.document(current_app), indent=2, sort_keys=True)
    with open(path, "w") as file:
        file.write(text + "\n")
    click.echo(f"Wrote {path}.")


def init_app(app):
    app.cli.add_command(openapi_snapshot)
    app.cli.add_command(keys_cli)
    app.cli.add_command(encryption_cli)
    app.cli.add_command(sessions_cli)
    app.cli.add_command(events_cli)
    app.cli.add_command(links_cli)
    app.cli.add_command(mail_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(clients_cli)
