"""A write sent to Redis and no answer: the subscriber is told the truth, never "unavailable"
for a migration that was applied (docs/reliability.md, "Unknown outcomes").

A delaying TCP proxy (tests/delaying_proxy.py) sits between the app and a ``redis-server`` of
the test's own: it holds the migration script in transit (a stall of every connection to
Redis, as an fsync stall or another client's slow command makes one), delivers it and cuts
the answer, or loses it. The app's client is built by ``store.connect`` as the server builds
it. What is stored is read straight from the server, around the proxy.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace

import pytest
import redis
from conftest import ALICE, JOHN, NOW, THIS_MONTH, seed_subscribers
from delaying_proxy import DelayingProxy
from handsets import Handset, served_dialects, test_client_transport
from redis_servers import RedisServer
from relays import make_relay, running, stubs

from ussd.limits import Limits
from ussd.settings import Settings
from ussd.store import Store, connect
from ussd.store.scripts import MIGRATE_SCRIPT, SAVE_SCRIPT
from ussd.web import create_app

pytestmark = pytest.mark.real_redis

MIGRATE = hashlib.sha1(MIGRATE_SCRIPT.encode()).hexdigest().encode()  # in its EVALSHA
SAVE = hashlib.sha1(SAVE_SCRIPT.encode()).hexdigest().encode()
PROFILES = {
    ALICE: "Choisissez votre nouveau profil:\n1. Novamix (actuel)\n2. Tigre\n3. Dauphin\n"
           "4. Aigle\n0 Retour | 00 Accueil",
    JOHN: "Choose your new profile:\n1. Novamix\n2. Tigre\n3. Dauphin\n4. Aigle (current)\n"
          "0 Back | 00 Home",
}
MIGRATED = {
    ALICE: ("Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la "
            "limite de leur validité. Migrations restantes ce mois: 2.", True),
    JOHN: ("Your profile is now Tigre. You keep your current benefits within their validity. "
           "Migrations left this month: 2.", True),
}
PROCESSING = {
    ALICE: ("Votre demande est en cours de traitement. Un SMS vous confirmera votre nouveau "
            "profil dès qu'il sera actif.", True),
    JOHN: ("Your request is being processed. An SMS will confirm your new profile once it is "
           "active.", True),
}
# The SMS receipt the honest screen promises ("an SMS will confirm"), as the relay sends it.
RECEIPTS = {
    ALICE: "Orange: votre profil Tigre est actif. Vos avantages en cours sont conservés. "
           "Migrations restantes ce mois: 2 sur 3.",
    JOHN: "Orange: your Tigre profile is now active. Your current benefits are kept. "
          "Migrations left this month: 2 of 3.",
}
# Short timings for the tables below (a stall of STALL_SHORT is settled, one of STALL_LONG is
# not), so that every dialect runs in seconds; the issue's own figures run once, further down.
WAIT = 0.6
FAST = {"redis_timeout": 0.4, "limits": Limits(unknown_outcome_wait=WAIT)}
STALL_SHORT, STALL_LONG = 0.9, 2.5


@pytest.fixture(scope="module")
def server():
    with RedisServer({"appendonly": "yes", "appendfsync": "always"}) as server:
        yield server


@pytest.fixture
def proxy(server):
    with DelayingProxy(server.port) as proxy:
        yield proxy


@pytest.fixture
def stored(server, key_prefix):
    """The store, read straight from the server (around the proxy)."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    store = Store(client, prefix=key_prefix)
    seed_subscribers(store)
    yield store
    keys = list(client.scan_iter(f"{key_prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def app_through(key_prefix):
    """``app_through(proxy, **changes)``: the application on the proxy (its settings with
    ``changes``), with the client ``ussd serve`` would build; its connections closed
    afterwards."""
    apps = []

    def build(proxy: DelayingProxy, **changes):
        settings = replace(Settings(key_prefix=key_prefix), **changes)
        client = connect(replace(settings, redis_url=proxy.url))
        apps.append(create_app(settings, redis_client=client, clock=lambda: NOW))
        return apps[-1]

    yield build
    for app in apps:
        app.extensions["ussd"].store.close()


def at_confirmation(app, dialect, msisdn) -> Handset:
    """A session of ``msisdn`` on the confirmation of Tigre."""
    phone = Handset(test_client_transport(app.test_client()), dialect, msisdn)
    phone.dial()
    assert phone.send("1") == (PROFILES[msisdn], False)
    assert phone.send("2")[0].split(":")[0] in ("Migration vers Tigre", "Migration to Tigre")
    return phone


def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def migrations(stored: Store, msisdn: str) -> tuple[str, int, list[str]]:
    """The profile, this month's count and the history's targets, as Redis holds them."""
    record = stored.admin.describe(msisdn, THIS_MONTH)
    return (record["profile"], record["migrations_this_month"],
            [entry["to"] for entry in record["history"]])


def wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.02)


DIALECTS = served_dialects()
SUBSCRIBERS = [ALICE, JOHN]


@pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])
@pytest.mark.parametrize("msisdn", SUBSCRIBERS, ids=["fr", "en"])
def test_a_confirmation_held_in_transit_is_told_as_it_turned_out(proxy, stored, app_through,
                                                                 dialect, msisdn):
    """Held longer than the Redis timeout, not longer than the wait: sent again, settled."""
    app = app_through(proxy, **FAST)
    phone = at_confirmation(app, dialect, msisdn)
    proxy.stall_on(MIGRATE, STALL_SHORT)
    screen, elapsed = timed(lambda: phone.send("1"))
    assert screen == MIGRATED[msisdn]
    assert STALL_SHORT - 0.1 < elapsed < STALL_SHORT + FAST["redis_timeout"] + 0.5
    wait_for(proxy.stall_over)
    time.sleep(0.1)  # the first copy, delivered at the end of the stall, changes nothing
    assert migrations(stored, msisdn) == ("tigre", 1, ["tigre"])


@pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])
@pytest.mark.parametrize("msisdn", SUBSCRIBERS, ids=["fr", "en"])
def test_a_confirmation_not_settled_in_time_gets_the_honest_screen(proxy, stored, app_through,
                                                                  dialect, msisdn, caplog):
    """Held past the wait: "being processed", in the subscriber's language; applied once
    when the stall ends, as the screen said it would be."""
    caplog.set_level(logging.INFO)
    app = app_through(proxy, **FAST)
    phone = at_confirmation(app, dialect, msisdn)
    proxy.stall_on(MIGRATE, STALL_LONG)
    screen, elapsed = timed(lambda: phone.send("1"))
    assert screen == PROCESSING[msisdn]
    # The first copy's timeout, the wait, and at most one more timeout of a copy sent again.
    assert elapsed < FAST["redis_timeout"] * 2 + WAIT + 0.3
    assert migrations(stored, msisdn) == ("novamix" if msisdn == ALICE else "aigle", 0, [])
    wait_for(proxy.stall_over)
    wait_for(lambda: migrations(stored, msisdn)[1] == 1)
    time.sleep(0.2)  # every copy sent is delivered by now: one migration, never two
    assert migrations(stored, msisdn) == ("tigre", 1, ["tigre"])
    masked = f"{msisdn[:4]}*******{msisdn[-3:]}"
    lines = [r.getMessage() for r in caplog.records]
    assert (f"migration outcome unknown on hop of {masked} (no answer from Redis, sent again "
            f"for 0.6 s): told it is being processed" in lines)
    pending = [line for line in lines if line.startswith("hop ") and "outcome=pending" in line]
    assert len(pending) == 1 and "end=True" in pending[0]


@pytest.mark.parametrize("msisdn", SUBSCRIBERS, ids=["fr", "en"])
def test_the_sms_the_honest_screen_promises_arrives_once(proxy, stored, app_through, msisdn):
    """"Being processed, an SMS will confirm": the migration applied when the stall ends, the
    relay hands it to billing (loopback stubs), and the subscriber gets one SMS, in their
    language, with what the success screen would have said."""
    app = app_through(proxy, **FAST)
    phone = at_confirmation(app, DIALECTS[0], msisdn)
    proxy.stall_on(MIGRATE, STALL_LONG)
    assert phone.send("1") == PROCESSING[msisdn]
    wait_for(proxy.stall_over)
    wait_for(lambda: migrations(stored, msisdn)[1] == 1)
    with stubs() as (billing, sms), running(make_relay(stored, billing, sms)):
        wait_for(lambda: sms.received, seconds=10)
        time.sleep(0.5)  # a second event or SMS, were there one, would have come by now
    [event] = billing.applied
    assert (event["msisdn"], event["to"], event["session"]) == (msisdn, "tigre",
                                                                phone.session_id)
    [text] = sms.received
    assert (text.form()["to"], text.form()["message"]) == (msisdn, RECEIPTS[msisdn])


@pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])
@pytest.mark.parametrize("fault", ["cut_reply", "lose"])
def test_a_confirmation_whose_answer_or_request_is_lost(proxy, stored, app_through, dialect,
                                                        fault):
    """Applied and the answer lost, or lost before Redis: the truth either way, applied once."""
    app = app_through(proxy, **FAST)
    phone = at_confirmation(app, dialect, ALICE)
    getattr(proxy, f"{fault}_on")(MIGRATE)
    assert phone.send("1") == MIGRATED[ALICE]
    assert [kind for kind, _ in proxy.fired] == [fault]
    assert migrations(stored, ALICE) == ("tigre", 1, ["tigre"])


