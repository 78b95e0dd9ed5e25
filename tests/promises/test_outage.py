"""Redis stopped, hung or never there: every hop answers at once with a polite END in the
subscriber's language, readiness says not ready, nothing is half-written, and the service
resumes by itself when Redis is back.

Each test runs its own ``redis-server`` (tests/redis_servers.py) so it can kill it, stop it
with SIGSTOP (a hung server: connections accepted, nothing answered) or restart it; the client
is built by ``store.connect`` exactly as the server builds it, with the default 1 s timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest
from conftest import ALICE, JOHN, NOW, THIS_MONTH, seed_subscribers
from handsets import Handset, served_dialects, test_client_transport
from redis_servers import RedisServer

from ussd.settings import Settings
from ussd.store import connect
from ussd.web import create_app

pytestmark = pytest.mark.real_redis

REDIS_TIMEOUT = 1.0  # the default of USSD_REDIS_TIMEOUT
HOP_LIMIT = 3.0  # seconds: one timeout, one immediate reconnect, and generous slack
UNAVAILABLE = {
    "fr": ("Service momentanément indisponible. Merci de réessayer dans quelques minutes.", True),
    "en": ("Service temporarily unavailable. Please try again in a few minutes.", True),
}
PROFILES_FR = ("Choisissez votre nouveau profil:\n1. Novamix (actuel)\n2. Tigre\n3. Dauphin\n"
               "4. Aigle\n0 Retour | 00 Accueil")
LISA = "+2250700000007"  # English, never seen by the worker before the outage


@pytest.fixture
def server():
    with RedisServer({"appendonly": "yes", "appendfsync": "always"}) as server:
        yield server


def app_on(url: str, key_prefix: str):
    """The application on the Redis at ``url``, with the client ``ussd serve`` would build."""
    settings = Settings(key_prefix=key_prefix, redis_timeout=REDIS_TIMEOUT)
    client = connect(replace(settings, redis_url=url))
    return create_app(settings, redis_client=client, clock=lambda: NOW), client


@pytest.fixture
def app(server, key_prefix):
    app, client = app_on(server.url, key_prefix)
    store = app.extensions["ussd"].store
    seed_subscribers(store)
    from ussd.rules import Language, Profile

    store.admin.put_subscribers([(LISA, Profile.TIGRE, Language.EN)])
    yield app
    client.close()


TIMES: list[float] = []  # every outage hop's time, for `pytest -s` (printed at the end)


@contextmanager
def timed(limit: float = HOP_LIMIT):
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    TIMES.append(elapsed)
    assert elapsed < limit, f"took {elapsed:.2f} s"


def teardown_module():
    if TIMES:
        print(f"\noutage hops: {len(TIMES)}, slowest {max(TIMES):.3f} s")


@contextmanager
def hung(server: RedisServer):
    """The server frozen: it still accepts connections (the kernel does), answers nothing."""
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


def phone(app, dialect, msisdn):
    return Handset(test_client_transport(app.test_client()), dialect, msisdn)


def readiness(app) -> int:
    return app.test_client().get("/readyz").status_code


# Killed, in every dialect; hung (each hop waits out the timeout), in the first one.
CASES = [("killed", d) for d in served_dialects()] + [("hung", served_dialects()[0])]


@pytest.mark.parametrize(("failure", "dialect"), CASES, ids=[f"{f}-{d.name}" for f, d in CASES])
def test_every_hop_answers_at_once_and_service_resumes(app, server, dialect, failure):
    service = app.extensions["ussd"]
    alice, john = phone(app, dialect, ALICE), phone(app, dialect, JOHN)
    alice.dial()
    assert alice.send("1") == (PROFILES_FR, False)
    john.dial()  # this worker has now seen John: English
    record_before = service.store.redis.get(
        service.store.keys.session(ALICE, dialect.name, alice.session_id))
    assert readiness(app) == 200

    outage = hung(server) if failure == "hung" else _killed(server)
    with outage:
        with timed():
            assert alice.send("2") == UNAVAILABLE["fr"]
        with timed():
            assert john.send("1") == UNAVAILABLE["en"]
        with timed():  # a new session: the dial itself
            assert phone(app, dialect, ALICE).dial() == UNAVAILABLE["fr"]
        with timed():  # unknown language (never seen here): French
            assert phone(app, dialect, LISA).dial() == UNAVAILABLE["fr"]
        with timed():
            assert alice.replay(1) == UNAVAILABLE["fr"]
        with timed():  # the gateway's end report is still answered
            dialect.check_end_report(test_client_transport(app.test_client())(
                dialect.end("other-session", ALICE)))
        with timed():
            assert readiness(app) == 503

    # Back, without a restart of the application.
    assert readiness(app) == 200
    assert phone(app, dialect, LISA).dial()[0].startswith("Orange #121#\n1. Change profile")
    # Nothing was half-written: the session is where it was before the outage, the subscriber
    # untouched; the hop the outage refused can be sent again and goes on.
    assert service.store.redis.get(
        service.store.keys.session(ALICE, dialect.name, alice.session_id)) == record_before
    assert service.store.admin.describe(ALICE, THIS_MONTH)["profile"] == "novamix"
    if dialect.numbers_hops:
        alice.inputs.pop()  # the refused "2" is sent again, as the same hop
    assert alice.send("2")[0].startswith("Migration vers Tigre: gratuite.")
    assert alice.send("1")[0].startswith("Votre profil est désormais Tigre.")
    stored = service.store.admin.describe(ALICE, THIS_MONTH)
    assert (stored["profile"], stored["migrations_this_month"], len(stored["history"])) == (
        "tigre", 1, 1)


@contextmanager
def _killed(server: RedisServer):
    server.kill()
    try:
        yield
    finally:
        server.restart()


def test_an_unreachable_redis_from_the_start(key_prefix):
    """Redis never there (a closed port): the app starts, every hop ends politely at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        app, client = app_on(f"redis://127.0.0.1:{port}/0", key_prefix)
        for dialect in served_dialects():
            with timed():
                assert phone(app, dialect, ALICE).dial() == UNAVAILABLE["fr"]
        with timed():
            assert readiness(app) == 503
        client.close()
