"""The Redis store: loads and saves session records and subscribers, applies migrations.

Each hop costs two round trips: one pipelined read (the session record and the subscriber's
fields), then one write (the new record, or the migration script that writes it). The
migration is one Lua script that re-checks, in the same atomic step, everything the decision
rested on, and applies it only if nothing moved (see ``MIGRATE_SCRIPT``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.exceptions

from .errors import ConfigError, StoreError, StoreUnavailableError
from .keys import (
    LANGUAGE_FIELD,
    PROFILE_FIELD,
    KeySpace,
    consumption_field,
    migrations_field,
)
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
class MigrationOutcome:
    """The script's answer, with what it found when something had moved."""

    result: MigrationResult
    session: str | None = None
    standing: Standing | None = None


class Store:
    """Sessions and subscribers in Redis (a server, a cluster, or the embedded fakeredis)."""

    def __init__(self, client: Any, prefix: str = "ussd", session_ttl: int = 180):
        self.redis = client
        self.keys = KeySpace(prefix)
        self.session_ttl = session_ttl
        self._migrate = client.register_script(MIGRATE_SCRIPT)

    # --- one hop -------------------------------------------------------------------------

    def load_hop(
        self, msisdn: str, session_key: str, month: str, last_month: str
    ) -> tuple[str | None, Subscriber | None]:
        """The session record (or None) and the subscriber (or None), in one round trip."""
        with self._guard():
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(session_key)
            pipe.hmget(
                self.keys.subscriber(msisdn),
                [PROFILE_FIELD, LANGUAGE_FIELD, consumption_field(last_month),
                 migrations_field(month)],
            )
            record, (profile, language, consumed, count) = pipe.execute()
        return record, _subscriber(msisdn, profile, language, consumed, count)

    def load_subscriber(self, msisdn: str, month: str, last_month: str) -> Subscriber | None:
        """The subscriber as the rules see it this month, or None if unknown."""
        with self._guard():
            fields = self.redis.hmget(
                self.keys.subscriber(msisdn),
                [PROFILE_FIELD, LANGUAGE_FIELD, consumption_field(last_month),
                 migrations_field(month)],
            )
        return _subscriber(msisdn, *fields)

    def save_session(self, session_key: str, record: str) -> None:
        """Write a session record with its time-to-live, in one command."""
        with self._guard():
            self.redis.set(session_key, record, ex=self.session_ttl)

    def close_session(self, session_key: str) -> bool:
        """Forget a session the gateway says has ended; True if it was live."""
        with self._guard():
            return bool(self.redis.delete(session_key))

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
        with self._guard():
            answer = self._migrate(keys=keys, args=args)
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
        with self._guard():
            for msisdn in msisdns:
                self.redis.delete(self.keys.subscriber(msisdn), self.keys.history(msisdn))

    def describe(self, msisdn: str, month: str) -> dict | None:
        """Everything stored for a subscriber, as plain data (None if unknown)."""
        with self._guard():
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(self.keys.subscriber(msisdn))
            pipe.lrange(self.keys.history(msisdn), 0, -1)
            fields, history = pipe.execute()
        if not fields:
            return None
        consumption = {k[2:]: int(v) for k, v in sorted(fields.items()) if k.startswith("c:")}
        migrations = {k[2:]: int(v) for k, v in sorted(fields.items()) if k.startswith("m:")}
        return {
            "msisdn": msisdn,
            "profile": fields.get(PROFILE_FIELD),
            "language": fields.get(LANGUAGE_FIELD, Language.FR.value),
            "consumption": consumption,
            "migrations_by_month": migrations,
            "migrations_this_month": migrations.get(month, 0),
            "history": [json.loads(entry) for entry in history],
        }

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            with self._guard():
                return bool(self.redis.ping())
        except StoreError:
            return False

    # --- plumbing ------------------------------------------------------------------------

    def _write(self, rows: Iterable, command) -> int:
        count = 0
        with self._guard():
            for chunk in _chunks(rows, 1000):
                pipe = self.redis.pipeline(transaction=False)
                for row in chunk:
                    command(pipe, row)
                pipe.execute()
                count += len(chunk)
        return count

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn the client's connection failures into StoreUnavailableError."""
        try:
            yield
        except _UNREACHABLE as error:
            raise StoreUnavailableError(f"Redis unreachable: {error}") from error
        except redis.exceptions.RedisError as error:
            raise StoreError(f"Redis error: {error}") from error


def _subscriber(msisdn, profile, language, consumed, count) -> Subscriber | None:
    known = Profile.parse(profile) if profile else None
    if known is None:
        return None
    return Subscriber(
        msisdn=msisdn,
        language=Language(language) if language in Language._value2member_map_ else Language.FR,
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
