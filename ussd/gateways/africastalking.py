"""Africa's Talking: form ``POST``, cumulative ``text``, ``text/plain`` ``CON``/``END`` reply.

Every hop carries ``sessionId, serviceCode, phoneNumber, networkCode, text``, where ``text``
joins with ``*`` every input since the dial (empty on the first hop). Because it is
cumulative, a retried hop resends the same ``text`` and is recognised by its input count.
At the end of a session the gateway may call the events URL with ``status``,
``durationInMillis``, ``errorMessage``...: that closes the session, and changes no subscriber.
"""

from __future__ import annotations

from flask import Flask, Response, request

from .. import metrics
from ..errors import InvalidMsisdnError, StoreError
from ..phone import mask_msisdn, normalize_msisdn
from ..rules import Language
from ..service import Hop, UssdService
from . import UnknownServiceCodeError, parse_service_code

NAME = "africastalking"
MAX_FIELD = 512  # longer fields are not a handset's input: refused politely


def parse(form) -> Hop:
    """The hop a callback's form describes; raises on a bad number or service code."""
    session_id = form.get("sessionId", "")
    if not session_id or len(session_id) > MAX_FIELD:
        raise ValueError("missing or oversized sessionId")
    text = form.get("text", "")
    if len(text) > MAX_FIELD:
        raise ValueError("oversized text")
    inputs = tuple(text.split("*")) if text else ()
    return Hop(
        gateway=NAME,
        session_id=session_id,
        msisdn=normalize_msisdn(form.get("phoneNumber", "")),
        inputs=inputs,
        cumulative=True,
        sequence=len(inputs),
        dialled=parse_service_code(form.get("serviceCode", "")),
    )


def wire(text: str, end: bool) -> Response:
    """A reply in the dialect: ``CON `` to continue, ``END `` to close."""
    body = ("END " if end else "CON ") + text
    return Response(body, status=200, mimetype="text/plain")


def register(app: Flask, service: UssdService) -> None:
    """Add the callback and events routes."""

    @app.post("/ussd/africastalking", endpoint="africastalking")
    def callback() -> Response:
        try:
            hop = parse(request.form)
        except (InvalidMsisdnError, UnknownServiceCodeError, ValueError) as error:
            metrics.REJECTED.labels(NAME, type(error).__name__).inc()
            reply = service.system_reply("invalid_request", Language.FR)
            return wire(reply.text, True)
        reply = service.handle(hop)
        return wire(reply.text, reply.end)

    @app.post("/ussd/africastalking/events", endpoint="africastalking_events")
    def events() -> Response:
        status = request.form.get("status", "unknown")[:32]
        metrics.SESSION_ENDS.labels(NAME, status).inc()
        try:
            msisdn = normalize_msisdn(request.form.get("phoneNumber", ""))
        except InvalidMsisdnError:
            return Response("", status=200)
        session_id = request.form.get("sessionId", "")[:MAX_FIELD]
        if session_id:
            try:
                closed = service.close(NAME, session_id, msisdn)
            except StoreError:
                closed = "unknown"  # the record expires with its TTL anyway
            app.logger.info("session end gateway=%s msisdn=%s status=%s live=%s",
                            NAME, mask_msisdn(msisdn), status, closed)
        return Response("", status=200)
