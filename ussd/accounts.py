"""The other channels' path: the web customer area, the app, customer care (the HTTP API) and
``ussd migrate``, over the same rules and the same atomic migration as a USSD confirmation.

:class:`Accounts` reads what a "Mon profil" page shows (:meth:`Accounts.page`) and the history,
and migrates (:meth:`Accounts.migrate`): decide on what the store holds, then apply with the
migration script, which re-checks the profile, the month's count and the consumption the
decision rested on, in the same atomic step, so the monthly cap is one counter for every
channel. An API client's request carries an idempotency key: its answer is recorded in that
same step (a refusal's alone), and the same request sent again gets that first answer back
and applies nothing again; another request under the same key is refused
(:class:`~ussd.errors.IdempotencyKeyReusedError`). The record makes the migration script
conditional, as a USSD session's does: one sent without an answer is sent again
(``ussd/settle.py``) to learn what happened; unknown still, OutcomeUnknownError (the API's
``202``: the same request again, under the same key, learns the outcome).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from . import metrics
from .errors import IdempotencyKeyReusedError, OutcomeUnknownError, StoreConflictError
from .events import migration_event
from .phone import mask_msisdn
from .rules import (
    Channel,
    Decision,
    Language,
    Policy,
    Profile,
    Reason,
    Standing,
    decide,
    offers,
)
from .settle import settle
from .store import MigrateOutcome, RequestRef, Store

# Racing requests and sessions of one subscriber can each make the migration script find the
# subscriber moved on; every such loss means another migration succeeded, so the cap bounds it.
MAX_MIGRATION_ATTEMPTS = 8


@dataclass(frozen=True)
class Asker:
    """Who asks for a migration: the channel, and the API client's name (or ``cli``...)."""

    channel: Channel
    client: str | None = None


@dataclass(frozen=True)
class Page:
    """What a "Mon profil" page shows: the subscriber in ``month``, and what every profile
    would be decided now (:func:`ussd.rules.offers`)."""

    msisdn: str
    language: Language
    month: str
    standing: Standing
    monthly_cap: int
    offers: tuple[Decision, ...]

    @property
    def migrations_left(self) -> int:
        """Migrations still open this month."""
        return max(self.monthly_cap - self.standing.migrations_this_month, 0)


@dataclass(frozen=True)
class Migrated:
    """One migration, as the history keeps it: when, from, to, through which channel, and who
    asked (an API client, a gateway, ``cli``; None when not recorded)."""

    at: str
    source: Profile
    target: Profile
    channel: str
    client: str | None = None

    def entry(self) -> dict:
        """The history line (JSON-able) this migration is stored as."""
        entry = {"at": self.at, "from": self.source.value, "to": self.target.value,
                 "channel": self.channel}
        if self.client is not None:
            entry["client"] = self.client
        return entry

    @classmethod
    def of_entry(cls, entry: dict) -> Migrated:
        """A history line read back; a USSD one names its gateway as the one who asked."""
        return cls(at=entry["at"], source=Profile(entry["from"]), target=Profile(entry["to"]),
                   channel=entry["channel"], client=entry.get("client") or entry.get("gateway"))


@dataclass(frozen=True)
class Outcome:
    """The answer to a migration request: the decision, the migration when it was applied, and
    ``replayed`` when this is the answer given before to the same request."""

    decision: Decision
    migration: Migrated | None = None
    replayed: bool = False

    @property
    def migrations_this_month(self) -> int:
        """The month's migrations once this one is counted."""
        return self.decision.migrations_used + (1 if self.migration is not None else 0)


