"""Redis Sentinel: a failover survived without restarting the app, and no migration a
subscriber was told about lost to it (docs/reliability.md, "Sentinel").

A real deployment in miniature (tests/redis_servers.py ``SentinelDeployment``): a master, two
replicas and three ``redis-sentinel`` on loopback, the app on ``redis+sentinel://`` with
``USSD_REDIS_MIN_REPLICAS=1``. Dialogues run on four threads; the master is SIGKILLed in
the middle of them. What is stored is read afterwards straight from the new master.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from dataclasses import replace

import pytest
import redis
from conftest import LAST_MONTH, NOW, THIS_MONTH
from handsets import Handset, served_dialects, test_client_transport
from redis_servers import RedisServer, SentinelDeployment

from ussd.errors import ConfigError
from ussd.rules import Language, Profile
from ussd.settings import Settings
from ussd.store import Store, connect
from ussd.web import create_app

pytestmark = pytest.mark.real_redis

SUBSCRIBERS = [f"+2250700001{n:03d}" for n in range(120)]
MIGRATED = ("Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la "
            "limite de leur validité. Migrations restantes ce mois: 2.", True)
UNAVAILABLE = ("Service momentanément indisponible. Merci de réessayer dans quelques minutes.",
               True)
PROCESSING = ("Votre demande est en cours de traitement. Un SMS vous confirmera votre nouveau "
              "profil dès qu'il sera actif.", True)
WHOLE_AGAIN_WITHIN = 15.0  # seconds from the kill to the first success on the new master


@pytest.fixture
def deployment():
    with SentinelDeployment(replicas=2) as deployment:
        yield deployment


def app_on(url: str, key_prefix: str, **changes):
    settings = replace(Settings(key_prefix=key_prefix), **changes)
    client = connect(replace(settings, redis_url=url))
    return create_app(settings, redis_client=client, clock=lambda: NOW)


def seed(store: Store) -> None:
    store.admin.put_subscribers((msisdn, Profile.NOVAMIX, Language.FR) for msisdn in SUBSCRIBERS)
    store.admin.put_consumption((msisdn, LAST_MONTH, 9000) for msisdn in SUBSCRIBERS)


def dialogue(app, msisdn: str) -> tuple[str, float]:
    """Dial, change profile, Tigre, confirm: how it ended (the last screen's kind), and when."""
    phone = Handset(test_client_transport(app.test_client()), served_dialects()[0], msisdn)
    for send in (phone.dial, lambda: phone.send("1"), lambda: phone.send("2")):
        screen = send()
        if screen == UNAVAILABLE:
            return "unavailable before confirming", time.monotonic()
    screen = phone.send("1")
    kinds = {MIGRATED: "success", UNAVAILABLE: "unavailable", PROCESSING: "processing"}
    assert screen in kinds, screen
    return kinds[screen], time.monotonic()


def test_a_failover_is_survived_and_loses_no_migration_told(deployment, key_prefix):
    app = app_on(deployment.url, key_prefix, redis_min_replicas=1)
    seed(app.extensions["ussd"].store)
    readiness = app.test_client()
    assert readiness.get("/readyz").status_code == 200
    pending = list(reversed(SUBSCRIBERS))
    outcomes: dict[str, tuple[str, float]] = {}
    lock = threading.Lock()

    def play():
        while True:
            with lock:
                if not pending:
                    return
                msisdn = pending.pop()
            outcomes[msisdn] = dialogue(app, msisdn)
            if outcomes[msisdn][0] == "unavailable before confirming":
                with lock:  # nothing was asked: that subscriber dials again later
                    pending.insert(0, msisdn)
                time.sleep(0.05)

    threads = [threading.Thread(target=play) for _ in range(4)]
    for thread in threads:
        thread.start()
    while sum(kind == "success" for kind, _ in list(outcomes.values())) < 10:
        time.sleep(0.01)
    old = deployment.master_port()
    deployment.node(old).kill()
    killed = time.monotonic()
    not_ready = []
    while time.monotonic() - killed < WHOLE_AGAIN_WITHIN:
        answer = readiness.get("/readyz")
        not_ready.append(answer.status_code == 503)
        if answer.status_code == 503:
            assert answer.get_json()["reason"] == "store unreachable"
        if any(kind == "success" and at > killed + 0.1 for kind, at in list(outcomes.values())):
            break
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=60)
    new = deployment.master_port()
    assert new != old
    recovered = min(at for kind, at in outcomes.values() if kind == "success" and at > killed)
    assert recovered - killed < WHOLE_AGAIN_WITHIN
    assert any(not_ready) and readiness.get("/readyz").status_code == 200

    # What the new master holds: every migration told is there, once; none applied twice;
    # none for a confirmation told "unavailable" (refused before it was sent).
    master = redis.Redis(port=new, decode_responses=True)
    check = Store(master, prefix=key_prefix)
    kinds = {}
    for msisdn, (kind, _) in outcomes.items():
        record = check.admin.describe(msisdn, THIS_MONTH)
        count, history = record["migrations_this_month"], record["history"]
        assert len(history) == count <= 1, msisdn
        assert record["profile"] == ("tigre" if count else "novamix"), msisdn
        if kind == "success":
            assert count == 1, f"{msisdn}: told it is Tigre, lost in the failover"
        if kind.startswith("unavailable"):
            assert count == 0, f"{msisdn}: told unavailable, applied"
        kinds[kind] = kinds.get(kind, 0) + 1
    master.close()
    app.extensions["ussd"].store.close()
    print(f"\nfailover: {kinds}; whole again {recovered - killed:.1f} s after the kill")
    assert kinds["success"] > 10  # some after the failover too


