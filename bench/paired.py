"""Two versions of the service, side by side, in paired rounds: is a change faster?

    python bench/paired.py BASE [CHANGED]      (needs wrk; about 80 s with the defaults)

BASE and CHANGED are git revisions of this repository (default CHANGED: the working tree).
Each is exported to a temporary directory and served by ``ussd serve`` exactly as
``bench/run.py`` serves it (granian, the same workers and threads), both at once, on one
throw-away redis-server on 127.0.0.1. wrk then plays the bench's dialogues at one of them at a
time, alternating: round after round, the first of the pair alternating too, so that what the
rest of the machine does weighs on both alike. Prints each run and the medians of the paired
ratios: CHANGED/BASE hops/s, and BASE/CHANGED CPU time per hop (above 1: CHANGED is faster).

On this shared VM one run of the same code varies by 10-30 %; a difference of a few percent
shows only in the median of many pairs, and one below about 3 % not at all.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))  # redis_servers: throw-away redis-server

import load
import redis
from redis_servers import RedisServer
from servers import AppServer, service_env

from ussd.cli import DEFAULT_THREADS, default_workers
from ussd.months import month_of, previous_month
from ussd.settings import Settings
from ussd.store import Store

PREFIX = "paired"
CONCURRENCY = 16


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="git revision of the base version (e.g. HEAD, main~3)")
    parser.add_argument("changed", nargs="?", default=None,
                        help="git revision of the changed version (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=12,
                        help="pairs of runs (default: 12, at most 30)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="seconds of each run (default: 3, at most 30)")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 30 or not 0 < args.duration <= 30:
        parser.error("--rounds 1-30, --duration up to 30 s: the bench is bounded")
    return args


def export(revision: str | None, into: Path) -> Path:
    """The package and the menus of ``revision`` (None: the working tree) under ``into``.

    The menus are in a top-level ``menus/`` (shipped in the wheel as ``ussd/menus``; some
    earlier revisions had them inside the package): whichever the revision has is exported.
    """
    into.mkdir()
    if revision is None:
        for part in ("ussd", "menus"):
            if (ROOT / part).is_dir():
                shutil.copytree(ROOT / part, into / part,
                                ignore=shutil.ignore_patterns("__pycache__"))
    else:
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", revision],
                                check=True, capture_output=True, text=True).stdout.split()
        parts = [part for part in ("ussd", "menus") if part in listed]
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, *parts],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> int:
    args = arguments()
    logging.getLogger("ussd").setLevel(logging.ERROR)  # the app made here for the screens is quiet
    load.wrk_path()
    work = Path(tempfile.mkdtemp(prefix="ussd-paired-"))
    names = {"base": args.base, "changed": args.changed or "working tree"}
    trees = {"base": export(args.base, work / "base"),
             "changed": export(args.changed, work / "changed")}
    # Each run plays subscribers of its own: a slice for the warm-up and every run of each.
    per_run = 4_000 + int(2_000 * args.duration)
    subscribers = per_run * 2 * (args.rounds + 1)
    with RedisServer({"save": "", "appendonly": "no"}) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        month = previous_month(month_of(datetime.now(UTC), Settings.from_env({}).zone))
        load.seed(Store(client, prefix=PREFIX), subscribers, month)
        client.close()
        token = secrets.token_urlsafe(16)
        env = service_env(server.url, PREFIX, token)
        servers = {name: AppServer("service", "granian", default_workers(), DEFAULT_THREADS,
                                   {**env, "PYTHONPATH": str(tree)}, work / f"{name}.log")
                   for name, tree in trees.items()}
        replies = load.expected_replies()
        slices = iter(range(0, subscribers, per_run))
        results: dict[str, list] = {"base": [], "changed": []}

        def run(name: str, seconds: float, number: int):
            first = next(slices)
            data = load.write_data(work / f"{name}-{number}.lua", f"{name}{number}", first,
                                   first + per_run - 1, replies, None)
            cpu = servers[name].cpu_seconds()
            result = load.play(servers[name].url, data, CONCURRENCY, seconds, token)
            cpu = servers[name].cpu_seconds() - cpu
            if result.errors:
                raise SystemExit(f"{names[name]}: {result.errors} wrong replies or errors; "
                                 f"first: {result.first_bad or 'a socket error'}")
            return result.hops_per_second, cpu / result.hops

        try:
            for app in servers.values():
                app.start()
            for name in servers:
                run(name, 2.0, 0)  # warm-up
            for number in range(1, args.rounds + 1):
                order = ("base", "changed") if number % 2 else ("changed", "base")
                for name in order:
                    results[name].append(run(name, args.duration, number))
        finally:
            for app in servers.values():
                app.stop()
    for name, runs in results.items():
        print(f"{name:8} {names[name]:>16}: hops/s {' '.join(f'{h:5.0f}' for h, _ in runs)}")
        print(f"{'':8} {'':>16}  CPU us/hop {' '.join(f'{c * 1e6:3.0f}' for _, c in runs)}")
    hops = [c[0] / b[0] for b, c in zip(results["base"], results["changed"], strict=True)]
    cpu = [b[1] / c[1] for b, c in zip(results["base"], results["changed"], strict=True)]
    print(f"\nchanged/base hops/s: {statistics.median(hops):.3f} (median of "
          f"{', '.join(f'{r:.2f}' for r in hops)})")
    print(f"base/changed CPU time per hop: {statistics.median(cpu):.3f} (above 1: the change "
          f"costs less)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
