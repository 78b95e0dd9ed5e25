"""What a hop costs Redis: round trips counted on the client, memory from ``used_memory``.

Round trips are counted where they happen: every request the client writes to its socket (a
command, or a whole pipeline) goes through ``Connection.send_packed_command``, and a counting
subclass tallies them per hop while the service answers through its Flask app, as served.
Memory is the ``used_memory`` delta of a dedicated redis-server (no other data in it) while
subscribers, then live sessions, are stored the way the service stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import load
import redis


class CountingConnection(redis.Connection):
    """A redis-py connection that counts what it sends: one call, one round trip."""

    sent = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.sent += 1
        return super().send_packed_command(command, check_health)


def used_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


def redis_cpu_seconds(client) -> float:
    """CPU seconds the Redis server has used so far, user and system."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def subscriber_bytes(client, store, count: int, month: str) -> float:
    """Bytes of Redis memory per subscriber (profile, language, one month of consumption)."""
    before = used_memory(client)
    load.seed(store, count, month)
    return (used_memory(client) - before) / count


@dataclass(frozen=True)
class RoundTrips:
    """Round trips per hop of the dialogue, the worst seen over every kind of subscriber."""

    per_hop: tuple[int, ...]  # dial, change profile, choose the target, confirm (migration)
    records: tuple[str, ...]  # the largest session record stored, one per kind

    @property
    def worst(self) -> int:
        return max(self.per_hop)


def round_trips(redis_url: str, prefix: str, first: int, month: str) -> RoundTrips:
    """Play one dialogue per kind through the service's app, counting round trips per hop.

    The server's script cache is flushed first, so that a migration script the app did not
    load at start-up would show as extra round trips (``NOSCRIPT``, then ``EVAL``) on the
    confirming hop.
    """
    from ussd.settings import Settings
    from ussd.store import Store, connect
    from ussd.web import create_app

    settings = replace(Settings.from_env(), redis_url=redis_url, key_prefix=prefix)
    client = connect(settings)
    client.connection_pool.connection_class = CountingConnection  # before any connection
    client.connection_pool.disconnect()
    client.script_flush()
    numbers = range(first, first + len(load.KINDS))
    store = Store(client, prefix=prefix)
    store.admin.put_subscribers((load.msisdn(n), load.kind_of(n).profile, load.kind_of(n).language)
                          for n in numbers)
    store.admin.put_consumption((load.msisdn(n), month, load.CONSUMED) for n in numbers)
    app = create_app(replace(settings, redis_url=None), redis_client=client)
    http = app.test_client()
    worst = [0] * 4
    records = []
    for number in numbers:
        session_id = f"round-trips-{number}"
        key = store.keys.session(load.msisdn(number), "africastalking", session_id)
        largest = ""
        for hop, request in enumerate(load.dialogue(number, session_id)):
            method, target, headers, body = load.http(request)
            sent = CountingConnection.sent
            http.open(target, method=method, headers=headers, data=body)
            worst[hop] = max(worst[hop], CountingConnection.sent - sent)
            record = client.get(key) or ""
            largest = max(largest, record, key=len)
        records.append(largest)
    return RoundTrips(tuple(worst), tuple(records))


def session_bytes(client, store, count: int, records: tuple[str, ...], ttl: int) -> float:
    """Bytes of Redis memory per live session record (the largest a dialogue stores)."""
    before = used_memory(client)
    keys = []
    for chunk in range(0, count, 1000):
        pipe = client.pipeline(transaction=False)
        for number in range(chunk, min(chunk + 1000, count)):
            key = store.keys.session(load.msisdn(number), "africastalking", f"memory-{number}")
            pipe.set(key, records[number % len(records)], ex=ttl)  # as a session write does
            keys.append(key)
        pipe.execute()
    after = used_memory(client)
    for chunk in range(0, len(keys), 1000):
        client.unlink(*keys[chunk:chunk + 1000])
    return (after - before) / count
