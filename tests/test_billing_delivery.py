"""What an answer means and how long to wait (ussd/billing/delivery.py), the receipt's text and
its check (ussd/billing/receipt.py), and the queues' gauges (ussd/billing/metrics.py)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import httpx
import pytest
from conftest import ALICE, BRUNO

from ussd.billing.delivery import MAX_RETRY_AFTER, Outcome, Verdict, backoff, judge, retry_after
from ussd.billing.metrics import QueueCollector
from ussd.billing.receipt import check_receipts
from ussd.errors import InvalidMenuError
from ussd.menu_files import load_menu
from ussd.rules import Channel, Policy
from ussd.settings import DEFAULT_MENUS_DIR
from ussd.store.keys import EVENTS, SMS


@pytest.mark.parametrize(("status", "headers", "body", "outcome"), [
    (200, {}, "", Outcome(Verdict.DELIVERED, "HTTP 200")),
    (204, {}, "", Outcome(Verdict.DELIVERED, "HTTP 204")),
    (503, {"Retry-After": "7"}, "down", Outcome(Verdict.RETRY, "HTTP 503: down", 7.0)),
    (500, {}, "", Outcome(Verdict.RETRY, "HTTP 500")),
    (429, {"Retry-After": "soon"}, "", Outcome(Verdict.RETRY, "HTTP 429")),
    (400, {}, "x" * 300, Outcome(Verdict.REFUSED, "HTTP 400: " + "x" * 200)),
    (409, {}, " closed ", Outcome(Verdict.REFUSED, "HTTP 409: closed")),
    (301, {"Location": "/elsewhere"}, "", Outcome(Verdict.REFUSED, "HTTP 301")),
])
def test_the_verdict_of_an_answer(status, headers, body, outcome):
    assert judge(httpx.Response(status, headers=headers, text=body)) == outcome


def test_retry_after_as_seconds_or_a_date():
    now = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
    assert retry_after("120") == 120.0
    assert retry_after("Sun, 15 Nov 2026 10:00:30 GMT", now) == 30.0
    assert retry_after("Sun, 15 Nov 2026 09:00:00 GMT", now) == 0.0  # past: at once
    assert retry_after("999999") == MAX_RETRY_AFTER
    assert retry_after(None) is None
    assert retry_after("later") is None


def test_the_backoff_doubles_with_jitter_up_to_its_most_and_honours_what_was_asked():
    rng = random.Random(1)
    for attempts, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (7, 60), (10, 60)):
        delays = [backoff(attempts, 1, 60, None, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not fixed
    assert backoff(1, 1, 60, 30, rng) == 30  # Retry-After: 30 wins over a 1 s back-off


def test_a_receipt_longer_than_one_sms_is_refused_when_the_menus_load(tmp_path):
    menu = load_menu(DEFAULT_MENUS_DIR)
    long = dict(menu.texts)
    long_fr = dict(menu.texts[next(iter(menu.texts))])
    long_fr["sms.migrated"] = "Orange: " + "x" * 150 + " {target} {left}/{cap}"
    long[next(iter(menu.texts))] = long_fr
    with pytest.raises(InvalidMenuError) as refused:
        check_receipts(type(menu)(menu.start, menu.screens, long, menu.system,
                                  menu.max_invalid), Policy())
    assert "not one SMS (160 GSM 03.38 characters) for Novamix" in str(refused.value)
    check_receipts(menu, Policy())  # the shipped texts fit


def test_the_queues_gauges_are_read_from_redis(service, store):
    assert service.migrate(ALICE, "Tigre", Channel.WEB).approved
    assert service.migrate(BRUNO, "Aigle", Channel.WEB).approved
    store.outbox.create_groups()
    [first, *_] = store.outbox.read((EVENTS,), "relay-1", 10, 0)
    assert store.outbox.bury(first, "HTTP 400", 1, "now")
    [left] = store.outbox.waiting(EVENTS)
    expected_age = datetime.now(UTC).timestamp() - int(left.entry.entry_id.split("-")[0]) / 1000
    collector = QueueCollector(store.outbox, (EVENTS, SMS))
    found = {(sample.name, sample.labels["queue"]): sample.value
             for family in collector.collect() for sample in family.samples}
    assert found[("ussd_outbox_waiting", EVENTS)] == 1
    assert found[("ussd_outbox_dead", EVENTS)] == 1
    assert found[("ussd_outbox_waiting", SMS)] == found[("ussd_outbox_dead", SMS)] == 0
    assert found[("ussd_outbox_oldest_seconds", EVENTS)] == pytest.approx(expected_age, abs=2)
    assert {json.loads(first.body)["msisdn"], json.loads(left.entry.body)["msisdn"]} == {
        ALICE, BRUNO}
