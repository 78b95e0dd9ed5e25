"""The menu engine: one pure step from a session record and an input to the next record.

``step(menu, session, text, standing, policy) -> Step`` walks one input; :func:`reply_of`
renders a record. Nothing here does I/O: the caller loads the subscriber's :class:`Standing`
and the :class:`Session` record, and when a step asks for a migration (``Step.migration``)
the caller applies it atomically, re-checking what the decision was based on. Because a
record holds everything its screen shows, re-rendering it gives the same reply: a retried hop
is answered from the record alone. The record also keeps what the few hops before it showed
(:class:`Shown`, at most ``REPLAY_WINDOW - 1`` of them), so that a hop replayed out of order,
after later hops, gets the very reply it got the first time (:func:`replayed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import orjson

from .menu import Menu, Screen
from .contract import Reply
from .render import BACK, HOME, MORE, choice_count, render, screen_pages
from .rules import (
    LANGUAGE_BY_CODE,
    PROFILES_IN_ORDER,
    Decision,
    Language,
    Policy,
    Profile,
    Reason,
    Standing,
    decide,
)

# Hops answered exactly as the first time when replayed: the last one and the three before it.
# Gateways retry the hop they are waiting on; a copy overtaken by later hops is rarely more
# than one or two behind, and each hop kept costs about 20 bytes of the session record.
REPLAY_WINDOW = 4


@dataclass(frozen=True)
class Shown:
    """What an earlier hop of the session showed: enough to render its reply again, exactly."""

    hop: int
    screen: str
    values: Mapping[str, object]
    page: int = 0
    invalid: int = 0


@dataclass(frozen=True)
class Session:
    """The record of one USSD session between hops (stored compactly, see :meth:`dumps`).

    ``values`` holds what the screen shows, captured when it was entered; ``back`` the screens
    ``0`` returns to; ``invalid`` the wrong inputs in a row; ``hop`` the gateway's number of
    the last hop handled, so that a retried hop is recognised and answered from the record;
    ``recent`` what the hops before it showed, newest first (see :func:`advance`).
    """

    screen: str
    language: Language = Language.FR
    values: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    back: tuple[str, ...] = ()
    page: int = 0
    invalid: int = 0
    hop: int = 0
    recent: tuple[Shown, ...] = ()

    def changed(self, **changes: object) -> Session:
        """A copy with ``changes``, as ``dataclasses.replace`` makes it, at a sixth of its
        cost (a hop makes two to four copies): the fields are copied as they are, not set
        one by one through the frozen class's ``__init__``."""
        if not changes.keys() <= _SESSION_FIELDS:
            raise TypeError(f"Session has no field {sorted(changes.keys() - _SESSION_FIELDS)}")
        copy = object.__new__(Session)
        copy.__dict__.update(self.__dict__, **changes)
        return copy

    def dumps(self) -> str:
        """The record as compact JSON (short keys: one is kept for every live session).

        orjson writes what ``json.dumps(record, separators=(",", ":"), ensure_ascii=False)``
        writes, in half the time; every hop reads and writes a record.
        """
        record = {"s": self.screen, "l": self.language.value, "n": self.hop}
        if self.values:  # each field only when it differs from its default
            record["v"] = dict(self.values)
        if self.back:
            record["b"] = self.back  # a tuple: orjson writes it as a list
        if self.page:
            record["p"] = self.page
        if self.invalid:
            record["i"] = self.invalid
        if self.recent:
            record["r"] = _dump_recent(self.values, self.recent)
        return orjson.dumps(record).decode()

    @classmethod
    def loads(cls, raw: str | bytes) -> Session:
        """The record that :meth:`dumps` wrote."""
        record = orjson.loads(raw)
        values = MappingProxyType(record.get("v", {}))
        return cls(
            screen=record["s"],
            language=LANGUAGE_BY_CODE[record["l"]],
            values=values,
            back=tuple(record.get("b", ())),
            page=record.get("p", 0),
            invalid=record.get("i", 0),
            hop=record["n"],
            recent=_load_recent(values, record.get("r", ())),
        )


