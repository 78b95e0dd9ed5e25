"""The seam between the gateways and the service: what comes in, what goes out, and the wire.

A gateway dialect (``ussd/gateways/<name>.py``) turns one HTTP request of its gateway into a
:class:`Hop` (the subscriber typed something) or an :class:`End` (the gateway reports the
session over), and a :class:`Reply` back into its HTTP answer. The service answers hops and
ends and knows nothing of dialects; the engine and the renderer produce replies and know
nothing of HTTP. Everything here is plain data: no Flask, no Redis.

The same dialect module also holds the client half of its wire format (the requests its
gateway sends, and how to read our answers), which the simulator, the tests and the bench
use. Both halves speak :class:`WireRequest` and :class:`WireReply`, so a round trip needs no
server: ``dialect.read_reply(dialect.wire(reply, request))``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the codes a dialect parses against: plain data too, named for the reader
    from .gateways.fields import ServiceCodes

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Reply:
    """What the subscriber's handset shows: the text, and whether the session ends with it."""

    text: str
    end: bool


@dataclass(frozen=True)
class Hop:
    """One request of a gateway, in the engine's terms.

    ``inputs`` are the subscriber's inputs: every one since the dial when ``cumulative`` (the
    gateway resends them all, as Africa's Talking does), else only this hop's. ``sequence``
    numbers the hop within the session, so a retried hop is recognised (None: the gateway
    gives no way to tell). ``dialled`` are the inputs chained in the dialled code itself
    (``#121*1*2#`` gives ``("1", "2")``), walked on the first hop before ``inputs``, once
    (see :func:`chained_once`). ``opens`` is True when the gateway says this hop opens a
    session (a dial: Hubtel's ``Initiation``, Flares' dialled code, Africa's Talking's empty
    ``text``), so that a session id the gateway ended and opens again is a new session.
    ``needs_session`` is True for a hop that names no service code and is no dial of ours
    (Flares' inputs: only a first hop carries the code; Hubtel's ``Response``, this hop's input
    alone): on a session id we hold no record of, it is another service's code sent to us or
    a session whose record we lost, and is refused (``UnknownSessionError``).
    ``msisdn`` is normalised (E.164).
    """

    gateway: str
    session_id: str
    msisdn: str
    inputs: tuple[str, ...] = ()
    cumulative: bool = False
    sequence: int | None = None
    dialled: tuple[str, ...] = ()
    opens: bool = False
    needs_session: bool = False


@dataclass(frozen=True)
class End:
    """The gateway's report that a session is over (hang-up, time-out, network failure).

    The fields are as the gateway sent them, unchecked: a malformed report is only counted,
    since the session record expires with its TTL anyway. ``status`` is the gateway's word
    for how it ended (Africa's Talking ``Success``/``Incomplete``/``Failed``, Hubtel
    ``Release``/``Timeout``, Flares ``clean``/``error``). ``dropped`` is True when the
    dialogue was broken (a time-out, a network failure: it may be resumed on a redial), False
    when it ended as the subscriber chose or on our ``END``, None when the status says neither.
    """

    gateway: str
    session_id: object
    msisdn: object
    status: str
    dropped: bool | None = None


