"""What one hop did, told from the session records before and after it (pure: no I/O).

Each hop's log line and the metrics say what happened: a screen shown, a migration applied,
a refusal and its reason, a wrong input, a retried hop answered again. They are read from the
menu's own data, not from screen names: a refusal is a screen that some reason of the rules
leads to; the dialogue's funnel steps are the profile list (a screen listing the profiles),
the confirmation (a screen offering the ``migrate`` action) and the result (where an approved
migration leads from it). ``unavailable`` and ``error`` are the service's own, when a hop
cannot be answered.
"""

from __future__ import annotations

from typing import NamedTuple

from .menu import Menu
from .rules import Reason
from .session import Session

# The funnel, in order: a session dialled, the profile list, the confirmation, the result.
DIAL, LIST, CONFIRMATION, RESULT = "dial", "list", "confirmation", "result"
FUNNEL = (DIAL, LIST, CONFIRMATION, RESULT)


class Seen(NamedTuple):
    """One hop as the metrics and its log line tell it (a named tuple: made on every hop, at
    a third of a frozen dataclass's cost).

    ``outcome`` is one of ``shown``, ``approved``, ``refused``, ``invalid``, ``replayed``,
    ``unavailable``, ``error``; ``reason`` the rules' reason of a refusal (else empty);
    ``screen`` the screen the hop left the subscriber on; ``started`` whether it began the
    session; ``steps`` the funnel steps it brought the session to.
    """

    outcome: str
    screen: str
    reason: str = ""
    started: bool = False
    steps: tuple[str, ...] = ()


class Outcomes:
    """The outcome of a hop in one menu (built once, at start-up)."""

    def __init__(self, menu: Menu):
        self.refusals: dict[str, str] = {menu.system["unknown_subscriber"]:
                                         Reason.UNKNOWN_SUBSCRIBER.value}
        self.too_many_invalid = menu.system["too_many_invalid"]
        self.stage: dict[str, int] = {}
        for name, screen in menu.screens.items():
            for reason, destination in screen.outcomes.items():
                if reason is not Reason.APPROVED:
                    self.refusals.setdefault(destination, reason.value)
            if screen.listing == "profiles":
                self.stage[name] = FUNNEL.index(LIST)
            if any(option.action == "migrate" for option in screen.options):
                self.stage[name] = FUNNEL.index(CONFIRMATION)
                result = screen.outcomes.get(Reason.APPROVED)
                if result is not None:
                    self.stage[result] = FUNNEL.index(RESULT)

    def of(self, before: Session | None, after: Session, migrated: bool = False) -> Seen:
        """The hop that took the session from ``before`` (None: a new one) to ``after``."""
        started = before is None
        screen = after.screen
        reached = self.stage.get(screen, 0)
        if started:
            steps = FUNNEL[:reached + 1]
        else:
            was = self.stage.get(before.screen, 0)
            steps = FUNNEL[was + 1:reached + 1] if reached > was else ()
        if migrated:
            return Seen("approved", screen, started=started, steps=steps)
        reason = self.refusals.get(screen)
        if reason is not None and (before is None or before.screen != screen):
            return Seen("refused", screen, reason, started, steps)
        if screen == self.too_many_invalid or (
                before is not None and after.invalid > before.invalid):
            return Seen("invalid", screen, started=started, steps=steps)
        return Seen("shown", screen, started=started, steps=steps)

    @staticmethod
    def replayed(screen: str) -> Seen:
        """A retried hop, answered again from the record: nothing walked, nothing applied."""
        return Seen("replayed", screen)

    @staticmethod
    def system(role_screen: str) -> Seen:
        """A system screen (the goodbye of a session the gateway closed meanwhile)."""
        return Seen("shown", role_screen)
