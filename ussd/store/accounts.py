"""The other channels' reads and writes: a subscriber's page and history, and a migration an API
client asks once, by its idempotency key.

The request's record (what it was answered) lives in the subscriber's slot and is written by
the migration script itself, in the same atomic step as the migration (``scripts.MIGRATE_SCRIPT``,
the record in the place of a USSD session's): no crash between the two can apply a request
twice, and a copy of the request that arrives while the first is still in flight finds either
nothing yet (then the script, seeing the record written meanwhile, answers with it) or the
record. A refusal's record is written alone, only if no record is there yet
(``scripts.SAVE_SCRIPT`` expecting none). Reads are one round trip each, a migration two.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from .. import metrics
from ..rules import Profile, Standing
from .client import store_errors
from .hops import Subscriber, _standing_fields, _subscriber
from .keys import EVENTS, PROFILE_FIELD, KeySpace, bucket_of
from .scripts import MigrateResult, Scripts


class RequestRef(NamedTuple):
    """An API client's request about one subscriber: the client's name and its idempotency key."""

    client: str
    idempotency_key: str


class AccountRead(NamedTuple):
    """What a request reads first: the subscriber (None if unknown) and, when the request has an
    idempotency key, the record of its first answer (None if it has none yet)."""

    subscriber: Subscriber | None
    answered: str | None


class AccountStore:
    """Subscribers as the web customer area, the app, customer care and ``ussd migrate`` read
    and change them.

    Every method raises StoreUnavailableError when Redis cannot be reached, StoreError when it
    refuses a command, and ValueError for an MSISDN that is not normalised.
    """

    def __init__(self, keys: KeySpace, scripts: Scripts, send: Callable[..., list],
                 request_ttl: int):
        self.keys = keys
        self.request_ttl = request_ttl
        self._scripts = scripts
        self._send = send

    def read(self, msisdn: str, month: str, last_month: str,
             request: RequestRef | None = None) -> AccountRead:
        """The subscriber as the rules see it in ``month`` (after ``last_month``), and the
        record of ``request`` if it was answered before; one round trip."""
        commands: list[tuple[Any, ...]] = [
            ("HMGET", self.keys.subscriber(msisdn), *_standing_fields(month, last_month))]
        if request is not None:
            commands.append(("GET", self.keys.request(msisdn, *request)))
        with metrics.redis_call("api_read"), store_errors:
            replies = self._send(*commands)
        return AccountRead(_subscriber(*replies[0]), replies[1] if request is not None else None)

    def history(self, msisdn: str) -> list[dict] | None:
        """The subscriber's migrations, oldest first, or None if unknown; one round trip."""
        with metrics.redis_call("api_history"), store_errors:
            profile, entries = self._send(("HGET", self.keys.subscriber(msisdn), PROFILE_FIELD),
                                          ("LRANGE", self.keys.history(msisdn), 0, -1))
        if not profile:
            return None
        return [json.loads(entry) for entry in entries]

    def migrate(self, msisdn: str, *, expected: Standing, target: Profile, month: str,
                last_month: str, entry: dict, event: dict, request: RequestRef | None = None,
                answer: str = "") -> MigrateResult:
        """Migrate to ``target`` atomically if the subscriber is as the decision saw it, and
        append the billing ``event`` to the outbox in the same step (see ``HopStore.migrate``);
        one round trip.

        With a ``request``, its record ``answer`` is written in the same step, and only if the
        request has none yet: otherwise nothing is applied and the result is STALE_SESSION
        with the record found in ``session``.
        """
        keys = self.keys
        with metrics.redis_call("api_migrate"), store_errors:
            return self._scripts.migrate(
                subscriber=keys.subscriber(msisdn), history=keys.history(msisdn),
                outbox=keys.queue(EVENTS, bucket_of(msisdn)),
                session=keys.request(msisdn, *request) if request is not None else None,
                expected=expected, target=target, month=month, last_month=last_month,
                entry=entry, old_record=None, new_record=answer, ttl=self.request_ttl,
                event=json.dumps(event, separators=(",", ":"), ensure_ascii=False))

    def answer(self, msisdn: str, request: RequestRef, answer: str) -> str | None:
        """Record ``answer`` as the request's (a refusal: nothing else changes) unless it has
        one already; None when written, else the record found. One round trip."""
        with metrics.redis_call("api_answer"), store_errors:
            result = self._scripts.save_session(self.keys.request(msisdn, *request), None,
                                                answer, self.request_ttl)
        return None if result.written else result.found
