"""The Redis store: a server, a cluster, or the embedded fakeredis.

One module per job::

    keys.py     the key space: every key and hash field name, and the {hash tag}
    scripts.py  the Lua scripts (KEYS/ARGV headers) and one wrapper each
    client.py   connect(settings), the retry policy, errors, the hop's one-round-trip path
    sentinel.py the redis+sentinel:// URL and a client that follows the master
    health.py   readiness: can every master take a write now
    hops.py     the hop store: read, conditional save, migrate, close (domain values in)
    accounts.py the other channels': a subscriber's page and history, a migration asked once
    admin.py    the operator's: load subscribers and consumption, show, prune
    outbox.py   the outbox's queues (billing events, SMS receipts) as relays read them
    consumption.py  consumption fed in through the API: totals set, increments added once

Built once per process::

    store = Store(connect(settings), prefix=settings.key_prefix,
                  session_ttl=settings.session_ttl, resume_window=settings.resume_window)
    store.load_scripts()
    store.hops.read(msisdn, gateway, session_id, month, last_month)
    store.admin.describe(msisdn, month)
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, StoreError
from .accounts import AccountRead, AccountStore, RequestRef
from .admin import Admin, MoveReport, PruneReport, SubscribersReport
from .client import Commands, connect, store_errors
from .consumption import ConsumptionStore
from .health import is_sentinel, unready
from .hops import HopRead, HopStore, SessionChange, SessionRef, Subscriber
from .keys import KeySpace
from .outbox import DeadLetter, Entry, Outbox, Waiting
from .scripts import MigrateOutcome, MigrateResult, SaveResult, Scripts

__all__ = [
    "AccountRead",
    "AccountStore",
    "Admin",
    "DeadLetter",
    "Entry",
    "HopRead",
    "HopStore",
    "MigrateOutcome",
    "MigrateResult",
    "MoveReport",
    "Outbox",
    "PruneReport",
    "RequestRef",
    "SaveResult",
    "SessionChange",
    "SessionRef",
    "Store",
    "Subscriber",
    "SubscribersReport",
    "Waiting",
    "connect",
]


# How long an API request's record (its idempotency key's answer) is kept: a day, so that a
# client retrying after any outage of its own gets the first answer, never a second migration.
REQUEST_TTL = 24 * 3600


class Store:
    """The store of one deployment: ``hops`` (:class:`HopStore`) for the hops, ``accounts``
    (:class:`AccountStore`) for the other channels, ``admin`` (:class:`Admin`) for the operator,
    ``outbox`` (:class:`Outbox`) for the relays.

    ``keys`` (the key names) and ``redis`` (the client) are there for tests and tools that
    look inside Redis; the service goes through ``hops`` and never names a key.
    """

    def __init__(self, client: Any, prefix: str = "ussd", session_ttl: int = 180,
                 resume_window: int = 0, min_replicas: int = 0, wait_ms: int = 0):
        self.redis = client
        self.keys = KeySpace(prefix)
        # On one Redis server (not a cluster, not the embedded store), the hop's commands run
        # on connections handed from hop to hop: see client.Commands.
        self._commands = Commands(client)
        # A migration is confirmed once min_replicas hold it (WAIT, up to wait_ms).
        self._scripts = Scripts(client, self._commands.write, min_replicas, wait_ms)
        self.hops = HopStore(client, self.keys, self._scripts, self._commands.send, session_ttl,
                             resume_window)
        self.accounts = AccountStore(self.keys, self._scripts, self._commands.send, REQUEST_TTL)
        self.admin = Admin(client, self.keys, self._scripts, self._commands.send)
        self.outbox = Outbox(client, self.keys, self._scripts)
        self.consumption = ConsumptionStore(self.keys, self._scripts)

    def load_scripts(self) -> bool:
        """Load the Lua scripts into Redis (every master of a cluster) once, at start-up, and
        open the first connection of the hops; False when Redis cannot be reached now, and
        ConfigError when the URL names a Redis Sentinel instead of a Redis.

        No hop then pays for either. A script not loaded here loads on its first use, as after
        a Redis restart.
        """
        try:
            with store_errors:
                self._scripts.load()
                self._commands.open_one()  # its handshake now, not on a hop
        except StoreError:
            if is_sentinel(self.redis):  # it would answer every command "unknown command"
                raise ConfigError("REDIS_URL names a Redis Sentinel, not a Redis: write "
                                  "redis+sentinel://<sentinel host:port,...>/<master name>/<db>"
                                  ) from None
            return False
        return True

    def close(self) -> None:
        """Close every connection this store opened (the client's and the hops' own)."""
        self._commands.close()
        self.redis.close()

    def unready(self) -> str | None:
        """None when Redis takes a write now (every master of a cluster), else why not: out of
        memory, a read-only replica, persistence failing, unreachable... (see health.py)."""
        return unready(self.redis, self.keys)

    def ping(self) -> bool:
        """True when Redis answers, False when it cannot be reached or refuses."""
        try:
            with store_errors:
                return bool(self.redis.ping())
        except StoreError:
            return False
