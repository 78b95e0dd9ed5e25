"""The languages of the subscribers a worker has served, for the screens it answers without
reading Redis: "unavailable" in an outage, "being processed" when a write's outcome is unknown,
"busy" under overload. Each of them should be in the subscriber's language, and none of them
can ask Redis for it.

Only the subscribers whose language is not French (the default) are kept, at most
:data:`MAX_REMEMBERED_LANGUAGES`, the oldest forgotten first: about 100 bytes each.
"""

from __future__ import annotations

import threading

from .rules import Language

MAX_REMEMBERED_LANGUAGES = 100_000


class Languages:
    """What one worker remembers of its subscribers' languages (safe across its threads)."""

    def __init__(self, limit: int = MAX_REMEMBERED_LANGUAGES):
        self.limit = limit
        self._known: dict[str, Language] = {}
        self._lock = threading.Lock()

    def of(self, msisdn: str) -> Language:
        """The subscriber's language as this worker last saw it (French if never seen)."""
        return self._known.get(msisdn, Language.FR)

    def remember(self, msisdn: str, language: Language) -> None:
        """Note the subscriber's language, as a hop just read it."""
        if self._known.get(msisdn, Language.FR) is language:
            return  # the usual case, without the lock
        with self._lock:
            if language is Language.FR:
                self._known.pop(msisdn, None)
                return
            if len(self._known) >= self.limit:
                del self._known[next(iter(self._known))]
            self._known[msisdn] = language
