"""Africa's Talking: form ``POST``, cumulative ``text``, ``text/plain`` ``CON``/``END`` reply.

Every hop carries ``sessionId, serviceCode, phoneNumber, networkCode, text``, where ``text``
joins with ``*`` every input since the dial (empty on the first hop). Because it is
cumulative, a retried hop resends the same ``text`` and is recognised by its input count.
At the end of a session the gateway may call the events URL with ``status``
(``Success``/``Incomplete``/``Failed``), ``durationInMillis``, ``errorMessage``...: that
closes the session, and changes no subscriber. The gateway is given a URL only, so its secret
is a token in the path (``/ussd/africastalking/<token>``).
"""

from __future__ import annotations

from flask import Response, request

from ..phone import normalize_msisdn
from ..contract import Hop, Reply
from ..service import UssdService
from . import (
    REFUSED,
    Route,
    close_session,
    form_of,
    parse_service_code,
    refuse,
    split_inputs,
    text_field,
)

NAME = "africastalking"


def parse(form) -> Hop:
    """The hop a callback's form describes; raises on a bad field, number or service code."""
    inputs = split_inputs(text_field(form, "text", required=False))
    return Hop(
        gateway=NAME,
        session_id=text_field(form, "sessionId"),
        msisdn=normalize_msisdn(text_field(form, "phoneNumber")),
        inputs=inputs,
        cumulative=True,
        sequence=len(inputs),
        dialled=parse_service_code(text_field(form, "serviceCode")),
    )


def wire(reply: Reply) -> Response:
    """A reply in the dialect: ``CON `` to continue, ``END `` to close."""
    body = ("END " if reply.end else "CON ") + reply.text
    return Response(body, status=200, mimetype="text/plain")


def routes(service: UssdService) -> tuple[Route, ...]:
    """The callback and the end-of-session events."""

    def callback() -> Response:
        form = form_of(request._get_current_object())
        try:
            hop = parse(form)
        except REFUSED as error:
            return wire(refuse(service, NAME, error, form.get("phoneNumber")))
        return wire(service.handle(hop))

    def events() -> Response:
        form = form_of(request._get_current_object())
        close_session(service, NAME, form.get("sessionId"), form.get("phoneNumber"),
                      form.get("status", "unknown"))
        return Response("", status=200, mimetype="text/plain")

    return (
        Route("", ("POST",), callback, NAME),
        Route("/events", ("POST",), events, f"{NAME}_events"),
    )
