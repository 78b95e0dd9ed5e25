"""The relay (ussd/billing/relay.py) against real HTTP servers on loopback (ussd/billing/stubs.py),
on fakeredis and on a real Redis: what billing, the SMS provider and the operator see."""

from __future__ import annotations

import json
import re
import threading

import pytest
from conftest import ALICE, BRUNO, CELINE, JOHN, THIS_MONTH
from relays import BILLING_TOKEN, SENDER, SMS_KEY, make_relay, running, stubs, wait_for

from ussd.billing.stubs import Answer
from ussd.rules import Channel
from ussd.store.keys import EVENTS, SMS

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
RECEIPT_FR = ("Orange: votre profil Tigre est actif. Vos avantages en cours sont conservés. "
              "Migrations restantes ce mois: 2 sur 3.")


def outbox(store, queue=EVENTS):
    """What waits in a queue, every bucket, as written."""
    return [json.loads(waiting.entry.body) for waiting in store.outbox.waiting(queue)]


def migrate_by_ussd(dialler, msisdn=ALICE, choice="2"):
    """Dial, 1 change profile, the profile's number, 1 confirm; returns the session id."""
    session = dialler(msisdn)
    session.dial()
    session.send("1")
    session.send(choice)
    assert session.send("1").startswith("END ")
    return session.session_id


def billing_headers(request) -> dict:
    """The headers billing received, less those the HTTP library writes for itself."""
    headers = dict(request.headers)
    assert headers.pop("content-length") == str(len(request.body))
    for name in ("host", "accept", "accept-encoding", "connection"):
        headers.pop(name)
    return headers


def test_a_ussd_migration_reaches_billing_once_then_the_subscriber_by_sms(dialler, store):
    session_id = migrate_by_ussd(dialler)
    [event] = outbox(store)
    assert UUID.match(event.pop("id"))
    assert event == {"msisdn": ALICE, "from": "novamix", "to": "tigre", "channel": "ussd",
                     "client": "africastalking", "session": session_id,
                     "at": "2026-11-15T10:00:00+00:00", "month": THIS_MONTH,
                     "migrations_this_month": 1, "language": "fr"}
    [waiting] = store.outbox.waiting(EVENTS)
    with stubs() as (billing, sms), running(make_relay(store, billing, sms)):
        wait_for(lambda: sms.sent, what="the SMS")
    [call] = billing.received
    assert (call.method, call.path) == ("POST", "/events")
    assert call.body == waiting.entry.body.encode()  # byte for byte as the script wrote it
    assert billing_headers(call) == {
        "content-type": "application/json", "user-agent": "ussd121-relay/0.1.0",
        "authorization": f"Bearer {BILLING_TOKEN}", "idempotency-key": waiting.entry.event_id}
    [text] = sms.received
    assert (text.method, text.path) == ("POST", "/version1/messaging")
    assert text.form() == {"username": "sandbox", "to": ALICE, "message": RECEIPT_FR,
                           "from": SENDER}
    assert (text.headers["apikey"], text.headers["accept"]) == (SMS_KEY, "application/json")
    assert outbox(store) == outbox(store, SMS) == []
    assert list(store.outbox.dead(EVENTS)) == list(store.outbox.dead(SMS)) == []


def test_a_refused_migration_sends_nothing(dialler, store):
    session = dialler(CELINE)  # 1.200 F CFA: Tigre refused
    session.dial()
    session.send("1")
    assert "impossible" in session.send("2")
    assert outbox(store) == []
    with stubs() as (billing, sms), running(make_relay(store, billing, sms)):
        pass
    assert billing.received == sms.received == []


def test_every_retry_carries_the_same_id_and_body(service, store):
    assert service.migrate(BRUNO, "Aigle", Channel.WEB, client="portal").approved
    [waiting] = store.outbox.waiting(EVENTS)
    with stubs() as (billing, sms):
        billing.schedule(Answer(503, "maintenance"), Answer(429, headers={"Retry-After": "1"}),
                         Answer(200, delay=1.5),  # answered after the relay's 1 s timeout
                         Answer(drop=True))
        with running(make_relay(store, billing, sms)):
            wait_for(lambda: sms.sent, what="the SMS")
    assert len(billing.received) == 5
    assert {call.body for call in billing.received} == {waiting.entry.body.encode()}
    assert {call.headers["idempotency-key"] for call in billing.received} == {
        waiting.entry.event_id}
    assert [event["id"] for event in billing.applied] == [waiting.entry.event_id]
    assert billing.received[2].at - billing.received[1].at >= 1.0  # Retry-After honoured
    assert len(sms.sent) == 1
    assert store.redis.hgetall(store.keys.tries(EVENTS, waiting.entry.bucket)) == {}


