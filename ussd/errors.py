"""The one tree of exceptions raised by the service.

    UssdError
     ├── ConfigError            a setting is missing or malformed
     ├── InvalidMenuError       a menu or text file is broken (caught at start-up)
     ├── ScreenTooLongError     a rendered screen cannot fit one USSD message
     ├── InvalidMsisdnError     a phone number that is not a valid subscriber number
     ├── SeedError              a CSV data file has bad rows (file and line in the message)
     └── StoreError             the session/subscriber store failed
          ├── StoreUnavailableError   Redis cannot be reached (in time)
          └── StoreConflictError      an atomic update kept losing races and gave up

A refused migration is not an exception: it is a ``rules.Decision`` with a reason code.
"""


class UssdError(Exception):
    """Base class of every error the service raises on purpose."""


class ConfigError(UssdError):
    """A setting is missing or malformed."""


class InvalidMenuError(UssdError):
    """A menu or text file is broken: unknown target, missing text, screen too long..."""


class ScreenTooLongError(UssdError):
    """A rendered screen does not fit one USSD message, even paginated."""


class InvalidMsisdnError(UssdError):
    """A phone number that cannot be a subscriber's number."""


class SeedError(UssdError):
    """A data file has bad rows; nothing of it was loaded."""

    def __init__(self, path: str, problems: list[str], total: int | None = None):
        self.path = path
        self.problems = problems  # the first of them, when there are very many (``total``)
        total = max(total or 0, len(problems))
        shown = "\n".join(f"  {problem}" for problem in problems[:20])
        more = f"\n  ... and {total - 20} more" if total > 20 else ""
        super().__init__(f"{path}: {total} bad row(s), nothing loaded\n{shown}{more}")


class StoreError(UssdError):
    """The store failed."""


class StoreUnavailableError(StoreError):
    """Redis cannot be reached, or did not answer in time."""


class StoreConflictError(StoreError):
    """An atomic update kept losing races against concurrent sessions and gave up."""
