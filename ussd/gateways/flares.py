"""Comviva Flares, "Freeflow" operator style: ``GET`` per hop, ``text/plain`` reply.

A hop is ``GET /ussd/flares?SessionID=...&MSISDN=...&input=...``. The first hop's ``input`` is
the dialled code without its ``*``/``#`` (``121``, or ``121*1`` for ``#121*1#``; the decorated
forms are taken too), every later hop's only the latest input. The reply is the screen's text
with the header ``Freeflow: FC`` to continue or ``FB`` to end the session.

The gateway reports an ended session with ``abort`` (``abort=clean``: the subscriber hung up;
``abort=error``: the network lost it) beside ``SessionID`` and ``MSISDN``: that closes the
session and gets an empty ``200``.

Flares gives no way to tell a retried hop from a new one, so a retry is walked as a new input
(it can never apply a migration twice: the success screen ends the dialogue). A first hop is
recognised by its input being our code; an input a subscriber types is never that, except a
literal ``121``, which then shows the current screen again.
"""

from __future__ import annotations

from flask import Response, request

from ..phone import normalize_msisdn
from ..contract import Hop, Reply
from ..service import UssdService
from . import (
    MAX_INPUT,
    REFUSED,
    Route,
    UnknownServiceCodeError,
    close_session,
    parse_service_code,
    refuse,
    split_inputs,
    text_field,
)

NAME = "flares"
ABORTS = ("clean", "error")


def parse(args) -> Hop:
    """The hop a request's query describes; raises on a bad field, number or service code."""
    text = text_field(args, "input", required=False, limit=MAX_INPUT)
    session_id = text_field(args, "SessionID")
    msisdn = normalize_msisdn(text_field(args, "MSISDN"))
    try:
        return Hop(NAME, session_id, msisdn, dialled=parse_service_code(text))
    except UnknownServiceCodeError:
        if text.startswith(("*", "#")):
            raise  # a dialled code, and not ours
    # An empty input is the subscriber sending nothing: an input, refused by the menu.
    return Hop(NAME, session_id, msisdn, inputs=split_inputs(text) or ("",))


def wire(reply: Reply) -> Response:
    """A reply in the dialect: the text, ``Freeflow: FC`` to continue or ``FB`` to end."""
    return Response(reply.text, status=200, mimetype="text/plain", headers={
        "Freeflow": "FB" if reply.end else "FC",
        "Cache-Control": "no-store",  # a GET: no proxy may answer a hop from its cache
    })


def routes(service: UssdService) -> tuple[Route, ...]:
    """One callback for hops and aborts."""

    def callback() -> Response:
        args = request.args
        if "abort" in args:
            status = args["abort"] if args["abort"] in ABORTS else "other"
            close_session(service, NAME, args.get("SessionID"), args.get("MSISDN"), status)
            return Response("", status=200, mimetype="text/plain")
        try:
            hop = parse(args)
        except REFUSED as error:
            return wire(refuse(service, NAME, error, args.get("MSISDN")))
        return wire(service.handle(hop))

    return (Route("", ("GET",), callback, NAME),)
