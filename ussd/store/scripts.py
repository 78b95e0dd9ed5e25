"""The Lua scripts, each with its ``KEYS``/``ARGV`` header, and one wrapper each.

A wrapper takes named, typed arguments, runs its script by ``EVALSHA`` in one round trip (the
SHA1 loaded at start-up by :meth:`Scripts.load`; loaded again only if Redis has lost it, after a
restart) and returns a named result. Key names come from the caller, field names from
``keys.py``: no script spells one. The wrappers raise redis-py's exceptions (their callers map
them with ``client.store_errors``), or OutcomeUnknownError when a script went out and no answer
came: every hop's script is conditional, so sending it again is how its outcome is found
(``ussd/settle.py``). The queue, consumption and subscribers' scripts (``queue_scripts.py``)
are registered here too; :meth:`Scripts.run_pipelined` runs them, for ``outbox.py`` and
``consumption.py`` (``admin.py`` sends the subscribers' its own way: ``send_loaded``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any, NamedTuple

import redis.exceptions

from ..rules import Profile, Standing
from .keys import (
    ENTRY_FIELDS,
    EVENTS,
    LANGUAGE_FIELD,
    PROFILE_FIELD,
    consumption_field,
    migrations_field,
)
from .queue_scripts import QUEUE_SCRIPTS, run_pipelined

# KEYS[1] session record; KEYS[2] the subscriber's dropped-session marker and KEYS[3] the
#   subscriber hash, both absent when the hop keeps nothing to resume and sets no language
# ARGV[1] the record as read at the start of the hop ("" if none), ARGV[2] the new record,
# ARGV[3] its TTL (s)
# ARGV[4] the marker: "" to forget it, "-" to leave it as it is, else the value to keep,
#   ARGV[5] for that many seconds
# ARGV[6] the language field (the name, from keys.py), ARGV[7] the subscriber's language to
#   store ("": unchanged; only for a subscriber that exists)
# Returns {1} when written, or {0, record}: another hop of this session wrote first (record ""
# if the session is gone). A plain SET would let a slow copy of an old hop overwrite the
# record of a later one, and the next hop would then be read against the wrong screen.
SAVE_SCRIPT = """
local current = redis.call('GET', KEYS[1]) or ''
if current ~= ARGV[1] then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
if #KEYS == 3 then
  if ARGV[4] == '' then
    redis.call('DEL', KEYS[2])
  elseif ARGV[4] ~= '-' then
    redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
  end
  if ARGV[7] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('HSET', KEYS[3], ARGV[6], ARGV[7])
  end
end
return {1}
"""

# KEYS[1] subscriber hash, KEYS[2] history list, KEYS[3] the outbox stream of the subscriber's
#   bucket, KEYS[4] the asker's record, written in the same step: a USSD session's, or an API
#   request's (its idempotency key: ARGV[9] "", so it must not exist yet; a stale_session
#   answer then carries the first answer given); absent for ``ussd migrate``; KEYS[5] a USSD
#   subscriber's dropped-session marker, forgotten with the migration (only with KEYS[4];
#   absent when nothing is kept to resume)
# ARGV[1] the profile field, ARGV[2] this month's migrations field, ARGV[3] last month's
#   consumption field (the names, from keys.py)
# ARGV[4] profile, ARGV[5] migrations count, ARGV[6] consumption: what the decision was based on
# ARGV[7] new profile, ARGV[8] history entry (JSON)
# ARGV[9] session record as read before deciding ("" if none), ARGV[10] new session record,
#   ARGV[11] its TTL (s)
# ARGV[12] the billing event (JSON), appended to the outbox in this same step: no migration
#   without its event, no event without its migration; ARGV[13] its field (from keys.py)
# Returns {"applied"}, {"stale_session", record}: another hop of this session (another copy
# of this API request) got there first, or {"stale_subscriber", profile, count, consumption}:
# decide again on these.
MIGRATE_SCRIPT = """
if #KEYS >= 4 then
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
redis.call('XADD', KEYS[3], '*', ARGV[13], ARGV[12])
if #KEYS >= 4 then
  redis.call('SET', KEYS[4], ARGV[10], 'EX', ARGV[11])
end
if #KEYS == 5 then
  redis.call('DEL', KEYS[5])
