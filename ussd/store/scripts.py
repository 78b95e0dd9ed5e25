"""The Lua scripts, each with its ``KEYS``/``ARGV`` header, and one wrapper each.

A wrapper takes named, typed arguments, runs its script by ``EVALSHA`` in one round trip (the
SHA1 loaded at start-up by :meth:`Scripts.load`; loaded again only if Redis has lost it, after a
restart) and returns a named result. Key names come from the caller, field names from
``keys.py``: no script spells one. The wrappers raise redis-py's exceptions; their callers map
them with ``client.store_errors``. The queue scripts (ack, bury, touch, read, redrive) are
registered here too; their wrappers are :class:`ussd.store.outbox.Outbox`'s methods, which run
them one per bucket, pipelined.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple

import redis.exceptions

from ..rules import Profile, Standing
from .keys import PROFILE_FIELD, consumption_field, migrations_field

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

# KEYS[1] subscriber hash, KEYS[2] history list, KEYS[3] the outbox stream of the subscriber's
#   bucket, KEYS[4] the asker's record, written in the same step: a USSD session's, or an API
#   request's (its idempotency key: ARGV[9] "", so it must not exist yet; a stale_session
#   answer then carries the first answer given); absent for ``ussd migrate``
# ARGV[1] the profile field, ARGV[2] this month's migrations field, ARGV[3] last month's
#   consumption field (the names, from keys.py)
# ARGV[4] profile, ARGV[5] migrations count, ARGV[6] consumption: what the decision was based on
# ARGV[7] new profile, ARGV[8] history entry (JSON)
# ARGV[9] session record as read before deciding ("" if none), ARGV[10] new session record,
#   ARGV[11] its TTL (s)
# ARGV[12] the billing event (JSON), appended to the outbox in this same step: no migration
#   without its event, no event without its migration
# Returns {"applied"}, {"stale_session", record}: another hop of this session (another copy
# of this API request) got there first, or {"stale_subscriber", profile, count, consumption}:
# decide again on these.
MIGRATE_SCRIPT = """
if #KEYS == 4 then
  local session = redis.call('GET', KEYS[4]) or ''
  if session ~= ARGV[9] then
    return {'stale_session', session}
  end
end
local profile = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local count = redis.call('HGET', KEYS[1], ARGV[2]) or '0'
local consumption = redis.call('HGET', KEYS[1], ARGV[3]) or '0'
if profile ~= ARGV[4] or tonumber(count) ~= tonumber(ARGV[5])
    or tonumber(consumption) ~= tonumber(ARGV[6]) then
  return {'stale_subscriber', profile, count, consumption}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[7])
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
redis.call('RPUSH', KEYS[2], ARGV[8])
redis.call('XADD', KEYS[3], '*', 'event', ARGV[12])
if #KEYS == 4 then
  redis.call('SET', KEYS[4], ARGV[10], 'EX', ARGV[11])
end
return {'applied'}
"""


# The outbox's queues (store/outbox.py): each entry of a bucket's stream is held by one relay
# (the consumer group's pending list) until it is acknowledged, dead-lettered, or taken over.

# KEYS[1] queue stream, KEYS[2] its tries hash, KEYS[3] the next queue's stream (optional)
# ARGV[1] group, ARGV[2] entry id, ARGV[3] the next entry's field, ARGV[4] the next entry
# Returns 1, or 0 when the entry was acknowledged already (two relays delivered it): then
# nothing is passed on, so one event never queues two receipts.
ACK_SCRIPT = """
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
if acked == 1 and #KEYS == 3 then
  redis.call('XADD', KEYS[3], '*', ARGV[3], ARGV[4])
end
return acked
"""

# KEYS[1] queue stream, KEYS[2] its tries hash, KEYS[3] its dead-letter stream
# ARGV[1] group, ARGV[2] entry id, ARGV[3] field, ARGV[4] the entry, ARGV[5] reason,
# ARGV[6] attempts, ARGV[7] when (ISO 8601)
# Returns 1, or 0 when the entry was acknowledged already (another relay delivered it).
BURY_SCRIPT = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], '*', ARGV[3], ARGV[4], 'reason', ARGV[5], 'attempts', ARGV[6],
           'at', ARGV[7])
return 1
"""

# KEYS[1] queue stream
# ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id
# Returns 1 when the consumer still holds the entry (its idle time starts again, so no other
# relay takes it over), 0 when it does not (acknowledged, or taken over meanwhile).
TOUCH_SCRIPT = """
local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #held == 0 or held[1][2] ~= ARGV[2] then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

# KEYS[1] queue stream
# ARGV[1] group, ARGV[2] consumer, ARGV[3] most entries
# Returns what XREADGROUP returns for one stream. A script because redis-py asks a cluster
# node for the keys of a plain XREADGROUP (its keys are "movable") on every call.
READ_SCRIPT = """
return redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                  'STREAMS', KEYS[1], '>')
"""

# KEYS[1] dead-letter stream, KEYS[2] queue stream
# ARGV[1] dead entry id, ARGV[2] field
# Returns 1 when the entry went back to the queue (as it was first written), 0 if it is gone.
REDRIVE_SCRIPT = """
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then
  return 0
end
local fields = found[1][2]
for i = 1, #fields, 2 do
  if fields[i] == ARGV[2] then
    redis.call('XADD', KEYS[2], '*', ARGV[2], fields[i + 1])
    redis.call('XDEL', KEYS[1], ARGV[1])
    return 1
  end
