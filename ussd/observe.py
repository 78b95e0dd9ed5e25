"""The service's account of its work: each hop's metrics and log line, one audit line for
each migration applied, and one for each migration request to the HTTP API.

The phone number is never logged whole: a line carries it masked (``+225*******001``) and,
when ``USSD_LOG_KEY`` is set, ``subscriber``: an HMAC-SHA256 of the number under that key (20
hex digits). Customer care finds one subscriber's lines by that hash (``ussd log-hash
NUMBER``), and the logs alone give nobody the number back. A gateway's session id is logged
by the digest its Redis key uses: it may embed the number, and it is the gateway's text.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import traceback
from pathlib import Path

from . import metrics
from .contract import Hop, Reply
from .logs import LineLogger
from .menu import Menu
from .outcomes import Outcomes, Seen
from .phone import mask_msisdn
from .settings import Settings
from .store.keys import session_digest

hop_log = LineLogger(logging.getLogger("ussd.hop"))
audit_log = LineLogger(logging.getLogger("ussd.audit"))

SUBSCRIBER_HASH_DIGITS = 20


def subscriber_hash(key: bytes, msisdn: str) -> str:
    """The keyed hash of a normalised number that log lines carry (``USSD_LOG_KEY``)."""
    return hmac.digest(key, msisdn.encode(), hashlib.sha256).hex()[:SUBSCRIBER_HASH_DIGITS]


# Seven digits or more, any decimal digit (``\d``: full-width ``０７`` too), each after up to
# three of the separators a number is written with (spaces, ``.``, ``/``, ``-``, dashes,
# brackets): ``07.00.00.00.06``, ``(07) 00/00``. A status code or a count has fewer digits.
_NUMBER = re.compile(r"[+(]{0,2}\d(?:[\s./()\-\u2010-\u2015\u2212]{0,3}\d){6,}")


# A value a message quotes as the caller sent it (``repr``: '...' or "..."), whatever it is:
# an unknown service code or request type.
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def _quoted(match: re.Match) -> str:
    value = match.group()
    return "'<number>'" if sum(c.isdigit() for c in value) >= 7 else value


def without_numbers(text: str) -> str:
    """``text`` with every run of digits long enough to be a phone number blanked, however
    its digits are written or spaced; and a quoted value (what a caller sent) with seven
    digits or more blanked whole, whatever separates them (``'*144*07*12*34*56*78#'``,
    superscript digits)."""
    return _NUMBER.sub("<number>", _QUOTED.sub(_quoted, text))


def where_raised(error: BaseException) -> str:
    """The frames an exception went through, innermost first, on one line (its message is
    left out: it may quote a key name, so a whole phone number)."""
    frames = traceback.extract_tb(error.__traceback__)
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(frames))


class Observer:
    """Counts and logs what the service does, for one menu and one deployment's settings."""

    def __init__(self, menu: Menu, settings: Settings):
        self.outcomes = Outcomes(menu)
        self.key = settings.log_key
        self.unavailable = menu.system["unavailable"]

    def who(self, msisdn: str) -> dict[str, str]:
        """The fields naming a subscriber in a log line: masked, and hashed when there is a key."""
        if self.key is None:
            return {"msisdn": mask_msisdn(msisdn)}
        return {"msisdn": mask_msisdn(msisdn), "subscriber": subscriber_hash(self.key, msisdn)}

    def failed(self, outcome: str) -> Seen:
        """A hop answered with the "unavailable" screen: Redis out of reach, or a bug."""
        return Seen(outcome, self.unavailable)

    def hop(self, hop: Hop, reply: Reply, seen: Seen, seconds: float) -> None:
        """One answered hop: its metrics, and its line."""
        metrics.record_hop(hop.gateway, seen.outcome, seen.reason, seconds)
        if seen.outcome == "replayed":
            metrics.record_retry(hop.gateway)
        elif seen.started or reply.end or seen.steps:
            metrics.record_session(hop.gateway, seen.started, reply.end, seen.steps)
        msisdn = hop.msisdn
        fields = {"gateway": hop.gateway, "msisdn": mask_msisdn(msisdn)}
        if self.key is not None:
            fields["subscriber"] = subscriber_hash(self.key, msisdn)
        fields["session"] = session_digest(hop.gateway, hop.session_id)
        fields["inputs"] = len(hop.inputs)
        fields["end"] = reply.end
        fields["outcome"] = seen.outcome
        if seen.reason:
            fields["reason"] = seen.reason
        fields["screen"] = seen.screen
        fields["ms"] = round(seconds * 1000, 1)
        hop_log.event("hop", fields)

    def migration(self, channel: str, msisdn: str, source: str, target: str, *,
                  gateway: str | None = None, session_id: str | None = None,
                  client: str | None = None) -> None:
        """One migration applied: counted, and its audit line (by whom, from, to)."""
        metrics.record_migration(channel, target)
        self.migration_line(channel, msisdn, source, target, gateway=gateway,
                            session_id=session_id, client=client)

    def migration_line(self, channel: str, msisdn: str, source: str, target: str, *,
                       gateway: str | None = None, session_id: str | None = None,
                       client: str | None = None) -> None:
        """The audit line of one migration applied (``ussd.accounts`` counts the other
        channels' migrations itself)."""
        fields: dict[str, object] = {"channel": channel}
        if gateway is not None:
            fields["gateway"] = gateway
            fields["session"] = session_digest(gateway, session_id or "")
        if client is not None:
            fields["client"] = client
        fields |= self.who(msisdn)
        fields["from"] = source
        fields["to"] = target
        audit_log.event("migration", fields)

    def api_migration(self, client: str | None, msisdn: str | None, status: int,
                      decision: str | None, replayed: bool | None, request: str | None,
                      applied: tuple[str, str, str] | None = None) -> None:
        """The audit line of one migration request to the HTTP API, answered or refused: the
        client, the subscriber (None: no number read), the status and the decision, and the
        channel, from and to of the migration it applied. Its idempotency key is named by a
        digest of it (its request's key, ``keys.request_digest``)."""
        fields: dict[str, object] = {"client": client or "-"}
        if applied is not None:
            fields["channel"] = applied[0]
        fields |= self.who(msisdn) if msisdn else {"msisdn": "-"}
        fields["status"] = status
        fields["decision"] = decision or "-"
        fields["replayed"] = "-" if replayed is None else str(replayed).lower()
        fields["request"] = request or "-"
        if applied is not None:
            fields["from"], fields["to"] = applied[1], applied[2]
        audit_log.event("api_migration", fields)
