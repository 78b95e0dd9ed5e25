"""Is the store ready for hops? Only if it can take a write now: a ``PING`` is not enough.

A Redis out of memory under ``noeviction``, a replica (read-only) the URL names by mistake or
that a failover left behind, a server refusing writes because its last save failed
(``stop-writes-on-bgsave-error``), a master short of the replicas its ``min-replicas-to-write``
asks for: each still answers ``PING``, and each refuses every hop's write. So readiness writes
a probe key, with a TTL, on every master (each master of a cluster, through a key of a slot it
serves), and says why it could not, in a few fixed words (never Redis's own text). It is ready
again as soon as a write goes through: nothing to reset.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.exceptions

from .keys import KeySpace

PROBE_TTL = 10  # seconds: the probe key does not outlive the probes
# Redis's error codes for a refused write, and what readiness says of each.
REFUSALS = {
    "OOM": "out of memory",
    "READONLY": "read-only replica",
    "MISCONF": "persistence failing",
    "NOREPLICAS": "not enough replicas",
    "MASTERDOWN": "replica without its master",
}
UNREACHABLE = "store unreachable"
SENTINEL = "a Redis Sentinel, not a Redis: use redis+sentinel://"


def unready(client: Any, keys: KeySpace) -> str | None:
    """None when every master of ``client`` takes a write now, else why not."""
    try:
        for key in _probe_keys(client, keys):
            client.set(key, "1", ex=PROBE_TTL)
    except redis.exceptions.ResponseError as error:
        # redis-py strips the code of the errors it has a class for and keeps it aside.
        code = getattr(error, "status_code", None) or str(error).split(" ", 1)[0]
        if code in REFUSALS:
            return REFUSALS[code]
        if is_sentinel(client):
            return SENTINEL
        return f"write refused ({type(error).__name__})"
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError):
        return UNREACHABLE
    return None


def is_sentinel(client: Any) -> bool:
    """True when ``client`` talks to a Redis Sentinel (which knows no data command), False
    otherwise or when it cannot tell."""
    try:
        return client.info("server").get("redis_mode") == "sentinel"
    except (redis.exceptions.RedisError, OSError, AttributeError):
        return False


def _probe_keys(client: Any, keys: KeySpace) -> list[str]:
    """One probe key per master: for a cluster, the first of ``probe(0)``, ``probe(1)``...
    that each master serves."""
    if not isinstance(client, redis.RedisCluster):
        return [keys.probe(0)]
    wanted = {node.name for node in client.get_primaries()}
    found: dict[str, str] = {}
    number = 0
    while wanted - found.keys() and number < 10_000:
        key = keys.probe(number)
        found.setdefault(client.get_node_from_key(key).name, key)
        number += 1
    return [found[name] for name in sorted(wanted & found.keys())]
