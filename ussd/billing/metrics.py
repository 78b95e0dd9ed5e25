"""The relay's metrics: its own counters and the queues as Redis holds them.

The queues' figures are read from Redis when Prometheus scrapes, so they are true whichever
relay (or none) is running: events waiting, the age of the oldest undelivered one, and the dead
letters, per queue.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import REGISTRY, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..errors import StoreError
from ..store import Outbox

log = logging.getLogger("ussd.relay")

# Every attempt at an outbox entry, and what became of it (the labels are closed sets).
DELIVERIES = Counter("ussd_relay_deliveries_total",
                     "Attempts at delivering outbox entries, by queue (events, sms) and outcome "
                     "(delivered; retried; refused or failed: the last, dead-lettered; taken_over: "
                     "by another relay)", ["queue", "outcome"])
DEAD_LETTERS = Counter("ussd_relay_dead_letters_total",
                       "Entries moved to the dead letters, by queue and why (refused: a 4xx or "
                       "the provider's refusal; attempts: too many failures)", ["queue", "why"])


class QueueCollector(Collector):
    """``ussd_outbox_waiting``, ``ussd_outbox_oldest_seconds`` and ``ussd_outbox_dead``, by
    queue, read from Redis at each scrape (one pipelined round trip per queue)."""

    def __init__(self, outbox: Outbox, queues: tuple[str, ...]):
        self.outbox = outbox
        self.queues = queues

    def collect(self):
        waiting = GaugeMetricFamily("ussd_outbox_waiting",
                                    "Entries not delivered yet, by queue", labels=["queue"])
        oldest = GaugeMetricFamily("ussd_outbox_oldest_seconds",
                                   "Age of the oldest entry not delivered yet", labels=["queue"])
        dead = GaugeMetricFamily("ussd_outbox_dead", "Dead letters, by queue", labels=["queue"])
        for queue in self.queues:
            try:
                count, age, buried = self.outbox.stats(queue, int(time.time() * 1000))
            except StoreError as error:
                log.warning("metrics: cannot read the %s queue: %s", queue, error)
                continue
            waiting.add_metric([queue], count)
            oldest.add_metric([queue], age)
            dead.add_metric([queue], buried)
        return [waiting, oldest, dead]


def serve_metrics(outbox: Outbox, queues: tuple[str, ...], port: int,
                  host: str = "0.0.0.0") -> None:  # Prometheus scrapes it
    """Serve ``/metrics`` on ``port`` (a thread), the queues' gauges included."""
    REGISTRY.register(QueueCollector(outbox, queues))
    start_http_server(port, addr=host)