def test_a_refusal_by_billing_is_a_dead_letter_at_once(service, store):
    assert service.migrate(BRUNO, "Aigle", Channel.APP, client="app").approved
    [waiting] = store.outbox.waiting(EVENTS)
    with stubs() as (billing, sms):
        billing.schedule(Answer(422, '{"error": "unknown tariff"}'))
        with running(make_relay(store, billing, sms)):
            wait_for(lambda: list(store.outbox.dead(EVENTS)), what="the dead letter")
    [letter] = store.outbox.dead(EVENTS)
    assert letter.entry.body == waiting.entry.body
    assert (letter.reason, letter.attempts) == ('HTTP 422: {"error": "unknown tariff"}', 1)
    assert len(billing.received) == 1
    assert sms.received == []
    assert outbox(store) == outbox(store, SMS) == []


def test_too_many_failures_is_a_dead_letter_with_the_last_error(service, store):
    assert service.migrate(BRUNO, "Aigle", Channel.WEB).approved
    with stubs() as (billing, sms):
        billing.schedule(*[Answer(503, "down")] * 3)
        with running(make_relay(store, billing, sms, max_attempts=3)):
            wait_for(lambda: list(store.outbox.dead(EVENTS)), what="the dead letter")
    [letter] = store.outbox.dead(EVENTS)
    assert (letter.reason, letter.attempts) == (
        "3 failed attempts, the last: HTTP 503: down", 3)
    assert len(billing.received) == 3
    assert sms.received == []


def test_a_wrong_token_is_a_refusal_not_a_retry(service, store):
    assert service.migrate(BRUNO, "Aigle", Channel.WEB).approved
    with stubs() as (billing, sms):
        billing.token = "another-token-0123456789"
        with running(make_relay(store, billing, sms)):
            wait_for(lambda: list(store.outbox.dead(EVENTS)), what="the dead letter")
    [letter] = store.outbox.dead(EVENTS)
    assert letter.reason == 'HTTP 401: {"error": "unauthorized"}'


def test_a_dead_letter_sent_again_is_delivered_with_its_first_id(service, store):
    assert service.migrate(BRUNO, "Aigle", Channel.WEB).approved
    [waiting] = store.outbox.waiting(EVENTS)
    with stubs() as (billing, sms):
        billing.schedule(Answer(400, "bad"))
        with running(make_relay(store, billing, sms)):
            wait_for(lambda: list(store.outbox.dead(EVENTS)), what="the dead letter")
            assert store.outbox.redrive(store.outbox.dead(EVENTS)) == 1
            wait_for(lambda: sms.sent, what="the SMS")
    assert [call.body for call in billing.received] == [waiting.entry.body.encode()] * 2
    assert list(store.outbox.dead(EVENTS)) == []


def test_the_sms_provider_refusing_a_number_is_a_dead_sms_not_a_lost_event(service, store):
    assert service.migrate(JOHN, "Tigre", Channel.WEB).approved
    refusal = {"SMSMessageData": {"Message": "Sent to 0/1", "Recipients": [
        {"statusCode": 403, "number": JOHN, "status": "InvalidPhoneNumber", "cost": "0"}]}}
    with stubs() as (billing, sms):
        sms.schedule(Answer(201, json.dumps(refusal)))
        with running(make_relay(store, billing, sms)):
            wait_for(lambda: list(store.outbox.dead(SMS)), what="the dead SMS")
    [event] = billing.applied
    [letter] = store.outbox.dead(SMS)
    assert json.loads(letter.entry.body) == {
        "id": event["id"], "to": JOHN,
        "message": "Orange: your Tigre profile is now active. Your current benefits are kept. "
                   "Migrations left this month: 2 of 3."}
    assert (letter.reason, letter.attempts) == ("provider status 403 InvalidPhoneNumber", 1)
    assert outbox(store) == outbox(store, SMS) == []


def test_a_provider_error_is_retried_and_the_sms_sent_once(service, store):
    assert service.migrate(ALICE, "Tigre", Channel.WEB).approved
    error = {"SMSMessageData": {"Message": "Sent to 0/1", "Recipients": [
        {"statusCode": 500, "number": ALICE, "status": "InternalServerError", "cost": "0"}]}}
    with stubs() as (billing, sms):
        sms.schedule(Answer(201, json.dumps(error)), Answer(503))
        with running(make_relay(store, billing, sms)):
            wait_for(lambda: sms.sent, what="the SMS")
    assert len(sms.received) == 3
    assert [form["message"] for form in sms.sent] == [RECEIPT_FR]


