"""API migrations racing each other and USSD confirmations for one subscriber, on a real Redis
(and the 3-master cluster: tests/test_cluster.py): the monthly cap is one counter for every
channel, and one idempotency key applies once however many copies arrive at once."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from api_calls import ApiCaller
from conftest import ALICE, BRUNO, NOW, THIS_MONTH, Dialler, seed_subscribers

from ussd.store import Store
from ussd.web import create_app

pytestmark = pytest.mark.real_redis
REQUESTS = 50
SESSIONS = 12


@pytest.fixture
def race(real_redis, settings, clients_file, api_document):
    """The app on the real Redis, its store, and an API caller for each thread."""
    store = Store(real_redis, prefix=settings.key_prefix)
    seed_subscribers(store)
    app = create_app(replace(settings, api_clients=clients_file), redis_client=real_redis,
                     clock=lambda: NOW)
    return app, store, lambda: ApiCaller(app.test_client(), api_document)


def test_api_and_ussd_migrations_racing_never_exceed_the_cap(race):
    app, store, caller = race
    # Bruno (Tigre, 9.500 F CFA) may go to Novamix, Dauphin or Aigle: three target groups, so
    # whatever the order exactly the cap (3) succeeds, the rest refused (same profile, cap).
    targets = ["Novamix", "Dauphin", "Aigle"]
    sessions = []
    for number in range(SESSIONS):
        session = Dialler(app.test_client(), BRUNO, session_id=f"race-{number}")
        session.dial()
        session.send("1")
        session.send(("1", "3", "4")[number % 3])  # to the confirmation screen
        sessions.append(session)
    barrier = threading.Barrier(REQUESTS + SESSIONS)

    def by_api(number: int):
        api = caller()
        barrier.wait()
        return api.migrate(BRUNO, targets[number % 3], key=f"race-{number}",
                           client=("portal", "mobile", "care")[number % 3])

    def by_ussd(session: Dialler) -> str:
        session.client = app.test_client()
        barrier.wait()
        return session.send("1")

    with ThreadPoolExecutor(REQUESTS + SESSIONS) as pool:
        api_answers = [pool.submit(by_api, number) for number in range(REQUESTS)]
        ussd_answers = [pool.submit(by_ussd, session) for session in sessions]
        api_answers = [answer.result() for answer in api_answers]
        ussd_answers = [answer.result() for answer in ussd_answers]

    applied_by_api = [r for r in api_answers if r.status_code == 201]
    applied_by_ussd = [r for r in ussd_answers if r.startswith("END Votre profil est désormais")]
    assert len(applied_by_api) + len(applied_by_ussd) == 3
    assert {r.get_json()["reason"] for r in api_answers if r.status_code != 201} <= {
        "same_profile", "monthly_limit_reached"}
    assert all(r.status_code in (201, 422) for r in api_answers)
    record = store.admin.describe(BRUNO, THIS_MONTH)
    assert record["migrations_this_month"] == 3
    chain = record["history"]
    assert len(chain) == 3 and chain[0]["from"] == "tigre"
    assert all(a["to"] == b["from"] for a, b in itertools.pairwise(chain))
    assert record["profile"] == chain[-1]["to"]
    # Each approved answer counts down from what the store held when it was applied.
    lefts = sorted([r.get_json()["migrations_left"] for r in applied_by_api]
                   + [int(r.rsplit(": ", 1)[1].rstrip(".")) for r in applied_by_ussd])
    assert lefts == [0, 1, 2]


def test_fifty_copies_of_one_request_apply_once_and_answer_alike(race):
    _, store, caller = race
    barrier = threading.Barrier(REQUESTS)

    def send(_):
        api = caller()
        barrier.wait()
        return api.migrate(ALICE, "Tigre", key="one-key")

    with ThreadPoolExecutor(REQUESTS) as pool:
        answers = list(pool.map(send, range(REQUESTS)))

    assert {(r.status_code, r.get_data()) for r in answers} == {
        (201, answers[0].get_data())}
    replayed = [r.headers.get("Idempotent-Replayed") for r in answers]
    assert (replayed.count(None), replayed.count("true")) == (1, REQUESTS - 1)
    record = store.admin.describe(ALICE, THIS_MONTH)
    assert (record["profile"], record["migrations_this_month"], len(record["history"])) == (
        "tigre", 1, 1)
