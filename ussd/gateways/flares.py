"""Comviva Flares, "Freeflow" operator style: ``GET`` per hop, ``text/plain`` reply.

Source: Comviva Flares Freeflow. A hop is
``GET /ussd/flares?SessionID=...&MSISDN=...&input=...``. The first hop's ``input`` is the
dialled code without its ``*``/``#`` (``121``, or ``121*1`` for ``#121*1#``; the decorated
forms are taken too), every later hop's only the latest input. The reply is the screen's text
with the header ``Freeflow: FC`` to continue or ``FB`` to end the session.

The gateway reports an ended session with ``abort`` (``abort=clean``: the subscriber hung up;
``abort=error``: the network lost it, a drop that may be resumed on a redial) beside
``SessionID`` and ``MSISDN``: that closes the session and gets an empty ``200``. Parameter
names and the ``abort`` value are read in any letter case.

Flares gives no way to tell a retried hop from a new one, so a retry is walked as a new input
(it can never apply a migration twice: the success screen ends the dialogue). A first hop is
recognised by its input being our code; an input a subscriber types is never that, except a
literal ``121``, which then shows the current screen again. Dialling again on a session id the
gateway has ended (``abort``, or after our ``FB``) is a new session. A first hop whose
``input`` is empty (some platforms send the dial so) shows the plain start screen.

Another service's code (a gateway misrouting ``#122#``) is refused as Africa's Talking's and
Hubtel's are, though Flares names no service code beside the input. Bare (``122``, ``122*1``:
how the first hop sends a code) or decorated (``*122#``), it looks like an input, and the
request alone cannot tell which: a later hop carries only what was typed, ``122``, ``2*1``,
``#`` or ``*122#`` as well as ``1``. The session can. Every session begins with a dial that
names the code, so a typed input only ever comes on a session id we hold a record of; a hop
that is not our code, on one we hold none of, is the dial of another service's code, and the
service refuses it (``Hop.needs_session``) rather than walk its digits as inputs from our main
menu (``122*1`` would open the profile list). The one such hop that is not a misrouted dial, a
later hop of a session whose record expired or was lost (evicted, a failover), gets the same
refusal, counted apart (``UnknownSessionError``, never ``UnknownServiceCodeError``); the
redial it asks for is offered the dropped dialogue (ussd/resume.py).
"""

from __future__ import annotations

from types import MappingProxyType

from ..contract import End, EndKind, Hop, Reply, Route, WireReply, WireRequest
from ..errors import MalformedReplyError, UnknownServiceCodeError
from ..phone import normalize_msisdn
from .fields import (
    MAX_INPUT,
    SERVICE_CODES,
    ServiceCodes,
    bare_code,
    check_answer,
    field,
    split_inputs,
    text_field,
)

ABORTS = {EndKind.HANG_UP: "clean", EndKind.TIME_OUT: "error"}  # how the gateway says it
_DROPPED = {"clean": False, "error": True}  # each abort -> End.dropped
# "Cache-Control": a GET, so no proxy may answer a hop from its cache.
_CONTINUE = MappingProxyType({"Freeflow": "FC", "Cache-Control": "no-store"})
_CLOSE = MappingProxyType({"Freeflow": "FB", "Cache-Control": "no-store"})
_ACKNOWLEDGED = WireReply(200, "text/plain", "")


class Flares:
    """The Flares dialect, both halves."""

    name = "flares"
    # Its words for how a session ended (metrics): None, the service ended it itself.
    end_meanings = MappingProxyType({"clean": "abandoned", "error": "failed"})
    routes = (Route("", ("GET",)),)
    body = "query"
    token_in_path = True
    numbers_hops = False

    def parse(self, request: WireRequest, codes: ServiceCodes = SERVICE_CODES) -> Hop | End:
        """The hop a request's query describes, or the End an ``abort`` reports.

        Raises BadRequestError or InvalidMsisdnError on a bad field, number or service code.
        """
        args = request.query
        abort = field(args, "abort")
        if abort is not None:
            status = abort.lower() if isinstance(abort, str) else ""
            status = status if status in _DROPPED else "other"
            return End(self.name, field(args, "SessionID"), field(args, "MSISDN"), status,
                       _DROPPED.get(status))
        text = text_field(args, "input", required=False, limit=MAX_INPUT)
        session_id = text_field(args, "SessionID")
        msisdn = normalize_msisdn(text_field(args, "MSISDN"))
        try:
            return Hop(self.name, session_id, msisdn, dialled=codes.split(text), opens=True)
        except UnknownServiceCodeError:
            pass  # not our code: what was typed, or another service's code (the docstring)
        # An empty (or blank) input is the subscriber sending nothing: on a live session an
        # input, refused by the menu; on the first hop, none (see session.first_inputs). Any
        # other is an input only in a session of ours: on a session id we hold no record of, it
        # is another service's code, bare or decorated (needs_session; see the docstring). A
        # code with its signs typed in a session is one wrong input, not one per ``*``.
        inputs = (text,) if text.startswith(("*", "#")) else split_inputs(text)
        return Hop(self.name, session_id, msisdn, inputs=inputs or ("",),
                   needs_session=bool(text.strip()))

    def msisdn_field(self, request: WireRequest) -> object:
        """The number a request names, unchecked (for the refusal's language)."""
        return field(request.query, "MSISDN")

    def wire(self, reply: Reply, request: WireRequest) -> WireReply:
        """A reply in the dialect: the text, ``Freeflow: FC`` to continue or ``FB`` to end."""
        return WireReply(200, "text/plain", reply.text, _CLOSE if reply.end else _CONTINUE)

    def acknowledge(self, end: End, request: WireRequest) -> WireReply:
        """An abort is answered with an empty ``200``."""
        return _ACKNOWLEDGED

    # --- the client half: what the gateway sends, and how it reads our answers -------------

    def dial(self, session_id: str, msisdn: str, code: str) -> WireRequest:
        """The first hop: ``input`` is the dialled code without its signs."""
        return _request(session_id, msisdn, input=bare_code(code))

    def hop(self, session_id: str, msisdn: str, code: str,
            inputs: tuple[str, ...]) -> WireRequest:
        """A later hop: ``input`` is this hop's input only."""
        return _request(session_id, msisdn, input=inputs[-1])

    def end(self, session_id: str, msisdn: str, code: str, inputs: tuple[str, ...],
            kind: EndKind) -> WireRequest | None:
        """An ``abort``: ``clean`` (hang-up) or ``error``; None after an ending reply."""
        return _request(session_id, msisdn, abort=ABORTS[kind]) if kind in ABORTS else None

    def read_reply(self, answer: WireReply) -> Reply:
        """The screen an answer shows, ending on ``FB``; MalformedReplyError without a Freeflow."""
        check_answer(answer, "text/plain")
        freeflow = answer.header("Freeflow")
        if freeflow not in ("FC", "FB"):
            raise MalformedReplyError(f"reply has Freeflow {freeflow!r}, not FC or FB")
        return Reply(answer.body, freeflow == "FB")

    def check_acknowledgement(self, answer: WireReply, request: WireRequest) -> None:
        """MalformedReplyError unless an abort got an empty ``200``."""
        if answer.status != 200:
            raise MalformedReplyError(f"an abort got HTTP {answer.status}")
        if answer.body:
            raise MalformedReplyError(f"an abort got {answer.body[:80]!r}, not an empty reply")


def _request(session_id: str, msisdn: str, **fields: str) -> WireRequest:
    return WireRequest("GET", query={"SessionID": session_id, "MSISDN": msisdn, **fields})


DIALECT = Flares()
