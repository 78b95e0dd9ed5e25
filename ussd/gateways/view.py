"""The one Flask view of every dialect: HTTP in, the dialect's parse and wire, HTTP out.

:func:`mount` puts each enabled dialect's routes behind that dialect's
:class:`~ussd.auth.Guard` (and under ``/ussd/<name>/<token>`` too when it has a token), so no
dialect can forget to authenticate its gateway. For each request the view reads what the
dialect declares (``body``: the form, the JSON body or the query) into a
:class:`~ussd.contract.WireRequest`, within the bounds of ``reading.py`` (size, time; a
request that cannot be read is read as an empty one), has the dialect parse it, and, when
:class:`~ussd.overload.Admission` gives it its turn, has the service answer the hop
(``handle``), the end (``end``) or the refusal (``refuse``); without a turn in time, a hop is
answered "busy". It sends the dialect's :class:`~ussd.contract.WireReply` as a Flask
response: whatever a request holds, never a ``5xx``. Everything looked up once per route is
looked up at mount time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Response, request
from werkzeug.utils import get_content_type

from ..auth import Guard, check_gateway_security
from ..contract import Hop, Route, WireReply, WireRequest
from ..errors import BadRequestError, InvalidMsisdnError, UssdError
from ..observe import where_raised
from ..overload import Admission
from . import DIALECTS, enabled
from .reading import Bounds, TooLargeError, TooSlowError, read_request

if TYPE_CHECKING:
    from flask import Flask

    from ..contract import Dialect
    from ..service import UssdService
    from ..settings import Settings

log = logging.getLogger("ussd.gateway")

# What a dialect's parse raises for a request answered with the polite refusal, not a hop.
REFUSED = (BadRequestError, InvalidMsisdnError)


def check_security(settings: Settings) -> list[str]:
    """Refuse a production-like start with a gateway left open; log the open ones.

    See :func:`ussd.auth.check_gateway_security`; ``create_app`` calls this first of all.
    """
    unprotected = check_gateway_security(settings, DIALECTS)
    if unprotected:
        log.warning("gateway endpoint(s) OPEN, no secret checked: %s", ", ".join(unprotected))
    return unprotected


def mount(app: Flask, service: UssdService, settings: Settings) -> None:
    """Add every enabled dialect's routes, each behind its gateway's guard.

    A dialect with a token also answers under ``/ussd/<dialect>/<token>``, for gateways that
    can only be given a URL. Every route shares this worker's bounds and turns (the
    :class:`~ussd.overload.Admission`, also in ``app.extensions["ussd_admission"]``).
    """
    limits = settings.limits
    bounds = Bounds(limits.max_body, limits.body_timeout)
    admission = Admission(limits.hops_at_once, limits.busy_after)
    app.extensions["ussd_admission"] = admission
    for dialect in enabled(settings):
        guard = Guard(dialect.name, settings.gateway_secrets.get(dialect.name))
        for route in dialect.routes:
            view = guard.protect(gateway_view(dialect, route, service, bounds, admission))
            endpoint = dialect.name + route.suffix.replace("/", "_")
            app.add_url_rule(f"/ussd/{dialect.name}{route.suffix}", endpoint, view,
                             methods=route.methods)
            if guard.token is not None:
                app.add_url_rule(f"/ussd/{dialect.name}/<token>{route.suffix}",
                                 f"{endpoint}_keyed", view, methods=route.methods)


def gateway_view(dialect: Dialect, route: Route, service: UssdService, bounds: Bounds,
                 admission: Admission) -> Callable[[], Response]:
    """The view of one route of ``dialect``: the request read, parsed and answered."""
    body, suffix, name = dialect.body, route.suffix, dialect.name
    parse, wire, acknowledge = dialect.parse, dialect.wire, dialect.acknowledge
    clock = admission.clock

    def refuse(error: UssdError, wire_request: WireRequest, arrived: float) -> Response:
        # The refusal's language is looked up in Redis only with a turn to do it.
        raw_msisdn = dialect.msisdn_field(wire_request)
        if not admission.enter(arrived):
            return respond(wire(service.refuse(name, error, raw_msisdn, look_up=False),
                                wire_request))
        try:
            return respond(wire(service.refuse(name, error, raw_msisdn), wire_request))
        finally:
            admission.leave()

    def answer(wire_request: WireRequest, arrived: float) -> Response:
        try:
            event = parse(wire_request)
        except REFUSED as error:
            return refuse(error, wire_request, arrived)
        except Exception as error:  # noqa: BLE001  (a parse that failed on what it was given)
            log.warning("unparsed request gateway=%s: %s at %s", name, type(error).__name__,
                        where_raised(error))
            return refuse(BadRequestError("unparsed request"), wire_request, arrived)
        if not admission.enter(arrived):
            if isinstance(event, Hop):
                return respond(wire(service.busy(event, clock() - arrived), wire_request))
            service.end(event, close=False)
            return respond(acknowledge(event, wire_request))
        try:
            if isinstance(event, Hop):
                return respond(wire(service.handle(event), wire_request))
            service.end(event)
            return respond(acknowledge(event, wire_request))
        finally:
            admission.leave()

    def view() -> Response:
        arrived = clock()
        # The request itself, not Flask's proxy: each attribute read through the proxy looks
        # the request context up again.
        current = request._get_current_object()
        try:
            wire_request = read_request(body, current, suffix, bounds, arrived)
        except TooLargeError:
            return _plain(413, "request body too large")
        except TooSlowError:
            return _plain(408, "request body too slow")
        except Exception as error:  # noqa: BLE001  (unreadable: refused by its dialect below)
            log.warning("unreadable request gateway=%s: %s", name, type(error).__name__)
            wire_request = WireRequest(current.method, suffix)
        try:
            return answer(wire_request, arrived)
        except Exception as error:  # noqa: BLE001  (a dialect that cannot write its answer)
            log.error("unanswered request gateway=%s: %s at %s", name, type(error).__name__,
                      where_raised(error))
            return respond(wire(service.system_reply("unavailable", service.language_of("")),
                                WireRequest(current.method, suffix)))

    return view


def _plain(status: int, text: str) -> Response:
    """A short text answer of the view's own (a request refused before its dialect reads it)."""
    return Response(text + "\n", status, content_type="text/plain; charset=utf-8")


def respond(answer: WireReply) -> Response:
    """The Flask response of a dialect's answer: its status, media type, headers and body.

    The ``Content-Type`` is werkzeug's for the media type (``text/plain; charset=utf-8``),
    worked out once per media type rather than by ``Response`` on every hop (0.3 us).
    """
    content_type = _CONTENT_TYPES.get(answer.mimetype)
    if content_type is None:
        content_type = _CONTENT_TYPES[answer.mimetype] = get_content_type(answer.mimetype,
                                                                          "utf-8")
    return Response(answer.body, answer.status, answer.headers, content_type=content_type)


_CONTENT_TYPES: dict[str, str] = {}