end
return {'applied'}
"""

# KEYS[1] session record, KEYS[2] where it goes once closed, KEYS[3] the subscriber's
#   dropped-session marker
# ARGV[1] "drop" (the dialogue broke: keep it to resume for the window), "end" (ended as the
#   subscriber chose, or on our END: forget it) or "" (the gateway says neither)
# ARGV[2] the session's digest, ARGV[3] the resume window (s)
# Returns 1 if the session was live. The marker is touched only if it is this session's: a
# late report of an older session must not cut the latest one's.
CLOSE_SCRIPT = """
local live = redis.call('EXISTS', KEYS[1])
if live == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
end
local marker = redis.call('GET', KEYS[3])
if marker and string.sub(marker, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then
  if ARGV[1] == 'end' then
    redis.call('DEL', KEYS[3])
  elseif ARGV[1] == 'drop' then
    redis.call('EXPIRE', KEYS[3], ARGV[3])
  end
end
return live
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
    (STALE_SUBSCRIBER; None if the subscriber is gone). ``replicated`` is False when an
    applied migration did not reach the replicas required (``USSD_REDIS_MIN_REPLICAS``) in
    time: it is on the master, and a failover could still lose it."""

    outcome: MigrateOutcome
    session: str | None = None
    standing: Standing | None = None
    replicated: bool = True


# The common answers, made once rather than on every hop.
_SAVED = SaveResult(True)
_APPLIED = MigrateResult(MigrateOutcome.APPLIED)


class Scripts:
    """The scripts registered on one client; ``write`` is its one-round-trip path for commands
    that change data (``client.Commands.write``: OutcomeUnknownError when one went out and no
    answer came)."""

    def __init__(self, client: Any, write: Callable[..., list], min_replicas: int = 0,
                 wait_ms: int = 0):
        self.client = client
        self._write = write
        # A migration's WAIT, sent with it (the same connection, the same round trip): Redis
        # answers it once that many replicas hold the connection's writes, or after wait_ms.
        self._wait = (("WAIT", min_replicas, wait_ms),) if min_replicas else ()
        self.min_replicas = min_replicas
        self._save = client.register_script(SAVE_SCRIPT)
        self._migrate = client.register_script(MIGRATE_SCRIPT)
        self._close = client.register_script(CLOSE_SCRIPT)
        self.queue_scripts = {name: client.register_script(script)
                              for name, script in QUEUE_SCRIPTS.items()}

    def load(self) -> None:
        """Load every script into Redis (every master of a cluster); redis-py's errors if it
        cannot be reached.

        A script Redis does not hold costs its first caller two more round trips
        (``NOSCRIPT``, then ``SCRIPT LOAD``); loaded at start-up, no hop pays them.
        """
        for script in (self._save, self._migrate, self._close, *self.queue_scripts.values()):
            script.sha = self.client.script_load(script.script)

    def save_session(self, key: str, old: str | None, new: str, ttl: int, *,
                     marker: str | None = None, subscriber: str | None = None,
                     keep: str = "-", keep_ttl: int = 0, language: str = "") -> SaveResult:
        """Write the record ``new`` at ``key`` with a TTL of ``ttl`` s, if the record there is
        still ``old`` (None: no record yet). One round trip.

        With ``marker`` and ``subscriber`` (the subscriber's dropped-session marker and hash),
        also: ``keep`` the marker's value for ``keep_ttl`` s (``""`` forgets it, ``"-"``
        leaves it), and store ``language`` (a code; ``""``: unchanged) in the hash.
        """
        if marker is None:
            answer = self._run(self._save, (key,), (old or "", new, ttl))[0]
        else:
            answer = self._run(self._save, (key, marker, subscriber),
                               (old or "", new, ttl, keep, keep_ttl, LANGUAGE_FIELD, language))[0]
        if int(answer[0]):
            return _SAVED
        return SaveResult(False, answer[1] or None)

    def migrate(self, *, subscriber: str, history: str, outbox: str, session: str | None,
                expected: Standing, target: Profile, month: str, last_month: str,
                entry: dict, old_record: str | None, new_record: str,
                ttl: int, event: str, dropped: str | None = None) -> MigrateResult:
        """Migrate to ``target`` if the subscriber (and the session at key ``session``, unless
        None) are still as the decision saw them; one round trip.

        ``subscriber`` and ``history`` are the subscriber's keys; ``month`` and ``last_month``
        (``YYYY-MM``) name the count and the consumption checked; ``entry`` goes to the history
        as JSON; ``new_record`` replaces ``old_record`` at ``session`` with a TTL of ``ttl`` s,
        and the dropped-session marker at ``dropped`` (if given, with ``session``) is forgotten;
        ``event`` (JSON) goes to the stream ``outbox`` in the same step.
        """
        keys = ((subscriber, history, outbox) if session is None
                else (subscriber, history, outbox, session))
        if session is not None and dropped is not None:
            keys += (dropped,)
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
            ENTRY_FIELDS[EVENTS],
        )
        answer, *reached = self._run(self._migrate, keys, args, self._wait)
        outcome = MigrateOutcome(answer[0])
        if outcome is MigrateOutcome.APPLIED:
            if reached and reached[0] < self.min_replicas:
                return MigrateResult(outcome, replicated=False)
            return _APPLIED
        if outcome is MigrateOutcome.STALE_SESSION:
            return MigrateResult(outcome, session=answer[1] or None)
        return MigrateResult(outcome, standing=_standing_found(*answer[1:4]))

    def close_session(self, key: str, closed: str, dropped: str, ending: str,
                      digest: str, window: int) -> bool:
        """Move a session's record to ``closed`` and forget, or keep for ``window`` s, its
        dropped-session marker (``ending``: ``"end"``, ``"drop"`` or ``""``); True if it
        was live."""
        return bool(self._run(self._close, (key, closed, dropped), (ending, digest, window))[0])

    def _run(self, script, keys: tuple, args: tuple, then: tuple = ()) -> list:
        """Run a registered script by its SHA1, as loaded at start-up (``EVALSHA``, one round
        trip), followed in the same round trip by the commands ``then``; their replies. Only
        if Redis has lost the script (a restart) is it loaded again, then run."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return self._write(command, *then)
        except redis.exceptions.NoScriptError:
            pass  # refused, so not run: load it, and send it again
        script.sha = self.client.script_load(script.script)
        return self._write(command, *then)

    def run_pipelined(self, name: str, calls: Iterable[tuple[Sequence, Sequence]]) -> list:
        """Run queue script ``name`` once per ``(keys, args)`` of ``calls``, in one pipeline;
        their replies (:func:`ussd.store.queue_scripts.run_pipelined`: the scripts loaded
        again once if Redis has lost them, no call run twice)."""
        return run_pipelined(self.client, self.queue_scripts[name], list(calls), self.load)


def _standing_found(profile: str, count: str, consumption: str) -> Standing | None:
    """The subscriber's standing as the migration script found it; None if it has no profile.
    Only a lost race comes here, so ``Profile.parse`` rather than the hop's faster lookup."""
    known = Profile.parse(profile) if profile else None
    if known is None:
        return None
    return Standing(profile=known, migrations_this_month=int(count or 0),
                    consumed_last_month=int(consumption or 0))
