"""The hop store, on fakeredis and on a real Redis (ussd/store/hops.py, through the scripts of
ussd/store/scripts.py), and the other channels' migrations through it (``UssdService.migrate``)."""

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
    THIS_MONTH,
)

from ussd.errors import StoreError, StoreUnavailableError
from ussd.rules import Channel, Decision, Language, Profile, Reason, Standing
from ussd.settings import Settings
from ussd.store import (
    MigrateOutcome,
    MigrateResult,
    SessionChange,
    Store,
    Subscriber,
    connect,
)
from ussd.store.keys import EVENTS, bucket_of

N, T, D, A = Profile.NOVAMIX, Profile.TIGRE, Profile.DAUPHIN, Profile.AIGLE
ENTRY = {"at": "2026-11-15T10:00:00+00:00", "from": "novamix", "to": "tigre", "channel": "ussd"}
CONFIRM = '{"s":"confirm","l":"fr","n":2,"v":{"target":"tigre","left":2}}'
MIGRATED = '{"s":"migrated","l":"fr","n":3,"v":{"target":"tigre","left":2}}'
GATEWAY = "africastalking"
EVENT = {"id": "6f1c0d7e-2f4b-4c1e-9a57-0c1d2e3f4a5b", "msisdn": ALICE, "from": "novamix",
         "to": "tigre", "channel": "ussd", "client": GATEWAY, "session": "S1",
         "at": "2026-11-15T10:00:00+00:00", "month": THIS_MONTH, "migrations_this_month": 1,
         "language": "fr"}


def session_key(store, msisdn=ALICE, session_id="S1"):
    """The session's key, which is also its ``SessionRef`` for the hop store's writes."""
    return store.keys.session(msisdn, GATEWAY, session_id)


def read_hop(store, msisdn, session_id="S1"):
    return store.hops.read(msisdn, GATEWAY, session_id, THIS_MONTH, LAST_MONTH)


def outbox(store, msisdn=ALICE):
    """The events waiting in the outbox of the subscriber's bucket, as written."""
    stream = store.keys.queue(EVENTS, bucket_of(msisdn))
    return [json.loads(fields["event"]) for _, fields in store.redis.xrange(stream)]


def subscriber_fields(store, msisdn):
    return store.redis.hgetall(store.keys.subscriber(msisdn))


def write_record(store, key, record):
    """Store a session record where there was none, as a hop's write does."""
    assert store.hops.save_session(key, None, record) == (True, None)


def test_read_hop_without_a_session(store):
    read = read_hop(store, ALICE)
    assert read.record is None
    assert read.subscriber == Subscriber(Language.FR, Standing(N, 0, 3000))


def test_read_hop_returns_the_session_record_and_the_subscriber(store):
    write_record(store, session_key(store, JOHN), CONFIRM)
    read = read_hop(store, JOHN)
    assert read.record == CONFIRM
    assert read.subscriber == Subscriber(Language.EN, Standing(A, 0, 12000))


def test_read_hop_of_an_unknown_number(store):
    read = read_hop(store, NOBODY)
    assert (read.record, read.closed, read.subscriber) == (None, None, None)


def test_a_read_names_the_session_its_write_takes(store):
    read = read_hop(store, ALICE)
    assert store.hops.save_session(read.session, read.record, CONFIRM) == (True, None)
    assert read_hop(store, ALICE).record == CONFIRM


def test_closing_a_session_keeps_its_record_aside(store):
    write_record(store, session_key(store), CONFIRM)
    assert store.hops.close_session(ALICE, GATEWAY, "S1") is True
    read = read_hop(store, ALICE)
    assert (read.record, read.closed) == (None, CONFIRM)
    assert store.hops.close_session(ALICE, GATEWAY, "S1") is False  # closed already


