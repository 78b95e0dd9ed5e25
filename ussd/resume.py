"""Sessions that survive a drop: what each hop leaves to resume, and the redial that offers it.

Feature phones lose dialogues every day before their result: the gateway times out, the
network drops the call, our session's TTL runs out. The store keeps, for each subscriber, the
record of their latest dialogue that has not reached a result (the dropped-session marker,
``store/keys.py``), written by each hop in the same script as the session's own record and
kept for the session's TTL plus ``USSD_RESUME_WINDOW`` (so until the window has passed after
our TTL ran out). It is forgotten when the dialogue reaches an ``END`` (a migration, a
refusal no profile lifts, a cancellation) or the subscriber ends it themselves (Hubtel
``Release``, Flares ``abort=clean``), and cut to the window when the gateway reports a drop
(Africa's Talking ``Incomplete``/``Failed``, Hubtel ``Timeout``, Flares ``abort=error``).

A refusal that leaves the dialogue open (the profile already held, not enough credit
consumed: "0" goes back to the list) keeps the screen that asked, as the hop before showed it
(the list; the confirmation for a refusal on confirming, decided again when resumed, below):
resumed, the subscriber chooses again and is decided on that moment's figures, never shown a
refusal whose figures may have changed since (credit posted meanwhile). A refusal reached
with the list in the same hop (``#121*1*2#``) keeps nothing. A refusal a resumed
confirmation gets (below) keeps the list that asked too, which the dialogue showed before it
was dropped: without its figures, since no hop of the new session showed it. A screen resumed
that shows the subscriber's standing (the list's current profile, "my profile") is drawn
again from the standing of that moment; a confirmation is decided again on that moment's
standing (the subscriber may have migrated through another channel meanwhile): shown again
with the migrations left now, or, when the choice no longer stands, the refusal choosing it on
the list would give now (the monthly cap reached: the end; the profile now held, or the
credit corrected down: "0" back to the list, and the list resumed if dropped there), never
the figures it showed when it was dropped.

When the same number dials the plain code again (a new session, any gateway) and the marker is
there, the dialogue opens on the menu's resume screen (``[system] resume``, "Reprendre où vous
en étiez ?"): ``1`` (action ``resume``) shows the screen it was on, on its page (a
confirmation decided again, above), with the same choices and the way back; ``2``
(``restart``) starts afresh.
Resuming applies nothing: a confirmation screen resumed is confirmed on a hop of its own, and
decided again then, as every confirmation is (ussd/engine.py). A dial that already says where
to go (``#121*1#``) goes there. Pure: no Flask, no Redis.
"""

from __future__ import annotations

from .engine import begin, ended, refusals
from .menu import Menu
from .rules import Language, Policy, Standing
from .session import Session


def resumable(menu: Menu, session: Session, policy: Policy) -> str | None:
    """The record a hop that leaves ``session`` keeps to resume (None: nothing worth it).

    Not the start screen (starting afresh is the same), nor a system screen or one that
    ends the dialogue (a result is never resumed past). While the resume screen asks, what
    it offers stays the thing to resume. A refusal that leaves the dialogue open keeps the
    screen that asked, as the hop before showed it; when no hop showed it, the list without
    its figures if the hop that led to the refusal showed the resume screen, else None (see
    above).
    """
    if session.suspended is not None:
        return session.suspended.dumps()
    if (session.screen == menu.start or session.screen in menu.system.values()
            or ended(menu, session, policy)):
        return None  # a refusal that ends the dialogue (the monthly cap) too
    if session.screen in refusals(menu):
        asked = session.back[-1] if session.back else None
        shown = next((each for each in session.recent if each.screen == asked), None)
        if shown is not None:
            return Session(screen=shown.screen, language=session.language, values=shown.values,
                           back=session.back[:-1], page=shown.page).dumps()
        # None showed it in this session: the resumed screen decided again, refused, when the
        # hop that led here showed the resume screen. The list was shown before the drop: kept
        # without figures, drawn again from the standing when resumed, as any list is.
        led = next((each.screen for each in session.recent if each.screen != session.screen),
                   None)
        if asked is None or led != menu.system["resume"]:
            return None
        return Session(screen=asked, language=session.language, back=session.back[:-1]).dumps()
    return session.changed(hop=0, recent=()).dumps()


def opening(menu: Menu, standing: Standing | None, language: Language | None,
            dropped: str | None, pending: tuple[str, ...], policy: Policy) -> Session:
    """The record a new session starts from: the resume screen over the ``dropped`` record
    (the marker's, None if none) when the subscriber dialled the plain code, else the start.

    ``pending`` are the inputs the first hop walks (the dialled extension): with any, the
    subscriber asked for a place of their own. A record the menu can no longer show (a
    screen renamed since) is not offered.
    """
    start = begin(menu, standing, language, policy)
    if dropped is None or pending or standing is None:
        return start
    try:
        suspended = Session.loads(dropped)
    except (ValueError, KeyError, TypeError):
        return start  # not a record this version wrote: nothing to offer
    if (suspended.screen not in menu.screens or suspended.screen in menu.system.values()
            or ended(menu, suspended, policy)):
        return start
    return Session(screen=menu.system["resume"], language=start.language, suspended=suspended)
