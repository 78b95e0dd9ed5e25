"""The menu engine: one pure step from a session record and an input to the next record.

``step(menu, session, text, standing, policy) -> Step`` walks one input; :func:`reply_of`
renders a record. Nothing here does I/O: the caller loads the subscriber's :class:`Standing`
and the :class:`Session` record, and when a step asks for a migration (``Step.migration``)
the caller applies it atomically, re-checking what the decision was based on; when it sets
the subscriber's language (``Step.language``), the caller stores it with the record. Because a
record holds everything its screen shows, re-rendering it gives the same reply: a retried hop
is answered from the record alone (the record and its window of recent hops: ussd.session).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType

from .contract import Reply
from .menu import Menu, Screen
from .render import BACK, HOME, MORE, choice_count, page_choices, render, screen_pages
from .rules import (
    LANGUAGES_IN_ORDER,
    PROFILES_IN_ORDER,
    Decision,
    Language,
    Policy,
    Profile,
    Reason,
    Standing,
    decide,
)
from .session import Session


@dataclass(frozen=True)
class Migration:
    """A migration the engine asks its caller to apply, and what the decision rested on."""

    target: Profile
    expected: Standing


@dataclass(frozen=True)
class Step:
    """The result of one input: the next record, and a migration to apply or the subscriber's
    new language to store, if any."""

    session: Session
    migration: Migration | None = None
    language: Language | None = None


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
    """Walk one input ``text`` from ``session``. A choice not on the page shown (a screen in
    pages) is a wrong input: the page again, with the notice."""
    screen = menu.screens[session.screen]
    text = text.strip()
    if ended(menu, session, policy):
        return Step(session)
    if standing is None:
        return Step(_go(session, menu.system["unknown_subscriber"], {}))
    if text == MORE and session.page + 1 < _page_count(menu, session, policy):
        return Step(session.changed(page=session.page + 1, invalid=0))
    if not screen.end:
        if text == BACK and session.page > 0:  # back from page 2 of a long screen: page 1
            return Step(session.changed(page=session.page - 1, invalid=0))
        if text in (BACK, HOME) and session.screen == menu.start:
            return Step(session.changed(page=0, invalid=0))  # home already: shown again
        if text == HOME:
            return Step(_enter(menu, session, menu.start, standing, policy))
        if text == BACK and session.back:
            return Step(_back(menu, session, standing, policy))
        # ASCII digits only: "²" is a digit to isdigit() but not to int(), "١" to both. A
        # choice counts only on the page that shows it: the subscriber has not read another.
        if (text.isascii() and text.isdigit() and text[0] != "0"
                and int(text) <= choice_count(screen)
                and int(text) in page_choices(menu, session.screen, session.language,
                                              session.values, policy, session.page)):
            return _choose(menu, session, screen, int(text), standing, policy)
    return Step(_invalid(menu, session))


def reply_of(menu: Menu, session: Session, policy: Policy) -> Reply:
    """What the handset shows for ``session``: re-rendering a record gives the same reply."""
    error = session.invalid > 0 and session.screen != menu.system["too_many_invalid"]
    return render(menu, session.screen, session.language, session.values, policy,
                  page=session.page, error=error)


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
    if screen.listing == "languages":  # the action is set_language (menu.LISTS)
        language = LANGUAGES_IN_ORDER[number - 1]
        chosen = session.changed(language=language)
        return Step(_enter(menu, chosen, screen.next, standing, policy), language=language)
    option = screen.options[number - 1]
    if option.goto is not None:
        return Step(_enter(menu, session, option.goto, standing, policy))
    if option.action == "resume":  # the dropped dialogue's very screen and choices
        suspended = session.suspended
        if suspended is None:
            return Step(_enter(menu, session, menu.start, standing, policy))
        if suspended.screen in decided(menu):  # a decision's screen: decided again, now
            return Step(_decided_again(menu, suspended, standing, policy))
        # Any other shows the standing: drawn again from this moment's (ussd/resume.py), on
        # the page it was on (as far as the screen drawn now has pages).
        resumed = _enter(menu, suspended, suspended.screen, standing, policy, remember=False)
        if suspended.page:
            last = _page_count(menu, resumed, policy) - 1
            resumed = resumed.changed(page=min(suspended.page, last))
        return Step(resumed)
    if option.action == "restart":
        return Step(begin(menu, standing, session.language, policy).changed(hop=session.hop))
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


def _decided_again(menu: Menu, suspended: Session, standing: Standing,
                   policy: Policy) -> Session:
    """A decision's screen resumed (the confirmation): its decision taken again on this
    moment's standing and routed by the screen that asked, as choosing there now would be.

    The figures it showed (the migrations left) may be stale: the subscriber may have
    migrated through another channel since. So the confirmation again with today's figures,
    or the refusal a fresh choice gets (the monthly cap: the end). Kept as it was when the
    screen that asked is not known (a record some other version wrote).
    """
    asked = menu.screens.get(suspended.back[-1]) if suspended.back else None
    target = suspended.values.get("target")
    if target is None:  # nothing to decide on, nor to show: the way back from it, as ``0``
        return _back(menu, suspended, standing, policy)
    if asked is None or suspended.screen not in asked.outcomes.values():
        return suspended.changed(invalid=0, suspended=None)
    decision = decide(standing, str(target), policy)
    destination = asked.outcomes.get(decision.reason, menu.system["unknown_subscriber"])
    return _enter(menu, suspended, destination, standing, policy, decision=decision,
                  remember=False)


def _back(menu: Menu, session: Session, standing: Standing, policy: Policy) -> Session:
    """One screen back (``0``), drawn as of now; home when there is none. A decision's screen
    (the confirmation) shows a decision this step has not taken: back past it, to the screen
    that asked (the list)."""
    back = session.back
    while back and back[-1] in decided(menu):
        back = back[:-1]
    if not back:
        return _enter(menu, session, menu.start, standing, policy)
    return _enter(menu, session.changed(back=back[:-1]), back[-1], standing, policy,
                  remember=False)


def _enter(menu: Menu, session: Session, destination: str, standing: Standing,
           policy: Policy, decision: Decision | None = None, remember: bool = True) -> Session:
    """The record showing ``destination``, with the values its texts need captured now."""
    values = screen_values(menu.screens[destination], standing, policy, decision)
    back = (*session.back, session.screen) if remember else session.back
    if destination == menu.start:
        back = ()  # home, however it was reached, forgets the way there
    return session.changed(screen=destination, values=values, back=back, page=0, invalid=0,
                           suspended=None)


def _go(session: Session, destination: str, values: Mapping[str, object]) -> Session:
    return session.changed(screen=destination, values=MappingProxyType(dict(values)),
                   back=(), page=0, invalid=0, suspended=None)


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
    wanted = screen.fields | ({"current"} if screen.listing == "profiles" else set()) | {"target"}
    return MappingProxyType({k: v for k, v in known.items() if k in wanted and v is not None})


@lru_cache(maxsize=8)
def decided(menu: Menu) -> frozenset[str]:
    """The screens a decision leads to, whose values are the decision's (each screen's
    ``outcomes``): a resumed one is decided again; any other is drawn again (ussd/resume.py).
    Worked out once per menu (menus hash by identity), not on every hop."""
    return frozenset(target for screen in menu.screens.values()
                     for target in screen.outcomes.values())


@lru_cache(maxsize=8)
def refusals(menu: Menu) -> frozenset[str]:
    """Those of :func:`decided` a refusal leads to (every outcome but approval)."""
    return frozenset(target for screen in menu.screens.values()
                     for reason, target in screen.outcomes.items()
                     if reason is not Reason.APPROVED)