def _dump_recent(values: Mapping[str, object], recent: tuple[Shown, ...]) -> list[list]:
    """``[hop, screen, page, invalid, values]`` per hop, trailing defaults left out; values
    only when they differ from those of the next newer hop, which they mostly repeat."""
    entries, newer = [], dict(values)
    for shown in recent:
        mine = dict(shown.values)
        entry = [shown.hop, shown.screen, shown.page, shown.invalid]
        if mine != newer:
            entry.append(mine)
        else:
            while len(entry) > 2 and entry[-1] == 0:
                entry.pop()
        entries.append(entry)
        newer = mine
    return entries


def _load_recent(values: Mapping[str, object], entries) -> tuple[Shown, ...]:
    """The hops :func:`_dump_recent` wrote."""
    recent, newer = [], values
    for entry in entries:
        size = len(entry)
        if size > 4:
            newer = MappingProxyType(entry[4])
        recent.append(Shown(entry[0], entry[1], newer, entry[2] if size > 2 else 0,
                            entry[3] if size > 3 else 0))
    return tuple(recent)


_SESSION_FIELDS = frozenset(Session.__dataclass_fields__)


@dataclass(frozen=True)
class Migration:
    """A migration the engine asks its caller to apply, and what the decision rested on."""

    target: Profile
    expected: Standing


@dataclass(frozen=True)
class Step:
    """The result of one input: the next record, and a migration to apply, if any."""

    session: Session
    migration: Migration | None = None


def begin(menu: Menu, standing: Standing | None, language: Language | None,
          policy: Policy) -> Session:
    """The record of a new session: the start screen, or the refusal for an unknown number."""
    language = language or Language.FR
    if standing is None:
        return Session(screen=menu.system["unknown_subscriber"], language=language)
    return _enter(menu, Session(screen=menu.start, language=language),
                  menu.start, standing, policy)


def step(menu: Menu, session: Session, text: str, standing: Standing | None,
         policy: Policy) -> Step:
    """Walk one input ``text`` from ``session``."""
    screen = menu.screens[session.screen]
    text = text.strip()
    if ended(menu, session, policy):
        return Step(session)
    if standing is None:
        return Step(_go(session, menu.system["unknown_subscriber"], {}))
    if text == MORE and session.page + 1 < _page_count(menu, session, policy):
        return Step(session.changed(page=session.page + 1, invalid=0))
    if not screen.end:
        if text == HOME and session.screen != menu.start:
            return Step(_enter(menu, session, menu.start, standing, policy))
        if text == BACK and session.back:
            previous = session.back[-1]
            return Step(_enter(menu, session.changed(back=session.back[:-1]), previous,
                               standing, policy, remember=False))
        # ASCII digits only: "²" is a digit to isdigit() but not to int(), "١" to both.
        if (text.isascii() and text.isdigit() and text[0] != "0"
                and int(text) <= choice_count(screen)):
            return _choose(menu, session, screen, int(text), standing, policy)
    return Step(_invalid(menu, session))


def reply_of(menu: Menu, session: Session, policy: Policy) -> Reply:
    """What the handset shows for ``session``: re-rendering a record gives the same reply."""
    error = session.invalid > 0 and session.screen != menu.system["too_many_invalid"]
    return render(menu, session.screen, session.language, session.values, policy,
                  page=session.page, error=error)


def advance(previous: Session | None, current: Session, hop: int) -> Session:
    """``current`` as the record of hop number ``hop``, keeping what ``previous`` showed.

    The screens of the last ``REPLAY_WINDOW`` hops stay in the record (``previous`` is None
    on the first hop of a session), for :func:`replayed`.
    """
    if previous is None:
        return current.changed(hop=hop, recent=())
    shown = Shown(previous.hop, previous.screen, previous.values, previous.page, previous.invalid)
    recent = ((shown,) + previous.recent)[: REPLAY_WINDOW - 1]
    return current.changed(hop=hop, recent=recent)


