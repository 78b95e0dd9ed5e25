"""Overload: the service driven at three times its capacity, on this machine.

    python bench/overload.py            (about a minute; needs wrk: apt-get install wrk)

Starts its own redis-server on 127.0.0.1 and serves the service as production does (``ussd
serve``, one worker per CPU, its defaults: 3 hops at once per worker, "busy" after 0.5 s). Two
runs, each measuring first the capacity (the dialogues of ``bench/run.py``, dial, change
profile, the target, confirm, at its 16 connections: hops/s), then an overload: wrk with many
more connections, each playing dialogues up to the confirmation screen as fast as it is
answered (``overload.lua``), every answer sorted: the screen expected for its subscriber at
that hop (answered), the "busy" end, or an error.

1. **Redis 5 ms away** (``--redis-delay``, the test's delaying proxy in front of it): hops wait
   on Redis, so the 3 turns of each worker bind: a capacity of a few hundred hops/s, driven at
   3x (``--connections``, 1200). The floors apply to this run: p99 of answered hops <= 1 s, no
   error, no ``5xx``, and a load (answers of every kind per second) of at least 3x the
   capacity, else it did not overload the server (raise ``--connections``).
2. **Redis on loopback**: the CPU binds (the two cores are shared by the server, Redis and
   wrk); 600 connections, figures printed only.

Every process it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))  # redis_servers, delaying_proxy

import load
import redis
from delaying_proxy import DelayingProxy
from redis_servers import RedisServer
from servers import AppServer, service_env

from ussd.cli import DEFAULT_THREADS, default_workers
from ussd.months import month_of, previous_month
from ussd.settings import Settings
from ussd.store import Store

PREFIX = "overload"
FLOORS = {"p99_ms": 1000, "errors": 0, "http5xx": 0, "load": 3.0}
SESSION, NUMBER = "SESSIONSLOT", 87_654_321  # placeholders overload.lua fills in
PLAYED = 24 * 200  # subscribers of the overloads, played again and again
MEASURED = 60_000  # subscribers of the capacity runs, each played once


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"hops at once per worker (default: {DEFAULT_THREADS}, as ussd serve)")
    parser.add_argument("--redis-delay", type=float, default=0.005,
                        help="seconds added to each command on its way to Redis in run 1")
    parser.add_argument("--connections", type=int, default=1200,
                        help="connections of run 1's overload (run 2: 600)")
    parser.add_argument("--duration", type=float, default=8.0,
                        help="seconds of each overload (default: 8, at most 60)")
    parser.add_argument("--capacity-duration", type=float, default=3.0,
                        help="seconds of each capacity run (default: 3)")
    args = parser.parse_args()
    if not 0 < args.duration <= 60 or not 0 < args.capacity_duration <= 30:
        parser.error("--duration 1-60 s, --capacity-duration 1-30 s: the bench is bounded")
    if not 16 <= args.connections <= 2000 or not 0 <= args.redis_delay <= 0.1:
        parser.error("--connections 16-2000, --redis-delay 0-0.1 s")
    return args


def main() -> int:
    args = arguments()
    logging.getLogger("ussd").setLevel(logging.ERROR)
    load.wrk_path()
    work = Path(tempfile.mkdtemp(prefix="ussd-overload-"))
    token = secrets.token_urlsafe(16)
    replies = load.expected_replies()
    print(f"Service: ussd serve, {args.workers} worker(s), {args.threads} hop(s) at once per "
          f"worker, busy after {Settings().limits.busy_after:g} s; Python "
          f"{sys.version.split()[0]}; the servers' logs in {work}")
    status = 0
    with RedisServer({"save": "", "appendonly": "no"}) as server:
        client = redis.Redis.from_url(server.url, decode_responses=True)
        store = Store(client, prefix=PREFIX)
        month = previous_month(month_of(datetime.now(UTC), Settings().zone))
        load.seed(store, PLAYED + MEASURED, month)
        with DelayingProxy(server.port) as proxy:
            proxy.delay = args.redis_delay
            print(f"\n1. Redis {args.redis_delay * 1000:g} ms away")
            status |= run(args, proxy.url, token, replies, work, "slow", 0,
                          args.connections, floors=True)
        print("\n2. Redis on loopback")
        run(args, server.url, token, replies, work, "near", MEASURED // 2, 600, floors=False)
        client.close()
    if status == 0:
        shutil.rmtree(work, ignore_errors=True)
    return status


def run(args, redis_url: str, token: str, replies, work: Path, name: str, offset: int,
        connections: int, floors: bool) -> int:
    """One server on ``redis_url``: its capacity, then the overload; its figures printed."""
    data = write_overload_data(work / f"{name}.lua", f"{name}{secrets.token_hex(3)}", replies)
    service = AppServer("service", "granian", args.workers, args.threads,
                        service_env(redis_url, PREFIX, token), work / f"{name}.log")
    with service:
        first = PLAYED + offset
        quarter = MEASURED // 4  # a quarter to warm up, one to measure, per run
        warm = load.write_data(work / f"{name}-warm.lua", f"{name}-w", first,
                               first + quarter - 1, replies)
        measured = load.write_data(work / f"{name}-capacity.lua", f"{name}-c", first + quarter,
                                   first + 2 * quarter - 1, replies)
        load.play(service.url, warm, 16, 1.0, token)
        capacity = load.play(service.url, measured, 16, args.capacity_duration, token)
        cpu_before = service.cpu_seconds()
        result = overload(service.url, data, connections, args.duration, token)
        cpu = service.cpu_seconds() - cpu_before
    return report(capacity, result, cpu, connections, floors)


def write_overload_data(path: Path, run: str, replies: list[list[str]]) -> Path:
    """overload.lua's data: a request body per kind and hop (the dialect's client half's, with
    placeholders for the session id and the subscriber's last 8 digits), the expected reply of
    each, and the "busy" end of each kind's language."""
    hops = load.HOPS - 1  # up to the confirmation screen, not the migration
    templates, expected = [], []
    placeholder = load.msisdn(NUMBER)
    for number, kind in enumerate(load.KINDS):
        requests = [load.GATEWAY.dial(SESSION, placeholder, load.CODE)] + [
            load.GATEWAY.hop(SESSION, placeholder, load.CODE, kind.inputs[:count])
            for count in range(1, hops)]
        templates.append([load.http(request)[3].decode() for request in requests])
        expected.append(replies[number][:hops])
    method, target, headers, _ = load.http(load.GATEWAY.dial(SESSION, placeholder, load.CODE))
    busy, resume = system_replies("busy"), system_replies("resume")
    lua = load.lua_string
    lines = [f"FIRST, LAST = 0, {PLAYED - 1}",
             f"KINDS, HOPS = {len(load.KINDS)}, {hops}",
             f"METHOD, PATH = {lua(method)}, {lua(target)}",
             "HEADERS = {" + ", ".join(f"[{lua(k)}] = {lua(v)}" for k, v in headers.items())
             + "}",
             f"RUN, SESSION, NUMBER = {lua(run)}, {lua(SESSION)}, {lua(f'{NUMBER:08d}')}",
             "TEMPLATES = {" + ", ".join("{" + ", ".join(lua(t) for t in kind) + "}"
                                         for kind in templates) + "}",
             "EXPECTED = {" + ", ".join("{" + ", ".join(lua(r) for r in kind) + "}"
                                        for kind in expected) + "}",
             "BUSY = {" + ", ".join(lua(busy[kind.language]) for kind in load.KINDS) + "}",
             "RESUME = {" + ", ".join(lua(resume[kind.language]) for kind in load.KINDS)
             + "}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def system_replies(role: str) -> dict:
    """A system screen (the "busy" end, the resume offer) as the dialect writes it, in each
    language."""
    import fakeredis

    from ussd.contract import WireRequest
    from ussd.rules import Language
    from ussd.web import create_app

    app = create_app(Settings(key_prefix="busy"),
                     redis_client=fakeredis.FakeRedis(decode_responses=True))
    service = app.extensions["ussd"]
    return {language: load.GATEWAY.wire(service.system_reply(role, language),
                                        WireRequest("POST")).body for language in Language}


def overload(url: str, data: Path, connections: int, seconds: float, token: str) -> dict:
    """wrk with ``connections`` connections (one per thread) for ``seconds``; its figures."""
    command = [load.wrk_path(), "--threads", str(connections), "--connections",
               str(connections), "--duration", f"{seconds:g}s", "--timeout", "10s",
               "--header", f"Authorization: Bearer {token}",
               "--script", str(BENCH / "overload.lua"), url, "--", str(data), str(connections)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, proc.returncode, usage = os.wait4(proc.pid, 0)
    match = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk gave no result:\n{output}")
    figures = {name: int(value) for name, value in
               (pair.split("=") for pair in match.group(1).split())}
    bad = re.search(r"^FIRST_BAD (.*)$", output, re.MULTILINE)
    figures["first_bad"] = bad.group(1) if bad else ""
    figures["load_cpu"] = usage.ru_utime + usage.ru_stime
    return figures


def report(capacity, result: dict, server_cpu: float, connections: int, floors: bool) -> int:
    seconds = result["duration_us"] / 1e6
    socket_errors = sum(result[k] for k in ("connect", "read", "write", "timeout"))
    answers = result["answered"] + result["busy"] + result["bad"]
    ratio = answers / seconds / capacity.hops_per_second
    errors = result["bad"] + socket_errors
    busy_share = result["busy"] / answers if answers else 0.0
    print(f"  capacity ({capacity.seconds:.0f} s, 16 connections, whole dialogues): "
          f"{capacity.hops_per_second:.0f} hops/s, p99 {capacity.p99_ms:.1f} ms, "
          f"{capacity.errors} error(s)")
    print(f"  overload ({seconds:.0f} s, {connections} connections): "
          f"{answers / seconds:.0f} answers/s = {ratio:.1f}x the capacity")
    print(f"    answered hops: {result['answered'] / seconds:.0f}/s, p50 "
          f"{result['answered_p50_ms']} ms, p99 {result['answered_p99_ms']} ms, slowest "
          f"{result['answered_max_ms']} ms")
    print(f"    busy: {result['busy'] / seconds:.0f}/s, {busy_share:.0%} of the answers")
    print(f"    errors: {errors} (wrong replies {result['bad']}, sockets {socket_errors}), "
          f"5xx: {result['http5xx']}; CPU seconds: server {server_cpu:.1f}, "
          f"wrk {result['load_cpu']:.1f}")
    if result["first_bad"]:
        print(f"    first wrong reply: {result['first_bad'][:300]}")
    if not floors:
        return 0
    checks = {
        "p99 of answered hops <= 1000 ms": 0 <= result["answered_p99_ms"] <= FLOORS["p99_ms"],
        "no error": errors == FLOORS["errors"],
        "no 5xx": result["http5xx"] == FLOORS["http5xx"],
        "load >= 3x the capacity": ratio >= FLOORS["load"],
    }
    for name, ok in checks.items():
        print(f"  floor {name}: {'ok' if ok else 'MISSED'}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
