"""`flask keys …`: signing key management."""

import os

import click
from flask import Flask
from flask.cli import AppGroup

from api.keys import MIN_RSA_BITS, generate_rsa_files, write_private_files

keys_cli = AppGroup("keys", help="Manage JWT signing keys.")


@keys_cli.command("generate")
@click.option(
    "--out",
    default="instance/jwt_key",
    show_default=True,
    help="Private key path; the public key goes beside it with .pub added.",
)
@click.option("--bits", default=3072, show_default=True, help="RSA key size.")
def generate(out, bits):
    """Write a new RSA key pair (PEM) for RS256."""
    if bits < MIN_RSA_BITS:
        raise click.BadParameter(f"at least {MIN_RSA_BITS} bits", param_hint="--bits")
    folder, name = os.path.split(os.path.abspath(out))
    files = generate_rsa_files(bits)
    files = {name: files["jwt_key"], name + ".pub": files["jwt_key.pub"]}
    try:
        write_private_files(folder, files)
    except FileExistsError as exc:
        raise click.ClickException(f"{exc.filename} exists; refusing to overwrite a key") from exc
    click.echo(f"Wrote {out} and {out}.pub. To use them:")
    click.echo(f"  JWT_ALGORITHM=RS256 JWT_PRIVATE_KEY_FILE={out} JWT_PUBLIC_KEY_FILE={out}.pub")


sessions_cli = AppGroup("sessions", help="Manage login sessions.")


@sessions_cli.command("prune")
def prune():
    """Forget ended sessions and expired rotated refresh tokens (run it daily)."""
    from api import sessions

    tokens, ended = sessions.prune()
    click.echo(f"Pruned {tokens} expired rotated refresh tokens and {ended} ended sessions.")


def init_app(app: Flask):
    app.cli.add_command(keys_cli)
    app.cli.add_command(sessions_cli)
