"""The Redis store, on fakeredis and on a real Redis (ussd/store.py), and the other channels'
migrations through it (``UssdService.migrate``)."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import (
    ALICE,
    BRUNO,
    CELINE,
    JOHN,
    LAST_MONTH,
    NOBODY,
    SUBSCRIBERS,
    THIS_MONTH,
)

from ussd.errors import StoreError, StoreUnavailableError
from ussd.rules import Channel, Decision, Language, Profile, Reason, Standing
from ussd.settings import Settings
from ussd.store import (
    MigrationOutcome,
    MigrationResult,
    PruneReport,
    Store,
    Subscriber,
    connect,
)

N, T, D, A = Profile.NOVAMIX, Profile.TIGRE, Profile.DAUPHIN, Profile.AIGLE
ENTRY = {"at": "2026-11-15T10:00:00+00:00", "from": "novamix", "to": "tigre", "channel": "ussd"}
CONFIRM = '{"s":"confirm","l":"fr","n":2,"v":{"target":"tigre","left":2}}'
MIGRATED = '{"s":"migrated","l":"fr","n":3,"v":{"target":"tigre","left":2}}'


def session_key(store, msisdn=ALICE, session_id="S1"):
    return store.keys.session(msisdn, "africastalking", session_id)


def subscriber_fields(store, msisdn):
    return store.redis.hgetall(store.keys.subscriber(msisdn))


def write_record(store, key, record):
    """Store a session record where there was none, as a hop's write does."""
    assert store.update_session(key, None, record) == (True, None)


def test_read_hop_without_a_session(store):
    read = store.read_hop(ALICE, session_key(store), THIS_MONTH, LAST_MONTH)
    assert read.record is None
    assert read.subscriber == Subscriber(ALICE, Language.FR, Standing(N, 0, 3000))


def test_read_hop_returns_the_session_record_and_the_subscriber(store):
    write_record(store, session_key(store, JOHN), CONFIRM)
    read = store.read_hop(JOHN, session_key(store, JOHN), THIS_MONTH, LAST_MONTH)
    assert read.record == CONFIRM
    assert read.subscriber == Subscriber(JOHN, Language.EN, Standing(A, 0, 12000))


def test_read_hop_of_an_unknown_number(store):
    read = store.read_hop(NOBODY, session_key(store, NOBODY), THIS_MONTH, LAST_MONTH)
    assert (read.record, read.closed, read.subscriber) == (None, None, None)


def test_the_standing_counts_last_months_consumption_and_this_months_migrations(store):
    store.put_consumption([(ALICE, THIS_MONTH, 50_000), (ALICE, "2026-09", 70_000)])
    store.redis.hset(store.keys.subscriber(ALICE), mapping={"m:2026-10": 3, "m:2026-11": 1})
    subscriber = store.load_subscriber(ALICE, THIS_MONTH, LAST_MONTH)
    assert subscriber.standing == Standing(N, migrations_this_month=1, consumed_last_month=3000)
    # The month after, the count starts again and this month's consumption is "last month".
    subscriber = store.load_subscriber(ALICE, "2026-12", THIS_MONTH)
    assert subscriber.standing == Standing(N, migrations_this_month=0, consumed_last_month=50_000)


def test_a_subscriber_without_consumption_has_consumed_nothing(store):
    store.put_subscribers([("+2250700000006", N, Language.FR)])
    subscriber = store.load_subscriber("+2250700000006", THIS_MONTH, LAST_MONTH)
    assert subscriber.standing == Standing(N, 0, 0)


def test_a_session_write_sets_the_ttl(store):
    key = session_key(store)
    write_record(store, key, CONFIRM)
    assert store.redis.get(key) == CONFIRM
    assert 170 <= store.redis.ttl(key) <= 180


def test_the_session_ttl_is_configuration(redis_client, key_prefix):
    store = Store(redis_client, prefix=key_prefix, session_ttl=7)
    key = session_key(store)
    write_record(store, key, CONFIRM)
    assert 0 < store.redis.ttl(key) <= 7


def migrate(store, session=True, expected_record=CONFIRM, expected=None, target=T,
            entry=ENTRY, new_record=MIGRATED):
    return store.apply_migration(
        ALICE, session_key(store) if session else None, expected_record,
        expected or Standing(N, 0, 3000), target, THIS_MONTH, LAST_MONTH, entry, new_record,
    )


