"""The relay (``ussd relay``): every event of the outbox to billing, every receipt to the
subscriber, at least once, none lost, none given up on in silence.

The main thread reads new entries of both queues (and, every half ``USSD_RELAY_CLAIM_AFTER``,
takes over those of relays that went quiet) and hands each to one of
``USSD_RELAY_CONCURRENCY`` delivery threads. A delivery renews the relay's hold on its entry
before every call, so no other relay takes it over while it works; it acknowledges the entry
only after a ``2xx`` (an event's receipt queued in that same step), retries a failure after a
back-off with jitter, and dead-letters it when refused or after
``USSD_BILLING_MAX_ATTEMPTS`` failures. Redis going away stops nothing: each step waits for it
and goes on. On SIGTERM the relay reads no more, lets the calls in flight end (each within
``USSD_BILLING_TIMEOUT``), and hands every entry it still holds to the other relays at once.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from ..errors import StoreError
from ..store import Entry, Outbox
from ..store.keys import EVENTS, SMS
from . import metrics
from .delivery import Outcome, Verdict, backoff

log = logging.getLogger("ussd.relay")

# How long a read waits for new entries on one Redis server (below the client's timeout), and
# how long a relay on a cluster or the embedded store, which cannot block, sleeps after finding
# none: POLL_SECONDS, doubled after each read that finds none up to POLL_MOST_SECONDS, back to
# POLL_SECONDS once one finds some. Each read visits every bucket's stream (512 of them): at
# 0.2 s while idle, the demo's worker spent about 15 % of a core on it; at 2 s, a tenth of that.
# An entry written while the relay is idle waits at most POLL_MOST_SECONDS to be read.
BLOCK_MS = 500
POLL_SECONDS = 0.2
POLL_MOST_SECONDS = 2.0
# How long a relay waits before trying Redis again when it cannot be reached.
STORE_RETRY_SECONDS = 1.0
# A stopping relay still tries this long to record a delivery it made: not recording it would
# deliver it again later.
SETTLE_SECONDS = 10.0
# Entries that a relay which gave them back is no longer named for: any relay may take them.
RETURNED = "returned"


class Courier(Protocol):
    """What delivers one queue's entries: one call per attempt."""

    def send(self, body: str) -> Outcome: ...

    def close(self) -> None: ...


