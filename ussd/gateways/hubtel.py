"""Hubtel: JSON ``POST`` per hop, JSON reply ``{"Type", "Message", "ClientState"}``.

Source: Hubtel USSD docs. A request carries ``Type, Mobile, SessionId, ServiceCode, Message,
Operator, Sequence, ClientState``. ``Type`` is ``Initiation`` (the dial: ``Message`` holds the
dialled code, e.g. ``*121*1#``), ``Response`` (``Message`` holds this hop's input only),
``Release`` (the subscriber ended the session) or ``Timeout``. ``Sequence`` numbers the hops
from 1, so a retried hop is recognised by a number already seen. The reply's ``Type`` is
``Response`` to continue or ``Release`` to close; ``ClientState`` is echoed (our state lives
in Redis). A ``Release`` or ``Timeout`` closes the session and is answered with an empty
``Release``: a ``Timeout`` is a drop (the dialogue may be resumed on a redial), a ``Release``
the subscriber's own end. An ``Initiation`` on a ``SessionId`` the gateway has ended is a new
session. A ``Response`` on a ``SessionId`` we hold no record of (ours expired or was lost while
the gateway kept the session) is refused (``Hop.needs_session``): its input alone, walked from
the main menu, would act on a screen the subscriber never saw (a ``1`` meant "Confirm" opening
the list); the refusal asks for a redial, which offers the dialogue dropped. ``Type`` is read
in any letter case, as every field's name is.
"""

from __future__ import annotations

import json
from enum import StrEnum
from types import MappingProxyType

from ..contract import End, EndKind, Hop, Reply, Route, WireReply, WireRequest, chained_once
from ..errors import BadRequestError, MalformedReplyError
from ..phone import normalize_msisdn
from .fields import (
    MAX_INPUT,
    SERVICE_CODES,
    ServiceCodes,
    check_answer,
    field,
    split_inputs,
    text_field,
)

OPERATOR = "Orange"
_RELEASED = Reply("", end=True)


class RequestType(StrEnum):
    """What a Hubtel request is."""

    INITIATION = "Initiation"
    RESPONSE = "Response"
    RELEASE = "Release"
    TIMEOUT = "Timeout"


_ENDINGS = {RequestType.RELEASE: False, RequestType.TIMEOUT: True}  # -> End.dropped
_END_TYPES = {EndKind.HANG_UP: RequestType.RELEASE, EndKind.TIME_OUT: RequestType.TIMEOUT}
_TYPES = {kind.value: kind for kind in RequestType} | {
    kind.value.lower(): kind for kind in RequestType}


def request_type(body: object) -> RequestType:
    """The request's ``Type`` (any letter case); BadRequestError unless a JSON object with a
    known one."""
    if not isinstance(body, dict):
        raise BadRequestError("body is not a JSON object")
    kind = field(body, "Type")
    known = _TYPES.get(kind) if isinstance(kind, str) else None
    if known is None and isinstance(kind, str):
        known = _TYPES.get(kind.lower())
    if known is None:
        raise BadRequestError(f"unknown Type {str(kind)[:20]!r}")
    return known


