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
import time
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
        options = client.get_connection_kwargs()
        nodes = ",".join(f"{node.host}:{node.port}" for node in client.get_nodes())
        kept = {name: options[name] for name in ("username", "password", "ssl",
                                                  "socket_timeout", "socket_connect_timeout")
                if options.get(name) is not None}
        return RedisClusterStorage(f"redis+cluster://{nodes}", key_prefix=prefix,
                                   wrap_exceptions=True, **kept)
    return MemoryStorage()  # the embedded store: this process is the only one


class RateLimiter:
    """The rate limits of the API clients, on one storage."""

    def __init__(self, storage: Any):
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    def wait(self, client: str, limits: tuple[RateLimitItem, ...]) -> int | None:
        """Count a request of ``client`` against its ``limits``: None when it may go on, else
        the seconds it should wait (for ``Retry-After``, at least 1).

        StoreUnavailableError when the limits' Redis cannot be reached: a request that cannot
        be counted is not served, as one that cannot be read.
        """
        try:
            for item in limits:
                if not self._limiter.hit(item, client):
                    reset, _ = self._limiter.get_window_stats(item, client)
                    return max(1, math.ceil(reset - time.time()))
        except (LimitsStorageError, redis.exceptions.RedisError, OSError) as error:
            cause = getattr(error, "storage_error", error)
            raise StoreUnavailableError(f"rate limits unreachable: {type(cause).__name__}"
                                        ) from None
        return None