def chained_once(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """The inputs of two fields of a first hop that may both carry the dialled extension.

    Gateways put the inputs chained in the dialled code (``#121*1*4#``) in the code's field,
    in the inputs' field, or in both: walked once, whichever carries them. When one holds
    the other's inputs and more (``1`` and ``1*4``), the longer is walked; otherwise the
    first, then the second.
    """
    if second[:len(first)] == first:
        return second
    if first[:len(second)] == second:
        return first
    return first + second


class EndKind(StrEnum):
    """How a simulated session is left, for the client half of a dialect."""

    HANG_UP = "hang_up"  # the subscriber cancels
    TIME_OUT = "time_out"  # the subscriber stops answering, or the network loses them
    COMPLETED = "completed"  # after an END: only gateways that report it (Africa's Talking)


# WireRequest and WireReply are not frozen, though nothing changes them once made: the view
# makes one of each per hop, and a frozen dataclass's __init__ (object.__setattr__ per field)
# takes 0.6 us instead of 0.16 (measured on the bench's VM): frozen, the two would double what
# the generic view adds to a hop (about 1 us, CPU time, against the per-dialect views before).


@dataclass(slots=True)
class WireRequest:
    """One HTTP request of a gateway, as plain data.

    ``suffix`` is the path after ``/ussd/<dialect>`` (``""`` or ``"/events"``); ``form`` the
    URL-encoded body's fields, ``json`` the JSON body (None when the request has none).
    """

    method: str
    suffix: str = ""
    query: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    form: Mapping[str, str] | None = None
    json: object = None


# Marks the 404 of a dialect the server's settings leave out (``gateways/view.py``), whose
# sentence ``ussd sim`` repeats; any other 404 (a URL that is not this service's, a wrong
# path) gets the simulator's own hint.
NOT_SERVED_HEADER = "X-USSD-Dialect-Not-Served"

@dataclass(slots=True)
class WireReply:
    """One HTTP answer to a gateway: status, media type (no parameters), body, headers.

    ``headers`` are the dialect's own (``Content-Type`` and ``Content-Length`` are the
    view's); a client transport may give every header it got, in any case.
    """

    status: int
    mimetype: str
    body: str
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def header(self, name: str) -> str | None:
        """The value of header ``name``, whatever the case of its name (None if absent)."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class Route:
    """One endpoint of a dialect: ``/ussd/<dialect><suffix>`` and its HTTP methods."""

    suffix: str
    methods: tuple[str, ...]


class Dialect(Protocol):
    """One gateway's wire format, both halves: a module of ``ussd/gateways/`` each.

    Server half, used by the one generic view (``ussd/gateways/view.py``): ``parse`` reads a
    request, given the service codes answered (``codes``: a
    :class:`~ussd.gateways.fields.ServiceCodes`, the default ones unless given), and raises
    :class:`~ussd.errors.BadRequestError` or :class:`~ussd.errors.InvalidMsisdnError` for one
    we cannot serve (the view then answers ``wire`` of the service's polite refusal, for the
    number ``msisdn_field`` holds); ``wire`` writes a reply, ``acknowledge`` answers an
    :class:`End`.

    Client half, used by the simulator, the tests and the bench: the requests the gateway
    sends (``inputs`` are the subscriber's inputs so far, one per hop, as typed: ``"1*2"``
    is one hop's; ``end`` gives None for a kind of ending the gateway does not report), and
    ``read_reply`` and ``check_acknowledgement``, which raise
    :class:`~ussd.errors.MalformedReplyError` for an answer the gateway could not relay.
    """

    name: str  # the path segment, /ussd/<name>, and the name in settings (USSD_<NAME>_...)
    routes: tuple[Route, ...]
    body: str  # what the view reads for parse: "form", "json" or "query" (WireRequest's field)
    token_in_path: bool  # the gateway is only given a URL: its token goes in the path
    numbers_hops: bool  # a retried hop can be told from a new one (cumulative text, Sequence)
    end_meanings: Mapping[str, str | None]  # its words for an ended session: what each means

    def parse(self, request: WireRequest, codes: ServiceCodes = ...) -> Hop | End: ...

    def msisdn_field(self, request: WireRequest) -> object: ...

    def wire(self, reply: Reply, request: WireRequest) -> WireReply: ...

    def acknowledge(self, end: End, request: WireRequest) -> WireReply: ...

    def dial(self, session_id: str, msisdn: str, code: str) -> WireRequest: ...

    def hop(self, session_id: str, msisdn: str, code: str,
            inputs: tuple[str, ...]) -> WireRequest: ...

    def end(self, session_id: str, msisdn: str, code: str, inputs: tuple[str, ...],
            kind: EndKind) -> WireRequest | None: ...

    def read_reply(self, answer: WireReply) -> Reply: ...

    def check_acknowledgement(self, answer: WireReply, request: WireRequest) -> None: ...
