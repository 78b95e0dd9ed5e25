"""The outbox's queues as the relays and the operator see them: read, hold, acknowledge, bury.

Two queues, each one stream per bucket (``keys.py``): ``events`` (the outbox: one entry per
applied migration, written by the migration script) and ``sms`` (one receipt per event billing
acknowledged, written by the acknowledgement itself). Every relay reads them with the consumer
group ``relay``: an entry it reads is *held* by it (the group's pending list) until it is
acknowledged (delivered: deleted, and for an event its receipt queued, in one script) or
buried (moved to the bucket's dead letters with the reason). A relay renews its hold before
every call it makes for an entry (``touch``); an entry whose holder went quiet for longer than
``USSD_RELAY_CLAIM_AFTER`` (a relay that died) is taken over by another (``claim``). Attempts
and the last error of each waiting entry are kept beside it (``tries``), so that counting
goes on across relays and ``ussd events pending`` can say why an entry waits.

On one Redis server a relay blocks on all 256 streams in one ``XREADGROUP``; on a cluster (or
the embedded store) it polls them, one script per stream, pipelined per master.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from .client import store_errors
from .keys import ALL_BUCKETS, DEAD_FIELDS, ENTRY_FIELDS, RELAY_GROUP, SMS, KeySpace
from .scripts import Scripts


@dataclass(frozen=True)
class Entry:
    """One entry of a queue: where it is, and its body (JSON) exactly as it was written."""

    queue: str
    bucket: str
    entry_id: str
    body: str

    @property
    def event_id(self) -> str:
        """The ``id`` inside the body: the event's, the same on every attempt."""
        return json.loads(self.body)["id"]


@dataclass(frozen=True)
class Waiting:
    """An entry not delivered yet, and why (``ussd events pending``)."""

    entry: Entry
    holder: str | None  # the relay holding it; None: no relay has read it yet
    attempts: int
    error: str | None
    failed_at: str | None


@dataclass(frozen=True)
class DeadLetter:
    """An entry given up on, with the reason, the attempts made and when."""

    entry: Entry
    reason: str
    attempts: int
    at: str


