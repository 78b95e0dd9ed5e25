"""Benchmark of the outbox and the relay: events per second through ``ussd relay``, the time
from a migration to billing's ``2xx``, and what the outbox adds per migration in Redis.

    python bench/relay.py [--events 3000] [--rate 100] [--latency-events 1000]

Starts its own redis-server on 127.0.0.1 (never the shared one), a billing stub
(``ussd stub-billing``) and ``ussd relay`` as processes of their own, on loopback, and stops
each by its PID at the end. In order:

1. ``--events`` migrations applied with no relay running (web channel, one subscriber each):
   Redis memory per waiting event (``used_memory``), and the microseconds Redis spends in the
   migration script and in its ``XADD`` (``INFO commandstats``);
2. the relay started: events per second from billing's first request to its last, and the
   Redis CPU per delivered event (the read, the holds, the acknowledgements);
3. with the relay running, ``--latency-events`` migrations at ``--rate`` per second: from each
   migration's return to billing's receipt of its event, p50, p95 and p99.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))  # redis_servers: throw-away redis-server

from redis_servers import RedisServer
from servers import free_port

from ussd.menu_files import load_menu
from ussd.months import month_of, previous_month
from ussd.rules import Channel, Language, Profile
from ussd.service import UssdService
from ussd.settings import DEFAULT_MENUS_DIR, Settings
from ussd.store import Store, connect
from ussd.store.keys import ALL_BUCKETS, EVENTS

PREFIX = "relaybench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--latency-events", type=int, default=1000)
    args = parser.parse_args()
    with RedisServer({"save": "", "appendonly": "no"}) as server:
        client = connect(Settings(redis_url=server.url))
        store = Store(client, prefix=PREFIX)
        settings = Settings(key_prefix=PREFIX)
        service = UssdService(load_menu(DEFAULT_MENUS_DIR), store, settings)
        last_month = previous_month(month_of(datetime.now(UTC), settings.zone))
        total = args.events + args.latency_events
        numbers = [f"+22507{n:08d}" for n in range(total)]
        store.admin.put_subscribers((m, Profile.NOVAMIX, Language.FR) for m in numbers)
        store.admin.put_consumption((m, last_month, 9000) for m in numbers)
        store.outbox.create_groups()
        print(f"Redis {client.info('server')['redis_version']} on {server.url} (its own)")

        client.config_resetstat()
        before = _stream_bytes(client, store)
        for msisdn in numbers[:args.events]:
            assert service.migrate(msisdn, Profile.TIGRE, Channel.WEB, client="bench").approved
        waiting = _stream_bytes(client, store) - before
        stats = client.info("commandstats")
        print(f"\n{args.events} migrations with no relay: "
              f"{waiting / args.events:.0f} B of Redis memory per waiting event (MEMORY USAGE "
              "of the 256 streams); "
              f"Redis us per call: migration script "
              f"{stats['cmdstat_evalsha']['usec_per_call']:.1f} (of which XADD "
              f"{stats['cmdstat_xadd']['usec_per_call']:.1f})")

        port = free_port()
        stub = subprocess.Popen(
            [sys.executable, "-m", "ussd.cli", "stub-billing", "--port", str(port),
             "--sms-port", str(free_port())], stdout=subprocess.DEVNULL, env=os.environ.copy())
        env = {**os.environ, "REDIS_URL": server.url, "USSD_KEY_PREFIX": PREFIX,
               "USSD_BILLING_URL": f"http://127.0.0.1:{port}/events",
               "USSD_RELAY_METRICS_PORT": "0", "USSD_LOG_FORMAT": "text"}
        relay = None
        try:
            _wait_for(lambda: _requests(port) is not None)
            cpu_before = _redis_cpu(client)
            relay = subprocess.Popen([sys.executable, "-m", "ussd.cli", "relay"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait_for(lambda: len(_requests(port)) >= args.events, seconds=300)
            received = _requests(port)
            first, last = received[0]["at"], received[args.events - 1]["at"]
            cpu = _redis_cpu(client) - cpu_before
            print(f"relay: {args.events / (last - first):.0f} events/s to billing (first to "
                  f"last request), Redis CPU {cpu / args.events * 1e6:.0f} us per delivered "
                  "event (read, holds, acknowledgements)")
            _wait_for(lambda: _outbox(store) == 0)
            left = (_stream_bytes(client, store) - before) / args.events
            print(f"outbox once delivered: {left:+.0f} B per event against before the "
                  f"migrations ({_outbox(store)} waiting)")

            done: dict[str, float] = {}
            pace = 1 / args.rate
            started = time.perf_counter()
            for count, msisdn in enumerate(numbers[args.events:]):
                time.sleep(max(0.0, started + count * pace - time.perf_counter()))
                assert service.migrate(msisdn, Profile.TIGRE, Channel.WEB,
                                       client="bench").approved
                done[msisdn] = time.time()
            _wait_for(lambda: len(_requests(port)) >= total, seconds=120)
            latency = sorted((request["at"] - done[event["msisdn"]]) * 1000
                             for request in _requests(port)[args.events:]
                             if (event := json.loads(request["body"]))["msisdn"] in done)
            quantiles = statistics.quantiles(latency, n=100)
            print(f"{len(latency)} migrations at {args.rate:g}/s, migration to billing's "
                  f"receipt: p50 {quantiles[49]:.1f} ms, p95 {quantiles[94]:.1f} ms, "
                  f"p99 {quantiles[98]:.1f} ms, max {latency[-1]:.1f} ms")
        finally:
            for process in (relay, stub):
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=30)
            client.close()
    return 0


def _requests(port: int) -> list | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stub/requests", timeout=5) as r:
            return json.load(r)
    except OSError:
        return None


def _outbox(store) -> int:
    return store.outbox.stats(EVENTS, int(time.time() * 1000))[0]


def _stream_bytes(client, store) -> int:
    """What the 256 event streams take in Redis, their consumer groups included."""
    pipe = client.pipeline(transaction=False)
    for bucket in ALL_BUCKETS:
        pipe.memory_usage(store.keys.queue(EVENTS, bucket), samples=0)
    return sum(size or 0 for size in pipe.execute())


def _redis_cpu(client) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def _wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {seconds} s")
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
