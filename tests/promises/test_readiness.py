"""Readiness tells the truth: ``/readyz`` is 503, with the reason, whenever Redis cannot take a
write (out of memory under ``noeviction``, a read-only replica, failed persistence), though it
still answers ``PING``; and 200 again by itself once it can (docs/reliability.md, "Readiness").

Each case runs a ``redis-server`` of its own (tests/redis_servers.py), the app on the client
``store.connect`` builds for it.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace

import pytest
import redis
from conftest import ALICE, NOW, THIS_MONTH, seed_subscribers
from handsets import Handset, served_dialects, test_client_transport
from redis_servers import RedisServer

from ussd.settings import Settings
from ussd.store import connect
from ussd.web import create_app

pytestmark = pytest.mark.real_redis

UNAVAILABLE = ("Service momentanément indisponible. Merci de réessayer dans quelques minutes.",
               True)
PROFILES = ("Choisissez votre nouveau profil:\n1. Novamix (actuel)\n2. Tigre\n3. Dauphin\n"
            "4. Aigle\n0 Retour | 00 Accueil")


@pytest.fixture
def serve(key_prefix):
    """``serve(server)``: the app on that server; its connections closed afterwards."""
    apps = []

    def build(server: RedisServer):
        settings = Settings(key_prefix=key_prefix)
        client = connect(replace(settings, redis_url=server.url))
        apps.append(create_app(settings, redis_client=client, clock=lambda: NOW))
        return apps[-1]

    yield build
    for app in apps:
        app.extensions["ussd"].store.close()


def readiness(app) -> tuple[int, dict]:
    answer = app.test_client().get("/readyz")
    return answer.status_code, answer.get_json()


READY = (200, {"status": "ready"})


def not_ready(reason: str) -> tuple[int, dict]:
    return 503, {"status": "not ready", "reason": reason}


def test_out_of_memory_is_not_ready_and_ready_again_by_itself(serve):
    with RedisServer({"maxmemory-policy": "noeviction"}) as server:
        app = serve(server)
        store = app.extensions["ussd"].store
        seed_subscribers(store)
        direct = redis.Redis(port=server.port)
        phone = Handset(test_client_transport(app.test_client()), served_dialects()[0], ALICE)
        phone.dial()
        assert readiness(app) == READY
        # Full: 2 MB of other data, then a limit half a megabyte above what was used before
        # it (noeviction: every write refused).
        before = direct.info("memory")["used_memory"]
        for number in range(200):
            direct.set(f"filler:{number}", "x" * 10_000)
        direct.config_set("maxmemory", before + 500_000)
        assert direct.ping()  # what readiness used to ask
        assert readiness(app) == not_ready("out of memory")
        assert phone.send("1") == UNAVAILABLE  # a polite end, nothing half-written
        assert store.admin.describe(ALICE, THIS_MONTH)["profile"] == "novamix"
        direct.delete(*(f"filler:{number}" for number in range(200)))
        assert readiness(app) == READY  # by itself: nothing to reset
        phone.inputs.pop()
        assert phone.send("1") == (PROFILES, False)
        direct.close()


def test_a_read_only_replica_is_not_ready_until_promoted(serve):
    with RedisServer() as master, RedisServer() as replica:
        direct = redis.Redis(port=replica.port)
        direct.replicaof("127.0.0.1", master.port)
        app = serve(replica)
        assert readiness(app) == not_ready("read-only replica")
        direct.replicaof("NO", "ONE")  # promoted, as a failover would
        assert readiness(app) == READY
        direct.close()


def test_failing_persistence_is_not_ready(serve):
    """``stop-writes-on-bgsave-error``: the last snapshot failed (its directory is gone), so
    Redis refuses writes; ready again when the operator lets it write (or a save succeeds)."""
    with RedisServer({"save": "3600 1"}) as server:
        app = serve(server)
        assert readiness(app) == READY
        direct = redis.Redis(port=server.port)
        shutil.rmtree(server.dir)
        direct.bgsave()
        deadline = time.monotonic() + 5
        while direct.info("persistence")["rdb_last_bgsave_status"] != "err":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert readiness(app) == not_ready("persistence failing")
        direct.config_set("stop-writes-on-bgsave-error", "no")
        assert readiness(app) == READY
        direct.close()


def test_unreachable_and_a_sentinel_named_as_a_redis(serve):
    with RedisServer() as server:
        app = serve(server)
        server.kill()
        assert readiness(app) == not_ready("store unreachable")
