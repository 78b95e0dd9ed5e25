"""The one Flask view of every dialect: HTTP in, the dialect's parse and wire, HTTP out.

:func:`mount` puts each enabled dialect's routes behind that dialect's
:class:`~ussd.auth.Guard` (and under ``/ussd/<name>/<token>`` too when it has a token), so no
dialect can forget to authenticate its gateway. For each request the view reads what the
dialect declares (``body``: the form, the JSON body or the query) into a
:class:`~ussd.contract.WireRequest`, has the dialect parse it, has the service answer the hop
(``handle``), the end (``end``) or the refusal (``refuse``), and sends the dialect's
:class:`~ussd.contract.WireReply` as a Flask response. Everything looked up once per route
is looked up at mount time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import unquote

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" decoding error handler)
from flask import Request, Response, request
from werkzeug.utils import get_content_type

from ..auth import Guard, check_gateway_security
from ..contract import Hop, Route, WireReply, WireRequest
from ..errors import BadRequestError, InvalidMsisdnError
from . import DIALECTS, enabled

if TYPE_CHECKING:
    from flask import Flask

    from ..contract import Dialect
    from ..service import UssdService
    from ..settings import Settings

log = logging.getLogger("ussd.gateway")

# What a dialect's parse raises for a request answered with the polite refusal, not a hop.
REFUSED = (BadRequestError, InvalidMsisdnError)
URLENCODED = "application/x-www-form-urlencoded"
_NO_QUERY: Mapping[str, str] = MappingProxyType({})


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
    can only be given a URL.
    """
    for dialect in enabled(settings):
        guard = Guard(dialect.name, settings.gateway_secrets.get(dialect.name))
        for route in dialect.routes:
            view = guard.protect(gateway_view(dialect, route, service))
            endpoint = dialect.name + route.suffix.replace("/", "_")
            app.add_url_rule(f"/ussd/{dialect.name}{route.suffix}", endpoint, view,
                             methods=route.methods)
            if guard.token is not None:
                app.add_url_rule(f"/ussd/{dialect.name}/<token>{route.suffix}",
                                 f"{endpoint}_keyed", view, methods=route.methods)


def gateway_view(dialect: Dialect, route: Route, service: UssdService) -> Callable[[], Response]:
    """The view of one route of ``dialect``: the request read, parsed and answered."""
    read = _READERS[dialect.body]
    suffix = route.suffix
    parse, wire, acknowledge = dialect.parse, dialect.wire, dialect.acknowledge

    def view() -> Response:
        # The request itself, not Flask's proxy: each attribute read through the proxy looks
        # the request context up again.
        wire_request = read(request._get_current_object(), suffix)
        try:
            event = parse(wire_request)
        except REFUSED as error:
            refusal = service.refuse(dialect.name, error, dialect.msisdn_field(wire_request))
            return respond(wire(refusal, wire_request))
        if isinstance(event, Hop):
            return respond(wire(service.handle(event), wire_request))
        service.end(event)
        return respond(acknowledge(event, wire_request))

    return view


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


def _form_request(current: Request, suffix: str) -> WireRequest:
    return WireRequest(current.method, suffix, _NO_QUERY, form_of(current))


def _json_request(current: Request, suffix: str) -> WireRequest:
    return WireRequest(current.method, suffix, _NO_QUERY, None,
                       current.get_json(force=True, silent=True))


def _query_request(current: Request, suffix: str) -> WireRequest:
    return WireRequest(current.method, suffix, current.args)


# A dialect's ``body`` -> how its request is read.
_READERS: dict[str, Callable[[Request, str], WireRequest]] = {
    "form": _form_request, "json": _json_request, "query": _query_request,
}


def form_of(current: Request) -> Mapping[str, str]:
    """``request.form``, read the short way for a gateway's plain URL-encoded body.

    When the server hands over the whole body (``wsgi.input_terminated``, as granian does), the
    content type is exactly URL-encoded and no size limit is set, werkzeug reads the body and
    decodes it exactly as below; its general path (a form parser, the content type's
    parameters parsed, the stream looked up) cost a hop about 25 us more. The same form, the
    same invalid-UTF-8 answer (an empty form); any other request goes through
    ``request.form``. Give it the request itself (``request._get_current_object()``), not
    Flask's proxy: each attribute read through the proxy looks the request context up again.
    """
    environ = current.environ
    if (environ.get("CONTENT_TYPE") != URLENCODED or not environ.get("wsgi.input_terminated")
            or "form" in current.__dict__ or getattr(current, "_cached_data", None) is not None
            or current.max_content_length is not None):
        return current.form
    stream = environ["wsgi.input"]
    try:
        items = parse_form(stream.read().decode())
    except ValueError:  # werkzeug's parser is silent: invalid UTF-8 is an empty form
        items = []
    form = current.parameter_storage_class(items)
    # As werkzeug leaves the request once it has read the form (Request._load_form_data).
    current.__dict__.update(stream=stream, form=form, files=current.parameter_storage_class())
    return form


def parse_form(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote")``, as werkzeug
    reads a form, in a third of its time: a name or value is unquoted only when it holds a
    ``+`` or a ``%`` (a gateway's form has a few; ``parse_qsl`` runs both steps on every one).
    """
    items = []
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            items.append((_unquote_plus(name), _unquote_plus(value)))
    return items


def _unquote_plus(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    return _unquote(text) if "%" in text else text


# "2a", "2A"... -> "*": both spellings of every escaped ASCII character (its first hex
# digit, 0-7, has one).
_ASCII_ESCAPES = {
    f"{code >> 4}{low}": chr(code)
    for code in range(128)
    for low in {f"{code & 15:x}", f"{code & 15:X}"}
}


def _unquote(text: str) -> str:
    """``unquote(text, errors="werkzeug.url_quote")``, a third of its time when every escape
    is an ASCII character's, as in a gateway's fields (``%2B225...``, ``%2A121%23``, ``1%2A2``);
    any other escape (a byte of a multi-byte character, a stray ``%``) goes to ``unquote``."""
    head, *escaped = text.split("%")
    parts = [head]
    for part in escaped:
        char = _ASCII_ESCAPES.get(part[:2])
        if char is None:
            return unquote(text, errors="werkzeug.url_quote")
        parts.append(char)
        parts.append(part[2:])
    return "".join(parts)
