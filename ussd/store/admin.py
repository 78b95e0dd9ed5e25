"""The operator's operations on the store: load subscribers and consumption, forget subscribers,
show what is stored for one (``ussd show``) and a live session (the browser simulator), prune
old months (``ussd prune``) and move the layout before the buckets (``ussd move-to-buckets``).

None of them is on a hop's path: they use the client as redis-py offers it, the bulk ones
through pipelines of 500 to 1000 rows per round trip. Every method raises
StoreUnavailableError when Redis cannot be reached, StoreError when it refuses a command, and
ValueError for an MSISDN that is not normalised.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..months import parse_month
from ..rules import Language, Profile
from .client import store_errors
from .keys import (
    CONSUMPTION_PREFIX,
    LANGUAGE_FIELD,
    MIGRATIONS_PREFIX,
    PROFILE_FIELD,
    KeySpace,
    bucket_of,
    consumption_field,
    migrations_field,
    month_of_field,
)
from .queue_scripts import send_loaded

if TYPE_CHECKING:
    from .scripts import Scripts


@dataclass
class SubscribersReport:
    """What :meth:`Admin.add_subscribers` did: subscribers added, and those stored already
    (left as they were, or overwritten when asked)."""

    added: int = 0
    stored: int = 0


@dataclass
class PruneReport:
    """What :meth:`Admin.prune_months` found: subscriber hashes visited (SCAN may visit one
    twice), those that had fields of old months, and those fields."""

    subscribers: int = 0
    changed: int = 0
    fields: int = 0


@dataclass
class MoveReport:
    """What :meth:`Admin.move_to_buckets` did with the keys of the layout before the buckets:
    moved (or would move), left where today's key exists already, and left unrecognised (no
    subscriber's hash, history or session under a normalised number: told by count only, as
    their names may hold one)."""

    moved: int = 0
    clashes: int = 0
    unrecognised: int = 0


class Admin:
    """The operator's operations on the subscribers of one deployment (its key space)."""

    def __init__(self, client: Any, keys: KeySpace, scripts: Scripts,
                 send: Callable[..., list] | None = None):
        self.redis = client
        self.keys = keys
        self._scripts = scripts
        # Bulk writes and checks go the hops' way (client.Commands.send): on one server,
        # a thousand commands packed by hiredis and sent at once, a third of what a redis-py
        # pipeline costs per command (ussd seed: bench/seed.py).
        self._send = send or _pipelined(client)

    def put_subscribers(self, rows: Iterable[tuple[str, Profile, Language]]) -> int:
        """Create or overwrite subscribers (``msisdn, profile, language``), for the demo and
        the tests (``ussd seed``: :meth:`add_subscribers`); returns how many rows were written."""
        return self._write(rows, lambda row: ("HSET", self.keys.subscriber(row[0]), PROFILE_FIELD,
                                              row[1].value, LANGUAGE_FIELD, row[2].value))

    def add_subscribers(self, rows: Iterable[tuple[str, Profile, Language]],
                        replace: bool = False) -> SubscribersReport:
        """Store the subscribers (``msisdn, profile, language``) not stored yet (no profile);
        one stored already keeps its profile and language (migrated, or chosen, since the file
        was made), unless ``replace``: then they are overwritten. Atomic per subscriber: one
        script per bucket, 1000 rows per round trip. Should a round trip be sent twice (the
        connection lost, the script lost), its subscribers added the first time are counted
        as stored already."""
        report = SubscribersReport()
        mode = "replace" if replace else ""
        with store_errors:
            for chunk in _chunks(rows, 1000):
                calls: dict[str, tuple[list, list]] = defaultdict(
                    lambda: ([], [PROFILE_FIELD, LANGUAGE_FIELD, mode]))
                for msisdn, profile, language in chunk:
                    keys, args = calls[bucket_of(msisdn)]
                    keys.append(self.keys.subscriber(msisdn))
                    args += (profile.value, language.value)
                added = sum(send_loaded(self._send, self._scripts.queue_scripts["subscribers"],
                                        calls.values(), self._scripts.load))
                report.added += added
                report.stored += len(chunk) - added
        return report

    def put_consumption(self, rows: Iterable[tuple[str, str, int]]) -> int:
        """Record the credit each subscriber consumed in a month (``msisdn, YYYY-MM, F CFA``);
        returns how many rows were written."""
        return self._write(rows, lambda row: ("HSET", self.keys.subscriber(row[0]),
                                              consumption_field(row[1]), row[2]))

    def put_history(self, msisdn: str, month: str, entries: list[dict],
                    profile: Profile) -> None:
        """Record migrations of ``month`` made before this store knew the subscriber (the
        demo's): the history ``entries``, the month's count and the ``profile`` they led to,
        and no billing event. The outbox is for the migrations applied here (the migration
        script): these were billed, if ever, where they were made."""
        with store_errors:
            self._send(("HSET", self.keys.subscriber(msisdn), PROFILE_FIELD, profile.value,
                        migrations_field(month), len(entries)),
                       ("RPUSH", self.keys.history(msisdn),
                        *(json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
                          for entry in entries)))

    def known_subscribers(self, msisdns: list[str]) -> set[str]:
        """Which of these numbers are subscribers (have a profile); one round trip."""
        with store_errors:
            found = self._send(*[("HEXISTS", self.keys.subscriber(msisdn), PROFILE_FIELD)
                                 for msisdn in msisdns]) if msisdns else []
        return {msisdn for msisdn, known in zip(msisdns, found, strict=True) if known}

    def reset_subscribers(self, msisdns: list[str]) -> None:
        """Forget these subscribers' hash and history (the demo starts afresh); their live
        sessions, if any, expire with their TTL."""
        with store_errors:
            for msisdn in msisdns:
                self.redis.delete(self.keys.subscriber(msisdn), self.keys.history(msisdn))

    def holds_data(self) -> bool:
        """True when any key of this deployment (under its prefix) is stored, on any master."""
        with store_errors:
            for _ in self.redis.scan_iter(match=self.keys.every_key_pattern(), count=1000):
                return True
        return False

    def forget_everything_of(self, msisdns: Iterable[str]) -> int:
        """Delete every key of these subscribers (profile, history, sessions, closed ones);
        returns how many keys were deleted. Nobody else's keys are touched."""
        deleted = 0
        with store_errors:
            for msisdn in msisdns:
                pattern = self.keys.subscriber_keys_pattern(msisdn)
                keys = list(self.redis.scan_iter(match=pattern, count=1000))
                if keys:  # one hash tag: one slot of a cluster, one DEL
                    deleted += self.redis.delete(*keys)
        return deleted

    def describe(self, msisdn: str, month: str) -> dict | None:
        """Everything stored for a subscriber as plain data, ``month`` (``YYYY-MM``) being this
        month; None if unknown."""
        with store_errors:
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

    def live_session(self, msisdn: str, gateway: str, session_id: str) -> tuple[str | None, int]:
        """A session's live record and the seconds its TTL leaves it (None and 0 if there is
        none): what the browser simulator shows a tester after each hop."""
        key = self.keys.session(msisdn, gateway, session_id)
        with store_errors:
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(key)
            pipe.ttl(key)
            record, ttl = pipe.execute()
        return record, max(int(ttl), 0) if record is not None else 0

    def move_to_buckets(self, dry_run: bool = False) -> MoveReport:
        """Move the subscribers' hashes and histories written under the layout before the
        buckets (``{+225...}`` tags, before the outbox) to their keys now. Each key is copied
        whole (``DUMP``/``RESTORE``: a cluster cannot rename across slots) then deleted; one
        whose new key exists is left for the operator to look at, and so is one matching the
        layout's pattern that it never wrote (counted). Sessions are left to expire."""
        report = MoveReport()
        with store_errors:
            for key in self.redis.scan_iter(match=self.keys.old_layout_pattern(), count=1000):
                if (found := self.keys.old_layout_key(key)) is None:
                    report.unrecognised += 1
                    continue
                msisdn, kind = found
                if kind == "session":
                    continue
                new = self.keys.subscriber(msisdn) if kind == "sub" else self.keys.history(msisdn)
                if self.redis.exists(new):
                    report.clashes += 1
                    continue
                if not dry_run:
                    self.redis.restore(new, 0, self.redis.dump(key))
                    self.redis.delete(key)
                report.moved += 1
        return report

    def prune_months(self, keep_from: str, dry_run: bool = False) -> PruneReport:
        """Delete every subscriber's consumption and migration counts of the months before
        ``keep_from`` (``YYYY-MM``; ValueError if not a month); with ``dry_run``, only count
        them.

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
        with store_errors:
            keys = self.redis.scan_iter(match=self.keys.subscriber_pattern(), count=1000)
            for chunk in _chunks(keys, 500):
                pipe = self.redis.pipeline(transaction=False)
                for key in chunk:
                    pipe.hkeys(key)
                stale = [(key, old(fields))
                         for key, fields in zip(chunk, pipe.execute(), strict=True)]
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

    def _write(self, rows: Iterable, command: Callable[[tuple], tuple]) -> int:
        """Send ``command(row)`` for every row, 1000 rows per round trip; the row count."""
        count = 0
        with store_errors:
            for chunk in _chunks(rows, 1000):
                self._send(*[command(row) for row in chunk])
                count += len(chunk)
        return count


def _pipelined(client: Any) -> Callable[..., list]:
    """``send(*commands)`` through a redis-py pipeline (when no faster path is handed in)."""

    def send(*commands: tuple) -> list:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()

    return send


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    """``rows`` in lists of ``size`` (the last one shorter)."""
    chunk: list = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
