"""Turns to run hops (ussd/overload.py): a few at once, the others in arrival order, "busy" at
once when their turn cannot come within the budget, or once they have waited it."""

from __future__ import annotations

import threading
import time

from ussd.overload import Admission


def waiter(admission: Admission, arrived: float, results: list, name: str) -> threading.Thread:
    """A hop waiting for its turn on a thread; ``results`` gets (name, turn) when it has one."""

    def run():
        turn = admission.enter(arrived)
        results.append((name, turn))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def settle_waiting(admission: Admission, count: int) -> None:
    deadline = time.monotonic() + 2
    while admission.waiting != count:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_turns_go_in_arrival_order_and_no_newcomer_overtakes():
    admission = Admission(2, budget=5)
    now = time.monotonic()
    assert admission.enter(now) and admission.enter(now)
    results: list = []
    threads = []
    for name in "abc":
        threads.append(waiter(admission, now, results, name))
        settle_waiting(admission, len(threads))
    admission.leave(0.001)
    threads[0].join(1)
    assert results == [("a", True)]
    # A hop leaves, and a newcomer asks at that instant: the turn is b's, waiting first.
    admission.leave(0.001)
    threads[1].join(1)
    newcomer: list = []
    late = waiter(admission, time.monotonic(), newcomer, "d")
    settle_waiting(admission, 2)  # c, then d
    assert results == [("a", True), ("b", True)] and newcomer == []
    admission.leave(0.001)
    threads[2].join(1)
    admission.leave(0.001)
    late.join(1)
    assert results[-1] == ("c", True) and newcomer == [("d", True)]


def test_a_turn_that_cannot_come_in_time_is_refused_at_once():
    admission = Admission(1, budget=0.5)
    admission.pace = 0.2  # hops lately held their turn 0.2 s
    now = time.monotonic()
    assert admission.enter(now)
    results: list = []
    first = waiter(admission, now, results, "first")  # 0.2 s ahead: within 0.5 s
    settle_waiting(admission, 1)
    second = waiter(admission, now, results, "second")  # 0.4 s: within
    settle_waiting(admission, 2)
    started = time.monotonic()
    assert admission.enter(now) is False  # 0.6 s ahead: busy, and at once
    assert time.monotonic() - started < 0.05
    for _ in range(3):
        admission.leave(0.2)
    first.join(1)
    second.join(1)
    assert sorted(results) == [("first", True), ("second", True)]


def test_a_full_waiting_room_is_busy_at_once():
    admission = Admission(1, budget=5, waiting_at_most=1)
    now = time.monotonic()
    assert admission.enter(now)
    results: list = []
    thread = waiter(admission, now, results, "waiting")
    settle_waiting(admission, 1)
    assert admission.enter(now) is False
    admission.leave(0.01)
    thread.join(1)
    assert results == [("waiting", True)]


def test_a_hop_that_waited_its_budget_is_busy_and_leaves_the_line():
    admission = Admission(1, budget=0.2)
    now = time.monotonic()
    assert admission.enter(now)
    started = time.monotonic()
    assert admission.enter(now) is False
    assert 0.15 < time.monotonic() - started < 0.5
    assert admission.waiting == 0
    admission.leave(0.3)
    assert admission.enter(time.monotonic())  # the turn freed is anyone's: none waits


def test_the_pace_follows_the_last_hops():
    admission = Admission(1, budget=1)
    for _ in range(200):
        assert admission.enter(time.monotonic())
        admission.leave(0.004)
    assert 0.0039 < admission.pace < 0.0041


def test_without_turns_every_hop_runs_at_once():
    admission = Admission(None, budget=0.5)
    now = time.monotonic() - 60  # arrived long ago: no budget either
    assert all(admission.enter(now) for _ in range(1000))
