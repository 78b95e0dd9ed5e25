"""Benchmark of the #121# service against the Flask+Redis ceiling, on this machine.

    python bench/run.py            (about a minute and a half; needs wrk: apt-get install wrk)

Starts its own redis-server on 127.0.0.1 and measures, in order:

1. Redis memory per subscriber: 100,000 subscribers with one month of consumption, stored
   through the store API (``used_memory`` delta); they are also the load's subscribers.
2. Redis round trips per hop, counted on the client while one dialogue per kind of subscriber
   is played through the service's app, script cache flushed first.
3. Redis memory per live session: 100,000 copies of the largest record a dialogue stores.
4. The load: the service (``ussd serve``) and the ceiling app (``bench/ceiling.py``) served in
   turn by the same WSGI server, worker count and Redis, each with the same whole dialogues
   played by wrk at the same concurrency: hops/s, sessions/s, hop latency, errors, and who
   used the CPU. The ratio service/ceiling of hops/s is the figure that matters.
5. The HTTP API (``bench/api.py``), on the same server, right after: reads and migrations a
   second under wrk, their latency, CPU per request, and Redis round trips per request.

Only 127.0.0.1 is loaded; every run is bounded in time and in subscribers; every process it
starts is stopped by PID at the end. Exit status 1 when a floor is missed or a reply is wrong.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))  # redis_servers: throw-away redis-server

import api
import footprint
import load
import redis
from redis_servers import RedisServer
from servers import SERVERS, AppServer, service_env

from ussd.cli import DEFAULT_THREADS, default_workers
from ussd.months import month_of, previous_month
from ussd.settings import Settings
from ussd.store import Store

PREFIX = "bench"
FLOORS = {"ratio": 0.9, "round_trips": 2, "session_bytes": 400, "subscriber_bytes": 250,
          "api_read_round_trips": 1, "api_migration_round_trips": 2}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="worker processes of each app (default: one per CPU)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"Python threads per worker, granian and gunicorn gthread alike "
                             f"(default: {DEFAULT_THREADS}, as ussd serve)")
    parser.add_argument("--server", choices=SERVERS, default="granian",
                        help="WSGI server for both apps (default: granian, as ussd serve)")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="connections, each playing one dialogue at a time (default: 16)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="seconds of each measured run (default: 3, at most 60)")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of load before measuring each app (default: 3)")
    parser.add_argument("--rounds", type=int, default=9,
                        help="measured runs of each app, in pairs, the first of each pair "
                             "alternating; the median of the pairs' ratios counts (default: 9, "
                             "at most 15)")
    parser.add_argument("--ceiling-connections", choices=("pool", "held"), default="pool",
                        help="how the ceiling app sends its two commands: through redis-py's "
                             "pool, as a plain Flask app does (default), or on connections "
                             "kept from hop to hop, as the service's hops do")
    parser.add_argument("--subscribers", type=int, default=100_000,
                        help="subscribers stored, measured and played (default: 100000)")
    args = parser.parse_args()
    if not 0 < args.duration <= 60 or not 0 <= args.warmup <= 30 or not 1 <= args.rounds <= 15:
        parser.error("--duration 1-60 s, --warmup 0-30 s, --rounds 1-15: the bench is bounded")
    if not 1 <= args.concurrency <= 256 or args.subscribers < 10_000:
        parser.error("--concurrency 1-256, --subscribers at least 10000")
    return args


def main() -> int:
    args = arguments()
    logging.getLogger("ussd").setLevel(logging.ERROR)  # the apps made here to measure are quiet
    load.wrk_path()
    work = Path(tempfile.mkdtemp(prefix="ussd-bench-"))
    machine()
    with RedisServer({"save": "", "appendonly": "no"}) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        settings = Settings.from_env({})
        store = Store(client, prefix=PREFIX, session_ttl=settings.session_ttl)
        month = previous_month(month_of(datetime.now(UTC), settings.zone))
        print(f"\nRedis {client.info('server')['redis_version']} on {server.url} "
              f"(its own, pid {server.pid}); the servers' logs in {work}")

        subscriber = footprint.subscriber_bytes(client, store, args.subscribers, month)
        trips = footprint.round_trips(server.url, PREFIX, args.subscribers, month)
        session = footprint.session_bytes(client, store, args.subscribers, trips.records,
                                          settings.session_ttl)
        clients = api.write_clients(work / "api-clients.toml")
        api_trips = api.round_trips(server.url, PREFIX, api.FIRST - 10, month, clients)
        api.seed(store, api.FIRST, api.PER_RUN * (args.rounds + 1), month)
        results = run_load(args, server.url, client, work, clients)
        client.close()
    status = report(args, subscriber, session, trips, results)
    status |= report_api(args, api_trips, results)
    if any(run["load"].errors for runs in results.values() for run in runs):
        print(f"The servers' logs are kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)  # the hop logs of a good run: megabytes
    return status


def machine() -> None:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo
                if line.startswith("model name")), platform.processor())
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    wrk = subprocess.run([load.wrk_path(), "--version"], capture_output=True, text=True)
    print(f"Machine: {os.cpu_count()} CPU ({cpu}), {memory / 2**20:.1f} GiB, "
          f"{platform.system()} {platform.release()}")
    print(f"Python {platform.python_version()}, {wrk.stdout.splitlines()[0].split(' [')[0]}")


def run_load(args, redis_url: str, client, work: Path, clients: Path) -> dict[str, list[dict]]:
    """Serve both apps, warm each up, then alternate measured runs; then the API's runs on
    the service; every run's figures."""
    token = secrets.token_urlsafe(16)
    env = service_env(redis_url, PREFIX, token)
    replies = load.expected_replies()
    fixed = open_screen()
    pool = args.subscribers
    # Subscribers are played once each: a slice for every warm-up and measured run.
    slices = iter(range(0, pool, pool // (2 + 2 * args.rounds)))
    tag = f"b{secrets.token_hex(3)}"
    envs = {"service": {**env, "USSD_API_CLIENTS": str(clients)},
            "ceiling": {**env, "CEILING_CONNECTIONS": args.ceiling_connections}}
    servers = {app: AppServer(app, args.server, args.workers, args.threads, envs[app],
                              work / f"{app}.log") for app in ("service", "ceiling")}
    results: dict[str, list[dict]] = {"service": [], "ceiling": [], "api read": [],
                                      "api migration": []}
    try:
        for app in servers.values():
            app.start()
        through = {"pool": "redis-py's pool", "held": "held connections"}
        print(f"\nLoad: {args.server}, {args.workers} worker(s) per app, "
              f"{args.threads} thread(s) per worker, {args.concurrency} connections, "
              f"{args.duration:g} s x {args.rounds} round(s) per app after {args.warmup:g} s "
              f"of warm-up, the first app of each round alternating; the ceiling's Redis "
              f"commands through {through[args.ceiling_connections]}")

        def measured(app: str, play, exhausted) -> dict:
            """One wrk run (``play()``) against ``app``, with who used the CPU meanwhile;
            ``exhausted(result)`` says whether it played its whole slice of subscribers."""
            server_cpu = servers[app].cpu_seconds()
            redis_cpu = footprint.redis_cpu_seconds(client)
            machine_cpu = machine_busy_seconds()
            commands = client.info("commandstats")
            result = play()
            return {
                "load": result,
                "server_cpu": servers[app].cpu_seconds() - server_cpu,
                "redis_cpu": footprint.redis_cpu_seconds(client) - redis_cpu,
                "machine_cpu": machine_busy_seconds() - machine_cpu,
                "commands": command_deltas(commands, client.info("commandstats")),
                "exhausted": exhausted(result),
            }

        def one_run(app: str, seconds: float) -> dict:
            first = next(slices)
            last = first + pool // (2 + 2 * args.rounds) - 1
            data = load.write_data(work / f"{tag}-{app}-{first}.lua", f"{tag}-{first}",
                                   first, last, None if app == "ceiling" else replies,
                                   fixed if app == "ceiling" else None)
            return measured(app, lambda: load.play(servers[app].url, data, args.concurrency,
                                                   seconds, token),
                            lambda result: result.sessions + result.bad_replies >= last - first)

        def api_run(method: str, number: int, seconds: float) -> dict:
            # Migrations take a slice of the API's subscribers each; reads go over them all.
            first = api.FIRST + (number * api.PER_RUN if method == "POST" else 0)
            last = first + (api.PER_RUN if method == "POST" else
                            api.PER_RUN * (args.rounds + 1)) - 1
            data = api.write_data(work / f"{tag}-api-{method}-{number}.lua",
                                  f"{tag}-{number}", first, last, method)
            return measured("service", lambda: api.play(servers["service"].url, data,
                                                        args.concurrency, seconds),
                            lambda result: result.hops >= last - first)

        if args.warmup:
            for app in servers:
                one_run(app, args.warmup)
        # Each round is a pair of runs, one per app, back to back; which goes first alternates
        # from round to round, so that a load on the machine that grows or fades during the
        # bench weighs on both apps alike instead of always on the second.
        for number in range(args.rounds):
            for app in (("service", "ceiling") if number % 2 == 0 else ("ceiling", "service")):
                results[app].append(one_run(app, args.duration))
        # The API on the same server: a warm-up of each, then reads and migrations in turn.
        if args.warmup:
            api_run("GET", 0, args.warmup)
            api_run("POST", 0, args.warmup)
        for number in range(1, args.rounds + 1):
            results["api read"].append(api_run("GET", number, args.duration))
            results["api migration"].append(api_run("POST", number, args.duration))
    finally:
        for app in servers.values():
            app.stop()
    return results


def open_screen() -> str:
    from ceiling import SCREEN

    return SCREEN


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine has used so far (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:]]
    busy = sum(fields[:3]) + sum(fields[5:8])  # user nice system, irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def command_deltas(before: dict, after: dict) -> dict[str, tuple[int, int]]:
    """Calls and failed calls of each Redis command between two ``INFO commandstats``."""
    deltas = {}
    for name, stats in after.items():
        old = before.get(name, {})
        calls = stats["calls"] - old.get("calls", 0)
        failed = stats.get("failed_calls", 0) - old.get("failed_calls", 0)
        if calls or failed:
            deltas[name.removeprefix("cmdstat_")] = (calls, failed)
    return deltas


def median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda run: run["load"].hops_per_second)
    return ordered[(len(ordered) - 1) // 2]


def report(args, subscriber: float, session: float, trips, results) -> int:
    # Each round ran both apps back to back: their ratio is taken round by round, so that a
    # change in the machine's other load between rounds cancels out.
    ratios = [s["load"].hops_per_second / c["load"].hops_per_second
              for s, c in zip(results["service"], results["ceiling"], strict=True)]
    ratio = statistics.median(ratios)
    cores = os.cpu_count() or 1
    print(f"\n{'app':<8} {'round':>5} {'hops/s':>7} {'sessions/s':>10} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'p99 ms':>7} {'errors':>6}   CPU cores (of {cores}): app redis wrk "
          f"other   CPU us/hop: app+redis")
    for name in ("service", "ceiling"):
        for number, run in enumerate(results[name], start=1):
            r = run["load"]
            used = run["server_cpu"] + run["redis_cpu"] + r.load_cpu_seconds
            other = max(run["machine_cpu"] - used, 0.0)
            print(f"{name:<8} {number:>5} {r.hops_per_second:>7.0f} {r.sessions_per_second:>10.0f} "
                  f"{r.p50_ms:>7.2f} {r.p95_ms:>7.2f} {r.p99_ms:>7.2f} {r.errors:>6}   "
                  f"{' ' * 15}{run['server_cpu'] / r.seconds:>4.2f} "
                  f"{run['redis_cpu'] / r.seconds:>5.2f} {r.load_cpu_seconds / r.seconds:>3.2f} "
                  f"{other / r.seconds:>5.2f}   "
                  f"{(run['server_cpu'] + run['redis_cpu']) / r.hops * 1e6:>14.0f}")
    service = median_run(results["service"])
    ceiling = median_run(results["ceiling"])
    wrong = [run["load"].first_bad for runs in results.values() for run in runs
             if run["load"].first_bad]
    if wrong:
        print(f"First wrong reply: {wrong[0]}")
    if any(run["exhausted"] for runs in results.values() for run in runs):
        print("NOTE: a run played every subscriber of its slice before its time was up: "
              "raise --subscribers for figures over the whole duration")
    hops = service["load"].hops
    per_hop = ", ".join(f"{name} {calls / hops:.2f}" + (f" ({failed} failed)" if failed else "")
                        for name, (calls, failed) in sorted(service["commands"].items())
                        if calls / hops >= 0.005 or failed)  # not the bench's own INFO calls
    print(f"\nRedis commands per service hop (INFO commandstats; pipelined commands share a "
          f"round trip, the script's own commands count too): {per_hop}")

    checks = {
        "ratio": (ratio, ratio >= FLOORS["ratio"], f">= {FLOORS['ratio']}"),
        "round_trips": (trips.worst, trips.worst <= FLOORS["round_trips"],
                        f"<= {FLOORS['round_trips']}"),
        "session_bytes": (session, session <= FLOORS["session_bytes"],
                          f"<= {FLOORS['session_bytes']}"),
        "subscriber_bytes": (subscriber, subscriber <= FLOORS["subscriber_bytes"],
                             f"<= {FLOORS['subscriber_bytes']}"),
    }
    print(f"\nratio service/ceiling (hops/s):   {ratio:.2f}   (median of the rounds' "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; median runs "
          f"{service['load'].hops_per_second:.0f} / {ceiling['load'].hops_per_second:.0f} hops/s)"
          f"   floor {checks['ratio'][2]}: {verdict(checks['ratio'][1])}")
    # What each hop costs the machine's CPU, whatever else runs on it: the app's workers, Redis
    # and the load generator. When the machine is shared, this ratio moves less than hops/s.
    cpu = {name: statistics.median([(r["server_cpu"] + r["redis_cpu"] + r["load"].load_cpu_seconds)
                         / r["load"].hops for r in results[name]])
           for name in ("service", "ceiling")}
    print(f"  by CPU time per hop (app + redis + wrk): {cpu['ceiling'] / cpu['service']:.2f}   "
          f"({cpu['service'] * 1e6:.0f} us for a service hop, {cpu['ceiling'] * 1e6:.0f} us "
          f"for a ceiling hop)")
    print(f"Redis round trips per hop:        {trips.worst}      (dial, 1, profile, confirm+"
          f"migration: {', '.join(map(str, trips.per_hop))})   floor <= 2: "
          f"{verdict(checks['round_trips'][1])}")
    print(f"Redis bytes per live session:     {session:.0f}    (largest record of a dialogue, "
          f"{max(map(len, trips.records))} B of JSON)   floor <= 400: "
          f"{verdict(checks['session_bytes'][1])}")
    print(f"Redis bytes per subscriber:       {subscriber:.0f}    (profile, language, one month "
          f"of consumption; {args.subscribers:,} stored)   floor <= 250: "
          f"{verdict(checks['subscriber_bytes'][1])}")
    live = 1000 * 180  # 1,000 new dialogues a second, each kept for the 180 s session TTL
    total = 20_000_000 * subscriber + live * session
    print(f"20 million subscribers: {20e6 * subscriber / 2**30:.1f} GiB, plus "
          f"{live * session / 2**20:.0f} MiB for the {live:,} sessions live at 1,000 new "
          f"dialogues/s: {total / 2**30:.1f} GiB of used_memory (each further month of "
          f"consumption adds a field per subscriber until ussd prune deletes it: "
          f"bench/prune.py)")
    errors = sum(run["load"].errors for runs in results.values() for run in runs)
    return 0 if errors == 0 and all(ok for _, ok, _ in checks.values()) else 1


def report_api(args, trips, results) -> int:
    """The API's figures: each run, the medians, and the round trips against their floors."""
    print(f"\n{'API':<14} {'round':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6}   CPU cores: app redis   CPU us/request: app+redis")
    for name in ("api read", "api migration"):
        for number, run in enumerate(results[name], start=1):
            r = run["load"]
            print(f"{name:<14} {number:>5} {r.hops_per_second:>7.0f} {r.p50_ms:>7.2f} "
                  f"{r.p95_ms:>7.2f} {r.p99_ms:>7.2f} {r.errors:>6}   "
                  f"{' ' * 11}{run['server_cpu'] / r.seconds:>4.2f} "
                  f"{run['redis_cpu'] / r.seconds:>5.2f}   "
                  f"{(run['server_cpu'] + run['redis_cpu']) / max(r.hops, 1) * 1e6:>24.0f}")
    medians = {name: median_run(results[name]) for name in ("api read", "api migration")}
    for name, run in medians.items():
        calls = max(run["load"].hops, 1)
        per_request = ", ".join(f"{command} {count / calls:.2f}"
                                for command, (count, _) in sorted(run["commands"].items())
                                if count / calls >= 0.005)
        print(f"Redis commands per {name} (INFO commandstats): {per_request}")
    checks = {
        "read": (trips.read, trips.read <= FLOORS["api_read_round_trips"]),
        "migration": (trips.migration, trips.migration <= FLOORS["api_migration_round_trips"]),
    }
    read, migration = medians["api read"]["load"], medians["api migration"]["load"]
    print(f"\nAPI reads/s (median run):         {read.hops_per_second:.0f}    (p99 "
          f"{read.p99_ms:.1f} ms; GET /api/v1/subscribers/{{msisdn}}, a rate-limited client)")
    print(f"API migrations/s (median run):    {migration.hops_per_second:.0f}    (p99 "
          f"{migration.p99_ms:.1f} ms; each a 201, applied, under a new Idempotency-Key)")
    print(f"API Redis round trips per request: read {trips.read}, history {trips.history}, "
          f"migration {trips.migration}, the same migration again {trips.replay}; plus "
          f"{trips.limiter} for a client with a rate limit (the limiter's EVALSHA)   floors "
          f"read <= {FLOORS['api_read_round_trips']}: {verdict(checks['read'][1])}, migration "
          f"<= {FLOORS['api_migration_round_trips']}: {verdict(checks['migration'][1])}")
    return 0 if all(ok for _, ok in checks.values()) else 1


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


if __name__ == "__main__":
    started = time.monotonic()
    status = main()
    print(f"\n(bench took {time.monotonic() - started:.0f} s)")
    sys.exit(status)
