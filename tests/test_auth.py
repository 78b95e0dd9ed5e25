"""Only the gateway in: secrets, allow-lists, and the start-up refusal of an open gateway.

A refused request must touch no state: the Redis client is wrapped so that any use of it
after start-up is seen, and no key may appear under the test's prefix.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import replace

import fakeredis
import pytest
from click.testing import CliRunner
from conftest import ALICE
from handsets import GATEWAYS, Screen

from ussd.errors import ConfigError
from ussd.settings import GatewaySecrets, Settings
from ussd.web import create_app

DRIVERS = tuple(GATEWAYS.values())
MAIN = Screen("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
              "\n4. Language / Langue", end=False)
TOKENS = {name: f"{name}-token-0123456789" for name in ("africastalking", "hubtel", "flares")}
PASSWORD = "correct-horse-battery"
ALLOWED = ("10.1.0.0/16", "2001:db8::/32", "192.0.2.7")


def secrets(**changes) -> dict[str, GatewaySecrets]:
    """Every dialect with a token, basic credentials and an allow-list."""
    return {
        name: GatewaySecrets(**{"token": token, "basic_auth": f"{name}:{PASSWORD}",
                                "allow": ALLOWED, **changes})
        for name, token in TOKENS.items()
    }


class WatchedRedis:
    """A Redis client that records every use made of it once ``watching`` is on."""

    def __init__(self, inner):
        self.inner = inner
        self.used: list[str] = []
        self.watching = False

    def __getattr__(self, name):
        if self.watching:
            self.used.append(name)
        return getattr(self.inner, name)


@pytest.fixture
def watched(redis_client):
    return WatchedRedis(redis_client)


@pytest.fixture
def secured(watched, settings, clock, store):
    """An app whose every dialect wants a secret and an address on its allow-list."""
    app = create_app(replace(settings, gateway_secrets=secrets()), redis_client=watched,
                     clock=clock)
    watched.watching = True
    return app


@pytest.fixture(params=DRIVERS, ids=lambda driver: driver.NAME)
def driver(request):
    return request.param


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def keys_under(redis_client, prefix: str) -> set[str]:
    return set(redis_client.scan_iter(f"{prefix}:*"))


@pytest.fixture
def nothing_touched(watched, redis_client, key_prefix):
    """Asserts, after the test, that no Redis command ran and no key appeared."""
    before = keys_under(redis_client, key_prefix)
    yield
    assert watched.used == []
    assert keys_under(redis_client, key_prefix) == before


# --- accepted ---------------------------------------------------------------------------


def test_the_token_as_a_bearer(secured, driver):
    session = driver(secured.test_client(), ALICE, headers=bearer(TOKENS[driver.NAME]),
                     remote_addr="10.1.2.3")
    assert session.dial() == MAIN


def test_the_token_in_the_path(secured, driver):
    session = driver(secured.test_client(), ALICE, path=f"{driver.PATH}/{TOKENS[driver.NAME]}",
                     remote_addr="10.1.2.3")
    assert session.dial() == MAIN
    session.send("1")
    session.hang_up()  # the events and aborts take the token in the path too


def test_basic_credentials(secured, driver):
    session = driver(secured.test_client(), ALICE, headers=basic(driver.NAME, PASSWORD),
                     remote_addr="10.1.2.3")
    assert session.dial() == MAIN


@pytest.mark.parametrize("address", ["10.1.255.254", "192.0.2.7", "2001:db8::5",
                                     "::ffff:10.1.0.9"])
def test_every_allowed_address(secured, driver, address):
    session = driver(secured.test_client(), ALICE, headers=bearer(TOKENS[driver.NAME]),
                     remote_addr=address)
    assert session.dial() == MAIN


# --- refused, and nothing touched ---------------------------------------------------------


def refused(driver, app, status: int, **options):
    session = driver(app.test_client(), ALICE, **options)
    response = session.request(session.first_hop())
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    return response


@pytest.mark.parametrize("headers", [
    {},
    bearer("wrong-token-0123456789"),
    bearer(""),
    basic("africastalking", "wrong-password-0123"),
    basic("intruder", PASSWORD),
    {"Authorization": "Token africastalking-token-0123456789"},
], ids=["none", "wrong bearer", "empty bearer", "wrong password", "wrong user", "odd scheme"])
def test_missing_or_wrong_secret_is_401(secured, driver, nothing_touched, headers):
    response = refused(driver, secured, 401, headers=headers, remote_addr="10.1.2.3")
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer realm="ussd-{driver.NAME}", Basic realm="ussd-{driver.NAME}"')
    assert response.get_data(as_text=True) == "unauthorized\n"


def test_a_secret_that_passed_lets_no_other_header_in(secured, driver):
    """The guard remembers the gateway's header once it has passed; every other header still
    meets the full check, in any order, on the same app."""
    token = TOKENS[driver.NAME]
    for _ in range(2):
        session = driver(secured.test_client(), ALICE, headers=bearer(token),
                         remote_addr="10.1.2.3")
        assert session.dial() == MAIN
    for headers in (bearer(token + "x"), bearer(token[:-1]), basic(driver.NAME, "wrong"),
                    {"Authorization": f"Token {token}"}, {}):
        refused(driver, secured, 401, headers=headers, remote_addr="10.1.2.3")
    refused(driver, secured, 403, headers=bearer(token), remote_addr="10.9.9.9")
    refused(driver, secured, 401, path=f"{driver.PATH}/not-the-token", headers=bearer(token),
            remote_addr="10.1.2.3")
    for spelling in (f"Bearer {token}", f"bearer {token}", f"BEARER {token}") * 4:
        session = driver(secured.test_client(), ALICE, headers={"Authorization": spelling},
                         remote_addr="10.1.2.3")
        assert session.dial() == MAIN


def test_another_gateways_token_is_401(secured, driver, nothing_touched):
    other = next(name for name in TOKENS if name != driver.NAME)
    refused(driver, secured, 401, headers=bearer(TOKENS[other]), remote_addr="10.1.2.3")
    refused(driver, secured, 401, path=f"{driver.PATH}/{TOKENS[other]}",
            remote_addr="10.1.2.3")


def test_a_wrong_path_token_is_401_whatever_the_header(secured, driver, nothing_touched):
    refused(driver, secured, 401, path=f"{driver.PATH}/not-the-token",
            headers=bearer(TOKENS[driver.NAME]), remote_addr="10.1.2.3")


@pytest.mark.parametrize("address", ["10.2.0.1", "192.0.2.8", "127.0.0.1", "2001:db9::1",
                                     "::ffff:192.168.0.1"])
def test_an_address_off_the_allow_list_is_403_even_with_the_secret(
        secured, driver, nothing_touched, address):
    response = refused(driver, secured, 403, headers=bearer(TOKENS[driver.NAME]),
                       remote_addr=address)
    assert response.get_data(as_text=True) == "forbidden\n"


def test_a_forged_ending_cannot_close_a_session(secured, driver, watched, redis_client,
                                                key_prefix, store):
    session = driver(secured.test_client(), ALICE, headers=bearer(TOKENS[driver.NAME]),
                     remote_addr="10.1.2.3")
    session.dial()
    key = store.keys.session(ALICE, driver.NAME, session.session_id)
    watched.used.clear()
    forger = driver(secured.test_client(), ALICE, session_id=session.session_id,
                    remote_addr="10.1.2.3")
    with pytest.raises(AssertionError):
        forger.hang_up()  # the driver expects the acknowledgement a gateway gets
    assert watched.used == []
    assert redis_client.exists(key)


def test_the_token_route_exists_only_with_a_token(redis_client, settings, clock, store, driver):
    only_basic = {name: GatewaySecrets(basic_auth=f"{name}:{PASSWORD}") for name in TOKENS}
    app = create_app(replace(settings, gateway_secrets=only_basic), redis_client=redis_client,
                     clock=clock)
    session = driver(app.test_client(), ALICE, path=f"{driver.PATH}/anything")
    assert session.request(session.first_hop()).status_code == 404
    response = refused(driver, app, 401)
    assert response.headers["WWW-Authenticate"] == f'Basic realm="ussd-{driver.NAME}"'


def test_behind_a_proxy_the_forwarded_address_is_checked(redis_client, settings, clock, store):
    driver = DRIVERS[0]
    token = bearer(TOKENS[driver.NAME])
    proxied = create_app(replace(settings, gateway_secrets=secrets(), proxy_hops=1),
                         redis_client=redis_client, clock=clock)
    session = driver(proxied.test_client(), ALICE,
                     headers={**token, "X-Forwarded-For": "10.1.0.1"}, remote_addr="172.17.0.1")
    assert session.dial() == MAIN
    refused(driver, proxied, 403, headers={**token, "X-Forwarded-For": "10.9.0.1"},
            remote_addr="10.1.0.1")
    direct = create_app(replace(settings, gateway_secrets=secrets()),
                        redis_client=redis_client, clock=clock)
    refused(driver, direct, 403, headers={**token, "X-Forwarded-For": "10.1.0.1"},
            remote_addr="172.17.0.1")


@pytest.mark.parametrize(("forwarded", "allow", "status", "logged"), [
    ("+2250700000001", ("10.0.0.0/8",), 403, "-"),
    ("1.2.3.4 0700000008 Bearer abc", ("10.0.0.0/8",), 403, "-"),
    ("::1%+2250700000001", ("10.0.0.0/8", "::/0"), 403, "-"),  # was allowed by ::/0
    ("+2250700000001", (), 401, "-"),
    ("10.9.0.1", ("10.1.0.0/16",), 403, "10.9.0.1"),
    ("2001:db8::1", (), 401, "2001:db8::1"),
])
def test_behind_a_proxy_a_forwarded_text_is_never_logged_nor_allowed(
        redis_client, settings, clock, store, caplog, forwarded, allow, status, logged):
    """Before, ``from=`` was the caller's X-Forwarded-For as it came: a number, a token."""
    driver = GATEWAYS["flares"]
    proxied = create_app(replace(settings, gateway_secrets=secrets(allow=allow), proxy_hops=1),
                         redis_client=redis_client, clock=clock)
    caplog.set_level(logging.WARNING, logger="ussd.auth")
    token = TOKENS["flares"] if status == 403 else "wrong-token-0123456789"
    refused(driver, proxied, status, remote_addr="10.1.0.1",
            headers={**bearer(token), "X-Forwarded-For": forwarded})
    assert [r.getMessage() for r in caplog.records if r.name == "ussd.auth"] == [
        f"refused gateway=flares status={status} from={logged}"]


