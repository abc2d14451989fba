"""POST /oauth/token's rate limits (api/web/limits.py): per client address
and per client id, 429 with Retry-After in RFC 6749 §5.2's shape; counted in
memory and in Redis. Counts in Redis outlive a test: every test uses
addresses and clients of its own."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from api import create_app
from config import ConfigError
from tests.helpers import Fresh
from tests.oauth.support import Credentials, assert_oauth_error, basic, create_client


@pytest.fixture(params=["memory", "redis"])
def limited_app(request, make_app):
    settings = request.getfixturevalue("redis_settings") if request.param == "redis" else {}
    return make_app(RATELIMIT_ENABLED=True, RATELIMIT_OAUTH_TOKEN="2 per minute", **settings)


def ask(client, credentials, address, post=False):
    form = {"grant_type": "client_credentials"}
    headers = {}
    if post:
        form.update(client_id=credentials.client_id, client_secret=credentials.secret)
    else:
        headers = basic(*credentials)
    # Over HTTPS: these addresses are not loopback ones.
    return client.post(
        "/oauth/token",
        data=form,
        headers=headers,
        base_url="https://localhost",
        environ_base={"REMOTE_ADDR": address},
    )


def test_per_client_id_across_addresses(limited_app):
    fresh, client = Fresh(), limited_app.test_client()
    service = create_client(limited_app)
    assert ask(client, service, fresh.addr(1)).status_code == 200
    assert ask(client, service, fresh.addr(2), post=True).status_code == 200  # either way in
    limited = ask(client, service, fresh.addr(3))
    assert_oauth_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    # Another client is not held back.
    assert ask(client, create_client(limited_app, name="other"), fresh.addr(4)).status_code == 200


def test_per_address_across_clients(limited_app):
    fresh, client = Fresh(), limited_app.test_client()
    wrong = [
        Credentials(create_client(limited_app, name=f"c{i}").client_id, "wrong") for i in range(3)
    ]
    for credentials in wrong[:2]:
        assert_oauth_error(ask(client, credentials, fresh.addr()), 401, "invalid_client")
    assert_oauth_error(ask(client, wrong[2], fresh.addr()), 429, "rate_limited")


def test_wrong_secrets_from_many_addresses_do_not_shut_a_client_out(limited_app):
    # A client's id is in every token it gets: anyone may know it.
    fresh, client = Fresh(), limited_app.test_client()
    service = create_client(limited_app)
    guess = Credentials(service.client_id, "wrong")
    for host in range(1, 6):
        assert_oauth_error(ask(client, guess, fresh.addr(host)), 401, "invalid_client")
    assert ask(client, service, fresh.addr(9)).status_code == 200


def test_refusals_from_one_address_do_not_shut_a_client_out(limited_app):
    # Past its own budget the address gets 429s; they spend nothing of the client's.
    fresh, client = Fresh(), limited_app.test_client()
    service = create_client(limited_app)
    guess = Credentials(service.client_id, "wrong")
    statuses = [ask(client, guess, fresh.addr(1)).status_code for _ in range(6)]
    assert statuses == [401, 401, 429, 429, 429, 429]
    assert ask(client, service, fresh.addr(9)).status_code == 200


@pytest.mark.parametrize(
    "form",
    [{"grant_type": "password"}, {}, {"grant_type": ["client_credentials"] * 2}],
)
def test_malformed_requests_in_a_client_s_name_do_not_shut_it_out(limited_app, form):
    fresh, client = Fresh(), limited_app.test_client()
    service = create_client(limited_app)
    for host in range(1, 6):
        response = client.post(
            "/oauth/token",
            data=form,
            headers=basic(service.client_id, "wrong"),
            base_url="https://localhost",
            environ_base={"REMOTE_ADDR": fresh.addr(host)},
        )
        assert response.status_code in (400, 401)
    assert ask(client, service, fresh.addr(9)).status_code == 200


def test_failed_client_authentications_at_introspection_are_limited_per_address(limited_app):
    fresh, client = Fresh(), limited_app.test_client()
    service = create_client(limited_app)
    guess = Credentials(service.client_id, "wrong")

    def introspect(credentials, host):
        return client.post(
            "/oauth/introspect",
            data={"token": "x"},
            headers=basic(*credentials),
            base_url="https://localhost",
            environ_base={"REMOTE_ADDR": fresh.addr(host)},
        )

    for _ in range(5):  # a resource server's own calls are not counted
        assert introspect(service, 1).json == {"active": False}
    for _ in range(2):
        assert_oauth_error(introspect(guess, 2), 401, "invalid_client")
    assert_oauth_error(introspect(guess, 2), 429, "rate_limited")
    assert_oauth_error(introspect(service, 2), 429, "rate_limited")  # the address, whoever
    assert introspect(service, 1).json == {"active": False}


def test_a_limit_that_does_not_parse_stops_the_start():
    with pytest.raises(ConfigError, match="RATELIMIT_OAUTH_TOKEN"):
        create_app({"APP_CONFIG": "testing", "RATELIMIT_OAUTH_TOKEN": "thirty a minute"})


def test_a_client_s_budget_holds_against_requests_at_once(limited_app):
    # A leaked secret used from many addresses at once: the budget is spent
    # in one atomic step as each is authenticated, not counted after the view.
    fresh, service = Fresh(), create_client(limited_app)

    def asks(host):
        return ask(limited_app.test_client(), service, fresh.addr(host)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(asks, range(1, 17)))
    assert sorted(statuses) == [200] * 2 + [429] * 14


def test_a_spent_client_budget_is_rfc_6749_shaped_with_retry_after(limited_app):
    fresh, client = Fresh(), limited_app.test_client()
    service = create_client(limited_app)
    for host in (1, 2):
        assert ask(client, service, fresh.addr(host)).status_code == 200
    limited = ask(client, service, fresh.addr(3))
    assert_oauth_error(limited, 429, "rate_limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["Cache-Control"] == "no-store"
