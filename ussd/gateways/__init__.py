"""Gateway dialects: each a thin adapter between one gateway's wire format and a ``Hop``.

A dialect module defines ``NAME`` and ``routes(service)``, the views it answers under
``/ussd/<NAME>``; :func:`mount` puts every enabled dialect's views behind that dialect's
:class:`~ussd.auth.Guard`, so no dialect can forget to authenticate its gateway. Adding a
dialect is one module and one name in ``DIALECTS``. The engine knows nothing of dialects.

The helpers below are what every dialect shares: reading a text field, the dialled code, the
polite refusal of a malformed request, and closing a session the gateway reports as ended.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import unquote

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" decoding error handler)

from .. import metrics
from ..auth import Guard, check_gateway_security
from ..errors import InvalidMsisdnError, StoreError, UssdError
from ..phone import mask_msisdn, normalize_msisdn
from ..rules import Language

if TYPE_CHECKING:
    from flask import Flask, Request, Response

    from ..contract import Reply
    from ..service import UssdService
    from ..settings import Settings

# The registration: one module of this package per name, routes mounted in this order.
DIALECTS = ("africastalking", "hubtel", "flares")

SERVICE_CODE = "121"
MAX_FIELD = 512  # longer ids and codes are not a gateway's: refused politely
MAX_INPUT = 182  # one USSD message: no handset sends more in one hop

# #121#, *121#, and the same with chained inputs: #121*1#, *121*1*2#...
_DIALLED = re.compile(r"^[*#]?" + SERVICE_CODE + r"((?:\*[0-9]{1,3})*)#?$")

log = logging.getLogger("ussd.gateway")


class BadRequestError(UssdError):
    """A gateway request this service cannot serve: a missing, oversized or non-text field."""


class UnknownServiceCodeError(BadRequestError):
    """A request for a USSD code this service does not answer."""


# What a dialect answers with the polite refusal rather than a hop.
REFUSED = (BadRequestError, InvalidMsisdnError)


@dataclass(frozen=True)
class Route:
    """One view of a dialect: ``/ussd/<dialect><suffix>``, its methods and endpoint name."""

    suffix: str
    methods: tuple[str, ...]
    view: Callable[[], Response]
    endpoint: str


URLENCODED = "application/x-www-form-urlencoded"


def form_of(request: Request) -> Mapping[str, str]:
    """``request.form``, read the short way for a gateway's plain URL-encoded body.

    When the server hands over the whole body (``wsgi.input_terminated``, as granian does), the
    content type is exactly URL-encoded and no size limit is set, werkzeug reads the body and
    decodes it exactly as below; its general path (a form parser, the content type's
    parameters parsed, the stream looked up) cost a hop about 25 us more. The same form, the
    same invalid-UTF-8 answer (an empty form); any other request goes through
    ``request.form``. Give it the request itself (``request._get_current_object()``), not
    Flask's proxy: each attribute read through the proxy looks the request context up again.
    """
    environ = request.environ
    if (environ.get("CONTENT_TYPE") != URLENCODED or not environ.get("wsgi.input_terminated")
            or "form" in request.__dict__ or getattr(request, "_cached_data", None) is not None
            or request.max_content_length is not None):
        return request.form
    stream = environ["wsgi.input"]
    try:
        items = parse_form(stream.read().decode())
    except ValueError:  # werkzeug's parser is silent: invalid UTF-8 is an empty form
        items = []
    form = request.parameter_storage_class(items)
    # As werkzeug leaves the request once it has read the form (Request._load_form_data).
    request.__dict__.update(stream=stream, form=form, files=request.parameter_storage_class())
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


def parse_service_code(code: str) -> tuple[str, ...]:
    """The inputs chained in a dialled code (``*121*1*2#`` -> ``("1", "2")``)."""
    match = _DIALLED.match((code or "").strip())
    if not match:
        raise UnknownServiceCodeError(f"unknown service code {code[:40]!r}")
    return tuple(part for part in match.group(1).split("*") if part)


def text_field(fields: Mapping, name: str, required: bool = True, limit: int = MAX_FIELD) -> str:
    """The text of field ``name``; BadRequestError if missing, oversized or not printable text."""
    value = fields.get(name)
    if value is None or value == "":
        if required:
            raise BadRequestError(f"missing {name}")
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"{name} is not text")
    if len(value) > limit:
        raise BadRequestError(f"{name} longer than {limit} characters")
    if not value.isprintable():
        raise BadRequestError(f"{name} holds control characters")
    return value


def split_inputs(text: str) -> tuple[str, ...]:
    """Inputs typed at once, chained with ``*`` (``1*2``), one by one; none for ``""``."""
    return tuple(text.split("*")) if text else ()


def refuse(service: UssdService, dialect: str, error: UssdError, raw_msisdn: object) -> Reply:
    """The polite END for a request we cannot serve, counted; in the subscriber's language."""
    metrics.record_rejection(dialect, type(error).__name__)
    try:
        msisdn = normalize_msisdn(raw_msisdn) if isinstance(raw_msisdn, str) else None
    except InvalidMsisdnError:
        msisdn = None
    # An invalid number's message quotes the number: log only what kind of refusal it was.
    detail = type(error).__name__ if isinstance(error, InvalidMsisdnError) else error
    log.info("refused gateway=%s msisdn=%s: %s", dialect,
             mask_msisdn(msisdn) if msisdn else "-", detail)
    language = service.stored_language(msisdn) if msisdn else Language.FR
    return service.system_reply("invalid_request", language)


def close_session(service: UssdService, dialect: str, session_id: object, raw_msisdn: object,
                  status: str) -> None:
    """Forget a session the gateway reports as ended (hang-up, timeout...); counted, logged.

    It never changes a subscriber, and a malformed report is only counted: the record expires
    with its TTL anyway.
    """
    try:
        msisdn = normalize_msisdn(raw_msisdn if isinstance(raw_msisdn, str) else "")
        session_id = text_field({"id": session_id}, "id")
    except (BadRequestError, InvalidMsisdnError):
        metrics.record_end_report(dialect, status, live=False)
        return
    try:
        live: object = service.close(dialect, session_id, msisdn)
    except StoreError:
        live = "unknown"
    metrics.record_end_report(dialect, status, live=live is True)
    log.info("session end gateway=%s msisdn=%s status=%s live=%s",
             dialect, mask_msisdn(msisdn),
             metrics.closed(status, metrics.END_STATUSES.get(dialect, ())), live)


def dialect_modules(names: tuple[str, ...] | None = None) -> tuple[ModuleType, ...]:
    """The dialect modules named (default: all), in registration order."""
    wanted = DIALECTS if names is None else names
    return tuple(importlib.import_module(f"{__name__}.{name}")
                 for name in DIALECTS if name in wanted)


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
    for module in dialect_modules(settings.gateways):
        guard = Guard(module.NAME, settings.gateway_secrets.get(module.NAME))
        for route in module.routes(service):
            view = guard.protect(route.view)
            app.add_url_rule(f"/ussd/{module.NAME}{route.suffix}", route.endpoint, view,
                             methods=route.methods)
            if guard.token is not None:
                app.add_url_rule(f"/ussd/{module.NAME}/<token>{route.suffix}",
                                 f"{route.endpoint}_keyed", view, methods=route.methods)
