"""The one tree of exceptions the package raises on purpose: the service's and the simulator's.

    UssdError
     ├── ConfigError            a setting is missing or malformed
     ├── InvalidMenuError       a menu or text file is broken (caught at start-up)
     ├── ScreenTooLongError     a rendered screen cannot fit one USSD message
     ├── InvalidMsisdnError     a phone number that is not a valid subscriber number
     ├── BadRequestError        a gateway request we cannot serve (answered with a polite END)
     │    ├── UnknownServiceCodeError   a USSD code this service does not answer
     │    └── UnknownSessionError       an input on a session we hold no record of (Flares:
     │                                  another service's code, or our record lost)
     ├── SeedError              CSV data files have bad rows (each file and line in the message)
     ├── DemoRefusedError       --demo against a Redis that already holds data
     ├── SimulatorError         the server answered what a gateway could not relay (ussd sim)
     │    └── MalformedReplyError       a reply that is not well formed in its dialect
     ├── IdempotencyKeyReusedError   an API client's idempotency key sent again with another
     │                               request than the one it was first answered for
     ├── InvalidConsumptionError     consumption fed in with bad entries (each one named)
     └── StoreError             the session/subscriber store failed
          ├── StoreUnavailableError   Redis cannot be reached (in time)
          │    └── OutcomeUnknownError    a write was sent and no answer came: applied or not
          └── StoreConflictError      an atomic update kept losing races and gave up

A refused migration is not an exception: it is a ``rules.Decision`` with a reason code.
"""

from __future__ import annotations


class UssdError(Exception):
    """Base class of every error the service raises on purpose."""


class ConfigError(UssdError):
    """A setting is missing or malformed."""


class InvalidMenuError(UssdError):
    """A menu or text file is broken: unknown target, missing text, screen too long...

    ``problems`` holds each problem with where it is (``menu.Problem``), when known.
    """

    def __init__(self, message: str, problems: tuple | list = ()):
        super().__init__(message)
        self.problems = tuple(problems)


class ScreenTooLongError(UssdError):
    """A rendered screen does not fit one USSD message, even paginated."""


class InvalidMsisdnError(UssdError):
    """A phone number that cannot be a subscriber's number."""


class BadRequestError(UssdError):
    """A gateway request this service cannot serve: a missing, oversized or non-text field."""


class UnknownServiceCodeError(BadRequestError):
    """A request for a USSD code this service does not answer."""


class UnknownSessionError(BadRequestError):
    """An input that only makes sense within a session (``Hop.needs_session``), on a session id
    we hold no record of: another service's code dialled (Flares sends it bare, like an input),
    or our record of the session lost (expired, evicted, failed over; Hubtel's ``Response``).
    Counted apart from :class:`UnknownServiceCodeError`, so that lost records do not pass for
    misrouting."""


class SeedError(UssdError):
    """Data files have bad rows; nothing of any of them was loaded.

    ``path`` and ``problems`` (the first of them when there are very many: ``total``) are the
    first bad file's, and ``rows`` how many rows they are in (None: one each; 0: the file's
    own, unreadable, say); ``others`` the errors of the bad files after it, each told in the
    message as the first one is.
    """

    def __init__(self, path: str, problems: list[str], total: int | None = None,
                 others: tuple[SeedError, ...] = (), rows: int | None = None):
        self.path = path
        self.problems = problems
        self.total = max(total or 0, len(problems))
        self.rows = self.total if rows is None else rows
        self.others = tuple(others)
        shown = "\n".join(f"  {problem}" for problem in problems[:20])
        more = f"\n  ... and {self.total - 20} more" if self.total > 20 else ""
        # Rows and problems told apart: a row may have two (before, "9 bad row(s)" for 8).
        counted = (f"{self.rows} bad row(s)" if self.rows == self.total
                   else f"{self.rows} bad row(s) ({self.total} problems)" if self.rows
                   else f"{self.total} problem(s)")
        told = [f"{path}: {counted}, nothing loaded\n{shown}{more}"]
        super().__init__("\n".join(told + [str(other) for other in self.others]))

    @classmethod
    def of_files(cls, errors: list[SeedError]) -> SeedError:
        """One error telling of every file of ``errors``, in their order."""
        first, *others = errors
        return cls(first.path, first.problems, first.total, tuple(others), first.rows)


class DemoRefusedError(UssdError):
    """``ussd serve --demo`` refused: the Redis holds data the demo could overwrite."""


class SimulatorError(UssdError):
    """The server answered something a gateway could not relay to a handset."""


class MalformedReplyError(SimulatorError):
    """A reply that is not well formed in its dialect (read by a dialect's client half)."""


class IdempotencyKeyReusedError(UssdError):
    """An idempotency key sent again with another request than the one it first came with."""

    def __init__(self, asked_before: str, asked_now: str):
        self.asked_before = asked_before
        self.asked_now = asked_now
        super().__init__(f"this idempotency key was first used to ask for {asked_before!r}, "
                         f"not {asked_now!r}")


class InvalidConsumptionError(UssdError):
    """Consumption fed in with bad entries, each named in ``errors`` (``location``, ``name``,
    ``message``); nothing of it was applied."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        # Errors, not entries: an entry may have several bad fields.
        super().__init__(f"{len(errors)} error{'' if len(errors) == 1 else 's'}, "
                         "nothing applied")


class StoreError(UssdError):
    """The store failed."""


class StoreUnavailableError(StoreError):
    """Redis cannot be reached, or did not answer in time."""


class OutcomeUnknownError(StoreUnavailableError):
    """A write was sent to Redis and no answer came (a time-out, a connection lost after the
    command went out): Redis may have applied it, or may still (see ``ussd/settle.py``)."""


class StoreConflictError(StoreError):
    """An atomic update kept losing races against concurrent sessions and gave up."""