def test_the_standing_counts_last_months_consumption_and_this_months_migrations(store):
    store.admin.put_consumption([(ALICE, THIS_MONTH, 50_000), (ALICE, "2026-09", 70_000)])
    store.redis.hset(store.keys.subscriber(ALICE), mapping={"m:2026-10": 3, "m:2026-11": 1})
    subscriber = store.hops.load_subscriber(ALICE, THIS_MONTH, LAST_MONTH)
    assert subscriber.standing == Standing(N, migrations_this_month=1, consumed_last_month=3000)
    # The month after, the count starts again and this month's consumption is "last month".
    subscriber = store.hops.load_subscriber(ALICE, "2026-12", THIS_MONTH)
    assert subscriber.standing == Standing(N, migrations_this_month=0, consumed_last_month=50_000)


def test_a_subscriber_without_consumption_has_consumed_nothing(store):
    store.admin.put_subscribers([("+2250700000006", N, Language.FR)])
    subscriber = store.hops.load_subscriber("+2250700000006", THIS_MONTH, LAST_MONTH)
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
            entry=ENTRY, new_record=MIGRATED, event=EVENT):
    change = SessionChange(session_key(store), expected_record, new_record) if session else None
    return store.hops.migrate(
        ALICE, expected=expected or Standing(N, 0, 3000), target=target, month=THIS_MONTH,
        last_month=LAST_MONTH, entry=entry, event=event, session=change,
    )


def test_migrate_applies_everything_at_once(store):
    key = session_key(store)
    write_record(store, key, CONFIRM)
    assert migrate(store) == MigrateResult(MigrateOutcome.APPLIED)
    assert subscriber_fields(store, ALICE) == {
        "p": "tigre", "l": "fr", f"c:{LAST_MONTH}": "3000", f"m:{THIS_MONTH}": "1"
    }
    assert [json.loads(e) for e in store.redis.lrange(store.keys.history(ALICE), 0, -1)] == [
        ENTRY
    ]
    assert store.redis.get(key) == MIGRATED
    assert 170 <= store.redis.ttl(key) <= 180
    assert outbox(store) == [EVENT]  # in the same step: no migration without its event


def test_a_second_apply_from_the_same_record_finds_the_session_moved_on(store):
    write_record(store, session_key(store), CONFIRM)
    assert migrate(store).outcome is MigrateOutcome.APPLIED
    # The same confirm again (a retried hop): the record is no longer the one decided on.
    again = migrate(store)
    assert again == MigrateResult(MigrateOutcome.STALE_SESSION, session=MIGRATED)
    assert subscriber_fields(store, ALICE)[f"m:{THIS_MONTH}"] == "1"
    assert store.redis.llen(store.keys.history(ALICE)) == 1
    assert outbox(store) == [EVENT]


@pytest.mark.parametrize("found", [None, '{"s":"profiles","l":"fr","n":2}'])
def test_stale_session_when_the_record_changed(store, found):
    if found is not None:
        write_record(store, session_key(store), found)
    outcome = migrate(store)  # decided on CONFIRM, which is not (or no longer) there
    assert outcome == MigrateResult(MigrateOutcome.STALE_SESSION, session=found)
    assert subscriber_fields(store, ALICE)["p"] == "novamix"
    assert f"m:{THIS_MONTH}" not in subscriber_fields(store, ALICE)
    assert store.redis.llen(store.keys.history(ALICE)) == 0
    assert store.redis.get(session_key(store)) == found
    assert outbox(store) == []  # no event without its migration


def test_a_first_hop_confirming_at_once_expects_no_record(store):
    assert migrate(store, expected_record=None).outcome is MigrateOutcome.APPLIED
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
    assert outcome == MigrateResult(MigrateOutcome.STALE_SUBSCRIBER, standing=fresh)
    assert subscriber_fields(store, ALICE) == before
    assert store.redis.llen(store.keys.history(ALICE)) == 0
    assert store.redis.get(session_key(store)) == CONFIRM
    assert outbox(store) == []


def test_stale_subscriber_when_the_subscriber_is_gone(store):
    store.admin.reset_subscribers([ALICE])
    outcome = migrate(store, expected_record=None)
    assert outcome == MigrateResult(MigrateOutcome.STALE_SUBSCRIBER, standing=None)
    assert store.redis.exists(store.keys.subscriber(ALICE)) == 0


