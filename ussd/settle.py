"""Writes whose outcome is unknown: sent again until Redis says what happened, or time is up.

A write that went out to Redis and got no answer (a time-out: an fsync stall, a slow command
ahead of it, a packet held in the network; or a connection lost after sending) may have been
applied, or may be applied later still. Reporting it as a failure would be a lie whenever it
was applied: "service unavailable", and the subscriber's profile has changed and a migration of
the month is spent.

Every write of a hop is conditional: the session record is written, with or without a
migration, only over the record the hop read (``store.scripts``). So the very same write can
be sent again, and it applies at most once whatever happened to the first copy. Its answer
settles the question: written now (and the first copy, if it arrives later, finds the record
moved on and does nothing), or found already written, which is the first copy's doing. The
caller tells the two apart by the record it finds (:attr:`Settled.resent`).

:func:`settle` sends again for at most ``within`` seconds (``USSD_UNKNOWN_OUTCOME_WAIT``), each
attempt bounded by ``USSD_REDIS_TIMEOUT``; past that it raises OutcomeUnknownError and the
hop answers with an honest screen (``processing``: the request is being processed, an SMS
will confirm) rather than a failure (docs/reliability.md, "Unknown outcomes").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

from .errors import OutcomeUnknownError, StoreUnavailableError

T = TypeVar("T")

# Between attempts that could not reach Redis at all (nothing sent): not a busy loop.
PAUSE = 0.05


class Settled(NamedTuple, Generic[T]):
    """A write's answer, and whether it took more than one sending (``resent``): then a record
    found written may be the first copy's."""

    answer: T
    resent: bool = False


def settle(write: Callable[[], T], within: float,
           clock: Callable[[], float] = time.monotonic) -> Settled[T]:
    """``write()``'s answer; when its outcome is unknown, the answer of sending it again.

    ``write`` must be conditional (applying at most once however often it is sent). Sends
    again for at most ``within`` seconds after the first attempt failed, then raises
    OutcomeUnknownError. A failure before anything was sent (StoreUnavailableError) is
    raised as it is on the first attempt: nothing was applied.
    """
    try:
        return Settled(write())
    except OutcomeUnknownError:
        pass  # not kept: a caught exception held in a local ties the frames into a cycle
    deadline = clock() + within
    while clock() < deadline:
        try:
            return Settled(write(), resent=True)
        except OutcomeUnknownError:
            pass
        except StoreUnavailableError:  # Redis out of reach for now: nothing more was sent
            time.sleep(min(PAUSE, max(deadline - clock(), 0)))
    raise OutcomeUnknownError(f"no answer from Redis, sent again for {within:g} s")