def relay_name() -> str:
    """A name no other relay has: host, process and a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


class Relay:
    """Delivers the ``events`` queue through ``billing`` and, when given, the ``sms`` queue
    through ``sms``; ``receipt`` turns a delivered event into its receipt (None: no SMS)."""

    def __init__(self, outbox: Outbox, billing: Courier, *, sms: Courier | None = None,
                 receipt: Callable[[str], str] | None = None, max_attempts: int = 10,
                 claim_after: float = 30.0, backoff_first: float = 1.0,
                 backoff_most: float = 60.0, concurrency: int = 8, name: str | None = None,
                 block_ms: int = BLOCK_MS, rng: random.Random | None = None):
        self.outbox = outbox
        self.couriers: dict[str, Courier] = {EVENTS: billing}
        if sms is not None:
            self.couriers[SMS] = sms
        self.queues = tuple(self.couriers)
        self.receipt = receipt if sms is not None else None
        self.max_attempts = max_attempts
        self.claim_after = claim_after
        self.backoff = (backoff_first, backoff_most)
        self.concurrency = concurrency
        self.block_ms = block_ms
        self.name = name or relay_name()
        self.rng = rng or random.Random()
        self.stopping = threading.Event()
        self._slots = threading.Semaphore(concurrency)
        self._held: set[Entry] = set()  # read, not yet delivered nor given up
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Ask the relay to stop (the SIGTERM handler's job); ``run`` returns soon after."""
        self.stopping.set()

    def run(self) -> None:
        """Deliver until stopped."""
        self._with_store(self.outbox.create_groups)
        log.info("relay %s: delivering %s", self.name, " and ".join(self.queues))
        next_claim = 0.0
        pause = POLL_SECONDS
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="delivery") as pool:
            while not self.stopping.is_set():
                fresh, taken = [], []
                try:
                    if time.monotonic() >= next_claim:
                        taken = self._claim()
                        next_claim = time.monotonic() + self.claim_after / 2
                    fresh = self.outbox.read(self.queues, self.name, self.concurrency,
                                             self.block_ms)
                except StoreError as error:
                    log.warning("relay %s: Redis unreachable (%s); trying again", self.name,
                                error)
                    self.stopping.wait(STORE_RETRY_SECONDS)
                attempts = self._attempts(taken) + [0] * len(fresh)
                self._keep(taken + fresh)
                read_at = time.monotonic()  # when the hold on these began
                # One bucket's entries one after the other, in the order they were written: a
                # subscriber's migrations reach billing, and their receipts the subscriber, in
                # the order they were made; the buckets go in parallel.
                in_order: dict[tuple[str, str], list] = {}
                for entry, tries in zip(taken + fresh, attempts, strict=True):
                    in_order.setdefault((entry.queue, entry.bucket), []).append((entry, tries))
                for batch in in_order.values():
                    self._slots.acquire()
                    pool.submit(self._deliver_in_order, sorted(batch, key=_written), read_at)
                if taken or fresh or self.outbox.blocking:
                    pause = POLL_SECONDS
                else:  # a store that cannot block: a pause, longer while nothing comes
                    self.stopping.wait(pause)
                    pause = min(pause * 2, POLL_MOST_SECONDS)
        self._give_back()
        for courier in self.couriers.values():
            courier.close()

    def _claim(self) -> list[Entry]:
        taken = []
        for queue in self.queues:
            taken += self.outbox.claim(queue, self.name, int(self.claim_after * 1000))
        if taken:
            log.info("relay %s: took over %d entries of relays gone quiet", self.name,
                     len(taken))
        return taken

    def _attempts(self, entries: list[Entry]) -> list[int]:
        try:
            return self.outbox.attempts(entries)
        except StoreError:
            return [0] * len(entries)  # counted afresh: at worst a few more attempts

    def _keep(self, entries: list[Entry]) -> None:
        with self._lock:
            self._held.update(entries)

    def _release(self, entry: Entry) -> None:
        with self._lock:
            self._held.discard(entry)

    def _deliver_in_order(self, batch: list[tuple[Entry, int]], held_since: float) -> None:
        try:
            for entry, attempts in batch:
                try:
                    self._deliver(entry, attempts, held_since)
                except Exception:  # a bug must not kill a delivery thread silently
                    log.exception("relay %s: delivery of %s failed", self.name, entry.entry_id)
        finally:
            self._slots.release()

    def _deliver(self, entry: Entry, attempts: int, held_since: float) -> None:
        """Attempt ``entry`` until delivered, given up on, taken over, or the relay stops.

        The hold is renewed before a call unless it began (or was renewed) less than a third
        of ``claim_after`` ago: an entry just read costs its call and its acknowledgement only.
        """
        courier, queue = self.couriers[entry.queue], entry.queue
        while not self.stopping.is_set():
            if time.monotonic() - held_since > self.claim_after / 3:
                if not self._with_store(lambda: self.outbox.touch(entry, self.name)):
                    metrics.DELIVERIES.labels(queue, "taken_over").inc()
                    self._release(entry)  # delivered or taken over by another relay meanwhile
                    return
                held_since = time.monotonic()
            outcome = courier.send(entry.body)
            if outcome.verdict is Verdict.DELIVERED:
                receipt = self.receipt(entry.body) if self.receipt and queue == EVENTS else None
                self._settle(partial(self.outbox.ack, entry, receipt))
                metrics.DELIVERIES.labels(queue, "delivered").inc()
                log.info("%s %s delivered (%s) after %d failed attempt(s)", queue,
                         entry.event_id, outcome.detail, attempts)
                self._release(entry)
                return
            attempts += 1
            if outcome.verdict is Verdict.REFUSED or attempts >= self.max_attempts:
                self._bury(entry, outcome, attempts)
                return
            metrics.DELIVERIES.labels(queue, "retried").inc()
            self._with_store(partial(self.outbox.record_failure, entry, attempts,
                                     outcome.detail, _now()))
            delay = backoff(attempts, *self.backoff, outcome.retry_after, self.rng)
            log.warning("%s %s: %s; attempt %d of %d, next in %.1f s", queue, entry.event_id,
                        outcome.detail, attempts, self.max_attempts, delay)
            if not self._wait(entry, delay):
                return
            held_since = time.monotonic()  # _wait renewed it

    def _bury(self, entry: Entry, outcome: Outcome, attempts: int) -> None:
        refused = outcome.verdict is Verdict.REFUSED
        why = "refused" if refused else "attempts"
        reason = (outcome.detail if refused
                  else f"{attempts} failed attempts, the last: {outcome.detail}")
        metrics.DELIVERIES.labels(entry.queue, "refused" if refused else "failed").inc()
        if self._settle(partial(self.outbox.bury, entry, reason, attempts, _now())):
            metrics.DEAD_LETTERS.labels(entry.queue, why).inc()
            log.error("%s %s: dead letter: %s", entry.queue, entry.event_id, reason)
        self._release(entry)

    def _wait(self, entry: Entry, seconds: float) -> bool:
        """Wait ``seconds`` while keeping the hold on ``entry``; False when the relay stops or
        the entry was taken over meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stopping.wait(min(left, self.claim_after / 3)):
                return False
            if not self._with_store(lambda: self.outbox.touch(entry, self.name)):
                self._release(entry)
                return False
        return True

    def _with_store(self, action: Callable):
        """``action()``, tried again every second while Redis cannot be reached (None if the
        relay stops meanwhile)."""
        while True:
            try:
                return action()
            except StoreError as error:
                if self.stopping.is_set():
                    return None
                log.warning("relay %s: Redis unreachable (%s); trying again", self.name, error)
                self.stopping.wait(STORE_RETRY_SECONDS)

    def _settle(self, action: Callable):
        """Record what a call did: tried again while Redis is away, even while stopping (for
        ``SETTLE_SECONDS``), since an unrecorded delivery would be delivered again."""
        deadline = None
        while True:
            try:
                return action()
            except StoreError as error:
                if self.stopping.is_set():
                    deadline = deadline or time.monotonic() + SETTLE_SECONDS
                    if time.monotonic() > deadline:
                        log.error("relay %s: could not record an outcome (%s)", self.name, error)
                        return None
                log.warning("relay %s: Redis unreachable (%s); trying again", self.name, error)
                time.sleep(STORE_RETRY_SECONDS)

    def _give_back(self) -> None:
        """Stopping: hand what this relay still holds to the others at once, then leave."""
        with self._lock:
            held = list(self._held)
        try:
            if held:
                self.outbox.hand_back(held, RETURNED, int(self.claim_after * 1000))
            self.outbox.forget_consumer(self.name)
        except StoreError as error:
            log.warning("relay %s: could not hand back %d entries (%s): other relays take them "
                        "over in %g s", self.name, len(held), error, self.claim_after)
            return
        log.info("relay %s: stopped; %d undelivered entries handed to the other relays",
                 self.name, len(held))


def _written(item: tuple[Entry, int]) -> tuple[int, int]:
    """A stream entry's place in its stream: its id's milliseconds, then its sequence."""
    milliseconds, _, sequence = item[0].entry_id.partition("-")
    return int(milliseconds), int(sequence)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
