"""The other channels' path (ussd/accounts.py): the page, the history, a migration asked once,
as the API and ``ussd migrate`` use it, on fakeredis and a real Redis."""

from __future__ import annotations

import json

import pytest
from conftest import ALICE, BRUNO, NOBODY, THIS_MONTH

from ussd.accounts import Asker, Migrated, Outcome
from ussd.errors import IdempotencyKeyReusedError, StoreConflictError
from ussd.rules import Channel, Language, Profile, Reason, Standing
from ussd.store import AccountRead, MigrateOutcome, MigrateResult, Subscriber

PORTAL = Asker(Channel.WEB, "portal")


def test_the_page_is_the_rules_answer_for_every_profile(service):
    page = service.accounts.page(ALICE)
    assert (page.month, page.standing, page.monthly_cap, page.migrations_left) == (
        THIS_MONTH, Standing(Profile.NOVAMIX, 0, 3000), 3, 3)
    assert [(o.target, o.reason) for o in page.offers] == [
        (Profile.NOVAMIX, Reason.SAME_PROFILE), (Profile.TIGRE, Reason.APPROVED),
        (Profile.DAUPHIN, Reason.APPROVED), (Profile.AIGLE, Reason.INSUFFICIENT_CONSUMPTION)]
    assert service.accounts.page(NOBODY) is None


def test_a_migration_without_a_key_records_no_request(service, store):
    outcome = service.accounts.migrate(ALICE, "Tigre", Asker(Channel.CARE, "cli"))
    assert outcome == Outcome(
        outcome.decision, Migrated("2026-11-15T10:00:00+00:00", Profile.NOVAMIX, Profile.TIGRE,
                                   "care", "cli"))
    assert outcome.migrations_this_month == 1
    assert list(store.redis.scan_iter(f"{store.keys.prefix}:*:request:*")) == []


def test_ussd_migrate_without_a_client_keeps_its_old_history_line(service, store):
    assert service.migrate(ALICE, "tigre", Channel.APP).approved
    assert service.accounts.history(ALICE) == [
        Migrated("2026-11-15T10:00:00+00:00", Profile.NOVAMIX, Profile.TIGRE, "app", None)]
    entry = json.loads(store.redis.lindex(store.keys.history(ALICE), 0))
    assert "client" not in entry


def test_a_copy_arriving_while_the_first_is_in_flight_gets_the_first_answer(service, store,
                                                                           monkeypatch):
    # The copy reads before the first is applied (it finds no record), decides, and reaches
    # the migration script after: the script finds the record and answers with it.
    first = service.accounts.migrate(ALICE, "Tigre", PORTAL, "k")
    monkeypatch.setattr(store.accounts, "read", lambda *args: AccountRead(
        Subscriber(Language.FR, Standing(Profile.NOVAMIX, 0, 3000)), None))
    copy = service.accounts.migrate(ALICE, "Tigre", PORTAL, "k")
    assert copy == Outcome(first.decision, first.migration, replayed=True)
    assert store.redis.hget(store.keys.subscriber(ALICE), f"m:{THIS_MONTH}") == "1"
    assert store.redis.llen(store.keys.history(ALICE)) == 1


def test_a_refusal_racing_an_approval_under_one_key_answers_the_approval(service, store,
                                                                         monkeypatch):
    # Two copies of one request: the second decides on a standing where the first has
    # already moved the subscriber (same profile now), but its refusal is recorded only if
    # no answer is: it gets the first answer.
    first = service.accounts.migrate(ALICE, "Tigre", PORTAL, "k")
    monkeypatch.setattr(store.accounts, "read", lambda *args: AccountRead(
        Subscriber(Language.FR, Standing(Profile.TIGRE, 1, 3000)), None))
    copy = service.accounts.migrate(ALICE, "Tigre", PORTAL, "k")
    assert (copy.decision, copy.migration, copy.replayed) == (
        first.decision, first.migration, True)


def test_another_request_under_a_key_is_refused(service):
    service.accounts.migrate(ALICE, Profile.TIGRE, PORTAL, "k")
    with pytest.raises(IdempotencyKeyReusedError) as refused:
        service.accounts.migrate(ALICE, "aigle", PORTAL, "k")
    assert (refused.value.asked_before, refused.value.asked_now) == ("tigre", "aigle")


def test_a_migration_that_keeps_losing_races_gives_up(service, store, monkeypatch):
    moved = MigrateResult(MigrateOutcome.STALE_SUBSCRIBER,
                          standing=Standing(Profile.TIGRE, 0, 9500))
    monkeypatch.setattr(store.accounts, "migrate", lambda *args, **kwargs: moved)
    with pytest.raises(StoreConflictError):
        service.accounts.migrate(BRUNO, "Aigle", PORTAL, "k")
