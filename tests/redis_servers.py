"""Throw-away Redis servers and clusters on loopback, for test fixtures.

``RedisServer`` runs ``redis-server`` as a child in its own temp dir on a free 127.0.0.1 port;
``RedisCluster`` forms three of them into a 3-master cluster.  Teardown: ``cleanup()``/``stop()``,
the context managers, or, as a last resort, an ``atexit`` hook.  Readiness is probed with a tiny
raw-socket RESP client, so waiting never depends on redis-py's retry/back-off behaviour.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HOST = "127.0.0.1"
_LIVE: set = set()  # every server/cluster not yet cleaned up, for the atexit safety net


class RedisServerError(RuntimeError):
    """A throw-away Redis server or cluster failed to start or form in time."""


class _Reply(Exception):
    """An error reply (``-ERR ...``/``-LOADING ...``) from the server."""


def _command(port: int, *args: str, timeout: float = 0.5):
    """Send one command to 127.0.0.1:port and return its decoded reply."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(payload.encode())
        with sock.makefile("rb") as f:
            line = f.readline().decode().rstrip("\r\n")
            if not line:
                raise ConnectionError("connection closed without a reply")
            kind, rest = line[0], line[1:]
            if kind == "-":
                raise _Reply(rest)
            if kind == "$":  # bulk string: INFO, CLUSTER INFO
                return None if rest == "-1" else f.read(int(rest) + 2)[:-2].decode()
            return int(rest) if kind == ":" else rest


def _info(text: str) -> dict[str, str]:
    """Parse INFO / CLUSTER INFO output into a dict of its ``key:value`` lines."""
    return dict(ln.split(":", 1) for ln in text.splitlines()
                if ":" in ln and not ln.startswith("#"))


def _free_ports(n: int) -> list[int]:
    """Ask the kernel for ``n`` distinct unused loopback ports (they may be taken again later:
    callers retry)."""
    with contextlib.ExitStack() as stack:  # all bound at once, so the ports differ
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]


def shared_redis_url(db: int) -> str | None:
    """Return the machine's Redis at 127.0.0.1:6379 as a URL for ``db`` if it answers PING in ~0.5
    s, else None."""
    try:
        return f"redis://{HOST}:6379/{db}" if _command(6379, "PING") == "PONG" else None
    except (OSError, _Reply, ValueError):
        return None


