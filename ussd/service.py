"""One hop of a USSD session, from any gateway: load, step the engine, save or migrate.

The gateways translate their dialect into a :class:`Hop` and the :class:`Reply` back; this
module is the only place that joins the pure engine to the store. A hop costs two Redis round
trips: the pipelined read, then the write (or the migration script, which writes the record
in the same atomic step as the migration).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from . import metrics
from .engine import Session, begin, reply_of, step
from .errors import StoreConflictError, StoreError
from .menu import Menu
from .months import month_of, previous_month
from .phone import mask_msisdn
from .render import Reply, render
from .rules import Channel, Decision, Language, Profile, decide
from .settings import Settings
from .store import MigrationResult, Store

log = logging.getLogger("ussd.hop")

# Racing sessions of one subscriber can each make the migration script find the subscriber
# moved on; every such loss means another migration succeeded, so the cap bounds the retries.
MAX_MIGRATION_ATTEMPTS = 8


@dataclass(frozen=True)
class Hop:
    """One request of a gateway, in the engine's terms.

    ``inputs`` are the subscriber's inputs: every one since the dial when ``cumulative`` (the
    gateway resends them all, as Africa's Talking does), else only this hop's. ``sequence``
    numbers the hop within the session, so a retried hop is recognised (None: the gateway
    gives no way to tell). ``dialled`` are the inputs chained in the dialled code itself
    (``#121*1*2#`` gives ``("1", "2")``), walked on the first hop before ``inputs``.
    """

    gateway: str
    session_id: str
    msisdn: str
    inputs: tuple[str, ...] = ()
    cumulative: bool = False
    sequence: int | None = None
    dialled: tuple[str, ...] = ()


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

    def handle(self, hop: Hop) -> Reply:
        """Answer one hop; a store outage gets the polite "unavailable" screen, never a crash."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            reply = self._handle(hop)
        except StoreError as error:
            outcome = "unavailable"
            log.warning("store failure on hop of %s: %s", mask_msisdn(hop.msisdn), error)
            reply = self.system_reply("unavailable", Language.FR)
        elapsed = time.perf_counter() - started
        metrics.record_hop(hop.gateway, outcome, reply.end, elapsed)
        log.info("hop gateway=%s msisdn=%s session=%s inputs=%d end=%s outcome=%s ms=%.1f",
                 hop.gateway, mask_msisdn(hop.msisdn), hop.session_id[:64], len(hop.inputs),
                 reply.end, outcome, elapsed * 1000)
        return reply

    def system_reply(self, role: str, language: Language) -> Reply:
        """A system screen (``unavailable``, ``goodbye``...) in ``language``."""
        return render(self.menu, self.menu.system[role], language, {}, self.policy)

    def migrate(self, msisdn: str, target: Profile | str, channel: Channel) -> Decision:
        """Migrate a subscriber from another channel (web, app): the same rules, atomically.

        ``msisdn`` must be normalised. Returns the decision; an approved one has been applied.
        """
        now = self.clock()
        month = month_of(now, self.zone)
        last_month = previous_month(month)
        subscriber = self.store.load_subscriber(msisdn, month, last_month)
        standing = subscriber.standing if subscriber else None
        for _ in range(MAX_MIGRATION_ATTEMPTS):
            decision = decide(standing, target, self.policy)
            if not decision.approved:
                return decision
            entry = {
                "at": now.isoformat(timespec="seconds"),
                "from": standing.profile.value,
                "to": decision.target.value,
                "channel": channel.value,
            }
            answer = self.store.apply_migration(
                msisdn, None, None, standing, decision.target, month, last_month, entry, ""
            )
            if answer.result is MigrationResult.APPLIED:
                metrics.MIGRATIONS.labels(decision.target.value).inc()
                return decision
            standing = answer.standing
        raise StoreConflictError(f"migration kept conflicting for {mask_msisdn(msisdn)}")

    def close(self, gateway: str, session_id: str, msisdn: str) -> bool:
        """Forget a session the gateway reports as ended; True if it was still live."""
        return self.store.close_session(self.store.keys.session(msisdn, gateway, session_id))

    def _handle(self, hop: Hop) -> Reply:
        now = self.clock()
        month = month_of(now, self.zone)
        last_month = previous_month(month)
        key = self.store.keys.session(hop.msisdn, hop.gateway, hop.session_id)
        record, subscriber = self.store.load_hop(hop.msisdn, key, month, last_month)
        standing = subscriber.standing if subscriber else None
        if record is None:
            language = subscriber.language if subscriber else None
            session = begin(self.menu, standing, language, self.policy)
            pending = hop.dialled + hop.inputs
        else:
            session = Session.loads(record)
            pending = self._new_inputs(session, hop)
            if pending is None:  # a retried hop: the same reply, nothing applied again
                metrics.RETRIES.labels(hop.gateway).inc()
                return reply_of(self.menu, session, self.policy)
        sequence = hop.sequence if hop.sequence is not None else session.hop + 1

        for _ in range(MAX_MIGRATION_ATTEMPTS):
            current, migration = session, None
            for text in pending:
                result = step(self.menu, current, text, standing, self.policy)
                current, migration = result.session, result.migration
                if migration is not None:
                    break  # the migration ends the dialogue; later chained inputs are moot
            current = replace(current, hop=sequence)
            if migration is None:
                self.store.save_session(key, current.dumps())
                return reply_of(self.menu, current, self.policy)
            entry = {
                "at": now.isoformat(timespec="seconds"),
                "from": migration.expected.profile.value,
                "to": migration.target.value,
                "channel": Channel.USSD.value,
                "gateway": hop.gateway,
                "session": hop.session_id[:64],
            }
            answer = self.store.apply_migration(
                hop.msisdn, key, record, migration.expected, migration.target, month,
                last_month, entry, current.dumps(),
            )
            if answer.result is MigrationResult.APPLIED:
                metrics.MIGRATIONS.labels(migration.target.value).inc()
                return reply_of(self.menu, current, self.policy)
            if answer.result is MigrationResult.STALE_SESSION:
                # A concurrent copy of this hop got there first: answer as it did.
                metrics.RETRIES.labels(hop.gateway).inc()
                if answer.session is None:
                    return self.system_reply("goodbye", session.language)
                return reply_of(self.menu, Session.loads(answer.session), self.policy)
            standing = answer.standing  # another session migrated meanwhile: decide again
        raise StoreConflictError(f"migration kept conflicting for {mask_msisdn(hop.msisdn)}")

    @staticmethod
    def _new_inputs(session: Session, hop: Hop) -> tuple[str, ...] | None:
        """The inputs this hop adds to the session, or None when it is a retry."""
        if hop.cumulative:
            if len(hop.inputs) <= session.hop:
                return None
            return hop.inputs[session.hop:]
        if hop.sequence is not None and hop.sequence <= session.hop:
            return None
        return hop.inputs