# --- start-up -----------------------------------------------------------------------------


PRODUCTION = "redis://127.0.0.1:6379/9"


def build(settings: Settings):
    return create_app(settings, redis_client=fakeredis.FakeRedis(decode_responses=True))


def test_a_redis_start_with_an_open_gateway_is_refused(settings):
    with pytest.raises(ConfigError, match="USSD_AFRICASTALKING_TOKEN or "
                                          "USSD_AFRICASTALKING_BASIC_AUTH"):
        build(replace(settings, redis_url=PRODUCTION))
    one_missing = {k: v for k, v in secrets().items() if k != "flares"}
    with pytest.raises(ConfigError, match=r"no secret: flares\."):
        build(replace(settings, redis_url=PRODUCTION, gateway_secrets=one_missing))


def test_the_refusal_also_guards_the_wsgi_module(monkeypatch):
    import importlib
    import sys

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    for name in TOKENS:
        monkeypatch.delenv(f"USSD_{name.upper()}_TOKEN", raising=False)
        monkeypatch.delenv(f"USSD_{name.upper()}_BASIC_AUTH", raising=False)
    monkeypatch.delenv("USSD_INSECURE", raising=False)
    monkeypatch.delitem(sys.modules, "ussd.wsgi", raising=False)
    with pytest.raises(ConfigError, match="no secret"):
        importlib.import_module("ussd.wsgi")


