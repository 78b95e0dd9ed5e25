"""The billing commands (ussd/cli_billing.py): ussd relay, ussd events pending|dead|redrive, and
what ussd serve says about billing at start-up; exact output, on a real Redis."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from conftest import ALICE, BRUNO

from ussd import server
from ussd.billing.config import BillingSettings
from ussd.cli import main
from ussd.cli_billing import billing_banner
from ussd.rules import Channel
from ussd.settings import Settings
from ussd.store.keys import EVENTS

pytestmark = pytest.mark.real_redis
DEAD_AT = "2026-11-15T10:05:00+00:00"


@pytest.fixture
def env(real_redis_url, real_redis, key_prefix):
    return {"REDIS_URL": real_redis_url, "USSD_REDIS_URL": None, "USSD_KEY_PREFIX": key_prefix}


def run(args, env):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def two_events(real_service):
    """Alice to Tigre (web) and Bruno to Aigle (app): their entries."""
    assert real_service.migrate(ALICE, "Tigre", Channel.WEB, client="portal").approved
    assert real_service.migrate(BRUNO, "Aigle", Channel.APP, client="app").approved
    entries = {json.loads(w.entry.body)["msisdn"]: w.entry
               for w in real_service.store.outbox.waiting(EVENTS)}
    return entries[ALICE], entries[BRUNO]


def bury(real_service, entry, reason):
    """Dead-letter ``entry`` as a relay does (read by it first, if no relay has yet)."""
    real_service.store.outbox.create_groups()
    real_service.store.outbox.read((EVENTS,), "relay-1", 10, 0)
    assert real_service.store.outbox.bury(entry, reason, 3, DEAD_AT)


def test_events_pending_lists_every_waiting_event_and_why(env, real_service):
    alice, bruno = two_events(real_service)
    real_service.store.outbox.create_groups()
    real_service.store.outbox.read((EVENTS,), "relay-1", 10, 0)
    real_service.store.outbox.record_failure(alice, 2, "HTTP 503: down", DEAD_AT)
    result = run(["events", "pending"], env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert sorted(re.sub(r"waiting [0-9]+ s", "waiting <age>", line) for line in lines[:2]) \
        == sorted([
            f"{alice.event_id}  {ALICE} novamix -> tigre (web)  waiting <age>  attempts 2  "
            "held by relay-1  last error: HTTP 503: down",
            f"{bruno.event_id}  {BRUNO} tigre -> aigle (app)  waiting <age>  attempts 0  "
            "held by relay-1"])
    assert lines[2] == "2 events waiting"
    assert run(["events", "pending", "--queue", "sms"], env).output == "0 SMS receipts waiting\n"


def test_events_dead_and_redrive(env, real_service):
    alice, bruno = two_events(real_service)
    bury(real_service, bruno, "HTTP 422: unknown tariff")
    result = run(["events", "dead"], env)
    assert result.output == (
        f"{bruno.event_id}  {BRUNO} tigre -> aigle (app)  dead since {DEAD_AT} after 3 "
        "attempt(s): HTTP 422: unknown tariff\n1 event dead\n")
    refused = run(["events", "redrive", "no-such-id", bruno.event_id], env)
    assert refused.exit_code == 1
    assert refused.output == "Error: no dead event no-such-id: nothing sent again\n"
    assert len(list(real_service.store.outbox.dead(EVENTS))) == 1
    result = run(["events", "redrive", bruno.event_id], env)
    assert result.output == f"1 event sent again: {bruno.event_id}\n"
    assert run(["events", "dead"], env).output == "0 events dead\n"
    waiting = {w.entry.event_id: w for w in real_service.store.outbox.waiting(EVENTS)}
    assert set(waiting) == {alice.event_id, bruno.event_id}
    assert waiting[bruno.event_id].entry.body == bruno.body  # as first written
    assert waiting[bruno.event_id].holder is None  # any relay reads it afresh


def test_events_redrive_all_and_its_usage(env, real_service):
    alice, bruno = two_events(real_service)
    bury(real_service, alice, "HTTP 400: bad")
    bury(real_service, bruno, "HTTP 400: bad")
    assert run(["events", "redrive"], env).exit_code == 2
    assert "give event ids, or --all" in run(["events", "redrive"], env).output
    result = run(["events", "redrive", "--all"], env)
    assert result.output.startswith("2 events sent again: ")
    assert sorted(result.output.strip().split(": ")[1].split(", ")) == sorted(
        [alice.event_id, bruno.event_id])
    assert run(["events", "redrive", "--all"], env).output == "0 events sent again\n"


def test_the_event_commands_need_a_redis():
    result = run(["events", "pending"], {"REDIS_URL": None, "USSD_REDIS_URL": None})
    assert result.exit_code == 1
    assert result.output == ("Error: REDIS_URL is not set: the outbox lives in Redis (with the "
                             "embedded store, ussd serve runs the relay itself when "
                             "USSD_BILLING_URL is set)\n")


def test_the_relay_needs_a_billing_url(env):
    result = run(["relay"], {**env, "USSD_BILLING_URL": None})
    assert result.exit_code == 1
    assert result.output == ("Error: USSD_BILLING_URL is not set: the relay has nowhere to "
                             "deliver the outbox's events\n")


@pytest.mark.parametrize(("settings", "lines"), [
    (Settings(redis_url="redis://r:6379/0"),
     ["Billing events wait in the Redis outbox until `ussd relay` delivers them "
      "(ussd events pending: what waits)"]),
    (Settings(), ["no USSD_BILLING_URL: migrations stay in this process's outbox and reach no "
                  "billing"]),
    (Settings(billing=BillingSettings(url="http://127.0.0.1:8090/events")),
     ["Relaying migrations to billing at http://127.0.0.1:8090/events (in this process)",
      "no USSD_SMS_URL: no SMS will be sent"]),
    (Settings(billing=BillingSettings(url="http://127.0.0.1:8090/events",
                                      sms_url="http://127.0.0.1:8091/sms")),
     ["Relaying migrations to billing at http://127.0.0.1:8090/events (in this process)",
      "SMS receipts through http://127.0.0.1:8091/sms"]),
])
def test_what_serve_says_about_billing(settings, lines):
    assert billing_banner(settings) == lines


def test_serve_starts_with_a_billing_token_and_says_no_sms_will_be_sent(monkeypatch):
    """USSD_BILLING_TOKEN used to stop it: "no gateway dialect 'billing'"."""
    served = []

    class Server:
        def serve(self, target_loader):
            served.append(target_loader.args[0])

    monkeypatch.setattr(server, "granian_server", lambda *args, **kwargs: Server())
    result = run(["serve"], {"REDIS_URL": None, "USSD_REDIS_URL": None,
                             "USSD_BILLING_URL": "http://127.0.0.1:8090/events",
                             "USSD_BILLING_TOKEN": "billing-token-0123456789"})
    assert result.exit_code == 0, result.output
    assert "Relaying migrations to billing at http://127.0.0.1:8090/events (in this process)\n" \
           "no USSD_SMS_URL: no SMS will be sent\n" in result.output
    [settings] = served
    assert settings.billing.token == "billing-token-0123456789"
    assert settings.gateway_secrets == {}


def test_a_dead_sms_is_described_by_its_recipient(env, real_service):
    real_service.store.outbox.create_groups()
    receipt = json.dumps({"id": "e-1", "to": ALICE, "message": "m"})
    real_service.store.redis.xadd(real_service.store.keys.queue("sms", "00"), {"sms": receipt})
    [entry] = real_service.store.outbox.read(("sms",), "relay-1", 10, 0)
    assert real_service.store.outbox.bury(entry, "provider status 406 UserInBlacklist", 1, DEAD_AT)
    assert run(["events", "dead", "--queue", "sms"], env).output == (
        f"e-1  SMS to {ALICE}  dead since {DEAD_AT} after 1 attempt(s): provider status 406 "
        "UserInBlacklist\n1 SMS receipt dead\n")


def test_the_commands_name_the_queues_as_the_key_space_does():
    """cli_billing writes the names out (the store package would load prometheus_client too
    early for ussd serve): they must stay the key space's."""
    from ussd import cli_billing
    from ussd.store.keys import QUEUES

    assert (cli_billing.EVENTS, cli_billing.SMS) == QUEUES
