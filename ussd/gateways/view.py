"""The one Flask view of every dialect: HTTP in, the dialect's parse and wire, HTTP out.

:func:`mount` puts each enabled dialect's routes behind that dialect's
:class:`~ussd.auth.Guard` (and under ``/ussd/<name>/<token>`` too when it has a token), so no
dialect can forget to authenticate its gateway. For each request the view reads what the
dialect declares (``body``: the form, the JSON body or the query) into a
:class:`~ussd.contract.WireRequest`, within the bounds of ``reading.py`` (size, time; a
request that cannot be read is read as an empty one), then :func:`answer`: the dialect parses
it and, when :class:`~ussd.overload.Admission` gives it its turn, the service answers the hop
(``handle``), the end (``end``) or the refusal (``refuse``); without a turn in time, a hop is
answered "busy". It sends the dialect's :class:`~ussd.contract.WireReply` as a Flask
response: whatever a request holds, never a ``5xx``. Everything looked up once per route is
looked up at mount time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Response, request
from werkzeug.utils import get_content_type

from ..auth import Guard, check_gateway_security
from ..contract import NOT_SERVED_HEADER, Hop, Route, WireReply, WireRequest
from ..errors import BadRequestError, InvalidMsisdnError, UssdError
from ..metrics import record_rejection
from ..observe import where_raised
from ..overload import Admission
from . import DIALECTS, enabled
from .fields import SERVICE_CODES, ServiceCodes
from .reading import Bounds, TooLargeError, TooSlowError, read_request

if TYPE_CHECKING:
    from flask import Flask

    from ..contract import Dialect
    from ..service import UssdService
    from ..settings import Settings

log = logging.getLogger("ussd.gateway")

# What a dialect's parse raises for a request answered with the polite refusal, not a hop.
REFUSED = (BadRequestError, InvalidMsisdnError)
_NO_TURNS = Admission(None, 0.0)  # the simulator's requests, and an app served without turns


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
    can only be given a URL. A registered dialect the settings leave out answers ``404`` with
    a sentence saying so (for ``ussd sim`` and whoever configures a gateway), not a bare page.
    Every route shares this worker's bounds and turns (the
    :class:`~ussd.overload.Admission`, also in ``app.extensions["ussd_admission"]``).
    """
    codes = ServiceCodes(settings.service_codes)
    limits = settings.limits
    bounds = Bounds(limits.max_body, limits.body_timeout)
    admission = Admission(limits.hops_at_once, limits.busy_after)
    app.extensions["ussd_admission"] = admission
    served = enabled(settings)
    for dialect in served:
        guard = Guard(dialect.name, settings.gateway_secrets.get(dialect.name))
        for route in dialect.routes:
            view = guard.protect(gateway_view(dialect, route, service, codes, bounds,
                                              admission))
            endpoint = dialect.name + route.suffix.replace("/", "_")
            app.add_url_rule(f"/ussd/{dialect.name}{route.suffix}", endpoint, view,
                             methods=route.methods)
            if guard.token is not None:
                app.add_url_rule(f"/ussd/{dialect.name}/<token>{route.suffix}",
                                 f"{endpoint}_keyed", view, methods=route.methods)
    for name in DIALECTS:
        if name not in {dialect.name for dialect in served}:
            app.add_url_rule(f"/ussd/{name}", f"{name}_disabled", _disabled(name),
                             methods=["GET", "POST"])
            app.add_url_rule(f"/ussd/{name}/<path:rest>", f"{name}_disabled_rest",
                             _disabled(name), methods=["GET", "POST"])


def _disabled(name: str) -> Callable[..., Response]:
    def view(**_: str) -> Response:
        return Response(f"the {name} gateway dialect is not served here (USSD_GATEWAYS)\n",
                        404, {NOT_SERVED_HEADER: name},
                        content_type="text/plain; charset=utf-8")

    return view


