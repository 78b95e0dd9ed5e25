"""The dialogues, the store and the migration race again, on a real 3-master Redis Cluster.

The tests of ``test_service.py``, ``test_store_hops.py``, ``test_store_admin.py``,
``test_race.py``, ``test_relay.py`` (the outbox: events and receipts in the subscriber's slot,
relays polling every master) and ``test_api_consumption.py``, and of the HTTP API's
``test_store_accounts.py``, ``test_accounts.py``, ``test_api_views.py``,
``test_api_ratelimit.py`` (its rate limits kept in the cluster) and ``test_api_race.py``
are collected here a second time (as ``test_<module>__<name>``) with
``redis_client`` and ``real_redis`` overridden: both are the client the service builds for
``REDIS_URL=redis://127.0.0.1:<port>/0?cluster=true`` (``redis.RedisCluster``), on a cluster
of three ``redis-server`` masters started on loopback ports once for this module
(``tests/redis_servers.py``). Every key of a subscriber shares its bucket's ``{<bb>}`` hash tag, so
each hop's script runs on one master; the keys of different subscribers, and so of one test,
spread over all three. Then: round trips per hop on the cluster, counted as the benchmark
counts them.
"""

from __future__ import annotations

import pytest
import redis
import test_accounts
import test_api_consumption
import test_api_race
import test_api_ratelimit
import test_api_views
import test_race
import test_relay
import test_service
import test_store_accounts
import test_store_admin
import test_store_hops
from conftest import ALICE, LAST_MONTH, SUBSCRIBERS, Dialler
from redis_servers import RedisCluster

from ussd.consumption import Increment
from ussd.settings import Settings
from ussd.store import connect
from ussd.store.keys import consumption_field

pytestmark = pytest.mark.cluster
REUSED = (test_service, test_store_hops, test_store_admin, test_race, test_relay,
          test_api_consumption, test_store_accounts, test_accounts, test_api_views,
          test_api_ratelimit, test_api_race)


@pytest.fixture(scope="module")
def redis_cluster():
    """Three masters, all 16384 slots assigned, for this module's tests (stopped after them,
    so that tests/test_redis_servers.py finds no server of ours still running)."""
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture
def cluster_client(redis_cluster, key_prefix):
    """The service's own client for the cluster; this test's keys are deleted afterwards."""
    client = connect(Settings(redis_url=f"{redis_cluster.url}?cluster=true"))
    assert isinstance(client, redis.RedisCluster)
    yield client
    # scan_iter runs SCAN on every master; keys are deleted one by one, since the keys of
    # different subscribers live in different slots (a multi-key DEL would be CROSSSLOT).
    for key in list(client.scan_iter(match=f"{key_prefix}:*", count=1000)):
        client.delete(key)
    close_cluster_client(client)


def close_cluster_client(client: redis.RedisCluster) -> None:
    """Close every connection of a cluster client: ``close()`` alone leaves each node's pool
    open (the node's client does not own it), sockets for the collector to warn about."""
    for node in client.get_nodes():
        if node.redis_connection is not None:
            node.redis_connection.connection_pool.disconnect()
    client.close()


@pytest.fixture
def redis_client(cluster_client):
    return cluster_client


@pytest.fixture
def real_redis(cluster_client):
    return cluster_client


def _reuse(modules) -> dict:
    """The tests of ``modules`` under new names, and the fixtures they define, to collect here."""
    found: dict = {}
    for module in modules:
        short = module.__name__.removeprefix("test_")
        for name, value in vars(module).items():
            if name.startswith("test_") and callable(value):
                found[f"test_{short}__{name.removeprefix('test_')}"] = value
            elif _is_fixture(value) and name not in ("redis_client", "real_redis"):
                assert name not in found, f"fixture {name} defined twice in {modules}"
                found[name] = value
    return found


def _is_fixture(value) -> bool:
    # pytest >= 8.4 wraps a fixture in FixtureFunctionDefinition; older ones mark the function.
    return (type(value).__name__ == "FixtureFunctionDefinition"
            or hasattr(value, "_pytestfixturefunction"))


