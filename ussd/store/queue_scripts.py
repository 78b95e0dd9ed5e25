"""The outbox's queue scripts, the consumption script and the subscribers' load, each with its
``KEYS``/``ARGV`` header (registered by :class:`ussd.store.scripts.Scripts`), and the two
ways they are run: :func:`run_pipelined` (a redis-py pipeline, no call sent twice) for
:class:`ussd.store.outbox.Outbox` and ``store/consumption.py``, :func:`send_loaded` (the
hops' send path, for a script that may run twice) for ``store/admin.py``'s subscribers."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis.exceptions

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
# ARGV[6] attempts, ARGV[7] when (ISO 8601), ARGV[8..10] the dead letter's fields for these
#   three (the names, from keys.py)
# Returns 1, or 0 when the entry was acknowledged already (another relay delivered it).
BURY_SCRIPT = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[3], '*', ARGV[3], ARGV[4], ARGV[8], ARGV[5], ARGV[9], ARGV[6],
           ARGV[10], ARGV[7])
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

# Subscribers loaded from a file (admin.py, for ussd seed), those of one bucket (one slot).
# KEYS[i] subscriber i's hash
# ARGV[1] the profile field, ARGV[2] the language field (the names, from keys.py), ARGV[3]
#   "replace" to overwrite a stored subscriber's profile and language, "" to leave them as
#   they are; then subscriber i's profile, ARGV[2i+2], and language, ARGV[2i+3]
# Returns how many were added: those with no profile. The others were stored already, and may
# have migrated or chosen a language since the file was made: left as they are, or overwritten.
# Run twice, it writes nothing more (what it added is then stored, and kept or written again).
SUBSCRIBERS_SCRIPT = """
local added = 0
for i = 1, #KEYS do
  local stored = redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1
  if not stored then
    added = added + 1
  end
  if not stored or ARGV[3] == 'replace' then
    redis.call('HSET', KEYS[i], ARGV[1], ARGV[2 * i + 2], ARGV[2], ARGV[2 * i + 3])
  end
end
return added
"""


QUEUE_SCRIPTS = {
    "ack": ACK_SCRIPT, "bury": BURY_SCRIPT, "touch": TOUCH_SCRIPT, "read": READ_SCRIPT,
    "redrive": REDRIVE_SCRIPT, "consumption": CONSUMPTION_SCRIPT,
    "subscribers": SUBSCRIBERS_SCRIPT,
}


def run_pipelined(client: Any, script: Any, calls: list[tuple[Sequence, Sequence]],
                  load: Callable[[], None]) -> list:
    """Run ``script`` (registered on ``client``) once per ``(keys, args)`` of ``calls``, in one
    pipeline; their replies, in order. The calls Redis refused because it had lost the script
    (a restart; on a cluster, perhaps one master's) are sent again after ``load()``, once, and
    only they: none runs twice (a consumption increment counted on one master is not sent
    again because another master had lost its scripts). Raises the first other error, as a
    pipeline does, and a second NOSCRIPT."""
    replies: list = [None] * len(calls)
    pending: Sequence[int] = range(len(calls))
    for last_try in (False, True):
        pipe = client.pipeline(transaction=False)
        for index in pending:
            keys, args = calls[index]
            # execute_command: a cluster's pipeline refuses its evalsha() method, not the
            # command, and each script here touches one slot.
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        lost = []
        for index, reply in zip(pending, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError) and not last_try:
                lost.append(index)
            elif isinstance(reply, Exception):
                raise reply
            else:
                replies[index] = reply
        if not lost:
            return replies
        load()
        pending = lost
    raise AssertionError("unreachable")  # pragma: no cover


def send_loaded(send: Callable[..., list], script: Any, calls: Iterable[tuple[Sequence, Sequence]],
                load: Callable[[], None]) -> list:
    """Run ``script`` once per ``(keys, args)`` of ``calls`` through ``send`` (one round trip:
    ``client.Commands.send``, a third of a redis-py pipeline's cost per command); their
    replies. Refused because Redis had lost the script (a restart, SCRIPT FLUSH), every call is
    sent again after ``load()``: only for a script that may run twice (the subscribers' load),
    as ``send`` cannot tell which calls, if any, ran before the loss."""
    commands = [("EVALSHA", script.sha, len(keys), *keys, *args) for keys, args in calls]
    try:
        return send(*commands)
    except redis.exceptions.NoScriptError:
        load()
        return send(*commands)
