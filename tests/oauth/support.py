"""What the OAuth tests share: a client made by the CLI, and the calls a
service makes to /oauth/token and /oauth/introspect."""

import base64
import re
from typing import NamedTuple

from tests.helpers import assert_error

CLIENT_ID = re.compile(r"cid_[0-9A-Za-z]{22}")
SECRET = re.compile(r"csec_[0-9A-Za-z]{43}")
TOKEN_FIELDS = {"access_token", "token_type", "expires_in", "scope"}


class Credentials(NamedTuple):
    client_id: str
    secret: str


def create_client(app, scopes="notes:read profile:read", name="billing"):
    """A client, made as an operator would (`flask clients create`)."""
    result = app.test_cli_runner().invoke(args=["clients", "create", name, "--scopes", scopes])
    assert result.exit_code == 0, result.output
    return Credentials(printed(result.output, "client_id"), printed(result.output, "client_secret"))


def printed(output, label):
    return re.search(rf"^{label}:\s+(\S+)$", output, re.MULTILINE).group(1)


def basic(client_id, secret):
    text = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {text}"}


def ask_token(client, credentials, **form):
    """POST /oauth/token with HTTP Basic, grant_type=client_credentials unless given."""
    form.setdefault("grant_type", "client_credentials")
    return client.post("/oauth/token", data=form, headers=basic(*credentials))


def issued(client, credentials, **form):
    response = ask_token(client, credentials, **form)
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def introspect(client, credentials, token, **form):
    return client.post(
        "/oauth/introspect", data={"token": token, **form}, headers=basic(*credentials)
    )


def assert_oauth_error(response, status, error):
    """RFC 6749 §5.2's shape: error, error_description, and the contract's message."""
    assert_error(response, status, error)
    assert set(response.json) == {"error", "error_description", "message"}
    assert response.json["error_description"] == response.json["message"]
    assert response.headers["Cache-Control"] == "no-store"
