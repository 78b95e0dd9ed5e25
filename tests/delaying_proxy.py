"""A TCP proxy on loopback in front of a real Redis that holds, loses or cuts what passes: a
write sent and no answer, as a bad day in production makes one.

    with DelayingProxy(server.port) as proxy:
        client = connect(Settings(redis_url=proxy.url))
        proxy.stall_on(b"...", 2.5)   # the first chunk to Redis holding these bytes, and all
                                      # that follows it to Redis on every connection, wait 2.5 s
                                      # (an fsync stall, another client's slow command)
        proxy.cut_reply_on(b"...")    # it reaches Redis, its answer is dropped and the client's
                                      # connection cut: applied, and nobody was told
        proxy.lose_on(b"...")         # it never reaches Redis; the client's connection is cut
        proxy.delay = 0.02            # every chunk to Redis 20 ms late: a slow Redis, or far

Each rule fires once, on the first chunk sent to Redis that holds its bytes (a command's
whole request goes out in one write: the hop's commands are packed together). One thread per
direction of each connection; everything stops with :meth:`close`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass

HOST = "127.0.0.1"


@dataclass
class _Rule:
    pattern: bytes
    kind: str  # "stall", "cut_reply" or "lose"
    seconds: float = 0.0


class DelayingProxy:
    """Listens on a free loopback port and forwards every connection to ``127.0.0.1:port``."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.rules: list[_Rule] = []
        self.fired: list[tuple[str, float]] = []  # (kind, when) of each rule that fired
        self.stall_until = 0.0
        self.delay = 0.0  # seconds every chunk to Redis waits
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the proxy."""
        return f"redis://{HOST}:{self.port}/0"

    def stall_on(self, pattern: bytes, seconds: float) -> None:
        """Hold the chunk holding ``pattern``, and all that goes to Redis after it, ``seconds``."""
        self._add(_Rule(pattern, "stall", seconds))

    def cut_reply_on(self, pattern: bytes) -> None:
        """Let the chunk holding ``pattern`` reach Redis, then drop its answer and cut the
        client's connection."""
        self._add(_Rule(pattern, "cut_reply"))

    def lose_on(self, pattern: bytes) -> None:
        """Never deliver the chunk holding ``pattern``; cut the client's connection."""
        self._add(_Rule(pattern, "lose"))

    def stall_over(self) -> bool:
        """True when no stall is holding anything now."""
        return time.monotonic() >= self.stall_until

    def close(self) -> None:
        """Stop accepting and cut every connection."""
        self.closed = True
        with contextlib.suppress(OSError):
            self.listener.close()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for sock in sockets:
            _close(sock)

    def __enter__(self) -> DelayingProxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _add(self, rule: _Rule) -> None:
        with self.lock:
            self.rules.append(rule)

    def _fire(self, chunk: bytes) -> _Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.pattern in chunk:
                    self.rules.remove(rule)
                    self.fired.append((rule.kind, time.monotonic()))
                    if rule.kind == "stall":
                        self.stall_until = max(self.stall_until,
                                               time.monotonic() + rule.seconds)
                    return rule
        return None

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self.lock:
                self.sockets += [client, upstream]
            cut = threading.Event()  # set: drop the next answer and cut the client
            threading.Thread(target=self._to_redis, args=(client, upstream, cut),
                             daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client, cut),
                             daemon=True).start()

    def _to_redis(self, client: socket.socket, upstream: socket.socket,
                  cut: threading.Event) -> None:
        while True:
            try:
                chunk = client.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            rule = self._fire(chunk)
            if rule is not None and rule.kind == "lose":
                _close(client)
                _close(upstream)
                return
            if rule is not None and rule.kind == "cut_reply":
                cut.set()
            while not self.stall_over():  # held in transit; delivered when the stall ends
                time.sleep(0.005)
            if self.delay:
                time.sleep(self.delay)
            try:
                upstream.sendall(chunk)
            except OSError:
                break
        # The client is gone: what it sent before has been delivered, then the connection
        # to Redis closes, as a client's would.
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _to_client(self, upstream: socket.socket, client: socket.socket,
                   cut: threading.Event) -> None:
        while True:
            try:
                chunk = upstream.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if cut.is_set():  # the answer of the command cut: dropped, the client cut
                break
            try:
                client.sendall(chunk)
            except OSError:
                break
        _close(client)
        _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
