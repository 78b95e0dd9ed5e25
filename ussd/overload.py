"""Overload is shed, not queued: a few hops run at once in a worker, the next ones wait their
turn in arrival order, and a hop that cannot be answered in time is told "busy" at once.

Before, a hop waited for one of the worker's three threads in the server's own queue, where
nothing measured its wait: at twice the capacity, answered hops took 7.5 s (p99) while each
took under 100 ms to serve. Now the server hands every request to a thread of its own as it
arrives (``server.MAX_IN_FLIGHT`` per worker), and :class:`Admission` lets ``hops_at_once``
of them run (3: measured, bench/README.md); the others wait here, first come first served (a
ticket each, handed over by the hop that leaves, so that no newcomer overtakes them). A hop is
answered "busy" (:meth:`~ussd.service.UssdService.busy`: no Redis call, a fraction of a
hop's cost):

- at once, when the hops waiting ahead of it would take longer than the rest of its budget
  (``USSD_BUSY_AFTER``, 0.5 s from its arrival) to serve at the pace hops are served now, or
  when as many wait as the worker will hold (``waiting_at_most``: beyond, requests would wait
  unseen in the server's queue, their time unmeasured);
- or when it has waited its budget without its turn coming.

Fast "busy" answers keep the queue short, so the answered hops keep within the budget and the
gateway, whose deadline is a few seconds, never waits on us in vain (docs/reliability.md).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# How much each hop's time weighs in the pace (an exponentially weighted mean): the last
# twenty or so hops.
PACE_WEIGHT = 0.05


class _Ticket:
    """A waiting hop's turn: granted by the hop that leaves (its lock released)."""

    __slots__ = ("granted", "lock")

    def __init__(self):
        self.lock = threading.Lock()
        self.lock.acquire()
        self.granted = False


class Admission:
    """Turns to run hops in one worker: ``hops_at_once`` at a time (None: every hop at once,
    no turns), within ``budget`` seconds of each hop's arrival (on ``clock``); at most
    ``waiting_at_most`` waiting (None: no bound but the budget)."""

    def __init__(self, hops_at_once: int | None, budget: float,
                 waiting_at_most: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if hops_at_once is None:
            hops_at_once, budget = 1 << 30, float("inf")
        self.hops_at_once = hops_at_once
        self.budget = budget
        self.waiting_at_most = waiting_at_most
        self.clock = clock
        self.pace = 0.0  # seconds a hop holds its turn, lately
        self._free = hops_at_once
        self._waiting: deque[_Ticket] = deque()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Hops waiting for their turn now."""
        return len(self._waiting)

    def enter(self, arrived: float) -> bool:
        """Wait for a turn for the hop that arrived at ``arrived``; False: answer it "busy"."""
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return True
            ahead = len(self._waiting)
            left = arrived + self.budget - self.clock()
            if ((self.waiting_at_most is not None and ahead >= self.waiting_at_most)
                    or (ahead + 1) * self.pace / self.hops_at_once > left):
                return False
            ticket = _Ticket()
            self._waiting.append(ticket)
        if ticket.lock.acquire(timeout=max(left, 0)):
            return True
        with self._lock:
            if ticket.granted:  # handed over as the wait ran out: the turn is this hop's
                return True
            self._waiting.remove(ticket)
            return False

    def leave(self, held: float) -> None:
        """The hop whose turn it was is done, after ``held`` seconds: the next one's turn."""
        with self._lock:
            self.pace += (held - self.pace) * PACE_WEIGHT
            if self._waiting:
                ticket = self._waiting.popleft()
                ticket.granted = True
                ticket.lock.release()
            else:
                self._free += 1
