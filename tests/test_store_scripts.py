"""The scripts loaded again when Redis has lost them (ussd/store/scripts.py): after a restart
(here ``SCRIPT FLUSH``), a migration, a consumption write and an outbox operation still do
what they should; and a script Redis keeps refusing is loaded again once, not for ever.

On a ``redis-server`` of its own: the machine's shared server must not lose its scripts.
"""

from __future__ import annotations

import json

import pytest
import redis.exceptions
from conftest import ALICE, BRUNO, LAST_MONTH, seed_subscribers

from ussd.consumption import Increment, MonthTotal
from ussd.rules import Channel
from ussd.service import UssdService
from ussd.settings import Settings
from ussd.store import Store, connect
from ussd.store.keys import EVENTS, SMS, bucket_of, consumption_field
from ussd.store.scripts import Scripts

pytestmark = pytest.mark.real_redis


@pytest.fixture
def store(own_redis_server, key_prefix):
    """The store on its own server, its scripts loaded at start-up as ``ussd serve`` does."""
    store = Store(connect(Settings(redis_url=own_redis_server.url)), prefix=key_prefix)
    assert store.load_scripts()
    seed_subscribers(store)
    yield store
    store.redis.flushdb()
    store.close()


@pytest.fixture
def service(store, menu, clock):
    return UssdService(menu, store, Settings(key_prefix=store.keys.prefix), clock=clock)


def test_a_migration_after_redis_lost_the_scripts(store, service):
    store.redis.script_flush()
    assert service.migrate(ALICE, "Tigre", Channel.WEB).approved
    assert store.redis.hget(store.keys.subscriber(ALICE), "p") == "tigre"
    assert store.redis.xlen(store.keys.queue(EVENTS, bucket_of(ALICE))) == 1


def test_a_consumption_write_after_redis_lost_the_scripts(store):
    store.redis.script_flush()
    counted = store.consumption.feed([MonthTotal(BRUNO, "2026-09", 700)],
                                     [Increment("r-1", ALICE, 250, LAST_MONTH)], ids_ttl=60)
    assert counted == 1
    assert store.redis.hget(store.keys.subscriber(BRUNO), consumption_field("2026-09")) == "700"
    assert store.redis.hget(store.keys.subscriber(ALICE), consumption_field(LAST_MONTH)) == "3250"
    assert store.redis.smembers(store.keys.increments(ALICE, LAST_MONTH)) == {"r-1"}


def test_an_outbox_acknowledgement_after_redis_lost_the_scripts(store, service):
    assert service.migrate(ALICE, "Tigre", Channel.WEB).approved
    store.outbox.create_groups()
    [entry] = store.outbox.read((EVENTS,), "relay-1", 10, 0)
    store.redis.script_flush()
    assert store.outbox.ack(entry, json.dumps({"id": entry.event_id}))
    stream = store.keys.queue(EVENTS, entry.bucket)
    assert store.redis.xlen(stream) == 0
    assert store.redis.xpending(stream, "relay")["pending"] == 0
    [receipt] = store.outbox.read((SMS,), "relay-1", 10, 0)
    assert json.loads(receipt.body) == {"id": entry.event_id}


def test_the_queue_scripts_are_loaded_again_once_then_the_refusal_is_raised(
        own_redis_server, monkeypatch, key_prefix):
    """A Redis that lost the scripts again right after they were loaded: one more try, not a
    loop."""
    client = connect(Settings(redis_url=own_redis_server.url))
    scripts = Scripts(client, write=client.execute_command)
    loads = []
    monkeypatch.setattr(scripts, "load", lambda: loads.append("load"))  # loads nothing
    client.script_flush()
    try:
        with pytest.raises(redis.exceptions.NoScriptError):
            scripts.run_pipelined("touch", [((f"{key_prefix}:s",), ("relay", "relay-1", "0-1"))])
        assert loads == ["load"]
    finally:
        client.close()