def test_apply_migration_applies_everything_at_once(store):
    key = session_key(store)
    write_record(store, key, CONFIRM)
    assert migrate(store) == MigrationOutcome(MigrationResult.APPLIED)
    assert subscriber_fields(store, ALICE) == {
        "p": "tigre", "l": "fr", f"c:{LAST_MONTH}": "3000", f"m:{THIS_MONTH}": "1"
    }
    assert [json.loads(e) for e in store.redis.lrange(store.keys.history(ALICE), 0, -1)] == [
        ENTRY
    ]
    assert store.redis.get(key) == MIGRATED
    assert 170 <= store.redis.ttl(key) <= 180


def test_a_second_apply_from_the_same_record_finds_the_session_moved_on(store):
    write_record(store, session_key(store), CONFIRM)
    assert migrate(store).result is MigrationResult.APPLIED
    # The same confirm again (a retried hop): the record is no longer the one decided on.
    again = migrate(store)
    assert again == MigrationOutcome(MigrationResult.STALE_SESSION, session=MIGRATED)
    assert subscriber_fields(store, ALICE)[f"m:{THIS_MONTH}"] == "1"
    assert store.redis.llen(store.keys.history(ALICE)) == 1


@pytest.mark.parametrize("found", [None, '{"s":"profiles","l":"fr","n":2}'])
def test_stale_session_when_the_record_changed(store, found):
    if found is not None:
        write_record(store, session_key(store), found)
    outcome = migrate(store)  # decided on CONFIRM, which is not (or no longer) there
    assert outcome == MigrationOutcome(MigrationResult.STALE_SESSION, session=found)
    assert subscriber_fields(store, ALICE)["p"] == "novamix"
    assert f"m:{THIS_MONTH}" not in subscriber_fields(store, ALICE)
    assert store.redis.llen(store.keys.history(ALICE)) == 0
    assert store.redis.get(session_key(store)) == found


def test_a_first_hop_confirming_at_once_expects_no_record(store):
    assert migrate(store, expected_record=None).result is MigrationResult.APPLIED
    assert store.redis.get(session_key(store)) == MIGRATED


@pytest.mark.parametrize(("change", "fresh"), [
    ({"p": "dauphin"}, Standing(D, 0, 3000)),  # another session migrated...
    ({f"m:{THIS_MONTH}": "2"}, Standing(N, 2, 3000)),  # ...and back, twice
    ({f"c:{LAST_MONTH}": "2000"}, Standing(N, 0, 2000)),  # billing corrected the figure
])
def test_stale_subscriber_when_the_figures_changed(store, change, fresh):
    write_record(store, session_key(store), CONFIRM)
    store.redis.hset(store.keys.subscriber(ALICE), mapping=change)
    before = subscriber_fields(store, ALICE)
    outcome = migrate(store)
    assert outcome == MigrationOutcome(MigrationResult.STALE_SUBSCRIBER, standing=fresh)
    assert subscriber_fields(store, ALICE) == before
    assert store.redis.llen(store.keys.history(ALICE)) == 0
    assert store.redis.get(session_key(store)) == CONFIRM


def test_stale_subscriber_when_the_subscriber_is_gone(store):
    store.reset_subscribers([ALICE])
    outcome = migrate(store, expected_record=None)
    assert outcome == MigrationOutcome(MigrationResult.STALE_SUBSCRIBER, standing=None)
    assert store.redis.exists(store.keys.subscriber(ALICE)) == 0


def test_apply_without_a_session_for_the_web_channel(store):
    entry = {**ENTRY, "channel": "web"}
    assert migrate(store, session=False, expected_record=None, entry=entry, new_record="") == (
        MigrationOutcome(MigrationResult.APPLIED)
    )
    assert subscriber_fields(store, ALICE)["p"] == "tigre"
    assert store.redis.exists(session_key(store)) == 0
    assert not list(store.redis.scan_iter(f"{store.keys.prefix}:*:session:*"))
    # Without a session only the subscriber is checked: the same figures now are stale.
    stale = migrate(store, session=False, expected_record=None, entry=entry, new_record="")
    assert stale == MigrationOutcome(MigrationResult.STALE_SUBSCRIBER,
                                     standing=Standing(T, 1, 3000))