def test_a_redis_start_with_every_gateway_secured(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="ussd"):
        build(replace(settings, redis_url=PRODUCTION, gateway_secrets=secrets()))
    assert "OPEN" not in caplog.text


def test_a_redis_start_with_only_the_secured_dialects_enabled(settings):
    build(replace(settings, redis_url=PRODUCTION, gateways=("hubtel",),
                  gateway_secrets={"hubtel": GatewaySecrets(token=TOKENS["hubtel"])}))


def test_told_it_is_insecure_it_starts_and_says_so(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="ussd"):
        build(replace(settings, redis_url=PRODUCTION, insecure=True))
    assert "OPEN, no secret checked: africastalking, hubtel, flares" in caplog.text


def test_the_embedded_store_may_run_open_but_says_so(settings, caplog):
    with caplog.at_level(logging.WARNING, logger="ussd"):
        build(settings)
    assert "OPEN, no secret checked: africastalking, hubtel, flares" in caplog.text


@pytest.mark.parametrize("change", [
    {"gateways": ("hubtel", "ussdbox")},
    {"gateway_secrets": {"ussdbox": GatewaySecrets(token="x" * 20)}},
], ids=["USSD_GATEWAYS", "USSD_<DIALECT>_TOKEN"])
def test_settings_naming_no_dialect_are_refused(settings, change):
    with pytest.raises(ConfigError, match="no gateway dialect 'ussdbox'"):
        build(replace(settings, **change))


