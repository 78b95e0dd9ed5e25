"""The operator's operations on the store, on fakeredis and on a real Redis
(ussd/store/admin.py): load, show, forget, prune."""

from __future__ import annotations

import json

import pytest
from conftest import ALICE, BRUNO, JOHN, LAST_MONTH, NOBODY, SUBSCRIBERS, THIS_MONTH
from test_store_hops import ENTRY, MIGRATED, migrate, session_key, subscriber_fields

from ussd.rules import Language, Profile
from ussd.store import MigrateOutcome, MoveReport, PruneReport, Store, SubscribersReport


def test_describe(store):
    migrate(store, expected_record=None)
    store.admin.put_consumption([(ALICE, "2026-09", 1500)])
    store.redis.hset(store.keys.subscriber(ALICE), "m:2026-10", 2)
    assert store.admin.describe(ALICE, THIS_MONTH) == {
        "msisdn": ALICE,
        "profile": "tigre",
        "language": "fr",
        "consumption": {"2026-09": 1500, LAST_MONTH: 3000},
        "migrations_by_month": {"2026-10": 2, THIS_MONTH: 1},
        "migrations_this_month": 1,
        "history": [ENTRY],
    }
    assert store.admin.describe(JOHN, THIS_MONTH)["language"] == "en"
    assert store.admin.describe(JOHN, THIS_MONTH)["migrations_this_month"] == 0
    assert store.admin.describe(NOBODY, THIS_MONTH) is None


def test_add_subscribers_leaves_every_stored_subscriber_as_it_is(store):
    """ussd seed's write: before, a file loaded again put a subscriber who had migrated back on
    the file's profile (the history still saying the migration), and one who chose English
    back to French. A hash with consumption and no profile is no subscriber yet: added."""
    assert migrate(store, expected_record=None).outcome is MigrateOutcome.APPLIED  # to Tigre
    store.admin.put_consumption([(NOBODY, LAST_MONTH, 700)])
    before = {msisdn: subscriber_fields(store, msisdn) for msisdn in (ALICE, BRUNO, JOHN)}
    report = store.admin.add_subscribers([
        (ALICE, Profile.NOVAMIX, Language.FR), (JOHN, Profile.AIGLE, Language.FR),
        (BRUNO, Profile.DAUPHIN, Language.EN), (NOBODY, Profile.DAUPHIN, Language.EN)])
    assert report == SubscribersReport(added=1, stored=3)
    assert {msisdn: subscriber_fields(store, msisdn) for msisdn in (ALICE, BRUNO, JOHN)} == before
    assert before[ALICE]["p"] == "tigre" and before[JOHN]["l"] == "en"
    assert subscriber_fields(store, NOBODY) == {"p": "dauphin", "l": "en",
                                                f"c:{LAST_MONTH}": "700"}


def test_add_subscribers_replacing_overwrites_profile_and_language_only(store):
    assert migrate(store, expected_record=None).outcome is MigrateOutcome.APPLIED
    report = store.admin.add_subscribers([(ALICE, Profile.NOVAMIX, Language.EN),
                                          (NOBODY, Profile.AIGLE, Language.FR)], replace=True)
    assert report == SubscribersReport(added=1, stored=1)
    assert subscriber_fields(store, ALICE) == {"p": "novamix", "l": "en",
                                               f"c:{LAST_MONTH}": "3000", f"m:{THIS_MONTH}": "1"}
    assert subscriber_fields(store, NOBODY) == {"p": "aigle", "l": "fr"}


def test_add_subscribers_counts_every_row_of_many_round_trips(store):
    """1000 rows per round trip, one script per bucket: 2500 numbers over the 256 buckets,
    the script lost by Redis (a restart) and loaded again."""
    numbers = [f"+22507{n:08d}" for n in range(10, 2510)]
    store.admin.put_subscribers((m, Profile.TIGRE, Language.EN) for m in numbers[::5])
    store.redis.script_flush()
    report = store.admin.add_subscribers((m, Profile.NOVAMIX, Language.FR) for m in numbers)
    assert report == SubscribersReport(added=2000, stored=500)
    assert [store.redis.hget(store.keys.subscriber(m), "p") for m in numbers[:6]] == [
        "tigre", "novamix", "novamix", "novamix", "novamix", "tigre"]
    report = store.admin.add_subscribers(((m, Profile.AIGLE, Language.FR) for m in numbers),
                                         replace=True)
    assert report == SubscribersReport(added=0, stored=2500)
    assert {store.redis.hget(store.keys.subscriber(m), "p") for m in numbers} == {"aigle"}


def test_reset_subscribers_forgets_only_those_named(store):
    migrate(store, expected_record=None)
    store.admin.reset_subscribers([ALICE, NOBODY])
    assert store.admin.describe(ALICE, THIS_MONTH) is None
    assert store.redis.exists(store.keys.history(ALICE)) == 0
    assert store.admin.describe(BRUNO, THIS_MONTH)["profile"] == "tigre"