@pytest.mark.parametrize("dialect", DIALECTS, ids=[d.name for d in DIALECTS])
def test_a_screen_change_held_in_transit_goes_on(proxy, stored, app_through, dialect):
    """Not only migrations: a hop whose record was written late still shows its next screen."""
    app = app_through(proxy, **FAST)
    phone = Handset(test_client_transport(app.test_client()), dialect, ALICE)
    phone.dial()
    proxy.stall_on(SAVE, STALL_SHORT)
    assert phone.send("1") == (PROFILES[ALICE], False)
    wait_for(proxy.stall_over)
    assert phone.send("2")[0].startswith("Migration vers Tigre: gratuite.")


def test_the_issue_s_own_figures(proxy, stored, app_through):
    """The default settings (1 s timeout), the migration held 2.5 s: told it is Tigre, once."""
    dialect = DIALECTS[0]
    app = app_through(proxy)
    assert (Settings().redis_timeout, Settings().limits.unknown_outcome_wait) == (1.0, 1.5)
    phone = at_confirmation(app, dialect, ALICE)
    proxy.stall_on(MIGRATE, 2.5)
    screen, elapsed = timed(lambda: phone.send("1"))
    assert screen == MIGRATED[ALICE]
    assert 2.4 < elapsed < 3.2
    time.sleep(0.2)
    assert migrations(stored, ALICE) == ("tigre", 1, ["tigre"])


# --- the HTTP API's migration: the same rule, a 202 when the outcome is not known in time ------

@pytest.fixture
def api_through(app_through, tmp_path, api_document):
    """``api_through(proxy, **timings)``: the API on the proxy, called as its clients call it
    (every answer checked against its OpenAPI document)."""
    from api_calls import ApiCaller, write_clients_file

    clients = write_clients_file(tmp_path / "clients.toml")
    return lambda proxy, **timings: ApiCaller(
        app_through(proxy, api_clients=clients, **timings).test_client(), api_document)


ALICE_TO_TIGRE = {
    "msisdn": ALICE, "reason": "approved",
    "migration": {"at": NOW.isoformat(timespec="seconds"), "from": "Novamix", "to": "Tigre",
                  "channel": "web", "client": "portal"},
    "required": 2500, "consumed": 3000, "migrations_this_month": 1, "migrations_left": 2,
}


@pytest.mark.parametrize("fault", ["stall", "cut_reply", "lose"])
def test_an_api_migration_without_an_answer_is_told_as_it_turned_out(proxy, stored, api_through,
                                                                      fault):
    api = api_through(proxy, **FAST)
    if fault == "stall":
        proxy.stall_on(MIGRATE, STALL_SHORT)
    else:
        getattr(proxy, f"{fault}_on")(MIGRATE)
    response = api.migrate(ALICE, "Tigre", key="unknown-1")
    assert (response.status_code, response.get_json()) == (201, ALICE_TO_TIGRE)
    assert "Idempotent-Replayed" not in response.headers  # the first answer, not a replay
    wait_for(proxy.stall_over)
    time.sleep(0.1)
    assert migrations(stored, ALICE) == ("tigre", 1, ["tigre"])


def test_an_api_migration_not_settled_in_time_is_202_and_learnt_by_asking_again(
        proxy, stored, api_through):
    """Never a 5xx for a migration that may be applied: 202, Retry-After; the same request
    again, once the stall is over, gets the outcome (applied once, by the first copy)."""
    api = api_through(proxy, **FAST)
    proxy.stall_on(MIGRATE, STALL_LONG)
    response = api.migrate(ALICE, "Tigre", key="unknown-2")
    assert (response.status_code, response.headers["Retry-After"], response.get_json()) == (
        202, "2", {"msisdn": ALICE, "reason": "pending", "retry_after": 2,
                   "detail": "The migration was sent and no answer came in time: it may be "
                             "applied, once at most. Send this request again with the same "
                             "Idempotency-Key to learn its outcome."})
    wait_for(proxy.stall_over)
    wait_for(lambda: migrations(stored, ALICE)[1] == 1)
    again = api.migrate(ALICE, "Tigre", key="unknown-2")
    assert (again.status_code, again.headers["Idempotent-Replayed"], again.get_json()) == (
        201, "true", ALICE_TO_TIGRE)
    assert migrations(stored, ALICE) == ("tigre", 1, ["tigre"])
