"""Hubtel: JSON ``POST`` per hop, JSON reply ``{"Type", "Message", "ClientState"}``.

A request carries ``Type, Mobile, SessionId, ServiceCode, Message, Operator, Sequence,
ClientState``. ``Type`` is ``Initiation`` (the dial: ``Message`` holds the dialled code, e.g.
``*121*1#``), ``Response`` (``Message`` holds this hop's input only), ``Release`` (the
subscriber ended the session) or ``Timeout``. ``Sequence`` numbers the hops from 1, so a
retried hop is recognised by a number already seen. The reply's ``Type`` is ``Response`` to
continue or ``Release`` to close; ``ClientState`` is echoed (our state lives in Redis). A
``Release`` or ``Timeout`` closes the session and is answered with an empty ``Release``.
"""

from __future__ import annotations

import json
from enum import StrEnum

from flask import Response, request

from ..phone import normalize_msisdn
from ..contract import Hop, Reply
from ..service import UssdService
from . import (
    MAX_INPUT,
    REFUSED,
    BadRequestError,
    Route,
    close_session,
    parse_service_code,
    refuse,
    split_inputs,
    text_field,
)

NAME = "hubtel"


class RequestType(StrEnum):
    """What a Hubtel request is."""

    INITIATION = "Initiation"
    RESPONSE = "Response"
    RELEASE = "Release"
    TIMEOUT = "Timeout"


def request_type(body: object) -> RequestType:
    """The request's ``Type``; BadRequestError unless a JSON object with a known one."""
    if not isinstance(body, dict):
        raise BadRequestError("body is not a JSON object")
    try:
        return RequestType(body.get("Type"))
    except ValueError:
        raise BadRequestError(f"unknown Type {str(body.get('Type'))[:20]!r}") from None


def parse(body: dict, kind: RequestType) -> Hop:
    """The hop an ``Initiation`` or ``Response`` describes; raises on a bad field."""
    message = text_field(body, "Message", required=False, limit=MAX_INPUT)
    code = parse_service_code(text_field(body, "ServiceCode"))
    initiation = kind is RequestType.INITIATION
    return Hop(
        gateway=NAME,
        session_id=text_field(body, "SessionId"),
        msisdn=normalize_msisdn(text_field(body, "Mobile")),
        inputs=() if initiation else split_inputs(message),
        sequence=sequence(body.get("Sequence")),
        dialled=(parse_service_code(message) if message else code) if initiation else (),
    )


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
    state = body.get("ClientState") if isinstance(body, dict) else None
    return state if isinstance(state, str) and len(state) <= MAX_INPUT else ""


def wire(reply: Reply, state: str) -> Response:
    """A reply in the dialect: ``Response`` to continue, ``Release`` to close."""
    payload = {"Type": "Release" if reply.end else "Response", "Message": reply.text,
               "ClientState": state}
    return Response(json.dumps(payload, ensure_ascii=False), status=200,
                    mimetype="application/json")


def routes(service: UssdService) -> tuple[Route, ...]:
    """One callback for every request type."""

    def callback() -> Response:
        body = request.get_json(force=True, silent=True)
        state = client_state(body)
        try:
            kind = request_type(body)
            if kind in (RequestType.RELEASE, RequestType.TIMEOUT):
                close_session(service, NAME, body.get("SessionId"), body.get("Mobile"),
                              kind.value)
                return wire(Reply("", end=True), state)
            hop = parse(body, kind)
        except REFUSED as error:
            mobile = body.get("Mobile") if isinstance(body, dict) else None
            return wire(refuse(service, NAME, error, mobile), state)
        return wire(service.handle(hop), state)

    return (Route("", ("POST",), callback, NAME),)