def test_serve_refuses_before_touching_redis():
    from ussd.cli import main

    result = CliRunner().invoke(main, ["serve", "--port", "1"], env={
        "REDIS_URL": "redis://127.0.0.1:1/0", "USSD_INSECURE": "",
        **{f"USSD_{name.upper()}_{kind}": "" for name in TOKENS
           for kind in ("TOKEN", "BASIC_AUTH")},
    })
    assert result.exit_code == 1
    assert "no secret: africastalking, hubtel, flares" in result.output
    assert "Using Redis" not in result.output


# --- settings from the environment ------------------------------------------------------


def test_secrets_from_the_environment():
    settings = Settings.from_env({
        "USSD_AFRICASTALKING_TOKEN": TOKENS["africastalking"],
        "USSD_HUBTEL_BASIC_AUTH": f"hubtel:{PASSWORD}",
        "USSD_HUBTEL_ALLOW": "10.1.0.0/16, 192.0.2.7",
        "USSD_FLARES_TOKEN": "",  # compose passes unset variables as empty: not a secret
        "USSD_GATEWAYS": "africastalking, Hubtel",
        "USSD_INSECURE": "1",
        "USSD_PROXY_HOPS": "2",
    })
    assert settings.gateways == ("africastalking", "hubtel")
    assert settings.gateway_secrets["africastalking"].token == TOKENS["africastalking"]
    hubtel = settings.gateway_secrets["hubtel"]
    assert hubtel.basic_auth == f"hubtel:{PASSWORD}"
    assert [str(network) for network in hubtel.allow] == ["10.1.0.0/16", "192.0.2.7/32"]
    assert "flares" not in settings.gateway_secrets
    assert (settings.insecure, settings.proxy_hops) == (True, 2)


def test_secrets_never_show_in_the_settings_repr():
    settings = Settings.from_env({"USSD_HUBTEL_TOKEN": TOKENS["hubtel"],
                                  "USSD_FLARES_BASIC_AUTH": f"flares:{PASSWORD}"})
    assert TOKENS["hubtel"] not in repr(settings)
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in repr(settings.gateway_secrets)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("USSD_HUBTEL_TOKEN", "short", "at least 16 characters"),
    ("USSD_HUBTEL_BASIC_AUTH", PASSWORD, "must be user:password"),
    ("USSD_HUBTEL_BASIC_AUTH", ":" + PASSWORD, "must be user:password"),
    ("USSD_HUBTEL_BASIC_AUTH", "hubtel:short", "must be user:password"),
    ("USSD_HUBTEL_ALLOW", "10.1.0.0/16,10.300.0.0/16", "USSD_HUBTEL_ALLOW: not an IP"),
    ("USSD_PROXY_HOPS", "two", "USSD_PROXY_HOPS must be a whole number"),
])
def test_bad_secret_settings_are_refused_at_start(name, value, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({name: value})
