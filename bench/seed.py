"""Benchmark of ``ussd seed``: rows per second, checked and stored, on this machine.

    python bench/seed.py [--rows 200000]      (about 15 s for the default)

Writes a subscribers file and a consumption file of ``--rows`` rows each (distinct numbers,
written +225... as billing exports them) in a temporary folder, starts its own redis-server on
127.0.0.1 (never the shared one), and loads them with ``seed.load_files`` as ``ussd seed`` does:
every row checked (the number, the profile or the month and amount, repeats; each consumption
row's subscriber looked up in Redis), staged, then stored. Prints rows/s for each file and the
peak of the process's resident memory, and exits 1 below the floor of 50,000 rows/s.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))  # redis_servers: throw-away redis-server

from redis_servers import RedisServer

from ussd.seed import load_files
from ussd.settings import Settings
from ussd.store import Store, connect

FLOOR = 50_000  # rows/s (issue 14)
PREFIX = "seedbench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ussd-seed-bench-"))
    try:
        subscribers, consumption = work / "subscribers.csv", work / "consumption.csv"
        with subscribers.open("w") as handle:
            handle.write("msisdn,profile,language\n")
            handle.writelines(f"+22507{n:08d},{('Novamix', 'Tigre', 'Aigle')[n % 3]},"
                              f"{'fr' if n % 4 else 'en'}\n" for n in range(args.rows))
        with consumption.open("w") as handle:
            handle.write("msisdn,month,amount\n")
            handle.writelines(f"+22507{n:08d},2026-10,{n % 20_000}\n" for n in range(args.rows))
        with RedisServer({"save": "", "appendonly": "no"}) as server:
            store = Store(connect(Settings(redis_url=server.url)), prefix=PREFIX)
            rates = []
            for path in (subscribers, consumption):
                started = time.perf_counter()
                [(data, count)] = load_files(store, [path], "2026-11")
                seconds = time.perf_counter() - started
                rates.append(count / seconds)
                print(f"{data.kind.value:12} {count:>9,} rows in {seconds:6.2f} s: "
                      f"{count / seconds:>9,.0f} rows/s")
            store.redis.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MiB")
    ok = min(rates) >= FLOOR
    print(f"floor >= {FLOOR:,} rows/s: {'ok' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