def test_apply_without_a_session_for_the_web_channel(store):
    entry = {**ENTRY, "channel": "web"}
    assert migrate(store, session=False, expected_record=None, entry=entry, new_record="") == (
        MigrateResult(MigrateOutcome.APPLIED)
    )
    assert subscriber_fields(store, ALICE)["p"] == "tigre"
    assert store.redis.exists(session_key(store)) == 0
    assert not list(store.redis.scan_iter(f"{store.keys.prefix}:*:session:*"))
    # Without a session only the subscriber is checked: the same figures now are stale.
    stale = migrate(store, session=False, expected_record=None, entry=entry, new_record="")
    assert stale == MigrateResult(MigrateOutcome.STALE_SUBSCRIBER,
                                  standing=Standing(T, 1, 3000))


def test_every_key_of_a_subscriber_shares_its_bucket_tag_with_its_outbox(store):
    assert migrate(store, expected_record=None).outcome is MigrateOutcome.APPLIED
    bucket = bucket_of(ALICE)
    keys = sorted(store.redis.scan_iter(f"{store.keys.prefix}:{{{bucket}}}*"))
    assert keys == sorted([  # and nothing of the subscriber outside the bucket's tag
        store.keys.subscriber(ALICE), store.keys.history(ALICE), session_key(store),
        store.keys.queue(EVENTS, bucket)])
    assert store.keys.subscriber(ALICE) == f"{store.keys.prefix}:{{{bucket}}}{ALICE}:sub"
    assert store.keys.queue(EVENTS, bucket) == f"{store.keys.prefix}:{{{bucket}}}:events"
    assert len(list(store.redis.scan_iter(f"{store.keys.prefix}:*{ALICE[1:]}*"))) == 3


# --- the other channels: UssdService.migrate ------------------------------------------------


def history(service, msisdn):
    return service.store.admin.describe(msisdn, THIS_MONTH)["history"]


@pytest.mark.parametrize("channel", [Channel.WEB, Channel.APP])
def test_a_web_or_app_migration_is_applied_and_recorded(service, channel):
    decision = service.migrate(ALICE, "Tigre", channel)
    assert decision == Decision(Reason.APPROVED, T, current=N, required=2500, consumed=3000,
                                migrations_used=0, migrations_left=2)
    record = service.store.admin.describe(ALICE, THIS_MONTH)
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
    before = service.store.admin.describe(msisdn, THIS_MONTH)
    decision = service.migrate(msisdn, target, Channel.WEB)
    assert decision.reason is reason
    assert not decision.approved
    assert service.store.admin.describe(msisdn, THIS_MONTH) == before


def test_a_refusal_carries_the_figures(service):
    decision = service.migrate(ALICE, A, Channel.APP)
    assert (decision.required, decision.consumed, decision.migrations_left) == (8000, 3000, 3)


def test_the_cap_is_shared_between_ussd_and_the_other_channels(service, dialler):
    session = dialler(ALICE)
    session.dial()
    session.send("1", "2")
    assert session.send("1").startswith("END Votre profil est désormais Tigre.")
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
    stale = Subscriber(Language.FR, Standing(N, 0, 3000))
    monkeypatch.setattr(service.store.hops, "load_subscriber", lambda *args: stale)
    decision = service.migrate(ALICE, T, Channel.WEB)
    assert decision.reason is Reason.MONTHLY_LIMIT_REACHED
    assert decision.migrations_used == 3
    assert service.store.admin.describe(ALICE, THIS_MONTH)["profile"] == "novamix"


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
        read_hop(gone, ALICE)
    store.redis.hset(session_key(store), "not", "a string")  # the wrong type for MGET
    with pytest.raises(StoreError, match="Redis error: WRONGTYPE") as refused:
        store.hops.save_session(session_key(store), None, CONFIRM)
    assert not isinstance(refused.value, StoreUnavailableError)


# --- what a hop keeps to resume, and a language chosen (store/hops.py with a resume window) ---


@pytest.fixture
def resuming(redis_client, key_prefix):
    from conftest import seed_subscribers

    store = Store(redis_client, prefix=key_prefix, session_ttl=180, resume_window=120)
    seed_subscribers(store)
    return store


