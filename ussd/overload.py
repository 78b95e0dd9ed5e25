"""Overload is shed, not queued: a few hops run at once in a worker, the next ones wait their
turn in arrival order, and a hop whose turn has not come within its budget is told "busy".

Before, a hop waited for one of the worker's three threads in the server's own queue, where
nothing measured its wait, and a keep-alive connection beyond the 24 a worker accepted waited
in the kernel's: at twice the capacity, answered hops took 7.5 s (p99) and some none at all,
while each took under 100 ms to serve. Now the server accepts every connection and hands each
request to a thread of its own as it arrives (``server.MAX_IN_FLIGHT`` per worker), and
:class:`Admission` lets ``hops_at_once`` of them run (3: measured, bench/README.md). The
others wait here (a ticket each, handed over by the hop that leaves, so that no newcomer
overtakes them), each until ``USSD_BUSY_AFTER`` (0.5 s) after it arrived: then it is answered
"busy" (:meth:`~ussd.service.UssdService.busy`, no Redis call), well within the few seconds a
gateway waits, instead of at the end of a queue. They wait first come, first served while the
line moves; once its oldest has waited four fifths of its budget (:data:`NEWEST_FIRST_AFTER`),
the line is not being served in time, and the newest waiting goes first ("adaptive LIFO", as
in Ben Maurer's "Fail at Scale", ACM Queue 2015): the hops served are then served at once, not
each at the end of its budget, and the oldest are the ones told "busy".

"Busy" comes at the budget, not at once, even when the line is long: a gateway that is told
"busy" at once calls again at once (the bench's connections do), and answering those calls
took as much of the CPU as serving the hops they stood for (bench/README.md, "Overload").
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# The share of its budget the oldest waiting hop has waited when the newest goes first: with
# half, 37% of 600 connections' hops were told "busy" that first-come-first-served would all
# have served within the budget (bench/README.md, "Overload").
NEWEST_FIRST_AFTER = 0.8


class _Ticket:
    """A waiting hop's turn: granted by the hop that leaves (its lock released)."""

    __slots__ = ("arrived", "granted", "lock")

    def __init__(self, arrived: float):
        self.arrived = arrived
        self.lock = threading.Lock()
        self.lock.acquire()
        self.granted = False


class Admission:
    """Turns to run hops in one worker: ``hops_at_once`` at a time (None: every hop at once,
    no turns), each within ``budget`` seconds of its arrival (on ``clock``)."""

    def __init__(self, hops_at_once: int | None, budget: float,
                 clock: Callable[[], float] = time.monotonic):
        self.turns = hops_at_once is not None
        self.budget = budget
        self.clock = clock
        self._free = hops_at_once or 0
        self._waiting: deque[_Ticket] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Hops waiting for their turn now."""
        return len(self._waiting)

    def enter(self, arrived: float) -> bool:
        """Wait for the turn of the hop that arrived at ``arrived``; False: answer it "busy"."""
        if not self.turns:
            return True
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            ticket = _Ticket(arrived)
            self._waiting.append(ticket)
        if ticket.lock.acquire(timeout=max(arrived + self.budget - self.clock(), 0)):
            return True
        with self._lock:
            if ticket.granted:  # handed over as the wait ran out: the turn is this hop's
                return True
            self._waiting.remove(ticket)
            return False

    def leave(self) -> None:
        """The hop whose turn it was is done: the next one's turn."""
        if not self.turns:
            return
        with self._lock:
            waiting = self._waiting
            if not waiting:
                self._free += 1
                return
            if self.clock() - waiting[0].arrived > self.budget * NEWEST_FIRST_AFTER:
                ticket = waiting.pop()  # the line is not moving in time: newest first
            else:
                ticket = waiting.popleft()
            ticket.granted = True
            ticket.lock.release()