def test_a_success_waits_for_its_replica(deployment, key_prefix):
    """The replicas frozen: the migration is on the master alone, so the subscriber is told
    it is being processed, not that it is done; once they answer, successes again."""
    app = app_on(deployment.url, key_prefix, redis_min_replicas=2, redis_timeout=0.5)
    seed(app.extensions["ussd"].store)
    assert dialogue(app, SUBSCRIBERS[0])[0] == "success"
    frozen = deployment.replicas[0]
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        kind, _ = dialogue(app, SUBSCRIBERS[1])
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert kind == "processing"
    assert dialogue(app, SUBSCRIBERS[2])[0] == "success"
    app.extensions["ussd"].store.close()


def test_a_sentinel_named_as_a_redis_is_refused_clearly(deployment, key_prefix):
    """REDIS_URL=redis://<a sentinel>: every call would fail with "unknown command"; the app
    refuses to start and says what to write instead."""
    with pytest.raises(ConfigError) as refused:
        app_on(f"redis://{deployment.sentinels[0].url}/0", key_prefix)
    assert str(refused.value) == ("REDIS_URL names a Redis Sentinel, not a Redis: write "
                                  "redis+sentinel://<sentinel host:port,...>/<master name>/<db>")


def test_min_replicas_is_refused_where_it_cannot_hold(key_prefix):
    with pytest.raises(ConfigError):
        connect(Settings(redis_min_replicas=1))
    with pytest.raises(ConfigError):
        connect(Settings(redis_url="redis://127.0.0.1:6379/0?cluster=true", redis_min_replicas=1))
    with RedisServer() as server:  # one server, no replica: never a success screen, honestly
        app = app_on(server.url, key_prefix, redis_min_replicas=1, redis_timeout=0.3)
        seed(app.extensions["ussd"].store)
        assert dialogue(app, SUBSCRIBERS[0])[0] == "processing"
        app.extensions["ussd"].store.close()


def test_sentinels_that_refuse_connections_are_told_within_one_timeout(key_prefix):
    """Sentinels never there (closed loopback ports): the app starts, every hop gets the polite
    "unavailable" and ``/readyz`` its 503, each within one ``USSD_REDIS_TIMEOUT``. Before, the
    sentinels' connections kept redis-py's default retries with back-off: 25 s a hop."""
    timeout = Settings().redis_timeout  # the default, as served
    with contextlib.ExitStack() as closed_ports:
        probes = [closed_ports.enter_context(socket.socket()) for _ in range(3)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        hosts = ",".join(f"127.0.0.1:{probe.getsockname()[1]}" for probe in probes)
        started = time.monotonic()
        app = app_on(f"redis+sentinel://{hosts}/mymaster/0", key_prefix)
        assert time.monotonic() - started < timeout  # the scripts not loaded, said at once
        for dialect in served_dialects():
            phone = Handset(test_client_transport(app.test_client()), dialect, SUBSCRIBERS[0])
            started = time.monotonic()
            assert phone.dial() == UNAVAILABLE
            assert time.monotonic() - started < timeout, dialect.name
        started = time.monotonic()
        answer = app.test_client().get("/readyz")
        assert (answer.status_code, answer.get_json()["reason"]) == (503, "store unreachable")
        assert time.monotonic() - started < timeout
        app.extensions["ussd"].store.close()