def test_describe(store):
    migrate(store, expected_record=None)
    store.put_consumption([(ALICE, "2026-09", 1500)])
    store.redis.hset(store.keys.subscriber(ALICE), "m:2026-10", 2)
    assert store.describe(ALICE, THIS_MONTH) == {
        "msisdn": ALICE,
        "profile": "tigre",
        "language": "fr",
        "consumption": {"2026-09": 1500, LAST_MONTH: 3000},
        "migrations_by_month": {"2026-10": 2, THIS_MONTH: 1},
        "migrations_this_month": 1,
        "history": [ENTRY],
    }
    assert store.describe(JOHN, THIS_MONTH)["language"] == "en"
    assert store.describe(JOHN, THIS_MONTH)["migrations_this_month"] == 0
    assert store.describe(NOBODY, THIS_MONTH) is None


def test_reset_subscribers_forgets_only_those_named(store):
    migrate(store, expected_record=None)
    store.reset_subscribers([ALICE, NOBODY])
    assert store.describe(ALICE, THIS_MONTH) is None
    assert store.redis.exists(store.keys.history(ALICE)) == 0
    assert store.describe(BRUNO, THIS_MONTH)["profile"] == "tigre"


def test_prune_deletes_the_months_before_the_one_kept_and_nothing_else(store):
    """On every subscriber (on every master of a cluster): the consumption and migration
    counts of older months go; the months kept, any other field, the history, the sessions
    and another deployment's subscribers stay."""
    assert migrate(store, expected_record=None).result is MigrationResult.APPLIED
    for msisdn, *_ in SUBSCRIBERS:
        store.put_consumption([(msisdn, "2026-08", 100), (msisdn, "2026-09", 200)])
        store.redis.hset(store.keys.subscriber(msisdn),
                         mapping={"m:2026-09": 1, "m:2026-10": 2, "c:2026": 5, "note": "x"})
    other = Store(store.redis, prefix=f"{store.keys.prefix}x")
    try:
        other.put_consumption([(ALICE, "2026-08", 100)])
        assert store.prune_months(LAST_MONTH) == PruneReport(subscribers=4, changed=4, fields=12)
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
        assert store.prune_months(LAST_MONTH) == PruneReport(subscribers=4, changed=0, fields=0)
    finally:
        other.redis.delete(other.keys.subscriber(ALICE))


def test_prune_removes_a_hash_left_with_only_old_months(store):
    store.put_consumption([(NOBODY, "2026-09", 700), (NOBODY, "2025-12", 800)])
    assert store.prune_months(LAST_MONTH) == PruneReport(subscribers=5, changed=1, fields=2)
    assert store.redis.exists(store.keys.subscriber(NOBODY)) == 0


def test_a_dry_run_of_prune_counts_and_deletes_nothing(store):
    store.put_consumption([(ALICE, "2026-09", 200), (BRUNO, "2026-09", 300)])
    store.redis.hset(store.keys.subscriber(BRUNO), "m:2026-09", 3)
    before = {msisdn: subscriber_fields(store, msisdn) for msisdn, *_ in SUBSCRIBERS}
    assert store.prune_months(LAST_MONTH, dry_run=True) == PruneReport(4, changed=2, fields=3)
    assert {msisdn: subscriber_fields(store, msisdn) for msisdn, *_ in SUBSCRIBERS} == before


def test_prune_refuses_a_month_that_is_not_one(store):
    with pytest.raises(ValueError, match="not a YYYY-MM month"):
        store.prune_months("2026-13")


def test_every_key_of_a_subscriber_shares_its_hash_tag(store):
    assert migrate(store, expected_record=None).result is MigrationResult.APPLIED
    keys = sorted(store.redis.scan_iter(f"{store.keys.prefix}:*{ALICE[1:]}*"))
    assert len(keys) == 3  # subscriber, history, session
    assert all(key.startswith(f"{store.keys.prefix}:{{{ALICE}}}:") for key in keys)


# --- the other channels: UssdService.migrate ------------------------------------------------


def history(service, msisdn):
    return service.store.describe(msisdn, THIS_MONTH)["history"]


@pytest.mark.parametrize("channel", [Channel.WEB, Channel.APP])
def test_a_web_or_app_migration_is_applied_and_recorded(service, channel):
    decision = service.migrate(ALICE, "Tigre", channel)
    assert decision == Decision(Reason.APPROVED, T, current=N, required=2500, consumed=3000,
                                migrations_used=0, migrations_left=2)
    record = service.store.describe(ALICE, THIS_MONTH)
    assert (record["profile"], record["migrations_this_month"]) == ("tigre", 1)
    assert record["history"] == [{"at": "2026-11-15T10:00:00+00:00", "from": "novamix",
                                  "to": "tigre", "channel": channel.value}]


