"""The record of one USSD session between hops, the window of hops it can answer again, and
which inputs of a hop are new to it.

A :class:`Session` holds everything its screen shows, so re-rendering it gives the same reply:
a retried hop is answered from the record alone. It also keeps what the few hops before it
showed (:class:`Shown`, at most ``REPLAY_WINDOW - 1`` of them), so that a hop replayed out of
order, after later hops, gets the very reply it got the first time (:func:`replayed`). Stored
as compact JSON (:meth:`Session.dumps`): one is kept in Redis for every live session.
:func:`first_inputs` and :func:`new_inputs` say what a hop adds to its session, and
:func:`hop_number` how the record numbers it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import orjson

from .contract import Hop, chained_once
from .rules import LANGUAGE_BY_CODE, Language

# Hops answered exactly as the first time when replayed: the last one and the three before it.
# Gateways retry the hop they are waiting on; a copy overtaken by later hops is rarely more
# than one or two behind, and each hop kept costs about 20 bytes of the session record.
REPLAY_WINDOW = 4


@dataclass(frozen=True)
class Shown:
    """What an earlier hop of the session showed: enough to render its reply again, exactly
    (in its language: the subscriber may have chosen another since)."""

    hop: int
    screen: str
    values: Mapping[str, object]
    page: int = 0
    invalid: int = 0
    language: Language = Language.FR


@dataclass(frozen=True)
class Session:
    """The record of one USSD session between hops (stored compactly, see :meth:`dumps`).

    ``values`` holds what the screen shows, captured when it was entered; ``back`` the screens
    ``0`` returns to; ``invalid`` the wrong inputs in a row; ``hop`` the gateway's number of
    the last hop handled, so that a retried hop is recognised and answered from the record;
    ``recent`` what the hops before it showed, newest first (see :func:`advance`);
    ``suspended``, while the resume screen asks, the dropped dialogue it offers to resume
    (see ussd/resume.py).
    """

    screen: str
    language: Language = Language.FR
    values: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    back: tuple[str, ...] = ()
    page: int = 0
    invalid: int = 0
    hop: int = 0
    recent: tuple[Shown, ...] = ()
    suspended: Session | None = None

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
        return orjson.dumps(self._record()).decode()

    def _record(self) -> dict:
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
            record["r"] = _dump_recent(self.values, self.language, self.recent)
        if self.suspended is not None:
            record["z"] = self.suspended._record()
        return record

    @classmethod
    def loads(cls, raw: str | bytes) -> Session:
        """The record that :meth:`dumps` wrote."""
        return cls._of_record(orjson.loads(raw))

    @classmethod
    def _of_record(cls, record: dict) -> Session:
        values = MappingProxyType(record.get("v", {}))
        language = LANGUAGE_BY_CODE[record["l"]]
        return cls(
            screen=record["s"],
            language=language,
            values=values,
            back=tuple(record.get("b", ())),
            page=record.get("p", 0),
            invalid=record.get("i", 0),
            hop=record["n"],
            recent=_load_recent(values, language, record.get("r", ())),
            suspended=cls._of_record(record["z"]) if "z" in record else None,
        )


def _dump_recent(values: Mapping[str, object], language: Language,
                 recent: tuple[Shown, ...]) -> list[list]:
    """``[hop, screen, page, invalid, values, language]`` per hop, trailing defaults left out;
    values only when they differ from those of the next newer hop, which they mostly repeat,
    or when a language follows; the language only when it is not the record's."""
    entries, newer = [], dict(values)
    for shown in recent:
        mine = dict(shown.values)
        entry = [shown.hop, shown.screen, shown.page, shown.invalid]
        if shown.language is not language:
            entry += [mine, shown.language.value]
        elif mine != newer:
            entry.append(mine)
        else:
            while len(entry) > 2 and entry[-1] == 0:
                entry.pop()
        entries.append(entry)
        newer = mine
    return entries


def _load_recent(values: Mapping[str, object], language: Language,
                 entries) -> tuple[Shown, ...]:
    """The hops :func:`_dump_recent` wrote."""
    recent, newer = [], values
    for entry in entries:
        size = len(entry)
        if size > 4:
            newer = MappingProxyType(entry[4])
        recent.append(Shown(entry[0], entry[1], newer, entry[2] if size > 2 else 0,
                            entry[3] if size > 3 else 0,
                            LANGUAGE_BY_CODE[entry[5]] if size > 5 else language))
    return tuple(recent)


_SESSION_FIELDS = frozenset(Session.__dataclass_fields__)



def advance(previous: Session | None, current: Session, hop: int) -> Session:
    """``current`` as the record of hop number ``hop``, keeping what ``previous`` showed.

    The screens of the last ``REPLAY_WINDOW`` hops stay in the record (``previous`` is None
    on the first hop of a session), for :func:`replayed`.
    """
    if previous is None:
        return current.changed(hop=hop, recent=())
    shown = Shown(previous.hop, previous.screen, previous.values, previous.page, previous.invalid,
                  previous.language)
    recent = (shown, *previous.recent)[: REPLAY_WINDOW - 1]
    return current.changed(hop=hop, recent=recent)


def replayed(session: Session, hop: int | None) -> Session | None:
    """The record as it stood after hop number ``hop``, to answer that hop again; None when
    the hop is older than the window (or has no number)."""
    if hop == session.hop:
        return session
    for shown in session.recent:
        if shown.hop == hop:
            return session.changed(screen=shown.screen, values=shown.values, page=shown.page,
                                   invalid=shown.invalid, language=shown.language)
    return None


def first_inputs(hop: Hop) -> tuple[str, ...]:
    """The inputs the first hop of a session walks: the dialled extension once, whichever
    field carries it (``contract.chained_once``), then what was typed. An empty input is
    none: a first hop's empty field is how some gateways send the dial itself."""
    return chained_once(hop.dialled, tuple(text for text in hop.inputs if text.strip()))


def new_inputs(session: Session, hop: Hop) -> tuple[str, ...] | None:
    """The inputs ``hop`` adds to ``session``, or None when it is a replay."""
    if hop.cumulative:
        if len(hop.inputs) <= session.hop:
            return None
        return hop.inputs[session.hop:]
    if hop.sequence is not None and hop.sequence <= session.hop:
        return None
    return hop.inputs


def hop_number(hop: Hop, start: Session) -> int:
    """The number of ``hop`` in its session, as the record keeps it.

    A cumulative gateway's hops are numbered by their input count; another's by the
    sequence it sends, or failing that one more than the last of ``start``, the record the
    hop started from.
    """
    if hop.cumulative:
        return len(hop.inputs)
    return hop.sequence if hop.sequence is not None else start.hop + 1


def reopens(hop: Hop) -> bool:
    """True for a dial that opens a session anew even where the last one ended on our END:
    a gateway that gives no way to tell a retried hop (Flares) dials again so. One that
    numbers its hops (a cumulative text, a Sequence) may be retrying the dial: then the
    record answers it, and only a session the gateway has ended opens anew."""
    return hop.opens and hop.sequence is None and not hop.cumulative
