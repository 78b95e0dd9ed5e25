"""What an HTTP call's answer means for an entry of the outbox, and how long to wait after a
failure: the rules billing and the SMS provider share.

A ``2xx`` delivers. A timeout, a connection error, a ``5xx`` or a ``429`` is retried, after an
exponential back-off with jitter (at least what ``Retry-After`` asks); any other answer (a
``4xx``, or a redirect: a wrong URL) refuses the entry, which goes to the dead letters with
the reason at once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

import httpx

# A Retry-After beyond this is taken as this: an hour is long enough for any outage to be
# looked at, and an entry must not be parked for days by one header.
MAX_RETRY_AFTER = 3600.0
# What of an answer's body goes into a dead letter's reason: enough to read why.
MAX_REASON_BODY = 200


class Verdict(StrEnum):
    """What became of one attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"


@dataclass(frozen=True)
class Outcome:
    """One attempt's verdict, what to say about it, and how long the other side asked us to
    wait (``Retry-After``, seconds)."""

    verdict: Verdict
    detail: str
    retry_after: float | None = None


def judge(response: httpx.Response) -> Outcome:
    """The verdict of an HTTP answer (the status line alone; see the module's docstring)."""
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(Verdict.DELIVERED, f"HTTP {status}")
    detail = f"HTTP {status}"
    body = response.text.strip()[:MAX_REASON_BODY]
    if body:
        detail += f": {body}"
    if status == 429 or status >= 500:
        return Outcome(Verdict.RETRY, detail, retry_after(response.headers.get("Retry-After")))
    return Outcome(Verdict.REFUSED, detail)


def failed_call(error: httpx.HTTPError, timeout: float) -> Outcome:
    """The verdict of a call that got no answer: always worth another attempt."""
    if isinstance(error, httpx.TimeoutException):
        return Outcome(Verdict.RETRY, f"no answer within {timeout:g} s ({type(error).__name__})")
    return Outcome(Verdict.RETRY, f"connection failed ({type(error).__name__}: {error})")


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def backoff(attempts: int, first: float, most: float, asked: float | None = None,
            rng: random.Random | None = None) -> float:
    """Seconds to wait after the ``attempts``-th failure: ``first`` doubled each time up to
    ``most``, half of it fixed and half random (so that relays retrying together spread out),
    and never less than what the other side ``asked`` for."""
    ceiling = min(most, first * 2 ** (attempts - 1))
    delay = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
    return max(delay, asked or 0.0)
