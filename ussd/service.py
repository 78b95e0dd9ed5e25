"""One hop of a USSD session, from any gateway: load, step the engine, save or migrate.

The gateways translate their dialect into a :class:`Hop` and the :class:`Reply` back; this
module is the only place that joins the pure engine to the store. A hop costs two Redis round
trips: the read, then the write (or the migration script, which writes the record in the same
atomic step as the migration). Both writes are conditional on the record the hop read, so a
replayed or racing copy of a hop answers as the first copy did and applies nothing twice
(docs/reliability.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from .accounts import MAX_MIGRATION_ATTEMPTS, Accounts, Asker  # the same bound for a hop
from .contract import End, Hop, Reply
from .engine import Migration, reply_of, step
from .engine import ended as dialogue_over
from .errors import (
    OutcomeUnknownError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
    UnknownSessionError,
    UssdError,
)
from .events import history_entry, migration_event
from .languages import Languages
from .menu import Menu
from .months import month_of, previous_month
from .observe import Observer, where_raised, without_numbers
from .outcomes import Outcomes, Seen
from .phone import mask_msisdn
from .render import render
from .reports import ended, refused
from .resume import opening, resumable
from .rules import Channel, Decision, Language, Profile, Standing
from .session import (
    Session,
    advance,
    first_inputs,
    hop_number,
    new_inputs,
    reopens,
    replayed,
)
from .settings import Settings
from .settle import settle
from .store import MigrateOutcome, SessionChange, Store

# The hop line and the audit line: ussd.observe. A hop's failures are logged here.
log = logging.getLogger("ussd.hop")


class UssdService:
    """The engine, the menu and the store, put together to answer hops."""

    def __init__(self, menu: Menu, store: Store, settings: Settings,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.menu = menu
        self.store = store
        self.settings = settings
        self.policy = settings.policy
        self.zone = settings.zone
        self.clock = clock
        self.observer = Observer(menu, settings)
        self.languages = Languages()  # for the screens answered without Redis
        self._months_cache: tuple[float | None, str, str] = (None, "", "")
        # The other channels (the API, ussd migrate): the same store, rules, clock and months.
        self.accounts = Accounts(store, self.policy, clock, self._months,
                                 settings.limits.unknown_outcome_wait)

    def handle(self, hop: Hop) -> Reply:
        """Answer one hop; a store outage gets the polite "unavailable" screen, never a crash."""
        started = time.perf_counter()
        try:
            reply, seen = self._handle(hop)
        except OutcomeUnknownError as error:
            # A migration sent, no answer, and none by sending it again (ussd/settle.py), or
            # not yet on its replicas: it may be applied, or lost yet. Not "unavailable": the
            # truth, in the subscriber's language.
            log.warning("migration outcome unknown on hop of %s (%s): told it is being "
                        "processed", mask_msisdn(hop.msisdn), error)
            reply = self.system_reply("processing", self.language_of(hop.msisdn))
            seen = Seen("pending", self.menu.system["processing"])
        except UnknownSessionError as error:  # only the session showed it: refused
            return self.refuse(hop.gateway, error, hop.msisdn, look_up=False)
        except StoreError as error:
            log.warning("store failure on hop of %s: %s", mask_msisdn(hop.msisdn),
                        without_numbers(str(error)))
            reply = self.system_reply("unavailable", self.language_of(hop.msisdn))
            seen = self.observer.failed("unavailable")
        except Exception as error:  # noqa: BLE001  (any bug: the polite END below, logged)
            # A bug must not reach the gateway as a 500 (it would retry, or show its own error
            # page): the same polite END, and where it failed in the log for us. Not the
            # exception's message: it may hold a key name, so a whole phone number.
            log.error("hop of %s failed: %s at %s", mask_msisdn(hop.msisdn),
                      type(error).__name__, where_raised(error))
            reply = self.system_reply("unavailable", self.language_of(hop.msisdn))
            seen = self.observer.failed("error")
        self.observer.hop(hop, reply, seen, time.perf_counter() - started)
        return reply

    def language_of(self, msisdn: str) -> Language:
        """The subscriber's language as this worker last saw it (French if never seen)."""
        return self.languages.of(msisdn)

    def stored_language(self, msisdn: str) -> Language:
        """The subscriber's language as stored (French for an unknown number, or no store)."""
        try:
            subscriber = self.store.hops.load_subscriber(msisdn, *self._months(self.clock()))
        except StoreError:
            return Language.FR  # a refusal matters more than its language
        return subscriber.language if subscriber is not None else Language.FR

    def system_reply(self, role: str, language: Language) -> Reply:
        """A system screen (``unavailable``, ``goodbye``...) in ``language``."""
        return render(self.menu, self.menu.system[role], language, {}, self.policy)

    def migrate(self, msisdn: str, target: Profile | str, channel: Channel,
                client: str | None = None) -> Decision:
        """Migrate a subscriber from another channel: the same rules, atomically.

        ``msisdn`` must be normalised; ``client`` names who asked (``cli``...), in the history
        and the audit line. Returns the decision; an approved one has been applied. The
        HTTP API's path too (:mod:`ussd.accounts`), which writes its own audit line.
        """
        outcome = self.accounts.migrate(msisdn, target, Asker(channel, client))
        if outcome.migration is not None:
            self.observer.migration_line(channel.value, msisdn, outcome.migration.source.value,
                                         outcome.migration.target.value, client=client)
        return outcome.decision

    def close(self, gateway: str, session_id: str, msisdn: str,
              dropped: bool | None = None) -> bool:
        """End a session the gateway reports as ended; True if it was still live.

        Its record is kept aside until its TTL runs out, so that a late copy of one of its
        hops is answered as before and never walks the session again; a ``dropped`` one may
        be resumed by a redial within the resume window (ussd/resume.py).
        """
        return self.store.hops.close_session(msisdn, gateway, session_id, dropped)

    def _months(self, now: datetime) -> tuple[str, str]:
        """This month and the last, in the operator's zone; worked out once a second."""
        second = now.timestamp() // 1 if now.tzinfo is not None else None
        cached = self._months_cache
        if second is None or cached[0] != second:
            month = month_of(now, self.zone)  # a naive ``now`` raises here, as it should
            cached = self._months_cache = (second, month, previous_month(month))
        return cached[1], cached[2]

    def _handle(self, hop: Hop) -> tuple[Reply, Seen]:
        now = self.clock()
        month, last_month = self._months(now)
        hops = self.store.hops
        read = hops.read(hop.msisdn, hop.gateway, hop.session_id, month, last_month)
        record, subscriber = read.record, read.subscriber
        wait = self.settings.limits.unknown_outcome_wait
        standing = subscriber.standing if subscriber else None
        if subscriber is not None:
            self.languages.remember(hop.msisdn, subscriber.language)
        if read.closed is not None and not hop.opens:
            # A late copy of a hop of a session the gateway has ended: never walked again.
            return self._replay(hop, Session.loads(read.closed), closed=True)
        if record is None and hop.needs_session:  # no dial of ours began it (ussd/contract.py)
            raise UnknownSessionError(f"no session for input {'*'.join(hop.inputs)[:40]!r}: "
                                      "another service's code, or the record lost")

        # Each turn answers from ``record``, the session as last read. Every write checks that
        # the record is still that one; when another hop of the session (a copy of this one,
        # most often) wrote first, the next turn answers from what it left: as a replay if it
        # already handled this hop. A lost race means someone else moved on, so turns are few.
        for _ in range(MAX_MIGRATION_ATTEMPTS):
            session = Session.loads(record) if record is not None else None
            if session is not None and reopens(hop) and dialogue_over(self.menu, session,
                                                                      self.policy):
                session = None  # dialled again on an id whose dialogue ended: a new session
            if session is None:  # a new session, or the resume screen over a dropped one
                pending = first_inputs(hop)
                start = opening(self.menu, standing, subscriber and subscriber.language,
                                read.dropped, pending, self.policy)
            else:
                start = session
                pending = new_inputs(session, hop)
                if pending is None:  # a replayed hop: answered as the first time, nothing applied
                    return self._replay(hop, session)
            current, migration, language = self._walk(start, pending, standing)
            current = advance(session, current, hop_number(hop, start))
            new = current.dumps()
            if migration is None:
                keep = resumable(self.menu, current, self.policy) if hops.resumes else None
                try:
                    (written, found), resent = settle(partial(
                        hops.save_session, read.session, record, new, keep, language), wait)
                except OutcomeUnknownError as error:  # only a screen was at stake: say so
                    raise StoreUnavailableError("session record: outcome unknown") from error
                if written or (resent and found == new):  # found: our first copy's, then
                    if language is not None:
                        self.languages.remember(hop.msisdn, language)
                    return (reply_of(self.menu, current, self.policy),
                            self.observer.outcomes.of(session, current))
                if found is None:  # the gateway closed the session meanwhile
                    return self._goodbye(start.language)
                record = found
                continue
            entry = history_entry(now, migration.expected.profile, migration.target,
                                  Channel.USSD, hop)
            event = migration_event(hop.msisdn, migration.expected, migration.target,
                                    Channel.USSD, hop.gateway, hop.session_id, now, month,
                                    subscriber.language)
            answer, resent = settle(partial(
                hops.migrate, hop.msisdn, expected=migration.expected,
                target=migration.target, month=month, last_month=last_month, entry=entry,
                event=event, session=SessionChange(read.session, record, new)), wait)
            applied = answer.outcome is MigrateOutcome.APPLIED
            if applied or (resent and answer.session == new):  # found: our first copy's
                self.observer.migration(Channel.USSD.value, hop.msisdn,
                                        migration.expected.profile.value, migration.target.value,
                                        gateway=hop.gateway, session_id=hop.session_id)
                if not answer.replicated or (not applied and self.settings.redis_min_replicas):
                    raise OutcomeUnknownError("applied, not yet known to be on "
                                              f"{self.settings.redis_min_replicas} replica(s)")
                return (reply_of(self.menu, current, self.policy),
                        self.observer.outcomes.of(session, current, migrated=True))
            if answer.outcome is MigrateOutcome.STALE_SUBSCRIBER:
                standing = answer.standing  # another session migrated meanwhile: decide again
                continue
            if answer.session is None:  # the gateway closed the session meanwhile
                return self._goodbye(start.language)
            record = answer.session  # STALE_SESSION: another copy of the hop got there first
        raise StoreConflictError(f"hop kept conflicting for {mask_msisdn(hop.msisdn)}")

    def _walk(self, session: Session, pending: tuple[str, ...], standing: Standing | None
              ) -> tuple[Session, Migration | None, Language | None]:
        """Step the engine through ``pending``: the record, the migration to apply and the
        language chosen (the last), if any.

        A migration is confirmed on a hop of its own: chained inputs (``#121*1*2*1#``, or
        ``2*1`` typed at once) may reach the confirmation screen but never confirm it; they
        stop there, and the screen asks.
        """
        language = None
        for text in pending:
            result = step(self.menu, session, text, standing, self.policy)
            if result.migration is not None:
                if len(pending) > 1:
                    return session, None, language
                return result.session, result.migration, language  # it ends the dialogue
            session, language = result.session, result.language or language
        return session, None, language

    def _goodbye(self, language: Language) -> tuple[Reply, Seen]:
        return (self.system_reply("goodbye", language),
                Outcomes.system(self.menu.system["goodbye"]))

    def _replay(self, hop: Hop, session: Session, closed: bool = False) -> tuple[Reply, Seen]:
        """A hop handled before: its first reply, from the record's window of recent hops.

        Older than the window (see ``session.REPLAY_WINDOW``), the current screen (the goodbye
        for a closed session): nothing is applied again either way.
        """
        shown = replayed(session, hop_number(hop, session))
        if shown is None:
            if closed:
                goodbye = self.menu.system["goodbye"]
                return self.system_reply("goodbye", session.language), Outcomes.replayed(goodbye)
            shown = session
        return reply_of(self.menu, shown, self.policy), Outcomes.replayed(shown.screen)

    def refuse(self, gateway: str, error: UssdError, raw_msisdn: object,
               look_up: bool = True) -> Reply:
        """The polite END for a gateway request we cannot serve, counted and logged (see
        ``ussd.reports``); in the subscriber's language when it names a subscriber: as stored
        (one Redis read), or as this worker remembers it when not to ``look_up`` (overload)."""
        msisdn = refused(gateway, error, raw_msisdn)
        if msisdn is None:
            return self.system_reply("invalid_request", Language.FR)
        language = self.stored_language(msisdn) if look_up else self.language_of(msisdn)
        return self.system_reply("invalid_request", language)

    def busy(self, hop: Hop, waited: float) -> Reply:
        """The fast "busy, try again" END of a hop this worker cannot serve in time (see
        ``ussd/overload.py``), counted and logged: no Redis call, a fraction of a hop."""
        reply = self.system_reply("busy", self.language_of(hop.msisdn))
        self.observer.hop(hop, reply, Seen("busy", self.menu.system["busy"]), waited)
        return reply

    def end(self, end: End, close: bool = True) -> None:
        """Forget a session the gateway reports as ended (see ``ussd.reports``); a malformed
        report is only counted. It never changes a subscriber. Under overload (``close``
        false) its record is left to expire with its TTL."""
        ended(end, self.close if close else lambda *_: "later")  # "later": not acted on now
