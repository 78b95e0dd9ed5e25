"""The outbox's promise under faults: every applied migration reaches billing at least once,
with the same id and the same content, across a relay SIGKILLed mid-delivery, a relay stopped by
SIGTERM, and a Redis restarted from its append-only file. Relays run as ``ussd relay``
processes where a process must die; each test takes seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ALICE, BRUNO, JOHN, seed_subscribers
from redis_servers import RedisServer
from relays import BILLING_TOKEN, SMS_KEY, make_relay, running, stubs, wait_for

from ussd.billing.stubs import Answer
from ussd.menu_files import load_menu
from ussd.rules import Channel
from ussd.service import UssdService
from ussd.settings import DEFAULT_MENUS_DIR, Settings
from ussd.store import Store, connect
from ussd.store.keys import EVENTS, SMS

pytestmark = pytest.mark.real_redis
ROOT = Path(__file__).resolve().parents[2]


def relay_process(redis_url: str, prefix: str, billing, sms, **env) -> subprocess.Popen:
    """``ussd relay`` in a process of its own, to the stubs, with short timeouts."""
    environ = {
        **os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": redis_url, "USSD_KEY_PREFIX": prefix,
        "USSD_BILLING_URL": f"{billing.url}events", "USSD_BILLING_TOKEN": BILLING_TOKEN,
        "USSD_SMS_URL": f"{sms.url}version1/messaging", "USSD_SMS_USERNAME": "sandbox",
        "USSD_SMS_API_KEY": SMS_KEY, "USSD_BILLING_TIMEOUT": "1", "USSD_RELAY_CLAIM_AFTER": "2.5",
        "USSD_RELAY_BACKOFF": "0.05", "USSD_RELAY_BACKOFF_MAX": "0.2",
        "USSD_RELAY_METRICS_PORT": "0", **env}
    return subprocess.Popen([sys.executable, "-m", "ussd.cli", "relay"], env=environ,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen) -> str:
    """Stop a relay process (SIGTERM) if still running; its output."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    return output


def test_a_relay_killed_mid_delivery_is_taken_over_with_the_same_event(
        real_service, real_redis_url, key_prefix):
    assert real_service.migrate(ALICE, "Tigre", Channel.WEB, client="portal").approved
    [waiting] = real_service.store.outbox.waiting(EVENTS)
    with stubs() as (billing, sms):
        billing.schedule(Answer(200, delay=30))  # the first call hangs: the relay dies in it
        first = relay_process(real_redis_url, key_prefix, billing, sms)
        second = None
        try:
            wait_for(lambda: billing.received, what="the first call")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            killed_at = time.monotonic()
            second = relay_process(real_redis_url, key_prefix, billing, sms)
            wait_for(lambda: sms.sent, seconds=15, what="the SMS")
            taken_after = time.monotonic() - killed_at
        finally:
            first.kill()
            first.communicate(timeout=10)
            output = finish(second) if second else ""
    assert [call.body for call in billing.received] == [waiting.entry.body.encode()] * 2
    assert [event["id"] for event in billing.applied] == [waiting.entry.event_id]
    assert len(sms.sent) == 1
    assert taken_after >= 2.5  # only once the dead relay's hold has lapsed
    assert "took over 1 entries of relays gone quiet" in output
    assert list(real_service.store.outbox.waiting(EVENTS)) == []


def test_sigterm_stops_a_relay_cleanly_and_hands_its_events_over(
        real_service, real_redis_url, key_prefix):
    assert real_service.migrate(BRUNO, "Aigle", Channel.WEB).approved
    with stubs() as (billing, sms):
        billing.go_down(60)
        process = relay_process(real_redis_url, key_prefix, billing, sms,
                                USSD_RELAY_BACKOFF="30", USSD_RELAY_BACKOFF_MAX="30")
        wait_for(lambda: billing.received, what="the first attempt")
        started = time.monotonic()
        output = finish(process)
        assert time.monotonic() - started < 5
    assert process.returncode == 0
    lines = output.splitlines()
    assert lines[0].startswith(
        f"Relaying the outbox of {real_redis_url} to {billing.url}events as ")
    assert lines[1] == f"SMS receipts through {sms.url}version1/messaging"
    assert "stopped; 1 undelivered entries handed to the other relays" in lines[-1]
    [waiting] = real_service.store.outbox.waiting(EVENTS)
    assert (waiting.holder, waiting.attempts) == ("returned", 1)


def test_nothing_is_lost_when_redis_restarts_from_its_append_only_file(key_prefix, clock):
    with RedisServer({"appendonly": "yes", "appendfsync": "always"}) as server, \
            stubs() as (billing, sms):
        client = connect(Settings(redis_url=server.url))
        store = Store(client, prefix=key_prefix)
        seed_subscribers(store)
        service = UssdService(load_menu(DEFAULT_MENUS_DIR), store,
                              Settings(key_prefix=key_prefix), clock=clock)
        billing.go_down(60)
        relay_client = connect(Settings(redis_url=server.url))  # the relay's own connections
        with running(make_relay(Store(relay_client, prefix=key_prefix), billing, sms)):
            assert service.migrate(ALICE, "Tigre", Channel.WEB).approved
            assert service.migrate(JOHN, "Novamix", Channel.APP).approved
            written = [json.loads(w.entry.body) for w in store.outbox.waiting(EVENTS)]
            wait_for(lambda: len(billing.received) >= 2, what="attempts during the outage")
            server.kill()  # a crash: what was acknowledged to the subscriber is on disk
            time.sleep(0.5)  # the relay meets a Redis that is not there
            server.restart()
            assert service.migrate(BRUNO, "Aigle", Channel.WEB).approved  # after the restart
            written += [e for e in (json.loads(w.entry.body)
                                    for w in store.outbox.waiting(EVENTS))
                        if e["msisdn"] == BRUNO]
            billing.go_down(0)
            wait_for(lambda: len(sms.sent) == 3, seconds=15, what="three SMS")
        client.close()
        relay_client.close()
    assert sorted(billing.applied, key=lambda e: e["id"]) == sorted(written,
                                                                     key=lambda e: e["id"])
    assert sorted(form["to"] for form in sms.sent) == sorted([ALICE, BRUNO, JOHN])


def test_the_dead_letters_are_exactly_what_billing_refused(real_service):
    refused = {JOHN}
    for target, msisdn in (("Tigre", ALICE), ("Aigle", BRUNO), ("Novamix", JOHN),
                           ("Dauphin", ALICE)):
        assert real_service.migrate(msisdn, target, Channel.WEB).approved
    with stubs() as (billing, sms):
        answer = billing.answer
        billing.answer = lambda request: (Answer(409, "closed account")
                                          if request.json()["msisdn"] in refused
                                          else answer(request))
        billing.schedule(Answer(503), Answer(drop=True))
        relays = [make_relay(real_service.store, billing, sms, name=f"r{n}") for n in range(2)]
        with running(relays[0]), running(relays[1]):
            wait_for(lambda: len(sms.sent) == 3 and list(real_service.store.outbox.dead(EVENTS)),
                     what="three SMS and a dead letter")
    [letter] = real_service.store.outbox.dead(EVENTS)
    assert json.loads(letter.entry.body)["msisdn"] == JOHN
    assert letter.reason == "HTTP 409: closed account"
    assert {event["msisdn"] for event in billing.applied} == {ALICE, BRUNO}
    assert len(billing.applied) == 3
    assert list(real_service.store.outbox.waiting(EVENTS)) == []
    assert list(real_service.store.outbox.waiting(SMS)) == []
