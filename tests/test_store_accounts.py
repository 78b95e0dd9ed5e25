"""The other channels' store (ussd/store/accounts.py): what it reads and writes, in how many
round trips, on fakeredis and a real Redis (and the 3-master cluster: tests/test_cluster.py)."""

from __future__ import annotations

import json

import pytest
from conftest import ALICE, LAST_MONTH, NOBODY, THIS_MONTH

from ussd.rules import Language, Profile, Standing
from ussd.store import MigrateOutcome, RequestRef, Subscriber
from ussd.store.keys import EVENTS, bucket_of

REQUEST = RequestRef("portal", "k-1")
ENTRY = {"at": "2026-11-15T10:00:00+00:00", "from": "novamix", "to": "tigre",
         "channel": "web", "client": "portal"}
EVENT = {"id": "0b6f3c52-5a4e-4bd3-9a57-2d0c8ff2f1a4", "msisdn": ALICE, "from": "novamix",
         "to": "tigre", "channel": "web", "client": "portal", "session": None,
         "at": "2026-11-15T10:00:00+00:00", "month": THIS_MONTH, "migrations_this_month": 1,
         "language": "fr"}


def counting(store, monkeypatch) -> list:
    """Every round trip the hop path's ``send`` makes, from now on."""
    calls: list = []
    send = store.accounts._send

    def counted(*commands):
        calls.append(commands)
        return send(*commands)

    monkeypatch.setattr(store.accounts, "_send", counted)
    return calls


def migrate(store, answer="the answer", request=REQUEST):
    return store.accounts.migrate(
        ALICE, expected=Standing(Profile.NOVAMIX, 0, 3000), target=Profile.TIGRE,
        month=THIS_MONTH, last_month=LAST_MONTH, entry=ENTRY, event=EVENT, request=request,
        answer=answer)


def outbox(store):
    """The events waiting in the outbox of ALICE's bucket, as written."""
    stream = store.keys.queue(EVENTS, bucket_of(ALICE))
    return [json.loads(fields["event"]) for _, fields in store.redis.xrange(stream)]


def test_a_read_is_one_round_trip_with_the_requests_record(store, monkeypatch):
    calls = counting(store, monkeypatch)
    assert store.accounts.read(ALICE, THIS_MONTH, LAST_MONTH) == (
        Subscriber(Language.FR, Standing(Profile.NOVAMIX, 0, 3000)), None)
    migrate(store)
    assert store.accounts.read(ALICE, THIS_MONTH, LAST_MONTH, REQUEST) == (
        Subscriber(Language.FR, Standing(Profile.TIGRE, 1, 3000)), "the answer")
    assert store.accounts.read(NOBODY, THIS_MONTH, LAST_MONTH, REQUEST) == (None, None)
    assert len(calls) == 3


def test_the_migration_writes_the_requests_record_in_its_own_step(store):
    assert migrate(store).outcome is MigrateOutcome.APPLIED
    key = store.keys.request(ALICE, *REQUEST)
    assert store.redis.get(key) == "the answer"
    assert 86_390 < store.redis.ttl(key) <= 86_400
    assert json.loads(store.redis.lindex(store.keys.history(ALICE), 0)) == ENTRY
    assert outbox(store) == [EVENT]  # the billing event too, in the same step
    # Again, as a copy of the request would: nothing applied, the first answer found.
    again = migrate(store, answer="another answer")
    assert (again.outcome, again.session) == (MigrateOutcome.STALE_SESSION, "the answer")
    assert store.redis.hget(store.keys.subscriber(ALICE), f"m:{THIS_MONTH}") == "1"
    assert outbox(store) == [EVENT]  # and no second event


def test_a_request_key_lives_in_the_subscribers_slot(store):
    key = store.keys.request(ALICE, "portal", "k-1")
    # The subscriber's bucket tag, as its other keys (keys.py): the migration's slot.
    assert key.startswith(f"{store.keys.prefix}:{{{bucket_of(ALICE)}}}{ALICE}:request:")
    assert key.startswith(store.keys.subscriber(ALICE).removesuffix(":sub") + ":")
    assert key != store.keys.request(ALICE, "mobile", "k-1")
    assert key != store.keys.request(ALICE, "portal", "k-2")
    with pytest.raises(ValueError):
        store.keys.request("0700000001", "portal", "k-1")


def test_a_refusal_is_recorded_only_where_none_is(store):
    assert store.accounts.answer(ALICE, REQUEST, "refused") is None
    assert store.accounts.answer(ALICE, REQUEST, "later") == "refused"
    assert store.redis.get(store.keys.request(ALICE, *REQUEST)) == "refused"


def test_the_history_oldest_first_and_none_for_an_unknown(store, monkeypatch):
    migrate(store, request=None)
    calls = counting(store, monkeypatch)
    assert store.accounts.history(ALICE) == [ENTRY]
    assert store.accounts.history(NOBODY) is None
    assert len(calls) == 2