class Outbox:
    """The queues of one deployment. Every method raises StoreUnavailableError when Redis
    cannot be reached and StoreError when it refuses a command."""

    def __init__(self, client: Any, keys: KeySpace, scripts: Scripts):
        self.redis = client
        self.keys = keys
        self._scripts = scripts
        self.blocking = type(client) is redis.Redis  # one server: one blocking read for all

    def create_groups(self) -> None:
        """Make the relays' consumer group on every stream (idempotent), from its start: an
        event written before any relay ran is read all the same."""
        with store_errors:
            pipe = self.redis.pipeline(transaction=False)
            for queue in ENTRY_FIELDS:
                for bucket in ALL_BUCKETS:
                    pipe.xgroup_create(self.keys.queue(queue, bucket), RELAY_GROUP, id="0",
                                       mkstream=True)
            for answer in pipe.execute(raise_on_error=False):
                if isinstance(answer, Exception) and "BUSYGROUP" not in str(answer):
                    raise answer

    def read(self, queues: tuple[str, ...], consumer: str, count: int,
             block_ms: int) -> list[Entry]:
        """New entries of ``queues`` for ``consumer`` (at most ``count`` per stream), now held
        by it; on one server waits up to ``block_ms`` for the first, elsewhere returns at once."""
        streams = [(queue, bucket, self.keys.queue(queue, bucket))
                   for queue in queues for bucket in ALL_BUCKETS]
        with store_errors:
            if self.blocking:
                found = dict(self.redis.xreadgroup(
                    RELAY_GROUP, consumer, {key: ">" for _, _, key in streams}, count=count,
                    block=block_ms or None) or [])  # BLOCK 0 would wait for ever
            else:  # the script's reply is the raw one: [[stream, [[id, [field, value...]]]]]
                replies = self._scripts.run_pipelined(
                    "read", [((key,), (RELAY_GROUP, consumer, count)) for _, _, key in streams])
                found = {stream: [(entry_id, dict(zip(flat[::2], flat[1::2], strict=True)))
                                  for entry_id, flat in messages]
                         for reply in replies for stream, messages in _streams(reply)}
        return [Entry(queue, bucket, entry_id, fields[ENTRY_FIELDS[queue]])
                for queue, bucket, key in streams for entry_id, fields in found.get(key, ())]

    def claim(self, queue: str, consumer: str, idle_ms: int, count: int = 100) -> list[Entry]:
        """Entries held by another relay that has not renewed its hold for ``idle_ms``: now
        held by ``consumer``."""
        taken = []
        with store_errors:
            pipe = self.redis.pipeline(transaction=False)
            for bucket in ALL_BUCKETS:
                pipe.xautoclaim(self.keys.queue(queue, bucket), RELAY_GROUP, consumer, idle_ms,
                                "0-0", count=count)
            for bucket, answer in zip(ALL_BUCKETS, pipe.execute(), strict=True):
                taken.extend(Entry(queue, bucket, entry_id, fields[ENTRY_FIELDS[queue]])
                             for entry_id, fields in answer[1] if fields)
        return taken

    def touch(self, entry: Entry, consumer: str) -> bool:
        """Renew ``consumer``'s hold on ``entry``; False when it no longer holds it."""
        with store_errors:
            [held] = self._scripts.run_pipelined(
                "touch", [((self._stream(entry),), (RELAY_GROUP, consumer, entry.entry_id))])
        return bool(held)

    def hand_back(self, entries: Iterable[Entry], consumer: str, idle_ms: int) -> None:
        """Let any relay take these entries at once (a relay stopping with them undelivered)."""
        with store_errors:
            pipe = self.redis.pipeline(transaction=False)
            for entry in entries:
                pipe.xclaim(self._stream(entry), RELAY_GROUP, consumer, 0, [entry.entry_id],
                            idle=idle_ms, justid=True)
            pipe.execute()

    def ack(self, entry: Entry, receipt: str | None = None) -> bool:
        """Delivered: delete ``entry`` and, for an event, queue its ``receipt`` (JSON) in the
        same step; False when it had been acknowledged already (nothing queued then)."""
        keys = [self._stream(entry), self._tries(entry)]
        args = [RELAY_GROUP, entry.entry_id, ENTRY_FIELDS[SMS], receipt or ""]
        if receipt is not None:
            keys.append(self.keys.queue(SMS, entry.bucket))
        with store_errors:
            [acked] = self._scripts.run_pipelined("ack", [(keys, args)])
        return bool(acked)

    def record_failure(self, entry: Entry, attempts: int, error: str, at: str) -> None:
        """Remember a failed attempt (counted on by whichever relay tries next)."""
        with store_errors:
            self.redis.hset(self._tries(entry), entry.entry_id,
                            json.dumps({"attempts": attempts, "error": error, "at": at}))

    def attempts(self, entries: list[Entry]) -> list[int]:
        """The attempts already made at each entry (0 for one never tried)."""
        if not entries:
            return []
        with store_errors:
            pipe = self.redis.pipeline(transaction=False)
            for entry in entries:
                pipe.hget(self._tries(entry), entry.entry_id)
            found = pipe.execute()
        return [json.loads(tries)["attempts"] if tries else 0 for tries in found]

    def bury(self, entry: Entry, reason: str, attempts: int, at: str) -> bool:
        """Give up on ``entry``: to the bucket's dead letters with ``reason``; False when it had
        been delivered meanwhile by another relay (then it stays delivered)."""
        keys = [self._stream(entry), self._tries(entry), self.keys.dead(entry.queue, entry.bucket)]
        args = [RELAY_GROUP, entry.entry_id, ENTRY_FIELDS[entry.queue], entry.body, reason,
                attempts, at, *DEAD_FIELDS]
        with store_errors:
            [buried] = self._scripts.run_pipelined("bury", [(keys, args)])
        return bool(buried)

    def forget_consumer(self, consumer: str) -> None:
        """Drop a stopping relay's name from the groups (it holds nothing any more)."""
        with store_errors:
            pipe = self.redis.pipeline(transaction=False)
            for queue in ENTRY_FIELDS:
                for bucket in ALL_BUCKETS:
                    pipe.xgroup_delconsumer(self.keys.queue(queue, bucket), RELAY_GROUP, consumer)
            pipe.execute(raise_on_error=False)

    def waiting(self, queue: str) -> Iterator[Waiting]:
        """Every entry not delivered yet, oldest first within each bucket, with its holder and
        its last error (``ussd events pending``)."""
        for bucket in ALL_BUCKETS:
            stream, tries = self.keys.queue(queue, bucket), self.keys.tries(queue, bucket)
            with store_errors:
                pipe = self.redis.pipeline(transaction=False)
                pipe.xrange(stream)
                pipe.hgetall(tries)
                pipe.xpending_range(stream, RELAY_GROUP, "-", "+", 10_000)
                entries, failures, held = pipe.execute(raise_on_error=False)
            if isinstance(entries, Exception) or not entries:
                continue
            holders = ({} if isinstance(held, Exception)
                       else {h["message_id"]: h["consumer"] for h in held})
            for entry_id, fields in entries:
                failure = json.loads(failures[entry_id]) if entry_id in failures else {}
                yield Waiting(Entry(queue, bucket, entry_id, fields[ENTRY_FIELDS[queue]]),
                              holders.get(entry_id), failure.get("attempts", 0),
                              failure.get("error"), failure.get("at"))

    def dead(self, queue: str) -> Iterator[DeadLetter]:
        """Every dead letter of ``queue``, oldest first within each bucket."""
        for bucket in ALL_BUCKETS:
            with store_errors:
                letters = self.redis.xrange(self.keys.dead(queue, bucket))
            for entry_id, fields in letters:
                reason, attempts, at = (fields[name] for name in DEAD_FIELDS)
                yield DeadLetter(Entry(queue, bucket, entry_id, fields[ENTRY_FIELDS[queue]]),
                                 reason, int(attempts), at)

    def redrive(self, letters: Iterable[DeadLetter]) -> int:
        """Put dead letters back in their queue, as first written; how many went back."""
        done = 0
        for letter in letters:
            entry = letter.entry
            with store_errors:
                [moved] = self._scripts.run_pipelined("redrive", [(
                    (self.keys.dead(entry.queue, entry.bucket), self._stream(entry)),
                    (entry.entry_id, ENTRY_FIELDS[entry.queue]))])
            done += moved
        return done

    def stats(self, queue: str, now_ms: int) -> tuple[int, float, int]:
        """``(waiting, age of the oldest waiting entry in seconds, dead letters)``."""
        with store_errors:
            pipe = self.redis.pipeline(transaction=False)
            for bucket in ALL_BUCKETS:
                pipe.xlen(self.keys.queue(queue, bucket))
                pipe.xrange(self.keys.queue(queue, bucket), count=1)
                pipe.xlen(self.keys.dead(queue, bucket))
            answers = pipe.execute()
        lengths, firsts, dead = answers[0::3], answers[1::3], answers[2::3]
        oldest = min((int(first[0][0].split("-")[0]) for first in firsts if first),
                     default=now_ms)
        return sum(lengths), max(now_ms - oldest, 0) / 1000, sum(dead)

    def _stream(self, entry: Entry) -> str:
        return self.keys.queue(entry.queue, entry.bucket)

    def _tries(self, entry: Entry) -> str:
        return self.keys.tries(entry.queue, entry.bucket)


def _streams(reply: list | None) -> list:
    """A script's XREADGROUP reply as ``[[stream, entries]]``: the embedded store (fakeredis)
    returns one stream's ``[stream, entries]`` unwrapped."""
    if not reply:
        return []
    return [reply] if isinstance(reply[0], str) else reply