def sequence(value: object) -> int | None:
    """``Sequence`` as a number (None if absent: then no retry can be told)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isdecimal() and len(value) <= 9:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 10**9:
        raise BadRequestError("Sequence is not a hop number")
    return value


def client_state(body: object) -> str:
    """The ``ClientState`` to echo: text, or ``""`` when absent or not fit to send back."""
    state = field(body, "ClientState") if isinstance(body, dict) else None
    return state if isinstance(state, str) and len(state) <= MAX_INPUT else ""


class Hubtel:
    """The Hubtel dialect, both halves."""

    name = "hubtel"
    # Its words for how a session ended (metrics): None, the service ended it itself.
    end_meanings = MappingProxyType({"Release": "abandoned", "Timeout": "timed_out"})
    routes = (Route("", ("POST",)),)
    body = "json"
    token_in_path = False
    numbers_hops = True

    def parse(self, request: WireRequest, codes: ServiceCodes = SERVICE_CODES) -> Hop | End:
        """The hop an ``Initiation`` or ``Response`` describes, or the End of a ``Release`` or
        ``Timeout``; raises BadRequestError or InvalidMsisdnError on a bad body or field.

        An ``Initiation``'s chained inputs are in its ``Message`` (the dialled code), in its
        ``ServiceCode`` or in both: walked once (``contract.chained_once``).
        """
        body = request.json
        kind = request_type(body)
        if kind in _ENDINGS:
            return End(self.name, field(body, "SessionId"), field(body, "Mobile"), kind.value,
                       _ENDINGS[kind])
        message = text_field(body, "Message", required=False, limit=MAX_INPUT)
        code = codes.split(text_field(body, "ServiceCode"))
        initiation = kind is RequestType.INITIATION
        return Hop(
            gateway=self.name,
            session_id=text_field(body, "SessionId"),
            msisdn=normalize_msisdn(text_field(body, "Mobile")),
            inputs=() if initiation else split_inputs(message),
            sequence=sequence(field(body, "Sequence")),
            dialled=chained_once(code, codes.split(message) if message else ()) if initiation
            else (),
            opens=initiation,
            needs_session=not initiation,  # a Response carries this hop's input alone
        )

    def msisdn_field(self, request: WireRequest) -> object:
        """The number a request names, unchecked (for the refusal's language)."""
        body = request.json
        return field(body, "Mobile") if isinstance(body, dict) else None

    def wire(self, reply: Reply, request: WireRequest) -> WireReply:
        """A reply in the dialect: ``Response`` to continue, ``Release`` to close."""
        payload = {"Type": "Release" if reply.end else "Response", "Message": reply.text,
                   "ClientState": client_state(request.json)}
        return WireReply(200, "application/json", json.dumps(payload, ensure_ascii=False))

    def acknowledge(self, end: End, request: WireRequest) -> WireReply:
        """A ``Release`` or ``Timeout`` is answered with an empty ``Release``."""
        return self.wire(_RELEASED, request)

    # --- the client half: what the gateway sends, and how it reads our answers -------------

    def dial(self, session_id: str, msisdn: str, code: str) -> WireRequest:
        """The ``Initiation``: ``Message`` is the dialled code, ``Sequence`` 1."""
        return _request(RequestType.INITIATION, session_id, msisdn, code, code, 1)

    def hop(self, session_id: str, msisdn: str, code: str,
            inputs: tuple[str, ...]) -> WireRequest:
        """A ``Response``: ``Message`` is this hop's input only."""
        return _request(RequestType.RESPONSE, session_id, msisdn, code, inputs[-1],
                        len(inputs) + 1)

    def end(self, session_id: str, msisdn: str, code: str, inputs: tuple[str, ...],
            kind: EndKind) -> WireRequest | None:
        """A ``Release`` (hang-up) or ``Timeout``; None after an ending reply (not reported)."""
        if kind not in _END_TYPES:
            return None
        return _request(_END_TYPES[kind], session_id, msisdn, code, "", len(inputs) + 2)

    def read_reply(self, answer: WireReply) -> Reply:
        """The screen a ``Response``/``Release`` answer shows; MalformedReplyError for any other."""
        check_answer(answer, "application/json")
        try:
            payload = json.loads(answer.body)
            kind, text = payload["Type"], payload["Message"]
        except (ValueError, TypeError, KeyError):
            raise MalformedReplyError(f"reply is not Hubtel JSON: {answer.body[:80]!r}") from None
        if kind not in ("Response", "Release") or not isinstance(text, str):
            raise MalformedReplyError(f"reply Type is {kind!r}, not Response or Release")
        return Reply(text, kind == "Release")

    def check_acknowledgement(self, answer: WireReply, request: WireRequest) -> None:
        """MalformedReplyError unless a ``Release``/``Timeout`` got an empty ``Release``."""
        reply = self.read_reply(answer)
        if not reply.end or reply.text:
            raise MalformedReplyError(f"a {field(request.json, 'Type')} got {reply.text!r}, "
                                      "not an empty Release")


def _request(kind: RequestType, session_id: str, msisdn: str, code: str, message: str,
             number: int) -> WireRequest:
    """One request as the gateway sends it (``ClientState`` as our answers leave it: empty)."""
    return WireRequest("POST", json={
        "Type": kind.value, "Mobile": msisdn, "SessionId": session_id,
        "ServiceCode": SERVICE_CODES.base(code), "Message": message, "Operator": OPERATOR,
        "Sequence": number, "ClientState": ""})


DIALECT = Hubtel()
