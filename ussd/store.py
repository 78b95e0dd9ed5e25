"""The Redis store: loads and saves session records and subscribers, applies migrations.

Each hop costs two round trips: one read (two commands sent together: the session record
and the record of a closed session, the subscriber's fields), then one conditional write
(``SAVE_SCRIPT``: the new record, or ``MIGRATE_SCRIPT``: the migration and the record). The
read needs no snapshot: both writes compare what they overwrite with what the hop read, and
the migration script re-checks, in the same atomic step, everything the decision rested on,
and applies it only if nothing moved.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
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

from .errors import ConfigError, StoreError, StoreUnavailableError
from .keys import (
    CONSUMPTION_PREFIX,
    LANGUAGE_FIELD,
    MIGRATIONS_PREFIX,
    PROFILE_FIELD,
    KeySpace,
    consumption_field,
    migrations_field,
    month_of_field,
)
from .months import parse_month
from .rules import Language, Profile, Standing
from .settings import Settings

# KEYS[1] subscriber hash, KEYS[2] history list, KEYS[3] session record (absent for the
#   channels without a USSD session: web, app)
# ARGV[1] session record as read before deciding ("" if none)
# ARGV[2] profile, ARGV[3] migrations field, ARGV[4] migrations count,
# ARGV[5] consumption field, ARGV[6] consumption: what the decision was based on
# ARGV[7] new profile, ARGV[8] history entry, ARGV[9] new session record, ARGV[10] its TTL (s)
# Returns {"applied"}, {"stale_session", record}: another hop of this session got there
# first, or {"stale_subscriber", profile, count, consumption}: decide again on these.
MIGRATE_SCRIPT = """
if #KEYS == 3 then
  local session = redis.call('GET', KEYS[3]) or ''
  if session ~= ARGV[1] then
    return {'stale_session', session}
  end
end
local profile = redis.call('HGET', KEYS[1], 'p') or ''
local count = redis.call('HGET', KEYS[1], ARGV[3]) or '0'
local consumption = redis.call('HGET', KEYS[1], ARGV[5]) or '0'
if profile ~= ARGV[2] or tonumber(count) ~= tonumber(ARGV[4])
    or tonumber(consumption) ~= tonumber(ARGV[6]) then
  return {'stale_subscriber', profile, count, consumption}
end
redis.call('HSET', KEYS[1], 'p', ARGV[7])
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
redis.call('RPUSH', KEYS[2], ARGV[8])
if #KEYS == 3 then
  redis.call('SET', KEYS[3], ARGV[9], 'EX', ARGV[10])
end
return {'applied'}
"""

# KEYS[1] session record
# ARGV[1] the record as read at the start of the hop ("" if none), ARGV[2] the new record,
# ARGV[3] its TTL (s)
# Returns {1} when written, or {0, record}: another hop of this session wrote first (record ""
# if the session is gone). A plain SET would let a slow copy of an old hop overwrite the
# record of a later one, and the next hop would then be read against the wrong screen.
SAVE_SCRIPT = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return {1}
"""

# A dead Redis refuses connections at once, a hung one answers nothing: either way a hop must
# end in about one timeout. redis-py's default for a client built from its arguments is up to
# 10 retries with back-off (seconds per hop), so: one immediate retry of a broken connection
# (a pooled socket that a restarted Redis closed), and no retry of a timeout. Every write
# is conditional (SAVE_SCRIPT, MIGRATE_SCRIPT), so even a retried write cannot apply twice.
RETRY = Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))


def connect(settings: Settings) -> Any:
    """A Redis client for ``settings``: the URL's server or cluster, else the embedded store."""
    if not settings.redis_url:
        import fakeredis  # the embedded store: a real Redis API in this process, Lua included

        return fakeredis.FakeRedis(decode_responses=True)
    url, cluster = _cluster_flag(settings.redis_url)
    options = dict(
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=RETRY,
    )
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


@dataclass(frozen=True)
class Subscriber:
    """A subscriber as one hop sees it: the figures of this month and the last."""

    msisdn: str
    language: Language
    standing: Standing


class MigrationResult(StrEnum):
    """What the migration script did."""

    APPLIED = "applied"
    STALE_SESSION = "stale_session"
    STALE_SUBSCRIBER = "stale_subscriber"


