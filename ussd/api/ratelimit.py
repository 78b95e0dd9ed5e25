"""Each API client's rate limit, held across every worker and machine: the ``limits`` library.

A client's ``rate_limit`` (``"20/second"``, or several separated by ``;``) is counted in a
moving window (``limits``' MovingWindowRateLimiter: exact, a "20/second" never lets 21 requests
through in any second, where a fixed window lets twice as many straddle its edge), in the
deployment's Redis under its key prefix (``KeySpace.rate_limits``): one more round trip per
request of a limited client, one ``EVALSHA``, on the client's own keys. The storage follows the
store's client: the same connection pool on a Redis server, a cluster client on a cluster, and
memory on the embedded store (one process, so that is every worker).

Why ``limits`` itself and not Flask-Limiter around it: the client is known only once its token
is checked, and the ``429`` is a problem document like every other refusal; Flask-Limiter's
hooks and limit resolution cost about 100 us a request more (bench/api_libraries.py).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis
from limits import RateLimitItem, parse_many
from limits.errors import StorageError as LimitsStorageError
from limits.storage import MemoryStorage, RedisClusterStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from ..errors import ConfigError, StoreUnavailableError
from ..store.keys import KeySpace


def parse_rate_limit(text: str) -> tuple[RateLimitItem, ...]:
    """The limits of a ``rate_limit`` setting (``"20/second"``, ``"20/second; 600/minute"``);
    ConfigError when it is not one."""
    try:
        items = tuple(parse_many(text))
    except ValueError:
        items = ()
    if not items or any(item.amount < 1 for item in items):
        raise ConfigError(f"not a rate limit: {text!r} (for example \"20/second\" or "
                          f"\"20/second; 600/minute\")")
    return items


def storage_for(client: Any, keys: KeySpace) -> Any:
    """The ``limits`` storage beside the store's Redis ``client`` (see the module's docstring);
    it connects on its first use, not here."""
    prefix = keys.rate_limits()
    if type(client) is redis.Redis:
        return RedisStorage("redis://", connection_pool=client.connection_pool,
                            key_prefix=prefix, wrap_exceptions=True)
    if isinstance(client, redis.RedisCluster):
        nodes = ",".join(f"{node.host}:{node.port}" for node in client.get_nodes())
        return RedisClusterStorage(f"redis+cluster://{nodes}", key_prefix=prefix,
                                   wrap_exceptions=True,
                                   **cluster_options(client.get_connection_kwargs()))
    return MemoryStorage()  # the embedded store: this process is the only one


def cluster_options(connection: dict) -> dict:
    """What a cluster client's own needs of the store's cluster client's settings: its
    credentials, timeouts and TLS (``rediss://`` gives redis-py an SSL connection class, which
    a client made from ``redis+cluster://`` knows as ``ssl=True``)."""
    kept = {name: value for name, value in connection.items()
            if value is not None and (name in ("username", "password", "socket_timeout",
                                               "socket_connect_timeout", "ssl")
                                      or name.startswith("ssl_"))}
    connection_class = connection.get("connection_class")
    if isinstance(connection_class, type) and issubclass(connection_class, redis.SSLConnection):
        kept["ssl"] = True
    return kept


class RateLimiter:
    """The rate limits of the API clients, on the storage ``make_storage()`` makes when a
    limited client first calls (a cluster's client connects as it is made: not at start-up,
    nor at all on a server whose clients have no limit)."""

    def __init__(self, make_storage: Callable[[], Any]):
        self._make_storage = make_storage
        self._limiter: MovingWindowRateLimiter | None = None
        self._lock = threading.Lock()

    @property
    def limiter(self) -> MovingWindowRateLimiter:
        """The library's limiter, on its storage (made on first use)."""
        if self._limiter is None:
            with self._lock:
                if self._limiter is None:
                    storage = self._make_storage()
                    if isinstance(storage, RedisClusterStorage):  # a client of its own
                        weakref.finalize(self, _close_cluster_client, storage.storage)
                    self._limiter = MovingWindowRateLimiter(storage)
        return self._limiter

    def wait(self, client: str, limits: tuple[RateLimitItem, ...]) -> int | None:
        """Count a request of ``client`` against its ``limits``: None when it may go on, else
        the seconds it should wait (for ``Retry-After``, at least 1).

        StoreUnavailableError when the limits' Redis cannot be reached: a request that cannot
        be counted is not served, as one that cannot be read.
        """
        try:
            limiter = self.limiter
            for item in limits:
                if not limiter.hit(item, client):
                    reset, _ = limiter.get_window_stats(item, client)
                    return max(1, math.ceil(reset - time.time()))
        except (LimitsStorageError, redis.exceptions.RedisError,
                redis.exceptions.RedisClusterException, OSError) as error:
            cause = getattr(error, "storage_error", error)
            raise StoreUnavailableError(f"rate limits unreachable: {type(cause).__name__}"
                                        ) from None
        return None


def _close_cluster_client(client: redis.RedisCluster) -> None:
    """Close every connection of a cluster client (``close()`` leaves the nodes' pools open)."""
    for node in client.get_nodes():
        if node.redis_connection is not None:
            node.redis_connection.connection_pool.disconnect()
    client.close()
