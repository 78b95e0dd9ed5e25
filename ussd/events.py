"""What an applied migration leaves behind: its history line, and the billing event (pure).

The event is written to the outbox by the same Lua script that applies the migration
(``store.scripts.MIGRATE_SCRIPT``) and POSTed to billing by ``ussd relay`` exactly as
written, byte for byte, on every attempt: its ``id`` is billing's ``Idempotency-Key``.

===========================  ========================================================
field                        meaning
===========================  ========================================================
``id``                       unique, made here once: the same on every retry
``msisdn``                   E.164 (``+2250700000001``)
``from``, ``to``             the profiles (``novamix``, ``tigre``, ``dauphin``, ``aigle``)
``channel``                  ``ussd``, ``web``, ``app``...
``client``                   the gateway dialect (USSD) or the API client that asked
``session``                  the gateway's session id (USSD), else null
``at``                       ISO 8601 with its offset, as the history line has it
``month``                    ``YYYY-MM``: the month the migration counts in
``migrations_this_month``    this month's migrations, this one included
``language``                 ``fr`` or ``en``: the subscriber's, for the receipt
===========================  ========================================================
"""

from __future__ import annotations

import uuid
from datetime import datetime

from .contract import Hop
from .rules import Channel, Language, Profile, Standing

# A gateway's session id as kept in the history and the event: no gateway's is longer.
MAX_SESSION_ID = 64


def migration_event(msisdn: str, standing: Standing, target: Profile, channel: Channel,
                    client: str | None, session: str | None, at: datetime, month: str,
                    language: Language) -> dict:
    """The billing event of a migration from ``standing`` about to be applied (see the
    module's table): its count is the one the migration script re-checks, plus this one."""
    return {
        "id": str(uuid.uuid4()),
        "msisdn": msisdn,
        "from": standing.profile.value,
        "to": target.value,
        "channel": channel.value,
        "client": client,
        "session": session[:MAX_SESSION_ID] if session is not None else None,
        "at": at.isoformat(timespec="seconds"),  # as the history line has it
        "month": month,
        "migrations_this_month": standing.migrations_this_month + 1,
        "language": language.value,
    }


def history_entry(now: datetime, source: Profile, target: Profile, channel: Channel,
                  hop: Hop | None = None) -> dict:
    """One line of a subscriber's migration history; a USSD one names its gateway session."""
    entry = {
        "at": now.isoformat(timespec="seconds"),
        "from": source.value,
        "to": target.value,
        "channel": channel.value,
    }
    if hop is not None:
        entry["gateway"] = hop.gateway
        entry["session"] = hop.session_id[:MAX_SESSION_ID]
    return entry