class Accounts:
    """The subscribers' side the other channels see, on one store, with the rules' ``policy``.

    ``months(now)`` gives this month and the last in the operator's zone. Every method raises
    StoreError when the store fails, ValueError for an MSISDN that is not normalised.
    """

    def __init__(self, store: Store, policy: Policy, clock: Callable[[], datetime],
                 months: Callable[[datetime], tuple[str, str]], unknown_outcome_wait: float = 0):
        self.store = store
        self.policy = policy
        self.clock = clock
        self.months = months
        self.wait = unknown_outcome_wait  # USSD_UNKNOWN_OUTCOME_WAIT

    def page(self, msisdn: str) -> Page | None:
        """The subscriber's page now, or None if unknown; one round trip."""
        month, last_month = self.months(self.clock())
        subscriber = self.store.accounts.read(msisdn, month, last_month).subscriber
        if subscriber is None:
            return None
        return Page(msisdn=msisdn, language=subscriber.language, month=month,
                    standing=subscriber.standing, monthly_cap=self.policy.monthly_cap,
                    offers=offers(subscriber.standing, self.policy))

    def history(self, msisdn: str) -> list[Migrated] | None:
        """The subscriber's migrations, newest first, or None if unknown; one round trip."""
        entries = self.store.accounts.history(msisdn)
        if entries is None:
            return None
        return [Migrated.of_entry(entry) for entry in reversed(entries)]

    def migrate(self, msisdn: str, target: Profile | str, asker: Asker,
                idempotency_key: str | None = None) -> Outcome:
        """Decide and, when approved, apply a migration to ``target`` (a profile or its name,
        any case) asked by ``asker``; two round trips (one for a request answered before).

        With an ``idempotency_key`` (an API client's, so ``asker.client`` is set), the answer
        is recorded for a day: the same request again gets it back (``replayed``), another
        request under the key raises IdempotencyKeyReusedError. An unknown subscriber's
        answer is not recorded: the number may become a subscriber's.
        """
        asked = target.value if isinstance(target, Profile) else str(target).strip().lower()
        request = None
        if idempotency_key is not None:
            request = RequestRef(asker.client or "", idempotency_key)
        now = self.clock()
        month, last_month = self.months(now)
        accounts = self.store.accounts
        read = accounts.read(msisdn, month, last_month, request)
        if read.answered is not None:
            return _replay(read.answered, asked)
        standing = read.subscriber.standing if read.subscriber else None
        for _ in range(MAX_MIGRATION_ATTEMPTS):
            decision = decide(standing, target, self.policy)
            if not decision.approved:
                if request is None or decision.reason is Reason.UNKNOWN_SUBSCRIBER:
                    return Outcome(decision)
                found = accounts.answer(msisdn, request, _record(asked, decision, None))
                return Outcome(decision) if found is None else _replay(found, asked)
            migration = Migrated(at=now.isoformat(timespec="seconds"), source=standing.profile,
                                 target=decision.target, channel=asker.channel.value,
                                 client=asker.client)
            event = migration_event(msisdn, standing, decision.target, asker.channel,
                                    asker.client, None, now, month, read.subscriber.language)
            record = _record(asked, decision, migration) if request is not None else ""
            write = partial(accounts.migrate, msisdn, expected=standing, target=decision.target,
                            month=month, last_month=last_month, entry=migration.entry(),
                            event=event, request=request, answer=record)
            # Only a request's record makes the write safe to send again (ussd migrate has none).
            answer, resent = settle(write, self.wait) if request is not None else (write(), False)
            if answer.outcome is MigrateOutcome.APPLIED or (resent and answer.session == record):
                metrics.record_migration(asker.channel.value, decision.target.value)
                if not answer.replicated:
                    raise OutcomeUnknownError("applied, not yet known to be on its replicas")
                return Outcome(decision, migration)
            if answer.outcome is MigrateOutcome.STALE_SESSION:
                return _replay(answer.session or "", asked)  # a copy got there first
            standing = answer.standing  # another migration got there first: decide again
        raise StoreConflictError(f"migration kept conflicting for {mask_msisdn(msisdn)}")


# What a request's record holds: what it asked for (its profile name as written, lowercased:
# the same request is the same name in any case), the decision, and the migration if applied.
def _record(asked: str, decision: Decision, migration: Migrated | None) -> str:
    return json.dumps({
        "asked": asked,
        "decision": {
            "reason": decision.reason.value,
            "target": decision.target and decision.target.value,
            "current": decision.current and decision.current.value,
            "required": decision.required,
            "consumed": decision.consumed,
            "migrations_used": decision.migrations_used,
            "migrations_left": decision.migrations_left,
        },
        "migration": migration.entry() if migration is not None else None,
    }, separators=(",", ":"), ensure_ascii=False)


def _replay(record: str, asked: str) -> Outcome:
    """The outcome recorded for a request, if ``asked`` is what it asked for."""
    stored = json.loads(record)
    if stored["asked"] != asked:
        raise IdempotencyKeyReusedError(stored["asked"], asked)
    fields = stored["decision"]
    decision = Decision(
        reason=Reason(fields["reason"]),
        target=Profile(fields["target"]) if fields["target"] else None,
        current=Profile(fields["current"]) if fields["current"] else None,
        required=fields["required"],
        consumed=fields["consumed"],
        migrations_used=fields["migrations_used"],
        migrations_left=fields["migrations_left"],
    )
    migration = stored["migration"]
    return Outcome(decision, Migrated.of_entry(migration) if migration else None, replayed=True)
