"""How hops use their connections to one Redis server (ussd/store/client.py: ``Commands``,
``HeldConnections``).

The hop's two commands skip redis-py's connection pool: each hop takes a connection the store
hands from hop to hop. These tests run on a ``redis-server`` of their own, since they count
every command sent and flush its scripts, which the machine's shared server must not see.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import redis
from conftest import ALICE, BRUNO, JOHN, NOW, Dialler, seed_subscribers

from ussd.rules import Language, Profile
from ussd.settings import Settings
from ussd.store import connect
from ussd.web import create_app

pytestmark = pytest.mark.real_redis

TIGRE_DONE = "END Votre profil est désormais Tigre"
FRENCH = "CON Orange #121#\n1. Changer de profil"
ENGLISH = "CON Orange #121#\n1. Change profile"


class CountingConnection(redis.Connection):
    """Counts what every connection sends (a command, or a pipeline) and the connections made."""

    sent = 0
    opened = 0

    def connect(self):
        if self._sock is None:
            CountingConnection.opened += 1
        return super().connect()

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sent += 1
        return super().send_packed_command(command, check_health)


@pytest.fixture
def app(own_redis_server, key_prefix):
    """The app with the client ``ussd serve`` builds, counting from its first connection."""
    settings = Settings(key_prefix=key_prefix)
    client = connect(replace(settings, redis_url=own_redis_server.url))
    assert type(client) is redis.Redis  # the path under test: one server, not a cluster
    client.connection_pool.connection_class = CountingConnection
    client.script_flush()  # what the app does not load at start-up would show on a hop
    app = create_app(settings, redis_client=client, clock=lambda: NOW)
    seed_subscribers(app.extensions["ussd"].store)
    yield app
    client.flushdb()
    client.close()


def play_to_tigre(client, msisdn=ALICE, session_id=None) -> str:
    session = Dialler(client, msisdn, session_id)
    session.dial()
    session.send("1")
    session.send("2")
    return session.send("1")


def test_every_hop_of_a_dialogue_costs_two_round_trips_and_no_new_connection(app):
    session = Dialler(app.test_client(), ALICE)
    opened, per_hop = CountingConnection.opened, []
    for inputs in ((), ("1",), ("2",), ("1",)):
        before = CountingConnection.sent
        reply = session.send(*inputs) if inputs else session.dial()
        per_hop.append(CountingConnection.sent - before)
    assert reply.startswith(TIGRE_DONE)
    assert per_hop == [2, 2, 2, 2]  # dial, change profile, choose, confirm with its migration
    assert CountingConnection.opened == opened  # the one opened at start-up served them all


def test_a_resumed_dialogue_and_a_language_chosen_cost_two_round_trips_a_hop(app):
    """The dropped-session marker is read in the hop's read and written in its write: a
    dialogue dropped at the confirmation, resumed on a redial and confirmed, and a language
    chosen from the menu, cost what any hop costs."""
    client = app.test_client()
    per_hop = []

    def hop(session: Dialler, *inputs: str) -> str:
        before = CountingConnection.sent
        reply = session.send(*inputs) if inputs else session.dial()
        per_hop.append(CountingConnection.sent - before)
        return reply

    dropped = Dialler(client, ALICE, "drops")
    hop(dropped)
    hop(dropped, "1")
    hop(dropped, "2")
    client.post("/ussd/africastalking/events", data={
        "sessionId": "drops", "phoneNumber": ALICE, "status": "Failed"})
    again = Dialler(client, ALICE, "resumes")
    assert hop(again).startswith("CON Reprendre où vous en étiez ?")
    assert hop(again, "1").startswith("CON Migration vers Tigre")
    assert hop(again, "1").startswith(TIGRE_DONE)
    english = Dialler(client, JOHN, "english")
    hop(english)
    hop(english, "4")
    assert hop(english, "1").startswith("CON Langue enregistrée: Francais")
    assert per_hop == [2] * 9


def test_hops_at_once_open_no_more_connections_than_hops_at_once(app):
    # Eight subscribers, French and English in turn: one handset has one session at a time
    # (two of one number would offer each other's dropped dialogue to resume).
    numbers = [f"+22507000010{n:02}" for n in range(8)]
    app.extensions["ussd"].store.admin.put_subscribers(
        (msisdn, Profile.NOVAMIX, (Language.FR, Language.EN)[n % 2])
        for n, msisdn in enumerate(numbers))
    opened = CountingConnection.opened
    barrier = threading.Barrier(8)

    def dialogue(number: int) -> tuple[str, str]:
        session = Dialler(app.test_client(), numbers[number], f"at-once-{number}")
        barrier.wait(timeout=10)
        return session.dial(), session.send("1")

    with ThreadPoolExecutor(8) as pool:
        screens = list(pool.map(dialogue, range(8)))
    assert [(dial.split("\n")[1], choose.split("\n")[0]) for dial, choose in screens] == [
        ("1. Changer de profil", "CON Choisissez votre nouveau profil:"),
        ("1. Change profile", "CON Choose your new profile:"),
    ] * 4
    assert CountingConnection.opened - opened <= 8
    # Then one hop at a time again: the connections opened are enough.
    opened = CountingConnection.opened
    assert play_to_tigre(app.test_client()).startswith(TIGRE_DONE)
    assert CountingConnection.opened == opened


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_uses_connections_of_its_own(app):
    """A server that forks its workers after the app is made: parent and child each dial at
    the same time, each reading only its own replies (John's in English, Alice's in French)."""
    client = app.test_client()
    play_to_tigre(client, BRUNO, "before-fork")  # the parent's connection is in use
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its endings through the pipe, then leave at once
        status = 1
        try:
            os.close(reader)
            screens = [Dialler(client, JOHN, f"child-{n}").dial() for n in range(200)]
            os.write(writer, str(sum(s.startswith(ENGLISH) for s in screens)).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(writer)
    screens = [Dialler(client, ALICE, f"parent-{n}").dial() for n in range(200)]
    with os.fdopen(reader) as pipe:
        child_good = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert child_good == "200"
    assert sum(s.startswith(FRENCH) for s in screens) == 200


def test_a_command_refused_mid_read_leaves_no_reply_for_the_next_hop(app):
    """A session key holding the wrong type (a hash): its hop's first read command is
    refused, the polite END follows, and the next hop on the same connection reads its own
    replies, not the ones left after the refusal."""
    store = app.extensions["ussd"].store
    store.redis.hset(store.keys.session(ALICE, "africastalking", "wrong-type"), "x", "1")
    broken = Dialler(app.test_client(), ALICE, "wrong-type")
    assert broken.dial() == ("END Service momentanément indisponible. Merci de réessayer dans "
                             "quelques minutes.")
    assert Dialler(app.test_client(), JOHN).dial().startswith(ENGLISH)
    assert play_to_tigre(app.test_client()).startswith(TIGRE_DONE)


@pytest.mark.parametrize("commands", [
    (("GET", "ussd:{+2250700000001}:session:0123"),),
    (("MGET", "a", "a:closed"), ("HMGET", "s", "p", "l", "c:2026-10", "m:2026-11")),
    (("EVALSHA", "f" * 40, 1, "k", "", '{"s":"Succès","v":{"left":2}}', 180),),
    (("SET", "k", "é" * 5000, "EX", 180), ("GET", "")),  # past redis-py's 6000-byte cutoff
])
def test_a_hops_commands_go_out_as_redis_py_packs_them(commands):
    """The store packs a hop's commands itself, with hiredis: the very bytes redis-py sends."""
    from ussd.store.client import _hiredis_pack

    connection = redis.Redis(decode_responses=True).connection_pool.make_connection()
    assert b"".join(_hiredis_pack(commands)) == b"".join(connection.pack_commands(commands))