def test_without_an_sms_client_no_sms_is_attempted(service, store):
    assert service.migrate(ALICE, "Tigre", Channel.WEB).approved
    with stubs() as (billing, sms), running(make_relay(store, billing)):
        wait_for(lambda: billing.applied, what="the event")
    assert sms.received == []
    assert outbox(store) == outbox(store, SMS) == []


def test_a_stopping_relay_hands_back_what_it_holds_for_another_to_deliver(service, store):
    assert service.migrate(ALICE, "Tigre", Channel.WEB).approved
    with stubs() as (billing, sms):
        billing.go_down(60)
        first = make_relay(store, billing, sms, name="first", backoff_first=5, backoff_most=5)
        with running(first):
            wait_for(lambda: billing.received, what="the first attempt")
        [waiting] = store.outbox.waiting(EVENTS)
        assert (waiting.holder, waiting.attempts) == ("returned", 1)
        assert waiting.error.startswith("HTTP 503")
        billing.go_down(0)
        # claim_after is 3 s, yet the other relay takes the event at once.
        with running(make_relay(store, billing, sms, name="second")):
            wait_for(lambda: sms.sent, seconds=2, what="the SMS")
    assert [call.headers["idempotency-key"] for call in billing.received] == [
        waiting.entry.event_id] * 2


def test_an_entry_taken_over_is_left_to_its_new_holder(service, store):
    assert service.migrate(ALICE, "Tigre", Channel.WEB).approved
    store.outbox.create_groups()
    [entry] = store.outbox.read((EVENTS,), "slow", 10, 0)
    assert store.outbox.touch(entry, "slow")
    assert store.outbox.claim(EVENTS, "fast", 0) == [entry]
    assert not store.outbox.touch(entry, "slow")
    assert store.outbox.ack(entry, '{"id": "x", "to": "+225", "message": "m"}')
    assert not store.outbox.ack(entry, '{"id": "x", "to": "+225", "message": "m"}')
    assert len(outbox(store, SMS)) == 1  # a second acknowledgement queues no second SMS
    assert not store.outbox.bury(entry, "late", 1, "now")  # delivered stays delivered
    assert list(store.outbox.dead(EVENTS)) == []


@pytest.mark.parametrize("relays", [1, 2])
def test_many_migrations_each_reach_billing_and_the_subscriber_once(service, store, relays):
    for target in ("Tigre", "Dauphin", "Novamix"):
        assert service.migrate(ALICE, target, Channel.WEB).approved
    assert service.migrate(BRUNO, "Aigle", Channel.WEB).approved
    assert service.migrate(JOHN, "Novamix", Channel.APP).approved
    written = {event["id"]: event for event in outbox(store)}
    with stubs() as (billing, sms):
        billing.schedule(Answer(503), Answer(500), Answer(drop=True))
        workers = [make_relay(store, billing, sms, name=f"relay-{n}") for n in range(relays)]
        with running(workers[0]), (running(workers[1]) if relays > 1 else _nothing()):
            wait_for(lambda: len(sms.sent) == 5, what="five SMS")
    assert {event["id"]: event for event in billing.applied} == written
    assert sorted(form["to"] for form in sms.sent) == sorted([ALICE] * 3 + [BRUNO, JOHN])


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


class Pauses(threading.Event):
    """A relay's stop flag that records each pause the relay takes, and takes none (1 ms);
    ``after(count)`` runs after each."""

    def __init__(self, after):
        super().__init__()
        self.taken: list[float | None] = []
        self.after = after

    def wait(self, timeout=None):
        self.taken.append(timeout)
        self.after(len(self.taken))
        return super().wait(0.001)


@pytest.mark.parametrize("redis_client", ["fakeredis"], indirect=True)
def test_a_relay_that_cannot_block_pauses_longer_while_idle_and_shorter_once_entries_come(
        service, store):
    # The embedded store (and a cluster) cannot block on 512 streams: the relay reads them all
    # each time, and while nothing comes it pauses 0.2 s, doubled up to 2 s.
    assert not store.outbox.blocking

    def after(count: int) -> None:
        if count == 6:  # a migration while the relay is idle: the next read finds its event
            assert service.migrate(BRUNO, "Aigle", Channel.WEB).approved

    with stubs() as (billing, _):
        relay = make_relay(store, billing)
        relay.stopping = pauses = Pauses(after)
        with running(relay):
            wait_for(lambda: len(pauses.taken) >= 9 and billing.applied, what="9 pauses")
    assert pauses.taken[:9] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 0.2, 0.4, 0.8]
    assert set(pauses.taken[9:]) <= {1.6, 2.0}
    assert [event["msisdn"] for event in billing.applied] == [BRUNO]