globals().update(_reuse(REUSED))


def test_the_keys_of_the_tests_spread_over_every_master(cluster_client, store):
    """Not a vacuous cluster: the test subscribers' keys sit on more than one master."""
    masters = {cluster_client.get_node_from_key(store.keys.subscriber(msisdn)).name
               for msisdn, *_ in SUBSCRIBERS}
    assert len(masters) > 1


def test_a_feed_after_one_master_lost_its_scripts_counts_each_increment_once(cluster_client,
                                                                           store):
    """One master restarted (its scripts gone), the others not: the calls that master refused
    are sent again once the scripts are loaded, and only they. Every increment is counted
    once, and the feed says how many (sending them all again counted the others' as seen)."""
    assert store.load_scripts()
    lost = cluster_client.get_node_from_key(store.keys.subscriber(ALICE))
    redis.Redis(host=lost.host, port=lost.port).script_flush()
    increments = [Increment(f"r-{n}", msisdn, 100, LAST_MONTH)
                  for n, (msisdn, *_) in enumerate(SUBSCRIBERS)]
    masters = {cluster_client.get_node_from_key(store.keys.subscriber(each.msisdn)).name
               for each in increments}
    assert masters - {lost.name}  # calls on masters that kept their scripts too
    assert store.consumption.feed([], increments, ids_ttl=60) == len(SUBSCRIBERS)
    field = consumption_field(LAST_MONTH)
    assert {msisdn: cluster_client.hget(store.keys.subscriber(msisdn), field)
            for msisdn, *_ in SUBSCRIBERS} == {
        msisdn: str(consumed + 100) for msisdn, _, _, consumed in SUBSCRIBERS}


class CountingConnection(redis.Connection):
    """Counts what it sends: one call per request written, a command or a whole pipeline."""

    sent = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sent += 1
        return super().send_packed_command(command, check_health)


def test_a_dialogue_costs_at_most_two_round_trips_per_hop(cluster_client, key_prefix, store,
                                                          clock):
    """Dial, change profile, choose, confirm (the migration): two round trips each, on the
    cluster too, the scripts having been loaded on every master when the app was made."""
    from ussd.web import create_app

    for node in cluster_client.get_nodes():  # count from the next connection on
        pool = node.redis_connection.connection_pool
        pool.connection_class = CountingConnection
        pool.reset()
    cluster_client.script_flush()  # what the app does not load at start-up would show
    app = create_app(Settings(key_prefix=key_prefix), redis_client=cluster_client, clock=clock)
    session = Dialler(app.test_client(), ALICE)
    per_hop = []
    for inputs in ((), ("1",), ("2",), ("1",)):
        before = CountingConnection.sent
        reply = session.send(*inputs) if inputs else session.dial()
        per_hop.append(CountingConnection.sent - before)
    assert reply.startswith("END Votre profil est désormais Tigre")
    assert per_hop == [2, 2, 2, 2]


def test_readiness_probes_every_master(redis_cluster, cluster_client, key_prefix):
    """/readyz writes on each of the three masters: one out of memory is enough to be not
    ready (a third of the subscribers could not be served), and ready again by itself."""
    from ussd.web import create_app

    app = create_app(Settings(key_prefix=key_prefix), redis_client=cluster_client)
    assert app.test_client().get("/readyz").get_json() == {"status": "ready"}
    probed = {cluster_client.get_node_from_key(key).port
              for key in cluster_client.scan_iter(match=f"{key_prefix}:probe:*")}
    assert probed == {node.port for node in redis_cluster.nodes}
    full = redis.Redis(port=redis_cluster.nodes[1].port)
    used = full.info("memory")["used_memory"]
    full.config_set("maxmemory-policy", "noeviction")
    full.config_set("maxmemory", used - 100_000)
    try:
        answer = app.test_client().get("/readyz")
        assert (answer.status_code, answer.get_json()) == (
            503, {"status": "not ready", "reason": "out of memory"})
    finally:
        full.config_set("maxmemory", 0)
    assert app.test_client().get("/readyz").status_code == 200
    full.close()