def test_a_save_keeps_what_the_dialogue_leaves_to_resume(resuming):
    key = session_key(resuming)
    marker = resuming.keys.dropped_session(ALICE)
    digest = key.rsplit(":", 1)[1]
    assert resuming.hops.save_session(key, None, CONFIRM, resumable=CONFIRM) == (True, None)
    assert resuming.redis.get(marker) == f"{digest} {CONFIRM}"
    assert 295 <= resuming.redis.ttl(marker) <= 300  # the session's TTL and the window
    assert read_hop(resuming, ALICE, "another session").dropped == CONFIRM
    assert resuming.hops.save_session(key, CONFIRM, MIGRATED, resumable=None) == (True, None)
    assert not resuming.redis.exists(marker)  # nothing to resume: forgotten


def test_a_store_without_a_window_keeps_and_reads_nothing_to_resume(redis_client, key_prefix):
    store = Store(redis_client, prefix=key_prefix, resume_window=0)
    write_record(store, session_key(store), CONFIRM)
    store.hops.save_session(session_key(store, session_id="S2"), None, CONFIRM,
                            resumable=CONFIRM)
    assert not store.redis.exists(store.keys.dropped_session(ALICE))
    assert read_hop(store, ALICE, "S3").dropped is None


@pytest.mark.parametrize(("dropped", "left"), [(True, 120), (False, None), (None, 300)])
def test_an_end_report_keeps_forgets_or_leaves_what_to_resume(resuming, dropped, left):
    key = session_key(resuming)
    resuming.hops.save_session(key, None, CONFIRM, resumable=CONFIRM)
    assert resuming.hops.close_session(ALICE, GATEWAY, "S1", dropped) is True
    ttl = resuming.redis.ttl(resuming.keys.dropped_session(ALICE))
    assert (ttl > 0 and left - 5 <= ttl <= left) if left else ttl == -2
    assert read_hop(resuming, ALICE).closed == CONFIRM  # the record kept aside, as ever


def test_an_end_report_of_another_session_leaves_the_marker(resuming):
    resuming.hops.save_session(session_key(resuming, session_id="new"), None, CONFIRM,
                               resumable=CONFIRM)
    resuming.hops.close_session(ALICE, GATEWAY, "old", dropped=False)
    assert read_hop(resuming, ALICE, "third").dropped == CONFIRM


def test_a_migration_forgets_what_was_kept_to_resume(resuming):
    key = session_key(resuming)
    resuming.hops.save_session(key, None, CONFIRM, resumable=CONFIRM)
    answer = resuming.hops.migrate(
        ALICE, expected=Standing(N, 0, 3000), target=T, month=THIS_MONTH, last_month=LAST_MONTH,
        entry=ENTRY, event=EVENT, session=SessionChange(key, CONFIRM, MIGRATED))
    assert answer.outcome is MigrateOutcome.APPLIED
    assert not resuming.redis.exists(resuming.keys.dropped_session(ALICE))
    assert outbox(resuming) == [EVENT]  # the marker forgotten, the event appended, one step


@pytest.mark.parametrize("window", [0, 120])
def test_a_language_chosen_is_stored_with_the_record(redis_client, key_prefix, window):
    from conftest import seed_subscribers

    store = Store(redis_client, prefix=key_prefix, resume_window=window)
    seed_subscribers(store)
    assert store.hops.save_session(session_key(store), None, CONFIRM,
                                   language=Language.EN) == (True, None)
    assert subscriber_fields(store, ALICE)["l"] == "en"
    assert store.redis.get(session_key(store)) == CONFIRM
    # Never a subscriber out of nothing: an unknown number's hash is not created.
    store.hops.save_session(session_key(store, NOBODY), None, CONFIRM, language=Language.EN)
    assert subscriber_fields(store, NOBODY) == {}


def test_a_stale_save_stores_no_language(resuming):
    key = session_key(resuming)
    write_record(resuming, key, CONFIRM)
    assert resuming.hops.save_session(key, None, MIGRATED, language=Language.EN) == (
        False, CONFIRM)
    assert subscriber_fields(resuming, ALICE)["l"] == "fr"