end
return 0
"""


# Consumption fed in (store/consumption.py), for the subscribers of one bucket (one slot).
# KEYS[2i-1] entry i's subscriber hash, KEYS[2i] its increment ids of the entry's month
# ARGV[1] how long increment ids are kept (s); then 4 per entry i, from ARGV[4i-2]: "set" (a
#   month's total) or "add" (an increment), the consumption field, the amount, the id ("")
# Returns how many increments were counted (an id seen before is not counted again).
CONSUMPTION_SCRIPT = """
local counted = 0
for i = 1, #KEYS / 2 do
  local field, amount = ARGV[4 * i - 1], ARGV[4 * i]
  if ARGV[4 * i - 2] == 'set' then
    redis.call('HSET', KEYS[2 * i - 1], field, amount)
  elseif redis.call('SADD', KEYS[2 * i], ARGV[4 * i + 1]) == 1 then
    redis.call('HINCRBY', KEYS[2 * i - 1], field, amount)
    redis.call('EXPIRE', KEYS[2 * i], ARGV[1])
    counted = counted + 1
  end
end
return counted
"""


class SaveResult(NamedTuple):
    """What ``SAVE_SCRIPT`` did: ``written``, or not and the record another hop of the session
    left (``found``; None if the session is gone)."""

    written: bool
    found: str | None = None


class MigrateOutcome(StrEnum):
    """What ``MIGRATE_SCRIPT`` did."""

    APPLIED = "applied"
    STALE_SESSION = "stale_session"
    STALE_SUBSCRIBER = "stale_subscriber"


class MigrateResult(NamedTuple):
    """What ``MIGRATE_SCRIPT`` did, with what it found when something had moved: the session's
    record (STALE_SESSION; None if the session is gone) or the subscriber's standing
    (STALE_SUBSCRIBER; None if the subscriber is gone)."""

    outcome: MigrateOutcome
    session: str | None = None
    standing: Standing | None = None


# The common answers, made once rather than on every hop.
_SAVED = SaveResult(True)
_APPLIED = MigrateResult(MigrateOutcome.APPLIED)


class Scripts:
    """The scripts registered on one client; ``send`` is its one-round-trip path
    (``client.Commands.send``)."""

    def __init__(self, client: Any, send: Callable[..., list]):
        self.client = client
        self._send = send
        self._save = client.register_script(SAVE_SCRIPT)
        self._migrate = client.register_script(MIGRATE_SCRIPT)
        self.queue_scripts = {name: client.register_script(script) for name, script in (
            ("ack", ACK_SCRIPT), ("bury", BURY_SCRIPT), ("touch", TOUCH_SCRIPT),
            ("read", READ_SCRIPT), ("redrive", REDRIVE_SCRIPT),
            ("consumption", CONSUMPTION_SCRIPT))}

    def load(self) -> None:
        """Load every script into Redis (every master of a cluster); redis-py's errors if it
        cannot be reached.

        A script Redis does not hold costs its first caller two more round trips
        (``NOSCRIPT``, then ``SCRIPT LOAD``); loaded at start-up, no hop pays them.
        """
        for script in (self._save, self._migrate, *self.queue_scripts.values()):
            script.sha = self.client.script_load(script.script)

    def save_session(self, key: str, old: str | None, new: str, ttl: int) -> SaveResult:
        """Write the record ``new`` at ``key`` with a TTL of ``ttl`` s, if the record there is
        still ``old`` (None: no record yet). One round trip."""
        answer = self._run(self._save, (key,), (old or "", new, ttl))
        if int(answer[0]):
            return _SAVED
        return SaveResult(False, answer[1] or None)

    def migrate(self, *, subscriber: str, history: str, outbox: str, session: str | None,
                expected: Standing, target: Profile, month: str, last_month: str,
                entry: dict, old_record: str | None, new_record: str,
                ttl: int, event: str) -> MigrateResult:
        """Migrate to ``target`` if the subscriber (and the session at key ``session``, unless
        None) are still as the decision saw them; one round trip.

        ``subscriber`` and ``history`` are the subscriber's keys; ``month`` and ``last_month``
        (``YYYY-MM``) name the count and the consumption checked; ``entry`` goes to the history
        as JSON; ``new_record`` replaces ``old_record`` at ``session`` with a TTL of ``ttl`` s;
        ``event`` (JSON) goes to the stream ``outbox`` in the same step.
        """
        keys = ((subscriber, history, outbox) if session is None
                else (subscriber, history, outbox, session))
        args = (
            PROFILE_FIELD,
            migrations_field(month),
            consumption_field(last_month),
            expected.profile.value,
            expected.migrations_this_month,
            expected.consumed_last_month,
            target.value,
            json.dumps(entry, separators=(",", ":"), ensure_ascii=False),
            old_record or "",
            new_record,
            ttl,
            event,
        )
        answer = self._run(self._migrate, keys, args)
        outcome = MigrateOutcome(answer[0])
        if outcome is MigrateOutcome.APPLIED:
            return _APPLIED
        if outcome is MigrateOutcome.STALE_SESSION:
            return MigrateResult(outcome, session=answer[1] or None)
        return MigrateResult(outcome, standing=_standing_found(*answer[1:4]))

    def _run(self, script, keys: tuple, args: tuple):
        """Run a registered script by its SHA1, as loaded at start-up (``EVALSHA``, one round
        trip); only if Redis has lost it (a restart) is it loaded again and run."""
        try:
            return self._send(("EVALSHA", script.sha, len(keys), *keys, *args))[0]
        except redis.exceptions.NoScriptError:
            return script(keys=list(keys), args=list(args))


def _standing_found(profile: str, count: str, consumption: str) -> Standing | None:
    """The subscriber's standing as the migration script found it; None if it has no profile.
    Only a lost race comes here, so ``Profile.parse`` rather than the hop's faster lookup."""
    known = Profile.parse(profile) if profile else None
    if known is None:
        return None
    return Standing(profile=known, migrations_this_month=int(count or 0),
                    consumed_last_month=int(consumption or 0))
