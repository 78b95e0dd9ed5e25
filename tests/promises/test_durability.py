"""Crash durability: a migration confirmed to a subscriber survives Redis being SIGKILLed.

The Redis under test is started with the persistence ``docker-compose.yml`` gives it (read from
that file): an append-only file fsynced on every write (``appendfsync always``), which Redis
does before it sends the reply, so before our success screen. See docs/reliability.md.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import LAST_MONTH, NOW, THIS_MONTH
from handsets import Handset, served_dialects, test_client_transport
from redis_servers import RedisServer

from ussd.rules import Language, Profile
from ussd.settings import Settings
from ussd.store import Store, connect
from ussd.web import create_app

pytestmark = pytest.mark.real_redis

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
SUBSCRIBERS = 20  # each migrates 3 times (the cap) in the sequential run: 60 migrations
CONCURRENT_TARGET = 100  # successes seen before the kill in the concurrent run
SUCCESS = ("Votre profil est désormais", "Your profile is now")


def compose_redis_config() -> dict[str, str]:
    """The redis-server options of docker-compose.yml's ``redis`` service, as a config dict."""
    match = re.search(r'command:\s*(\["redis-server".*?\])', COMPOSE.read_text())
    assert match, "docker-compose.yml: no redis-server command"
    words = json.loads(match.group(1))[1:]
    return {words[i].removeprefix("--"): words[i + 1] for i in range(0, len(words), 2)}


def test_compose_persists_every_write_before_replying():
    config = compose_redis_config()
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "always"


def numbers(count: int, first: int = 100) -> list[str]:
    return [f"+22507{n:08d}" for n in range(first, first + count)]


def start_app(server: RedisServer, key_prefix: str, msisdns: list[str]):
    settings = Settings(key_prefix=key_prefix)
    client = connect(Settings(redis_url=server.url))
    store = Store(client, prefix=key_prefix)
    store.admin.put_subscribers((m, Profile.NOVAMIX, Language.FR) for m in msisdns)
    store.admin.put_consumption((m, LAST_MONTH, 10_000) for m in msisdns)  # every profile open
    return create_app(settings, redis_client=client, clock=lambda: NOW), client


def migrate(app, msisdn: str, target: str) -> tuple[str, str, bool]:
    """One whole dialogue; (session id, target, whether the success screen was shown)."""
    phone = Handset(test_client_transport(app.test_client()), served_dialects()[0], msisdn)
    phone.dial()
    phone.send("1")
    phone.send(target)
    text, _ = phone.send("1")
    return phone.session_id, target, text.startswith(SUCCESS)


def after_restart(server: RedisServer, key_prefix: str, msisdns: list[str]):
    """What a fresh client finds once the server has replayed its append-only file."""
    client = connect(Settings(redis_url=server.url))
    store = Store(client, prefix=key_prefix)
    found = {m: store.admin.describe(m, THIS_MONTH) for m in msisdns}
    client.close()
    return found


def check_consistent(found: dict) -> Counter:
    """Profile, counter and history agree for every subscriber; the sessions in the history."""
    sessions: Counter = Counter()
    for stored in found.values():
        history = stored["history"]
        assert stored["migrations_this_month"] == len(history)
        assert stored["profile"] == (history[-1]["to"] if history else "novamix")
        assert all(a["to"] == b["from"] for a, b in itertools.pairwise(history))
        sessions.update(entry["session"] for entry in history)
    return sessions


@pytest.mark.parametrize("persistence", ["compose", "none"])
def test_confirmed_migrations_survive_sigkill(key_prefix, persistence):
    """Migrations, then SIGKILL right after the last success screen, then a restart: every
    confirmed migration is there, exactly once. Without the append-only file (the control)
    the same run loses them: the test can see a loss."""
    config = compose_redis_config() if persistence == "compose" else {"appendonly": "no"}
    msisdns = numbers(SUBSCRIBERS)
    with RedisServer(config) as server:
        app, client = start_app(server, key_prefix, msisdns)
        confirmed = []
        for target in ("2", "3", "4"):  # Tigre, Dauphin, Aigle: three migrations each
            for msisdn in msisdns:
                session_id, _, success = migrate(app, msisdn, target)
                assert success
                confirmed.append(session_id)
        server.kill()  # SIGKILL: no shutdown, no final AOF rewrite or fsync
        client.close()
        server.restart()
        found = after_restart(server, key_prefix, msisdns)
    if persistence == "none":
        assert all(stored is None for stored in found.values())
        return
    sessions = check_consistent(found)
    assert len(confirmed) == 3 * SUBSCRIBERS
    assert sessions == Counter(confirmed)  # every confirmed one, once; nothing else
    assert all(stored["profile"] == "aigle" for stored in found.values())


def test_sigkill_amid_concurrent_migrations_loses_no_confirmed_one(key_prefix):
    """Threads migrate without pause; Redis is SIGKILLed mid-flight. After the restart every
    migration whose success screen was shown is there once, and each subscriber's profile,
    counter and history agree (a migration is one script: applied whole or not at all)."""
    msisdns = numbers(40, first=500)
    with RedisServer(compose_redis_config()) as server:
        app, client = start_app(server, key_prefix, msisdns)
        confirmed: list[str] = []
        lock, enough, stopped = threading.Lock(), threading.Event(), threading.Event()

        def worker(index: int) -> None:
            mine = msisdns[index::8]
            for round_ in range(3):
                for msisdn in mine:
                    if stopped.is_set():
                        return
                    session_id, _, success = migrate(app, msisdn, "234"[round_])
                    if not success:
                        return  # the outage has begun
                    with lock:
                        confirmed.append(session_id)
                        if len(confirmed) >= CONCURRENT_TARGET:
                            enough.set()

        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(worker, i) for i in range(8)]
            assert enough.wait(timeout=60)
            server.kill()
            stopped.set()
            for future in futures:
                future.result(timeout=60)
        with lock:
            shown = list(confirmed)
        client.close()
        server.restart()
        found = after_restart(server, key_prefix, msisdns)
    sessions = check_consistent(found)
    assert len(shown) >= CONCURRENT_TARGET
    assert all(sessions[session_id] == 1 for session_id in shown)
    assert all(count == 1 for count in sessions.values())
    # What was applied but never shown can only be the confirms in flight at the kill.
    assert sum(sessions.values()) - len(shown) <= 8
