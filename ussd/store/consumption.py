"""Consumption fed in through the API: months' totals set and increments added once by id, one
script per bucket of subscribers (``queue_scripts.CONSUMPTION_SCRIPT``), all buckets pipelined."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ..consumption import Increment, MonthTotal
from .client import store_errors
from .keys import KeySpace, bucket_of, consumption_field
from .scripts import Scripts


class ConsumptionStore:
    """Writes what billing feeds in. Raises StoreUnavailableError when Redis cannot be reached,
    StoreError when it refuses a command."""

    def __init__(self, keys: KeySpace, scripts: Scripts):
        self.keys = keys
        self._scripts = scripts

    def feed(self, totals: Iterable[MonthTotal], increments: Iterable[Increment],
             ids_ttl: int) -> int:
        """Set the totals, then add the increments not counted before (their ids kept
        ``ids_ttl`` seconds); how many increments were counted. Atomic per bucket."""
        by_bucket: dict[str, tuple[list, list]] = defaultdict(lambda: ([], [ids_ttl]))
        for total in totals:
            keys, args = by_bucket[bucket_of(total.msisdn)]
            keys += [self.keys.subscriber(total.msisdn),
                     self.keys.increments(total.msisdn, total.month)]
            args += ["set", consumption_field(total.month), total.amount, ""]
        for increment in increments:
            keys, args = by_bucket[bucket_of(increment.msisdn)]
            keys += [self.keys.subscriber(increment.msisdn),
                     self.keys.increments(increment.msisdn, increment.month)]
            args += ["add", consumption_field(increment.month), increment.amount, increment.id]
        if not by_bucket:
            return 0
        with store_errors:
            return sum(self._scripts.run_pipelined("consumption", by_bucket.values()))
