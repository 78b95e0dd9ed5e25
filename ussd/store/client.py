"""The Redis client: how it is built, how its failures read, and the hop's one-round-trip path.

:func:`connect` builds the client for the settings (a server, a cluster, or the embedded
fakeredis); ``with store_errors:`` turns what it raises into the service's errors;
:class:`Commands` sends a hop's commands together, on one Redis server through
:class:`HeldConnections` rather than redis-py's pool (the speed work, with its measured reason),
and tells a write that got no answer (its outcome unknown) from one that was never sent.
"""

from __future__ import annotations

import os
import re
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

from ..errors import ConfigError, OutcomeUnknownError, StoreError, StoreUnavailableError
from ..settings import Settings
from .sentinel import is_sentinel_url, sentinel_client

# A dead Redis refuses connections at once, a hung one answers nothing: either way a hop must
# end in about one timeout. redis-py's default for a client built from its arguments is up to
# 10 retries with back-off (seconds per hop), so: one immediate retry of a broken connection
# (a pooled socket that a restarted Redis closed), and no retry of a timeout. A hop's write
# that went out is not retried by Commands.write: it says its outcome is unknown, and
# ussd/settle.py sends it again (every write is conditional: scripts.SAVE_SCRIPT,
# scripts.MIGRATE_SCRIPT, so even a write sent again cannot apply twice).
RETRY = Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


def connect(settings: Settings) -> Any:
    """A Redis client for ``settings``: the URL's server, cluster (``?cluster=true``) or
    Sentinel-watched master (``redis+sentinel://``, see ``sentinel.py``), else the embedded
    store; ConfigError for a URL redis-py cannot use."""
    if not settings.redis_url:
        if settings.redis_min_replicas:
            raise ConfigError("USSD_REDIS_MIN_REPLICAS needs a Redis (REDIS_URL): the embedded "
                              "store has no replica")
        import fakeredis  # the embedded store: a real Redis API in this process, Lua included

        return fakeredis.FakeRedis(decode_responses=True)
    options = {
        "decode_responses": True,
        "socket_timeout": settings.redis_timeout,
        "socket_connect_timeout": settings.redis_timeout,
        "retry": RETRY,
    }
    if is_sentinel_url(settings.redis_url):
        return sentinel_client(settings.redis_url, options)
    url, cluster = _cluster_flag(settings.redis_url)
    if cluster and settings.redis_min_replicas:
        raise ConfigError("USSD_REDIS_MIN_REPLICAS needs one Redis or a Sentinel deployment: "
                          "on a cluster, WAIT would have to reach each master of a hop's slot")
    try:
        if cluster:
            return redis.RedisCluster.from_url(url, **options)
        return redis.Redis.from_url(url, health_check_interval=30, **options)
    except (ValueError, redis.exceptions.RedisError) as error:
        raise ConfigError(f"cannot use REDIS_URL {redacted(settings.redis_url)!r}: "
                          f"{error}") from None


def redacted(url: str) -> str:
    """``url`` with its passwords (in the user part, ``sentinel_password=`` in the query)
    replaced by ``***``, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, _ = rest.partition("/")[0].rpartition("@")
    if sep and at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{rest[len(userinfo) + 1:]}"
    return re.sub(r"(password=)[^&]*", r"\1***", f"{scheme}{sep}{rest}")


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

    def close(self) -> None:
        """Close the held connections (the client's own are the client's to close)."""
        if self.held is not None:
            self.held.close()

    def send(self, *commands: tuple) -> list:
        """The replies to ``commands`` (each a tuple: name, then arguments), in order.

        Every reply is read, even after an error reply, so that none is left for the next hop
        to read as its own; the first error reply is then raised (redis-py's exceptions).
        """
        return self._exchange(commands, False)

    def write(self, *commands: tuple) -> list:
        """:meth:`send` for commands that change data: when they went out and no answer came
        back (a time-out, a connection lost after sending), OutcomeUnknownError, since Redis
        may have applied them, or may yet. A failure before they went out stays redis-py's
        (nothing was applied: Redis runs no half-received command)."""
        return self._exchange(commands, True)

    def _exchange(self, commands: tuple[tuple, ...], writing: bool) -> list:
        connections = self.held
        if connections is None:
            try:
                if len(commands) == 1:
                    return [self.client.execute_command(*commands[0])]
                pipe = self.client.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                return pipe.execute()
            except _NO_ANSWER as error:
                # The client's own path does not say whether the commands went out: a write
                # may have been applied.
                if writing:
                    raise OutcomeUnknownError(f"no answer from Redis: {error}") from error
                raise
        connection = connections.take()
        packed = (_hiredis_pack(commands) if pack_command is not None
                  else connection.pack_commands(commands))

        def call():
            if not connection.is_connected:
                # Its own connect, not the one send_packed_command falls back on: a Sentinel-
                # managed connection asks the sentinels where the master is only there.
                connection.connect()
            connection.send_packed_command(packed)
            replies, error = [], None
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except redis.exceptions.ResponseError as refused:
                    error = error or refused
                except _NO_ANSWER as lost:
                    if not writing:
                        raise  # a read: retried once when the connection broke, as redis-py
                    # A write that went out: not retried here, where sending it again would
                    # hide from the caller that it was sent twice (ussd/settle.py sends it
                    # again, and knows it did).
                    connection.disconnect()
                    raise OutcomeUnknownError(f"no answer from Redis: {lost}") from lost
            if error is not None:
                raise error
            return replies

        try:
            return connection.retry.call_with_retry(call, lambda _error: connection.disconnect())
        except redis.exceptions.ResponseError:
            raise  # every reply was read: the connection is in step for the next hop
        except BaseException:
            # Closed, so that no answer left unread is read by the next hop as its own (a
            # Sentinel-managed connection does not close itself on a time-out).
            connection.disconnect()
            raise
        finally:
            connections.put_back(connection)


# What a command that may have gone out can end with, instead of an answer.
_NO_ANSWER = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


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

    def close(self) -> None:
        """Close the connections not in use now."""
        idle, self.idle = self.idle, []
        for connection in idle:
            connection.disconnect()


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
