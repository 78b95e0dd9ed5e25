"""What ``ussd prune`` costs and frees: subscribers holding several months of consumption.

    python bench/prune.py [--subscribers 100000] [--months 3]

On a throw-away redis-server of its own (127.0.0.1, no persistence), stores the subscribers
through the store API with ``--months`` months of consumption (the last of them last month's,
which the rules read), then prunes the older months as ``ussd prune`` does (a dry run first,
then for real) and prints the time each took, the Redis CPU the real one used, and the
``used_memory`` it freed per subscriber and per month pruned.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))  # redis_servers: throw-away redis-server

import load
import redis
from footprint import redis_cpu_seconds, used_memory
from redis_servers import RedisServer

from ussd.months import month_of, previous_month
from ussd.settings import Settings
from ussd.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000,
                        help="subscribers stored (default 100,000; 10,000 to 1,000,000: fewer, "
                             "and the memory figures are lost in the noise of used_memory)")
    parser.add_argument("--months", type=int, default=3,
                        help="months of consumption each holds, last month included (2-24)")
    args = parser.parse_args()
    if not 10_000 <= args.subscribers <= 1_000_000 or not 2 <= args.months <= 24:
        parser.error("--subscribers must be 10,000-1,000,000 and --months 2-24")

    settings = Settings.from_env()
    last_month = previous_month(month_of(datetime.now(UTC), settings.zone))
    months = [last_month]
    while len(months) < args.months:
        months.append(previous_month(months[-1]))
    with RedisServer({"save": "", "appendonly": "no"}) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        store = Store(client, prefix="bench")
        for month in months:
            load.seed(store, args.subscribers, month)
        before = used_memory(client)

        started = time.perf_counter()
        dry = store.admin.prune_months(last_month, dry_run=True)
        dry_seconds = time.perf_counter() - started

        cpu, started = redis_cpu_seconds(client), time.perf_counter()
        done = store.admin.prune_months(last_month)
        seconds, cpu = time.perf_counter() - started, redis_cpu_seconds(client) - cpu
        freed = before - used_memory(client)
        client.close()

    pruned = args.months - 1
    print(f"{args.subscribers:,} subscribers, {args.months} months of consumption each "
          f"({months[-1]} to {last_month}); months before {last_month} pruned")
    print(f"dry run: {dry.fields:,} field(s) of {dry.changed:,} subscriber(s), "
          f"{dry.subscribers:,} visited, in {dry_seconds:.2f} s")
    print(f"prune:   {done.fields:,} field(s) of {done.changed:,} subscriber(s) deleted in "
          f"{seconds:.2f} s, {cpu:.2f} s of it Redis CPU")
    print(f"freed:   {freed / args.subscribers:.0f} B per subscriber, "
          f"{freed / args.subscribers / pruned:.0f} B per subscriber and month pruned")
    per_20m = 20_000_000 / args.subscribers
    print(f"20 million subscribers: about {seconds * per_20m / 60:.0f} min and "
          f"{cpu * per_20m:.0f} s of Redis CPU; each month unpruned holds "
          f"{freed / pruned * per_20m / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
