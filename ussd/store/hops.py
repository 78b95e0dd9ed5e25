"""The hop store: what one hop reads and writes, given domain values; it builds its own keys.
Each hop costs two round trips: one read (two commands sent together: the session record, the
record of a closed session and the subscriber's dropped-session marker, then the subscriber's
fields), then one conditional write (``scripts.SAVE_SCRIPT``: the new record, what it leaves
to resume and a language chosen, or ``scripts.MIGRATE_SCRIPT``: the migration and the record).
The read needs no snapshot: both writes compare what they overwrite with what the hop read,
and the migration script re-checks, in the same atomic step, everything the decision rested
on, and applies it only if nothing moved. The web and app channels migrate through the same
script, without a session. Each call's time, failures included, goes to the
``ussd_redis_seconds`` histogram by operation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, NamedTuple, NewType

import redis.exceptions

from .. import metrics
from ..rules import LANGUAGE_BY_CODE, PROFILE_BY_VALUE, Language, Profile, Standing
from .client import store_errors
from .keys import (
    EVENTS,
    LANGUAGE_FIELD,
    PROFILE_FIELD,
    KeySpace,
    bucket_of,
    consumption_field,
    digest_of,
    migrations_field,
)
from .scripts import MigrateResult, SaveResult, Scripts

# A live session as the store names it: what :meth:`HopStore.read` returns in ``session``, to
# hand back to ``save_session`` and ``migrate``. Callers never look inside (it is its key), so
# a hop builds it once.
SessionRef = NewType("SessionRef", str)


@dataclass(frozen=True)
class Subscriber:
    """A subscriber as one hop sees it: the language, and the figures of this month and the
    last."""

    language: Language
    standing: Standing


class HopRead(NamedTuple):
    """What a hop reads before stepping: its session's record (None if none), the subscriber
    (None if unknown), and ``session``, the ref to write the record back with.

    ``closed`` is the record of a session the gateway has reported ended (then ``record`` is
    None): a late copy of one of its hops is answered from it, never walked again.
    ``dropped`` is the record of the subscriber's latest dialogue not yet at a result, kept to
    resume (None if none, or when the store keeps none: ``resume_window`` 0).
    """

    record: str | None
    closed: str | None
    subscriber: Subscriber | None
    session: SessionRef
    dropped: str | None = None


class SessionChange(NamedTuple):
    """A USSD session's part in a migration: its ref (from :meth:`HopStore.read`), its record
    as read (None: none yet) and the record to write with the migration."""

    ref: SessionRef
    old: str | None
    new: str


class HopStore:
    """Sessions and subscribers as the hops (and the web and app channels) read and write them.

    Every method raises StoreUnavailableError when Redis cannot be reached, StoreError when it
    refuses a command, and ValueError for an MSISDN that is not normalised. With a
    ``resume_window`` (seconds, 0: none), each session write also keeps what the dialogue
    leaves to resume (see ussd/resume.py), and each read fetches it.
    """

    def __init__(self, client: Any, keys: KeySpace, scripts: Scripts,
                 send: Callable[..., list], session_ttl: int, resume_window: int = 0):
        self.redis = client
        self.keys = keys
        self.session_ttl = session_ttl
        self.resume_window = resume_window
        self._scripts = scripts
        self._send = send

    @property
    def resumes(self) -> bool:
        """True when dropped dialogues are kept to resume."""
        return self.resume_window > 0

    def read(self, msisdn: str, gateway: str, session_id: str, month: str,
             last_month: str) -> HopRead:
        """The session record, or the closed one, and the subscriber, in one round trip.

        ``month`` is this month and ``last_month`` the last (``YYYY-MM``). Plain commands, not
        a script: Redis runs them in about 10 us less than a script doing the same
        (bench/README.md); both session keys in one ``MGET``. On a cluster they go to the one
        master of the subscriber's hash tag.
        """
        keys = self.keys
        session = keys.session(msisdn, gateway, session_id)
        fields = _standing_fields(month, last_month)
        names = (session, keys.closed_session(session))
        if self.resume_window:
            names += (keys.dropped_session(msisdn),)
        started = perf_counter()
        try:
            with store_errors:
                records, values = self._send(("MGET", *names),
                                             ("HMGET", keys.subscriber(msisdn), *fields))
        finally:
            metrics.record_redis("read", perf_counter() - started)
        record, closed = records[0], records[1]
        dropped = records[2].partition(" ")[2] if self.resume_window and records[2] else None
        return HopRead(record, closed if record is None else None, _subscriber(*values), session,
                       dropped)

    def load_subscriber(self, msisdn: str, month: str, last_month: str) -> Subscriber | None:
        """The subscriber as the rules see it in ``month`` (``YYYY-MM``, after ``last_month``),
        or None if unknown."""
        started = perf_counter()
        try:
            with store_errors:
                fields = self.redis.hmget(self.keys.subscriber(msisdn),
                                          _standing_fields(month, last_month))
        finally:
            metrics.record_redis("load", perf_counter() - started)
        return _subscriber(*fields)

    def save_session(self, session: SessionRef, old: str | None, new: str,
                     resumable: str | None = None,
                     language: Language | None = None) -> SaveResult:
        """Write the session record ``new`` over ``old`` (None: no record yet), with its TTL.

        In the same step: ``resumable``, the record the dialogue leaves to resume (None:
        nothing, what was kept is forgotten), kept for the session's TTL and the resume
        window (when the store keeps any); ``language``, the subscriber's choice, stored.
        Returns ``SaveResult(True, None)``, or ``(False, found)`` when another hop of the
        session wrote first: ``found`` is the record it left (None if the session is gone).
        One round trip.
        """
        scripts, ttl, window = self._scripts, self.session_ttl, self.resume_window
        started = perf_counter()
        try:
            with store_errors:
                if not window and language is None:
                    return scripts.save_session(session, old, new, ttl)
                marker, subscriber = self.keys.beside_session(session)
                keep = "-"
                if window:
                    keep = f"{digest_of(session)} {resumable}" if resumable is not None else ""
                return scripts.save_session(
                    session, old, new, ttl, marker=marker, subscriber=subscriber, keep=keep,
                    keep_ttl=ttl + window, language=language.value if language else "")
        finally:
            metrics.record_redis("save", perf_counter() - started)

    def migrate(self, msisdn: str, *, expected: Standing, target: Profile, month: str,
                last_month: str, entry: dict, event: dict,
                session: SessionChange | None = None) -> MigrateResult:
        """Migrate to ``target`` atomically if the subscriber (and the session) are as the
        decision saw them, and append ``event`` to the outbox in the same step; one round trip.

        ``expected`` is the standing the decision rested on, in ``month`` (``YYYY-MM``, after
        ``last_month``); ``entry`` the history line (JSON-able); ``event`` the billing event
        (JSON-able, see ``ussd.events``). ``session`` is the USSD session's part, written in
        the same step; with none (web, app) only the subscriber is checked.
        """
        keys = self.keys
        common = {
            "subscriber": keys.subscriber(msisdn), "history": keys.history(msisdn),
            "outbox": keys.queue(EVENTS, bucket_of(msisdn)), "expected": expected,
            "target": target, "month": month, "last_month": last_month, "entry": entry,
            "ttl": self.session_ttl,
            "event": json.dumps(event, separators=(",", ":"), ensure_ascii=False),
        }
        started = perf_counter()
        try:
            with store_errors:
                if session is None:
                    return self._scripts.migrate(session=None, old_record=None, new_record="",
                                                 **common)
                return self._scripts.migrate(
                    session=session.ref, old_record=session.old, new_record=session.new,
                    dropped=keys.dropped_session(msisdn) if self.resume_window else None,
                    **common)
        finally:
            metrics.record_redis("migrate", perf_counter() - started)

    def close_session(self, msisdn: str, gateway: str, session_id: str,
                      dropped: bool | None = None) -> bool:
        """Retire a session the gateway says has ended; True if it was live.

        The record moves to its ``closed`` key for the rest of its TTL, so that a late copy of
        one of its hops is answered from it and cannot start the session over. When the store
        keeps dialogues to resume and the marker is this session's: ``dropped`` True (a
        time-out, a network failure) keeps it for the resume window from now, False (the
        subscriber's own end, or after our END) forgets it, None leaves it.
        """
        keys = self.keys
        session = keys.session(msisdn, gateway, session_id)
        started = perf_counter()
        try:
            with store_errors:
                if self.resume_window:
                    return self._scripts.close_session(
                        session, keys.closed_session(session), keys.dropped_session(msisdn),
                        _ENDINGS[dropped], digest_of(session), self.resume_window)
                try:
                    return bool(self.redis.rename(session, keys.closed_session(session)))
                except redis.exceptions.ResponseError:  # no such key: expired, or closed already
                    return False
        finally:
            metrics.record_redis("close", perf_counter() - started)


# How the gateway's report of an end reaches the close script (End.dropped -> ARGV[1]).
_ENDINGS = {True: "drop", False: "end", None: ""}


def _standing_fields(month: str, last_month: str) -> list[str]:
    """The subscriber's fields the rules need, in the order ``_subscriber`` takes them."""
    return [PROFILE_FIELD, LANGUAGE_FIELD, consumption_field(last_month), migrations_field(month)]


def _subscriber(profile, language, consumed, count) -> Subscriber | None:
    # Profile.parse only for a value written some other way than by this store.
    known = PROFILE_BY_VALUE.get(profile)
    if known is None and profile:
        known = Profile.parse(profile)
    if known is None:
        return None
    return Subscriber(
        language=LANGUAGE_BY_CODE.get(language, Language.FR),
        standing=Standing(
            profile=known,
            migrations_this_month=int(count or 0),
            consumed_last_month=int(consumed or 0),
        ),
    )