def replayed(session: Session, hop: int | None) -> Session | None:
    """The record as it stood after hop number ``hop``, to answer that hop again; None when
    the hop is older than the window (or has no number)."""
    if hop == session.hop:
        return session
    for shown in session.recent:
        if shown.hop == hop:
            return session.changed(screen=shown.screen, values=shown.values, page=shown.page,
                           invalid=shown.invalid)
    return None


def ended(menu: Menu, session: Session, policy: Policy) -> bool:
    """True once the session has shown the last page of an end screen."""
    if not menu.screens[session.screen].end:
        return False  # most screens: no need to render one to know it (every input asks)
    return reply_of(menu, session, policy).end


def _choose(menu: Menu, session: Session, screen: Screen, number: int,
            standing: Standing, policy: Policy) -> Step:
    if screen.listing == "profiles":
        target = PROFILES_IN_ORDER[number - 1]
        return _act(menu, session, screen, screen.action, target, standing, policy)
    option = screen.options[number - 1]
    if option.goto is not None:
        return Step(_enter(menu, session, option.goto, standing, policy))
    target = Profile(str(session.values["target"]))
    return _act(menu, session, screen, option.action, target, standing, policy)


def _act(menu: Menu, session: Session, screen: Screen, action: str, target: Profile,
         standing: Standing, policy: Policy) -> Step:
    """Run a registered action: decide on ``target``, then route by the decision's reason."""
    decision = decide(standing, target, policy)
    destination = screen.outcomes.get(decision.reason, menu.system["unknown_subscriber"])
    following = _enter(menu, session, destination, standing, policy, decision=decision)
    if action == "migrate" and decision.reason is Reason.APPROVED:
        return Step(following, Migration(target, standing))
    return Step(following)


def _enter(menu: Menu, session: Session, destination: str, standing: Standing,
           policy: Policy, decision: Decision | None = None, remember: bool = True) -> Session:
    """The record showing ``destination``, with the values its texts need captured now."""
    values = screen_values(menu.screens[destination], standing, policy, decision)
    back = session.back + (session.screen,) if remember else session.back
    if destination == menu.start:
        back = ()  # home, however it was reached, forgets the way there
    return session.changed(screen=destination, values=values, back=back, page=0, invalid=0)


def _go(session: Session, destination: str, values: Mapping[str, object]) -> Session:
    return session.changed(screen=destination, values=MappingProxyType(dict(values)),
                   back=(), page=0, invalid=0)


def _invalid(menu: Menu, session: Session) -> Session:
    """The same screen again with a notice, or the polite end after too many wrong inputs."""
    if session.invalid >= menu.max_invalid:
        return _go(session, menu.system["too_many_invalid"], {})
    return session.changed(invalid=session.invalid + 1)


def _page_count(menu: Menu, session: Session, policy: Policy) -> int:
    return len(screen_pages(menu, session.screen, session.language, session.values, policy))


def screen_values(screen: Screen, standing: Standing, policy: Policy,
                  decision: Decision | None = None) -> Mapping[str, object]:
    """The values a screen's texts show, from the subscriber's standing or a decision."""
    if decision is not None:
        known = {
            "target": decision.target.value if decision.target else None,
            "current": decision.current.value if decision.current else None,
            "required": decision.required,
            "consumed": decision.consumed,
            "left": decision.migrations_left,
            "used": decision.migrations_used,
        }
    else:
        known = {
            "current": standing.profile.value,
            "consumed": standing.consumed_last_month,
            "left": max(policy.monthly_cap - standing.migrations_this_month, 0),
            "used": standing.migrations_this_month,
        }
    # The profile list marks the current profile; the confirm screen's action needs its target.
    wanted = screen.fields | ({"current"} if screen.listing else set()) | {"target"}
    return MappingProxyType({k: v for k, v in known.items() if k in wanted and v is not None})