@dataclass(frozen=True)
class HopRead:
    """What a hop reads before stepping: its session, and the subscriber.

    ``closed`` is the record of a session the gateway has reported ended (then ``record`` is
    None): a late copy of one of its hops is answered from it, never walked again.
    """

    record: str | None
    closed: str | None
    subscriber: Subscriber | None


@dataclass(frozen=True)
class MigrationOutcome:
    """The script's answer, with what it found when something had moved."""

    result: MigrationResult
    session: str | None = None
    standing: Standing | None = None


@dataclass
class PruneReport:
    """What :meth:`Store.prune_months` found: subscriber hashes visited (SCAN may visit one
    twice), those that had fields of old months, and those fields."""

    subscribers: int = 0
    changed: int = 0
    fields: int = 0


class Store:
    """Sessions and subscribers in Redis (a server, a cluster, or the embedded fakeredis)."""

    def __init__(self, client: Any, prefix: str = "ussd", session_ttl: int = 180):
        self.redis = client
        self.keys = KeySpace(prefix)
        self.session_ttl = session_ttl
        self._migrate = client.register_script(MIGRATE_SCRIPT)
        self._save = client.register_script(SAVE_SCRIPT)
        # On one Redis server (not a cluster, not the embedded store), the hop's commands run
        # on connections this store hands from hop to hop itself: see _commands.
        self._connections = (HeldConnections(client.connection_pool)
                             if type(client) is redis.Redis else None)

    # --- one hop -------------------------------------------------------------------------

    def read_hop(self, msisdn: str, session_key: str, month: str, last_month: str) -> HopRead:
        """The session record, or the closed one, and the subscriber, in one round trip.

        Plain commands, not a script: Redis runs them in about 10 us less than a script
        doing the same (bench/README.md); both session keys in one ``MGET``. On a cluster
        they go to the one master of the subscriber's hash tag.
        """
        closed_key = self.keys.closed_session(session_key)
        subscriber_key = self.keys.subscriber(msisdn)
        fields = _standing_fields(month, last_month)
        with _store_errors:
            (record, closed), values = self._commands(
                ("MGET", session_key, closed_key), ("HMGET", subscriber_key, *fields))
        subscriber = _subscriber(msisdn, *values)
        return HopRead(record, closed if record is None else None, subscriber)

    def load_subscriber(self, msisdn: str, month: str, last_month: str) -> Subscriber | None:
        """The subscriber as the rules see it this month, or None if unknown."""
        with _store_errors:
            fields = self.redis.hmget(self.keys.subscriber(msisdn),
                                      _standing_fields(month, last_month))
        return _subscriber(msisdn, *fields)

    def update_session(self, session_key: str, expected: str | None,
                       record: str) -> tuple[bool, str | None]:
        """Write a session record over ``expected`` (None: no record yet), with its TTL.

        Returns ``(True, None)``, or ``(False, found)`` when another hop of the session wrote
        first: ``found`` is the record it left (None if the session is gone). One round trip.
        """
        with _store_errors:
            answer = self._run(self._save, [session_key],
                               [expected or "", record, self.session_ttl])
        return bool(int(answer[0])), (answer[1] or None) if len(answer) > 1 else None

    def close_session(self, session_key: str) -> bool:
        """Retire a session the gateway says has ended; True if it was live.

        The record moves to its ``closed`` key for the rest of its TTL, so that a late copy of
        one of its hops is answered from it and cannot start the session over.
        """
        with _store_errors:
            try:
                return bool(self.redis.rename(session_key, self.keys.closed_session(session_key)))
            except redis.exceptions.ResponseError:  # no such key: expired, or closed already
                return False

    def apply_migration(
        self,
        msisdn: str,
        session_key: str | None,
        expected_record: str | None,
        expected: Standing,
        target: Profile,
        month: str,
        last_month: str,
        history_entry: dict,
        new_record: str,
    ) -> MigrationOutcome:
        """Migrate atomically if the session and the subscriber are as the decision saw them.

        With no ``session_key`` (web, app) only the subscriber is checked.
        """
        keys = [self.keys.subscriber(msisdn), self.keys.history(msisdn)]
        if session_key is not None:
            keys.append(session_key)
        args = [
            expected_record or "",
            expected.profile.value,
            migrations_field(month),
            expected.migrations_this_month,
            consumption_field(last_month),
            expected.consumed_last_month,
            target.value,
            json.dumps(history_entry, separators=(",", ":"), ensure_ascii=False),
            new_record,
            self.session_ttl,
        ]
        with _store_errors:
            answer = self._run(self._migrate, keys, args)
        result = MigrationResult(answer[0])
        if result is MigrationResult.STALE_SESSION:
            return MigrationOutcome(result, session=answer[1] or None)
        if result is MigrationResult.STALE_SUBSCRIBER:
            fresh = _subscriber(msisdn, answer[1] or None, None, answer[3], answer[2])
            return MigrationOutcome(result, standing=fresh.standing if fresh else None)
        return MigrationOutcome(result)

    # --- data ----------------------------------------------------------------------------

    def put_subscribers(self, rows: Iterable[tuple[str, Profile, Language]]) -> int:
        """Create or update subscribers (profile, language); returns how many were written."""
        return self._write(
            rows,
            lambda pipe, row: pipe.hset(
                self.keys.subscriber(row[0]),
                mapping={PROFILE_FIELD: row[1].value, LANGUAGE_FIELD: row[2].value},
            ),
        )

    def put_consumption(self, rows: Iterable[tuple[str, str, int]]) -> int:
        """Record the credit each subscriber consumed in a month (``msisdn, YYYY-MM, F CFA``)."""
        return self._write(
            rows,
            lambda pipe, row: pipe.hset(
                self.keys.subscriber(row[0]), consumption_field(row[1]), row[2]
            ),
        )

    def reset_subscribers(self, msisdns: list[str]) -> None:
        """Forget everything stored about these subscribers (the demo starts afresh)."""
        with _store_errors:
            for msisdn in msisdns:
                self.redis.delete(self.keys.subscriber(msisdn), self.keys.history(msisdn))

    def prune_months(self, keep_from: str, dry_run: bool = False) -> PruneReport:
        """Delete every subscriber's consumption and migration counts of the months before
        ``keep_from`` (``YYYY-MM``); with ``dry_run``, only count them.

        The rules read last month's consumption and this month's count, nothing older; the
        history list, which records every migration, is left whole. Fields are deleted by
        name (``HDEL``), never rewritten, so a hop or a consumption load running meanwhile
        loses nothing of the months kept. A hash left empty (consumption of a number that has
        no profile) goes with its last field, as Redis removes empty hashes. SCAN visits
        every master of a cluster; 500 subscribers per round trip.
        """
        parse_month(keep_from)

        def old(fields: list[str]) -> list[str]:
            return [field for field in fields
                    if (month := month_of_field(field)) is not None and month < keep_from]

        report = PruneReport()
        with _store_errors:
            keys = self.redis.scan_iter(match=self.keys.subscriber_pattern(), count=1000)
            for chunk in _chunks(keys, 500):
                pipe = self.redis.pipeline(transaction=False)
                for key in chunk:
                    pipe.hkeys(key)
                stale = [(key, old(fields)) for key, fields in zip(chunk, pipe.execute())]
                stale = [(key, fields) for key, fields in stale if fields]
                if dry_run or not stale:
                    removed = [len(fields) for _, fields in stale]
                else:
                    pipe = self.redis.pipeline(transaction=False)
                    for key, fields in stale:
                        pipe.hdel(key, *fields)
                    removed = pipe.execute()  # how many each HDEL removed
                report.subscribers += len(chunk)
                report.changed += sum(1 for count in removed if count)
                report.fields += sum(removed)
        return report

    def describe(self, msisdn: str, month: str) -> dict | None:
        """Everything stored for a subscriber, as plain data (None if unknown)."""
        with _store_errors:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(self.keys.subscriber(msisdn))
            pipe.lrange(self.keys.history(msisdn), 0, -1)
            fields, history = pipe.execute()
        if not fields:
            return None
        consumption = {k.removeprefix(CONSUMPTION_PREFIX): int(v)
                       for k, v in sorted(fields.items()) if k.startswith(CONSUMPTION_PREFIX)}
        migrations = {k.removeprefix(MIGRATIONS_PREFIX): int(v)
                      for k, v in sorted(fields.items()) if k.startswith(MIGRATIONS_PREFIX)}
        return {
            "msisdn": msisdn,
            "profile": fields.get(PROFILE_FIELD),
            "language": fields.get(LANGUAGE_FIELD, Language.FR.value),
            "consumption": consumption,
            "migrations_by_month": migrations,
            "migrations_this_month": migrations.get(month, 0),
            "history": [json.loads(entry) for entry in history],
        }

    def load_scripts(self) -> bool:
        """Load the Lua scripts into Redis (every master of a cluster) once, at start-up,
        and open the first connection of the hops (see ``_commands``).

        A script Redis does not hold costs its first caller two more round trips (``NOSCRIPT``,
        then ``SCRIPT LOAD``); loaded here, no hop pays them. False when Redis cannot be
        reached now: each script then loads on its first use, as after a Redis restart.
        """
        try:
            with _store_errors:
                for script in (self._save, self._migrate):
                    script.sha = self.redis.script_load(script.script)
                if self._connections is not None:
                    self._connections.open_one()  # its handshake now, not on a hop
        except StoreError:
            return False
        return True

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            with _store_errors:
                return bool(self.redis.ping())
        except StoreError:
            return False

    # --- plumbing ------------------------------------------------------------------------

    def _run(self, script, keys: list, args: list):
        """Run a registered script by its SHA1, as loaded at start-up (``EVALSHA``, one round
        trip); only if Redis has lost it (a restart) is it loaded again and run."""
        try:
            return self._commands(("EVALSHA", script.sha, len(keys), *keys, *args))[0]
        except redis.exceptions.NoScriptError:
            return script(keys=keys, args=args)

    def _commands(self, *commands: tuple) -> list:
        """A hop's commands, sent together (one round trip); their replies, in order.

        redis-py's ``execute_command`` takes a connection from the pool under a lock, polls
        its socket, gives it back, and runs retry and telemetry hooks around it, on every
        command: about 25 us of CPU, as much again as the round trip itself
        (bench/README.md). On one Redis server the hop's commands skip that, on a connection
        of :class:`HeldConnections`: redis-py's own, with the client's settings (its timeouts,
        its health check, its handling of a broken socket, closed then reopened on the next
        command) and the client's retry policy (``RETRY``). Every reply is read, even after an
        error reply, so that none is left for the next hop to read as its own. A cluster or
        the embedded store gets them through its client, as one pipeline.
        """
        connections = self._connections
        if connections is None:
            if len(commands) == 1:
                return [self.redis.execute_command(*commands[0])]
            pipe = self.redis.pipeline(transaction=False)
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

    def _write(self, rows: Iterable, command) -> int:
        count = 0
        with _store_errors:
            for chunk in _chunks(rows, 1000):
                pipe = self.redis.pipeline(transaction=False)
                for row in chunk:
                    command(pipe, row)
                pipe.execute()
                count += len(chunk)
        return count


class _StoreErrors:
    """``with _store_errors:`` around every Redis call turns the client's connection failures
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


_store_errors = _StoreErrors()


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


def _standing_fields(month: str, last_month: str) -> list[str]:
    """The subscriber's fields the rules need, in the order ``_subscriber`` takes them."""
    return [PROFILE_FIELD, LANGUAGE_FIELD, consumption_field(last_month), migrations_field(month)]


def _subscriber(msisdn, profile, language, consumed, count) -> Subscriber | None:
    # The values the store writes, looked up in the enums' own maps (an enum call per field
    # cost a hop 1 us); Profile.parse only for a value written some other way.
    known = Profile._value2member_map_.get(profile)
    if known is None and profile:
        known = Profile.parse(profile)
    if known is None:
        return None
    return Subscriber(
        msisdn=msisdn,
        language=Language._value2member_map_.get(language, Language.FR),
        standing=Standing(
            profile=known,
            migrations_this_month=int(count or 0),
            consumed_last_month=int(consumed or 0),
        ),
    )


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
