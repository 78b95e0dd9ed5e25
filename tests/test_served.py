"""``ussd serve`` as an operator runs it: real processes on loopback ports, a real Redis.

Metrics summed across worker processes (every scrape tells the same truth), on the gateways'
port or on their own listener; ``--demo`` refusing a Redis that holds data, and leaving it
exactly as it was; ``--demo --reset`` touching the demo numbers only.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from served import Served, free_port, get, served_env

from ussd.rules import Language, Profile
from ussd.store import Store
from ussd.store.keys import PROFILE_FIELD, KeySpace

pytestmark = pytest.mark.real_redis

TOKEN = "served-test-token-0123456789"
DIALOGUES = 15  # of 4 hops each, on a new connection each: the workers share them


def server_env(real_redis_url: str, key_prefix: str, **extra: str) -> dict[str, str]:
    return served_env(REDIS_URL=real_redis_url, USSD_KEY_PREFIX=key_prefix,
                      USSD_AFRICASTALKING_TOKEN=TOKEN, USSD_GATEWAYS="africastalking", **extra)


def hop(url: str, session: str, msisdn: str, text: str) -> str:
    body = urllib.parse.urlencode({"sessionId": session, "serviceCode": "*121#",
                                   "phoneNumber": msisdn, "networkCode": "62303",
                                   "text": text}).encode()
    request = urllib.request.Request(f"{url}/ussd/africastalking", data=body, headers={
        "Authorization": f"Bearer {TOKEN}", "Connection": "close"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return reply.read().decode()


def subscribers(real_redis, key_prefix: str, count: int) -> list[str]:
    """``count`` Novamix subscribers, stored."""
    numbers = [f"+22507000100{n:02d}" for n in range(count)]
    Store(real_redis, prefix=key_prefix).admin.put_subscribers(
        (number, Profile.NOVAMIX, Language.FR) for number in numbers)
    return numbers


def dialogues(url: str, numbers: list[str], batch: int) -> int:
    """A dialogue of four hops for each number (the menu, the list, Dauphin's confirmation,
    an invalid input there), four at a time; returns the hops made."""
    def one(number: str) -> None:
        session = f"AT-served-{batch}-{number}"
        for text, start in (("", "CON Orange"), ("1", "CON Choisissez"),
                            ("1*3", "CON Migration vers Dauphin"),
                            ("1*3*9", "CON Choix invalide.")):
            assert hop(url, session, number, text).startswith(start)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, numbers))
    return 4 * len(numbers)


def hop_total(text: str) -> float:
    """The sum of every ``ussd_hops_total`` series of one scrape."""
    return sum(float(value) for value in re.findall(r"^ussd_hops_total\{[^}]*\} (\S+)$",
                                                    text, re.MULTILINE))


def worker_pids(server: Served) -> set[int]:
    children = f"/proc/{server.proc.pid}/task/{server.proc.pid}/children"
    with open(children) as listing:
        return {int(pid) for pid in listing.read().split()}


def test_every_scrape_of_a_two_worker_server_reports_every_hop(real_redis_url, real_redis,
                                                                key_prefix, tmp_path):
    files = tmp_path / "metrics"  # where the workers' files can be seen, to know both served
    env = server_env(real_redis_url, key_prefix, PROMETHEUS_MULTIPROC_DIR=str(files))
    numbers = subscribers(real_redis, key_prefix, DIALOGUES)
    with Served(["--workers", "2"], env=env, log=tmp_path / "serve.log") as server:
        workers = worker_pids(server)
        assert len(workers) == 2
        hops = batches = 0
        while batches < 10 and {f"counter_{pid}.db" for pid in workers} - {
                path.name for path in files.iterdir()}:
            hops += dialogues(server.url, numbers, batches)
            batches += 1
        served_by = {pid for pid in workers if (files / f"counter_{pid}.db").exists()}
        scrapes = [get(f"{server.url}/metrics") for _ in range(10)]
    assert served_by == workers  # the hops went through both workers
    assert [status for status, _, _ in scrapes] == [200] * 10
    assert {headers["content-type"] for _, headers, _ in scrapes} == {
        "text/plain; version=1.0.0; charset=utf-8"}
    assert [hop_total(body) for _, _, body in scrapes] == [hops] * 10  # every one: all of them
    body = scrapes[0][2]
    assert "_created" not in body
    sessions = hops // 4
    for series, value in (
            ('ussd_hops_total{gateway="africastalking",outcome="invalid",reason=""}', sessions),
            ('ussd_hops_total{gateway="africastalking",outcome="shown",reason=""}', 3 * sessions),
            ('ussd_sessions_started_total{gateway="africastalking"}', sessions),
            ('ussd_funnel_total{step="confirmation"}', sessions),
            ('ussd_redis_seconds_count{operation="read"}', hops)):
        assert f"\n{series} {float(value)}\n" in body, series


def test_metrics_on_their_own_listener_sum_every_worker_and_leave_the_gateway_port(
        real_redis_url, real_redis, key_prefix, tmp_path):
    metrics_port = free_port()
    env = server_env(real_redis_url, key_prefix, USSD_METRICS_PORT=str(metrics_port),
                     USSD_METRICS_HOST="127.0.0.1")
    with Served(["--workers", "2"], env=env, log=tmp_path / "serve.log") as server:
        hops = dialogues(server.url, subscribers(real_redis, key_prefix, 5), 0)
        on_gateway_port = get(f"{server.url}/metrics")[0]
        scrapes = [get(f"http://127.0.0.1:{metrics_port}/metrics") for _ in range(10)]
    assert on_gateway_port == 404
    assert [hop_total(body) for _, _, body in scrapes] == [hops] * 10


def stored(url: str, key_prefix: str) -> dict[bytes, tuple[bytes, bool]]:
    """Every key of this test's prefix: its serialised value (DUMP, byte for byte) and
    whether it has a TTL."""
    binary = redis.Redis.from_url(url)
    try:
        keys = sorted(binary.scan_iter(f"{key_prefix}:*", count=1000))
        return {key: (binary.dump(key), binary.pttl(key) > 0) for key in keys}
    finally:
        binary.close()


def run_serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ussd.cli", "serve", "--port",
                           str(free_port()), *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False, stdin=subprocess.DEVNULL)


def test_demo_refuses_a_redis_holding_data_and_leaves_it_unchanged(real_redis_url, real_redis,
                                                                  key_prefix, tmp_path):
    subscribers = tmp_path / "subscribers.csv"
    subscribers.write_text("msisdn,profile,language\n0700000001,aigle,en\n0700000777,tigre,fr\n")
    env = server_env(real_redis_url, key_prefix)
    seeded = subprocess.run([sys.executable, "-m", "ussd.cli", "seed", str(subscribers)],
                            env=env, capture_output=True, text=True, timeout=60, check=False)
    assert seeded.returncode == 0, seeded.stderr
    real_redis.set(f"{key_prefix}:other", "kept", px=600_000)
    before = stored(real_redis_url, key_prefix)
    refused = run_serve(env, "--demo")
    assert refused.returncode == 1
    assert "refusing --demo: this Redis already holds data under the key prefix" in (
        refused.stderr)
    assert "--reset" in refused.stderr
    assert "Serving #121#" not in refused.stdout
    assert len(before) == 3
    assert stored(real_redis_url, key_prefix) == before  # byte for byte, TTLs included


def test_demo_reset_replaces_only_the_demo_numbers(real_redis_url, real_redis, key_prefix,
                                                   tmp_path):
    subscribers = tmp_path / "subscribers.csv"
    subscribers.write_text("msisdn,profile,language\n0700000001,aigle,en\n0700000777,tigre,fr\n")
    env = server_env(real_redis_url, key_prefix)
    subprocess.run([sys.executable, "-m", "ussd.cli", "seed", str(subscribers)], env=env,
                   capture_output=True, timeout=60, check=True)
    ours = KeySpace(key_prefix).subscriber("+2250700000777")
    mine = real_redis.hgetall(ours)
    with Served(["--demo", "--reset"], env=env, log=tmp_path / "serve.log") as server:
        said = server.output()
        dialled = hop(server.url, "AT-reset", "+2250700000001", "")
    assert "--reset: deleted the 1 key(s) of the demo numbers +2250700000001 to " \
           "+2250700000006; nothing else was touched" in said
    # The browser simulator would bypass the gateway's token: on a Redis, not without its own.
    assert "Browser simulator off: on a Redis it needs USSD_SIMULATOR_AUTH." in said
    assert "1. Changer de profil" in dialled  # the demo's Alice again: French, not English
    assert real_redis.hgetall(ours) == mine
    assert real_redis.hget(KeySpace(key_prefix).subscriber("+2250700000001"),
                           PROFILE_FIELD) == "novamix"