@pytest.mark.parametrize(("msisdn", "target", "reason"), [
    (ALICE, "aigle", Reason.INSUFFICIENT_CONSUMPTION),
    (CELINE, "tigre", Reason.INSUFFICIENT_CONSUMPTION),
    (BRUNO, "tigre", Reason.SAME_PROFILE),
    (ALICE, "lion", Reason.UNKNOWN_PROFILE),
    (NOBODY, "tigre", Reason.UNKNOWN_SUBSCRIBER),
])
def test_a_refused_web_migration_changes_nothing(service, msisdn, target, reason):
    before = service.store.describe(msisdn, THIS_MONTH)
    decision = service.migrate(msisdn, target, Channel.WEB)
    assert decision.reason is reason
    assert not decision.approved
    assert service.store.describe(msisdn, THIS_MONTH) == before


def test_a_refusal_carries_the_figures(service):
    decision = service.migrate(ALICE, A, Channel.APP)
    assert (decision.required, decision.consumed, decision.migrations_left) == (8000, 3000, 3)


def test_the_cap_is_shared_between_ussd_and_the_other_channels(service, dialler):
    session = dialler(ALICE)
    session.dial()
    assert session.send("1", "2", "1").startswith("END Votre profil est désormais Tigre.")
    assert service.migrate(ALICE, D, Channel.WEB).migrations_left == 1
    assert service.migrate(ALICE, N, Channel.APP).migrations_left == 0
    refused = service.migrate(ALICE, T, Channel.WEB)
    assert refused.reason is Reason.MONTHLY_LIMIT_REACHED
    # ... and the USSD menu sees the web's migrations too.
    session = dialler(ALICE)
    session.dial()
    assert session.send("1", "2") == (
        "END Vous avez déjà effectué vos 3 migrations de ce mois. Réessayez le mois prochain."
    )
    assert [(e["to"], e["channel"]) for e in history(service, ALICE)] == [
        ("tigre", "ussd"), ("dauphin", "web"), ("novamix", "app")
    ]


def test_a_web_migration_decides_again_when_the_subscriber_moved_meanwhile(service, monkeypatch):
    # The month's migrations were used up between the read and the atomic step.
    service.store.redis.hset(service.store.keys.subscriber(ALICE), f"m:{THIS_MONTH}", 3)
    stale = Subscriber(ALICE, Language.FR, Standing(N, 0, 3000))
    monkeypatch.setattr(service.store, "load_subscriber", lambda *args: stale)
    decision = service.migrate(ALICE, T, Channel.WEB)
    assert decision.reason is Reason.MONTHLY_LIMIT_REACHED
    assert decision.migrations_used == 3
    assert service.store.describe(ALICE, THIS_MONTH)["profile"] == "novamix"


def test_migrations_are_counted_by_channel_in_the_metrics(service):
    from conftest import ALICE
    from prometheus_client import REGISTRY

    from ussd.rules import Channel

    def counted(channel):
        value = REGISTRY.get_sample_value(
            "ussd_migrations_total", {"channel": channel, "target": "tigre"})
        return value or 0.0

    before_web, before_ussd = counted("web"), counted("ussd")
    assert service.migrate(ALICE, "tigre", Channel.WEB).approved
    assert counted("web") == before_web + 1
    assert counted("ussd") == before_ussd


def test_an_unreachable_redis_and_a_refused_command_are_told_apart(store):
    """No Redis at the address: StoreUnavailableError (the service's "unavailable" screen,
    logged as a store failure); a command Redis refuses: a plain StoreError."""
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = Store(connect(Settings.from_env({"REDIS_URL": f"redis://127.0.0.1:{port}/9"})))
    with pytest.raises(StoreUnavailableError, match="Redis unreachable"):
        gone.read_hop(ALICE, session_key(gone), THIS_MONTH, LAST_MONTH)
    store.redis.hset(session_key(store), "not", "a string")  # the wrong type for MGET
    with pytest.raises(StoreError, match="Redis error: WRONGTYPE") as refused:
        store.update_session(session_key(store), None, CONFIRM)
    assert not isinstance(refused.value, StoreUnavailableError)
