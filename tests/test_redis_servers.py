"""Quick checks that the throw-away Redis helpers in redis_servers.py really work."""

import os
import socket

import pytest
import redis
import redis_servers
from redis_servers import RedisCluster, RedisServer, RedisServerError, shared_redis_url


def _alive(pid: int) -> bool:
    """True if ``pid`` is still a redis-server process (a reused pid running something else
    does not count)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"redis-server" in f.read()
    except OSError:
        return False


def test_server_keeps_aof_data_across_sigkill():
    with RedisServer({"appendonly": "yes", "appendfsync": "always"}) as srv:
        port, first_pid, tmp = srv.port, srv.pid, srv.dir
        assert srv.url == f"redis://127.0.0.1:{port}/0"
        with redis.Redis.from_url(srv.url) as r:
            assert r.ping()
            r.set("survivor", "yes")
        srv.kill()
        assert srv.pid is None and not _alive(first_pid)
        srv.restart()
        assert srv.port == port and srv.pid != first_pid  # same port and dir, new process
        with redis.Redis.from_url(srv.url) as r:
            assert r.get("survivor") == b"yes"  # replayed from the fsync'ed AOF
        second_pid = srv.pid
    assert not _alive(second_pid)
    assert not os.path.exists(tmp)


def test_server_retries_when_its_port_is_taken(monkeypatch):
    # Hand start() a port somebody is already listening on: it must notice and move to a fresh one.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        real = redis_servers._free_ports
        picks = iter([[busy, real(1)[0]]])  # first attempt collides, later ones get real free ports
        monkeypatch.setattr(redis_servers, "_free_ports", lambda n: next(picks, None) or real(n))
        with RedisServer() as srv:
            assert srv.port != busy
            with redis.Redis.from_url(srv.url) as r:
                assert r.ping()
            pid = srv.pid
    assert not _alive(pid)


def test_server_that_cannot_start_reports_its_log():
    srv = RedisServer({"no-such-directive": "1"}, timeout=5)
    with pytest.raises(RedisServerError, match="no-such-directive"):
        srv.start()
    assert srv.pid is None
    srv.cleanup()
    assert not os.path.exists(srv.dir)


def test_cluster_serves_all_slots_and_hash_tagged_lua():
    with RedisCluster() as cluster:
        pids = cluster.pids
        assert all(_alive(p) for p in pids) and len(set(pids)) == 3
        rc = redis.RedisCluster.from_url(cluster.url)
        try:
            keys = [f"key:{i}" for i in range(200)]
            slots = {rc.keyslot(k) for k in keys}
            owners = {rc.get_node_from_key(k).port for k in keys}
            # Every master used.
            assert len(slots) > 150 and owners == {n.port for n in cluster.nodes}
            for k in keys:
                rc.set(k, k)
            assert all(rc.get(k) == k.encode() for k in keys)
            # Two keys sharing a {hash tag} live in one slot, so one script may touch both.
            script = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2]);" \
                     "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}"
            assert rc.eval(script, 2, "{sess:42}:a", "{sess:42}:b", "x", "y") == [b"x", b"y"]
        finally:
            rc.close()
        with redis.RedisCluster(startup_nodes=cluster.startup_nodes) as rc2:
            assert rc2.get("{sess:42}:b") == b"y"
        dirs = [n.dir for n in cluster.nodes]
    assert not any(_alive(p) for p in pids)
    assert not any(os.path.exists(d) for d in dirs)
    assert not redis_servers._LIVE  # nothing left for the atexit net either


def test_shared_redis_url_is_either_a_live_url_or_none():
    url = shared_redis_url(15)
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379")
    assert url == "redis://127.0.0.1:6379/15"
    with redis.Redis.from_url(url, socket_timeout=1) as r:
        assert r.ping()  # read-only: never flush or write the shared server
