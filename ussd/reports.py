"""What a gateway sends besides a hop, counted and logged: a request refused, a session ended.

``UssdService.refuse`` and ``UssdService.end`` answer these; the counting and the log lines
(logger ``ussd.gateway``, the number masked) are here, so that the service module stays about
hops. Nothing here reads a dialect's wire format: the view has parsed the request already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from . import metrics
from .contract import End
from .errors import BadRequestError, InvalidMsisdnError, StoreError, UssdError
from .gateways.fields import text_field
from .observe import without_numbers
from .phone import mask_msisdn, normalize_msisdn

log = logging.getLogger("ussd.gateway")


def refused(gateway: str, error: UssdError, raw_msisdn: object) -> str | None:
    """Count and log a gateway request refused with ``error``; the number it names, if valid."""
    metrics.record_rejection(gateway, type(error).__name__)
    try:
        msisdn = normalize_msisdn(raw_msisdn) if isinstance(raw_msisdn, str) else None
    except InvalidMsisdnError:
        msisdn = None
    # An invalid number's message quotes the number: log only what kind of refusal it was;
    # another's may quote what the caller sent (a number in the wrong field): blanked.
    detail = (type(error).__name__ if isinstance(error, InvalidMsisdnError)
              else without_numbers(str(error)))
    log.info("refused gateway=%s msisdn=%s: %s", gateway,
             mask_msisdn(msisdn) if msisdn else "-", detail)
    return msisdn


def ended(end: End, close: Callable[[str, str, str, bool | None], object]) -> None:
    """Count a session end a gateway reports; close it (``close(gateway, session_id, msisdn,
    dropped)``, True if it was live, or a word for why that is not known) and log it, unless
    the report names no valid session and number.

    A malformed report is only counted: the session record expires with its TTL anyway.
    """
    # The gateway's own word, logged and counted only when it is one of its known ones.
    status = metrics.closed(end.status, metrics.END_STATUSES.get(end.gateway, ()))
    try:
        msisdn = normalize_msisdn(end.msisdn if isinstance(end.msisdn, str) else "")
        session_id = text_field({"id": end.session_id}, "id")
    except (BadRequestError, InvalidMsisdnError):
        metrics.record_end_report(end.gateway, end.status, live=False)
        return
    try:
        live: object = close(end.gateway, session_id, msisdn, end.dropped)
    except StoreError:
        live = "unknown"
    metrics.record_end_report(end.gateway, end.status, live=live is True)
    log.info("session end gateway=%s msisdn=%s status=%s live=%s",
             end.gateway, mask_msisdn(msisdn), status, live)