def gateway_view(dialect: Dialect, route: Route, service: UssdService, codes: ServiceCodes,
                 bounds: Bounds, admission: Admission) -> Callable[[], Response]:
    """The view of one route of ``dialect``: the request read within ``bounds``, then
    :func:`answer`, in turns."""
    body, suffix, name = dialect.body, route.suffix, dialect.name
    clock = admission.clock

    def view() -> Response:
        arrived = clock()
        # The request itself, not Flask's proxy: each read through the proxy looks the request
        # context up again, about 0.8 us. A hop's reads here and in read_request (8 for a
        # form, 4 for JSON, 3 for a query) cost 7.3-8.0, 3.8-4.1 and 2.6-3.0 us more through
        # it, read_request of a form whole 8.3-9.2 us (timeit, best of 41 repeats of 10,000,
        # warm, in a request context of create_app's app for a gateway's POST; three runs;
        # CPython 3.11, Flask 3.1, werkzeug 3.1).
        current = request._get_current_object()
        try:
            wire_request = read_request(body, current, suffix, bounds, arrived)
        except TooLargeError:
            record_rejection(name, "body_too_large")
            return _plain(413, "request body too large")
        except TooSlowError:
            record_rejection(name, "body_too_slow")
            return _plain(408, "request body too slow")
        except Exception as error:  # noqa: BLE001  (unreadable: refused by its dialect below)
            log.warning("unreadable request gateway=%s: %s", name, type(error).__name__)
            wire_request = WireRequest(current.method, suffix)
        try:
            return respond(answer(dialect, wire_request, service, codes, admission, arrived))
        except Exception as error:  # noqa: BLE001  (a dialect that cannot write its answer)
            log.error("unanswered request gateway=%s: %s at %s", name, type(error).__name__,
                      where_raised(error))
            return respond(dialect.wire(service.system_reply("unavailable",
                                                             service.language_of("")),
                                        WireRequest(current.method, suffix)))

    return view


def answer(dialect: Dialect, wire_request: WireRequest, service: UssdService,
           codes: ServiceCodes = SERVICE_CODES, admission: Admission = _NO_TURNS,
           arrived: float | None = None) -> WireReply:
    """What the server half of ``dialect`` answers a request: parsed (for the service
    ``codes``), handled by the service as a hop, an end or a refusal in its turn (``admission``,
    for a request that ``arrived`` then: "busy" without one), and written back.

    The view's whole work once the request is read, and the browser simulator's
    (``ussd/simulator``, without turns), so that what a tester sees is what the gateway would
    get. A parse that fails on what it was given is the dialect's polite refusal too.
    """
    arrived = time.monotonic() if arrived is None else arrived
    try:
        event = dialect.parse(wire_request, codes)
    except REFUSED as error:
        return _refusal(dialect, wire_request, service, error, admission, arrived)
    except Exception as error:  # noqa: BLE001  (a parse that failed on what it was given)
        log.warning("unparsed request gateway=%s: %s at %s", dialect.name,
                    type(error).__name__, where_raised(error))
        return _refusal(dialect, wire_request, service, BadRequestError("unparsed request"),
                        admission, arrived)
    if not admission.enter(arrived):
        if isinstance(event, Hop):
            return dialect.wire(service.busy(event, admission.clock() - arrived), wire_request)
        service.end(event, close=False)
        return dialect.acknowledge(event, wire_request)
    try:
        if isinstance(event, Hop):
            return dialect.wire(service.handle(event), wire_request)
        service.end(event)
        return dialect.acknowledge(event, wire_request)
    finally:
        admission.leave()


def _refusal(dialect: Dialect, wire_request: WireRequest, service: UssdService,
             error: UssdError, admission: Admission, arrived: float) -> WireReply:
    """The polite refusal; its language looked up in Redis only with a turn to do it."""
    raw_msisdn = dialect.msisdn_field(wire_request)
    if not admission.enter(arrived):
        return dialect.wire(service.refuse(dialect.name, error, raw_msisdn, look_up=False),
                            wire_request)
    try:
        return dialect.wire(service.refuse(dialect.name, error, raw_msisdn), wire_request)
    finally:
        admission.leave()


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