class RedisServer:
    """One ``redis-server`` child process on a free loopback port, in a private temp directory."""

    def __init__(self, config: dict[str, str] | None = None, *, timeout: float = 10.0):
        """``config`` maps redis.conf directives to values (``""`` means an empty argument, as in
        ``save ""``)."""
        self.config = dict(config or {})
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix="redis-test-")
        self.log_path = os.path.join(self.dir, "server.log")
        self.port = self.bus_port = None  # bus_port is used only with cluster-enabled yes
        self.proc: subprocess.Popen | None = None
        _LIVE.add(self)

    @property
    def url(self) -> str:
        """The ``redis://127.0.0.1:PORT/0`` URL of this server."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The pid of the running server process, or None when it is not running."""
        return self.proc.pid if self.proc else None

    def start(self) -> RedisServer:
        """Start on fresh free ports, retrying on port collisions, and wait until it is ready."""
        return self._launch(keep_port=False)

    def restart(self) -> RedisServer:
        """Stop if still running, then start again on the same port and dir so AOF/RDB data is
        reloaded."""
        if self.proc:
            self.stop()
        return self._launch(keep_port=self.port is not None)

    def kill(self) -> None:
        """SIGKILL the server (a crash: no AOF rewrite, no final fsync) and reap it."""
        self._terminate(signal.SIGKILL)

    def stop(self) -> None:
        """Shut down gracefully with SIGTERM (Redis flushes AOF/saves RDB), escalating to SIGKILL if
        it hangs."""
        self._terminate(signal.SIGTERM)

    def cleanup(self) -> None:
        """Stop the server and delete its temp directory; safe to call more than once."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        _LIVE.discard(self)

    def __enter__(self) -> RedisServer:
        return self.start() if not self.proc else self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the server's log, for error messages."""
        if not os.path.exists(self.log_path):
            return "<no log>"
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def _terminate(self, sig: int) -> None:
        """Send ``sig`` and wait for the process to die, so no zombie or orphan survives."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return  # never started, or already dead and reaped by poll()
        proc.send_signal(sig)
        try:
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=self.timeout)

    def _write_config(self) -> str:
        """Write redis.conf: our defaults, then the caller's options, then settings the helper must
        own."""
        # No background RDB forks unless a test asks for them.
        defaults = {"save": "", "appendonly": "no"}
        owned = {"port": str(self.port), "bind": HOST, "dir": self.dir, "daemonize": "no",
                 "logfile": ""}
        if self.config.get("cluster-enabled") == "yes":
            defaults["cluster-config-file"] = os.path.join(self.dir, "nodes.conf")
            # Explicit bus port: the default port+10000 can overflow 65535 for ephemeral ports.
            owned["cluster-port"] = str(self.bus_port)
        merged = {**defaults, **self.config, **owned}
        path = os.path.join(self.dir, "redis.conf")
        with open(path, "w") as f:
            f.writelines(f"{k} {v if v != '' else chr(34) * 2}\n" for k, v in merged.items())
        return path

    def _launch(self, keep_port: bool) -> RedisServer:
        """Spawn redis-server until it is ready; on a bind collision pick new ports (or, on restart,
        retry the same)."""
        deadline = time.monotonic() + self.timeout
        while True:
            if not keep_port:
                self.port, self.bus_port = _free_ports(2)
            conf = self._write_config()
            log_start = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
            with open(self.log_path, "ab") as log:  # the child keeps its own copy of the fd
                self.proc = subprocess.Popen(["redis-server", conf], stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT)
            if self._wait_ready(deadline):
                return self
            with open(self.log_path, errors="replace") as f:
                f.seek(log_start)
                collided = "Address already in use" in f.read()
            code = self.proc.poll()
            self.kill()
            if not collided or time.monotonic() >= deadline:
                why = (f"exited with code {code}" if code is not None
                       else f"not ready within {self.timeout}s")
                raise RedisServerError(f"redis-server on {HOST}:{self.port} {why} "
                                       f"(dir {self.dir}); "
                                       f"log tail:\n{self.log_tail()}")
            time.sleep(0.05)

    def _wait_ready(self, deadline: float) -> bool:
        """True once OUR process answers PING and INFO says loading:0; False if it exits or time
        runs out."""
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if _command(self.port, "PING") == "PONG":
                    info = _info(_command(self.port, "INFO"))
                    # process_id guards against talking to some other server that grabbed the port.
                    if info.get("process_id") == str(self.proc.pid) and info.get("loading") == "0":
                        return True
            except (OSError, _Reply, ValueError):
                pass  # not listening yet, or -LOADING while replaying the AOF
            time.sleep(0.02)
        return False


class RedisCluster:
    """A 3-master, no-replica Redis Cluster of throw-away ``RedisServer`` nodes on loopback."""

    def __init__(self, config: dict[str, str] | None = None, *, masters: int = 3,
                 timeout: float = 20.0):
        """``config`` adds redis.conf directives to every node (cluster settings are filled in
        here)."""
        node_conf = {"cluster-enabled": "yes", "cluster-node-timeout": "1000", **(config or {})}
        self.nodes = [RedisServer(node_conf, timeout=timeout) for _ in range(masters)]
        self.timeout = timeout
        _LIVE.add(self)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:P1/0``, as accepted by ``redis.RedisCluster.from_url``."""
        return self.nodes[0].url

    @property
    def startup_nodes(self) -> list:
        """``redis.cluster.ClusterNode`` objects for every node, for
        ``RedisCluster(startup_nodes=...)``."""
        from redis.cluster import (
            ClusterNode,  # imported lazily: the rest of the module needs only the stdlib
        )
        return [ClusterNode(HOST, n.port) for n in self.nodes]

    @property
    def pids(self) -> list[int | None]:
        """The pids of the node processes (None for a node that is not running)."""
        return [n.pid for n in self.nodes]

    def start(self) -> RedisCluster:
        """Start the nodes, assign all slots with ``redis-cli --cluster create``, and wait for
        cluster_state:ok."""
        try:
            for node in self.nodes:
                node.start()
            addrs = [f"{HOST}:{n.port}" for n in self.nodes]
            res = subprocess.run(["redis-cli", "--cluster", "create", *addrs,
                                  "--cluster-replicas", "0",
                                  "--cluster-yes"], stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, timeout=self.timeout)
            if res.returncode != 0:
                raise RedisServerError(
                    f"redis-cli --cluster create failed:\n{res.stdout}{res.stderr}")
            self._wait_converged(time.monotonic() + self.timeout)
        except BaseException:
            self.stop()  # never leave half a cluster running
            raise
        return self

    def _wait_converged(self, deadline: float) -> None:
        """Wait until every node reports state ok, all 16384 slots assigned and all peers known."""
        want = {"cluster_state": "ok", "cluster_slots_assigned": "16384",
                "cluster_known_nodes": str(len(self.nodes))}
        while True:
            try:
                infos = [_info(_command(n.port, "CLUSTER", "INFO")) for n in self.nodes]
            except (OSError, _Reply, ValueError) as e:
                infos = [{"error": repr(e)}]
            if all(all(i.get(k) == v for k, v in want.items()) for i in infos):
                return
            if time.monotonic() >= deadline:
                raise RedisServerError(f"cluster did not converge within {self.timeout}s: {infos}\n"
                                       f"first node log tail:\n{self.nodes[0].log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node and delete their temp directories; safe to call more than once."""
        for node in self.nodes:
            node.cleanup()
        _LIVE.discard(self)

    cleanup = stop  # same teardown vocabulary as RedisServer

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@atexit.register
def _cleanup_all() -> None:
    """Safety net: kill whatever a test forgot to stop, so no redis-server outlives the test run."""
    for obj in list(_LIVE):
        obj.cleanup()
