"""Turns to run hops (ussd/overload.py): a few at once, the others in arrival order (newest
first once the line stops moving in time), "busy" once they have waited their budget."""

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
    admission.leave()
    threads[0].join(1)
    assert results == [("a", True)]
    # A hop leaves, and a newcomer asks at that instant: the turn is b's, waiting first.
    admission.leave()
    threads[1].join(1)
    newcomer: list = []
    late = waiter(admission, time.monotonic(), newcomer, "d")
    settle_waiting(admission, 2)  # c, then d
    assert results == [("a", True), ("b", True)] and newcomer == []
    admission.leave()
    threads[2].join(1)
    admission.leave()
    late.join(1)
    assert results[-1] == ("c", True) and newcomer == [("d", True)]


def test_a_hop_that_waited_its_budget_is_busy_and_leaves_the_line():
    admission = Admission(1, budget=0.2)
    now = time.monotonic()
    assert admission.enter(now)
    started = time.monotonic()
    assert admission.enter(now) is False
    assert 0.15 < time.monotonic() - started < 0.5
    assert admission.waiting == 0
    admission.leave()
    assert admission.enter(time.monotonic())  # the turn freed is anyone's: none waits


def test_a_hop_that_arrived_long_ago_is_busy_at_once():
    """Its budget counts from its arrival: read slowly, it has none left to wait."""
    admission = Admission(1, budget=0.5)
    assert admission.enter(time.monotonic())
    started = time.monotonic()
    assert admission.enter(started - 1) is False
    assert time.monotonic() - started < 0.05


def test_a_turn_handed_over_as_the_wait_runs_out_is_taken(monkeypatch):
    """The hop that leaves grants the turn just as the waiting one gives up: the turn is the
    waiter's, not lost."""
    import ussd.overload

    admission = Admission(1, budget=0.1)
    assert admission.enter(time.monotonic())

    class Ticket:
        """A ticket whose wait runs out just as the running hop leaves, handing it the turn."""

        def __init__(self, arrived):
            self.arrived = arrived
            self.granted = False
            self.lock = self

        def acquire(self, timeout=-1):
            admission.leave()  # the running hop leaves now, granting this ticket its turn...
            return False  # ...just as the wait ran out

        def release(self):
            pass

    monkeypatch.setattr(ussd.overload, "_Ticket", Ticket)
    assert admission.enter(time.monotonic()) is True
    assert admission.waiting == 0


def test_once_the_oldest_has_waited_most_of_its_budget_the_newest_goes_first():
    clock = [100.0]
    admission = Admission(1, budget=1.0, clock=lambda: clock[0])
    assert admission.enter(100.0)
    results: list = []
    first = waiter(admission, 100.0, results, "first")
    settle_waiting(admission, 1)
    second = waiter(admission, 100.4, results, "second")
    settle_waiting(admission, 2)
    clock[0] = 100.7  # the oldest has waited 0.7 s of its 1 s: still first come, first served
    admission.leave()
    first.join(1)
    assert results == [("first", True)]
    third = waiter(admission, 100.7, results, "third")
    settle_waiting(admission, 2)
    clock[0] = 101.25  # "second" has waited 0.85 s: the line is not served in time
    admission.leave()
    third.join(1)
    assert results == [("first", True), ("third", True)]  # the newest, served at once
    admission.leave()
    second.join(1)
    assert results[-1] == ("second", True)


def test_without_turns_every_hop_runs_at_once():
    admission = Admission(None, budget=0.5)
    now = time.monotonic() - 60  # arrived long ago: no budget either
    assert all(admission.enter(now) for _ in range(1000))