def test_a_write_without_an_answer_is_unknown_and_one_never_sent_is_not(own_redis_server,
                                                                        key_prefix):
    """A hung server took the command (the kernel did) and answers nothing: the write's
    outcome is unknown, a read's is just a time-out; a closed port took nothing: a plain
    connection error for both. Then closing the store closes every connection it holds."""
    from ussd.errors import OutcomeUnknownError
    from ussd.store import Store

    client = connect(Settings(redis_url=own_redis_server.url, redis_timeout=0.3))
    store = Store(client, prefix=key_prefix)
    commands = store._commands  # the object under test (Store builds it)
    assert commands.write(("SET", f"{key_prefix}:x", "1")) == ["OK"]
    os.kill(own_redis_server.pid, signal.SIGSTOP)
    try:
        with pytest.raises(OutcomeUnknownError):
            commands.write(("SET", f"{key_prefix}:x", "2"))
        with pytest.raises(redis.exceptions.TimeoutError):
            commands.send(("GET", f"{key_prefix}:x"))
    finally:
        os.kill(own_redis_server.pid, signal.SIGCONT)
    assert commands.send(("GET", f"{key_prefix}:x")) == ["2"]  # it was applied, in the end
    held = list(commands.held.idle)
    assert held and all(connection.is_connected for connection in held)
    store.close()
    assert not any(connection.is_connected for connection in held)

    closed = Store(connect(Settings(redis_url="redis://127.0.0.1:1/0", redis_timeout=0.3)))
    for call in (closed._commands.write, closed._commands.send):
        with pytest.raises(redis.exceptions.ConnectionError):
            call(("SET", f"{key_prefix}:x", "3"))
    closed.close()