def test_prune_deletes_the_months_before_the_one_kept_and_nothing_else(store):
    """On every subscriber (on every master of a cluster): the consumption and migration
    counts of older months go; the months kept, any other field, the history, the sessions
    and another deployment's subscribers stay."""
    assert migrate(store, expected_record=None).outcome is MigrateOutcome.APPLIED
    for msisdn, *_ in SUBSCRIBERS:
        store.admin.put_consumption([(msisdn, "2026-08", 100), (msisdn, "2026-09", 200)])
        store.redis.hset(store.keys.subscriber(msisdn),
                         mapping={"m:2026-09": 1, "m:2026-10": 2, "c:2026": 5, "note": "x"})
    other = Store(store.redis, prefix=f"{store.keys.prefix}x")
    try:
        other.admin.put_consumption([(ALICE, "2026-08", 100)])
        assert store.admin.prune_months(LAST_MONTH) == PruneReport(subscribers=4, changed=4,
                                                                   fields=12)
        for msisdn, profile, language, consumed in SUBSCRIBERS:
            expected = {"p": profile.value, "l": language.value, f"c:{LAST_MONTH}": str(consumed),
                        "m:2026-10": "2", "c:2026": "5", "note": "x"}
            if msisdn == ALICE:
                expected |= {"p": "tigre", "m:2026-11": "1"}
            assert subscriber_fields(store, msisdn) == expected
        assert [json.loads(entry) for entry in store.redis.lrange(store.keys.history(ALICE),
                                                                  0, -1)] == [ENTRY]
        assert store.redis.get(session_key(store)) == MIGRATED
        assert subscriber_fields(other, ALICE) == {"c:2026-08": "100"}
        assert store.admin.prune_months(LAST_MONTH) == PruneReport(subscribers=4, changed=0,
                                                                   fields=0)
    finally:
        other.redis.delete(other.keys.subscriber(ALICE))


def test_prune_removes_a_hash_left_with_only_old_months(store):
    store.admin.put_consumption([(NOBODY, "2026-09", 700), (NOBODY, "2025-12", 800)])
    assert store.admin.prune_months(LAST_MONTH) == PruneReport(subscribers=5, changed=1, fields=2)
    assert store.redis.exists(store.keys.subscriber(NOBODY)) == 0


def test_a_dry_run_of_prune_counts_and_deletes_nothing(store):
    store.admin.put_consumption([(ALICE, "2026-09", 200), (BRUNO, "2026-09", 300)])
    store.redis.hset(store.keys.subscriber(BRUNO), "m:2026-09", 3)
    before = {msisdn: subscriber_fields(store, msisdn) for msisdn, *_ in SUBSCRIBERS}
    assert store.admin.prune_months(LAST_MONTH, dry_run=True) == PruneReport(4, changed=2, fields=3)
    assert {msisdn: subscriber_fields(store, msisdn) for msisdn, *_ in SUBSCRIBERS} == before


def test_prune_refuses_a_month_that_is_not_one(store):
    with pytest.raises(ValueError, match="not a YYYY-MM month"):
        store.admin.prune_months("2026-13")



def test_subscribers_stored_before_the_buckets_move_to_them(redis_client, key_prefix):
    """Keys tagged {+225...} (the layout before the outbox) move to their bucket's keys, whole;
    sessions are left to expire; a second run moves nothing."""
    store = Store(redis_client, prefix=key_prefix)
    old = f"{key_prefix}:{{{ALICE}}}"
    redis_client.hset(f"{old}:sub", mapping={"p": "tigre", "l": "en", "c:2026-10": "3000"})
    redis_client.rpush(f"{old}:history", '{"at":"2026-11-01T09:00:00+00:00"}')
    redis_client.set(f"{old}:session:0123456789abcdef0123", "{}", ex=180)
    store.admin.put_subscribers([(BRUNO, Profile.AIGLE, Language.FR)])
    redis_client.hset(f"{key_prefix}:{{{BRUNO}}}:sub", "p", "novamix")  # both layouts: left
    assert store.admin.move_to_buckets(dry_run=True) == MoveReport(moved=2, clashes=1)
    assert redis_client.exists(store.keys.subscriber(ALICE)) == 0
    assert store.admin.move_to_buckets() == MoveReport(moved=2, clashes=1)
    assert redis_client.hgetall(store.keys.subscriber(ALICE)) == {
        "p": "tigre", "l": "en", "c:2026-10": "3000"}
    assert redis_client.lrange(store.keys.history(ALICE), 0, -1) == [
        '{"at":"2026-11-01T09:00:00+00:00"}']
    assert redis_client.exists(f"{old}:sub", f"{old}:history") == 0
    assert redis_client.exists(f"{old}:session:0123456789abcdef0123") == 1
    assert redis_client.hget(store.keys.subscriber(BRUNO), "p") == "aigle"
    assert store.admin.move_to_buckets() == MoveReport(moved=0, clashes=1)


def test_keys_of_the_old_layout_it_does_not_recognise_are_counted_and_left(redis_client,
                                                                          key_prefix):
    """Before, a key matching the old layout's pattern that it never wrote (a tag that is no
    normalised number, a name after it of none of its keys) was skipped unsaid; sessions, live
    or closed, are recognised and left to expire, uncounted."""
    store = Store(redis_client, prefix=key_prefix)
    odd = [f"{key_prefix}:{{+225}}:sub", f"{key_prefix}:{{+2250700000001 }}:history",
           f"{key_prefix}:{{{ALICE}}}:notes", f"{key_prefix}:{{{ALICE}}}:session"]
    for key in odd:
        redis_client.set(key, "x")
    session = f"{key_prefix}:{{{ALICE}}}:session:0123456789abcdef0123"
    redis_client.set(session, "{}", ex=180)
    redis_client.set(f"{session}:closed", "{}", ex=180)
    redis_client.hset(f"{key_prefix}:{{{ALICE}}}:sub", "p", "tigre")
    assert store.admin.move_to_buckets(dry_run=True) == MoveReport(moved=1, unrecognised=4)
    assert store.admin.move_to_buckets() == MoveReport(moved=1, unrecognised=4)
    assert redis_client.hgetall(store.keys.subscriber(ALICE)) == {"p": "tigre"}
    assert redis_client.exists(*odd, session, f"{session}:closed") == 6
    assert store.admin.move_to_buckets() == MoveReport(unrecognised=4)
