"""The Redis client: how it is built, how its failures read, and the hop's one-round-trip path.

:func:`connect` builds the client for the settings (a server, a cluster, or the embedded
fakeredis); ``with store_errors:`` turns what it raises into the service's errors;
:class:`Commands` sends a hop's commands together, on one Redis server through
:class:`HeldConnections` rather than redis-py's pool (the speed work, with its measured reason).
"""

from __future__ import annotations

import os
import weakref
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

try:  # redis-py's own parser and packer when installed (the "redis[hiredis]" dependency)
    from hiredis import pack_command
except ImportError:  # pragma: no cover - redis-py packs in Python instead
    pack_command = None

from ..errors import ConfigError, StoreError, StoreUnavailableError
from ..settings import Settings

# A dead Redis refuses connections at once, a hung one answers nothing: either way a hop must
# end in about one timeout. redis-py's default for a client built from its arguments is up to
# 10 retries with back-off (seconds per hop), so: one immediate retry of a broken connection
# (a pooled socket that a restarted Redis closed), and no retry of a timeout. Every write
# is conditional (scripts.SAVE_SCRIPT, scripts.MIGRATE_SCRIPT), so even a retried write cannot
# apply twice.
RETRY = Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


def connect(settings: Settings) -> Any:
    """A Redis client for ``settings``: the URL's server or cluster (``?cluster=true``), else
    the embedded store; ConfigError for a URL redis-py cannot use."""
    if not settings.redis_url:
        import fakeredis  # the embedded store: a real Redis API in this process, Lua included

        return fakeredis.FakeRedis(decode_responses=True)
    url, cluster = _cluster_flag(settings.redis_url)
    options = {
        "decode_responses": True,
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "retry": RETRY,
    }
    try:
        if cluster:
            return redis.RedisCluster.from_url(url, **options)
        return redis.Redis.from_url(url, health_check_interval=30, **options)
    except (ValueError, redis.exceptions.RedisError) as error:
        raise ConfigError(f"cannot use REDIS_URL {settings.redis_url!r}: {error}") from None


def _cluster_flag(url: str) -> tuple[str, bool]:
    """Strip our ``cluster=true`` query parameter, saying whether it was there."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query)
    cluster = any(k == "cluster" and v.lower() in ("1", "true", "yes") for k, v in pairs)
    query = urlencode([(k, v) for k, v in pairs if k != "cluster"])
    return urlunsplit(parts._replace(query=query)), cluster


_UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    # Not a RedisError: "Redis Cluster cannot be connected", or a slot no node serves.
    redis.exceptions.RedisClusterException,
    OSError,
)


class _StoreErrors:
    """``with store_errors:`` around every Redis call turns the client's connection failures
    into StoreUnavailableError, and any other Redis error into StoreError. A plain context
    manager: a hop enters it twice, and ``contextlib``'s generator-based one cost about 1 us
    each time."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None:
            return False
        if isinstance(error, _UNREACHABLE):
            raise StoreUnavailableError(f"Redis unreachable: {error}") from error
        if isinstance(error, redis.exceptions.RedisError):
            raise StoreError(f"Redis error: {error}") from error
        return False


store_errors = _StoreErrors()


class Commands:
    """A hop's commands sent together, in one round trip: ``send(*commands) -> replies``.

    redis-py's ``execute_command`` takes a connection from the pool under a lock, polls its
    socket, gives it back, and runs retry and telemetry hooks around it, on every command:
    about 25 us of CPU, as much again as the round trip itself (bench/README.md). On one Redis
    server the hop's commands skip that, on a connection of :class:`HeldConnections`: redis-py's
    own, with the client's settings (its timeouts, its health check, its handling of a broken
    socket, closed then reopened on the next command) and the client's retry policy
    (``RETRY``). A cluster or the embedded store gets them through its client, as one pipeline.
    """

    def __init__(self, client: Any):
        self.client = client
        self.held = (HeldConnections(client.connection_pool)
                     if type(client) is redis.Redis else None)

    def open_one(self) -> None:
        """Open the first held connection now (start-up), so that no hop pays its handshake;
        redis-py's errors if Redis cannot be reached."""
        if self.held is not None:
            self.held.open_one()

    def send(self, *commands: tuple) -> list:
        """The replies to ``commands`` (each a tuple: name, then arguments), in order.

        Every reply is read, even after an error reply, so that none is left for the next hop
        to read as its own; the first error reply is then raised (redis-py's exceptions).
        """
        connections = self.held
        if connections is None:
            if len(commands) == 1:
                return [self.client.execute_command(*commands[0])]
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute()
        connection = connections.take()
        packed = (_hiredis_pack(commands) if pack_command is not None
                  else connection.pack_commands(commands))

        def call():
            connection.send_packed_command(packed)
            replies, error = [], None
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.exceptions.ResponseError as refused:
                    error = error or refused
            if error is not None:
                raise error
            return replies

        try:
            return connection.retry.call_with_retry(call, lambda _error: connection.disconnect())
        finally:
            connections.put_back(connection)


class HeldConnections:
    """Connections of a client's settings, handed from hop to hop without its pool.

    A hop takes the last one put back (a list's ``pop`` and ``append`` need no lock), or
    opens one more when every one is in use: there are as many as hops have ever run at once
    in this process. They are made as the pool makes its own (its connection class and
    settings) but are not the pool's, so they take none of its places; each is closed when
    its holder is dropped. A connection whose command failed was closed by redis-py itself,
    so none goes back with a reply left unread. After a fork the child starts a list of its
    own: the parent's sockets are not its to use (``os.register_at_fork``, rather than
    comparing ``os.getpid()`` on every take: a system call, twice a hop).
    """

    def __init__(self, pool: redis.ConnectionPool):
        self.pool = pool
        self.idle: list = []
        _HELD.add(self)

    def open_one(self) -> None:
        """Connect one more connection now (start-up), ready for the first hop."""
        connection = self.take()
        try:
            connection.connect()
        finally:
            self.put_back(connection)

    def take(self):
        """A connection no one else is using."""
        try:
            return self.idle.pop()
        except IndexError:
            return self.pool.connection_class(**self.pool.connection_kwargs)

    def put_back(self, connection) -> None:
        """Give back a connection taken, for the next hop."""
        self.idle.append(connection)


# Every HeldConnections of this process, for the child of a fork to forget their sockets.
_HELD: weakref.WeakSet[HeldConnections] = weakref.WeakSet()


def _forget_the_parents_connections() -> None:
    for held in _HELD:
        held.idle = []


os.register_at_fork(after_in_child=_forget_the_parents_connections)


def _hiredis_pack(commands: tuple[tuple, ...]) -> list[bytes]:
    """A hop's commands in the Redis protocol, as redis-py's hiredis packer writes them.

    ``Connection.pack_commands`` checks every argument's type and splits the command's name
    on spaces before calling the same ``hiredis.pack_command``: a tenth of what a hop's
    commands cost in Python. A hop's names are single words and its arguments text or
    numbers, so nothing of that is needed here.
    """
    return [b"".join([pack_command(command) for command in commands])]
