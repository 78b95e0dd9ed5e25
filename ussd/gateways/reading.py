"""Reading a gateway's request, within bounds, into a :class:`~ussd.contract.WireRequest`.

Every request of every dialect is read here, so every dialect has the same bounds:

- **size**: a body over ``USSD_MAX_BODY`` bytes (16 KiB; a gateway's is well under one) is
  refused with ``413`` before a byte of it is read, by its ``Content-Length``; a body sent in
  chunks is read up to one byte past the limit, then refused the same way;
- **time**: a body that has not all arrived ``USSD_BODY_TIMEOUT`` seconds (2 s) after the
  request did is refused with ``408`` rather than served as a hop its gateway has stopped
  waiting for;
- **shape**: JSON nested deeper than Python's recursion limit, bytes that are not UTF-8, a
  form werkzeug cannot parse: anything that fails to read is read as an empty request, which
  the dialect refuses with its own polite end, never a ``5xx``.

(The headers are bounded by the server, ``ussd/server.py``: 16 KiB, then ``431``.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from io import BytesIO
from types import MappingProxyType
from urllib.parse import unquote

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" decoding error handler)
from flask import Request

from ..contract import WireRequest

URLENCODED = "application/x-www-form-urlencoded"
_NO_QUERY: Mapping[str, str] = MappingProxyType({})


class TooLargeError(Exception):
    """The body is larger than the limit: answered ``413``, unread."""


class TooSlowError(Exception):
    """The body took longer than the time allowed to arrive: answered ``408``."""


class Bounds:
    """How much of a request is read (``max_body`` bytes), and until when (``body_timeout``
    seconds after it arrived, on ``clock``, the clock of the view's ``arrived``)."""

    def __init__(self, max_body: int, body_timeout: float,
                 clock: Callable[[], float] = time.monotonic):
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.clock = clock

    def check_length(self, current: Request) -> None:
        """TooLargeError when the request says its body is over the limit (nothing read)."""
        length = current.content_length
        if length is not None and length > self.max_body:
            raise TooLargeError(length)

    def body(self, current: Request, arrived: float) -> bytes:
        """The body, read whole if it fits; TooLargeError or TooSlowError otherwise."""
        environ = current.environ
        length = current.content_length
        if length is None and not environ.get("wsgi.input_terminated"):
            return b""  # no length and a server that does not end the stream: none, as werkzeug
        if length is not None and length > self.max_body:
            raise TooLargeError(length)
        data = environ["wsgi.input"].read(self.max_body + 1 if length is None else length)
        if len(data) > self.max_body:
            raise TooLargeError(len(data))
        if self.clock() - arrived > self.body_timeout:
            raise TooSlowError(self.clock() - arrived)
        return data


def read_request(body: str, current: Request, suffix: str, bounds: Bounds,
                 arrived: float) -> WireRequest:
    """The request as a dialect whose ``body`` is ``"form"``, ``"json"`` or ``"query"`` reads
    it; TooLargeError, TooSlowError; any failure to read is an empty request (see above)."""
    method = current.method
    bounds.check_length(current)
    if body == "query":
        return WireRequest(method, suffix, current.args)
    data = bounds.body(current, arrived)
    if body == "form":
        return WireRequest(method, suffix, _NO_QUERY, form_of(current, data))
    return WireRequest(method, suffix, _NO_QUERY, None, read_json(data))


def read_json(data: bytes) -> object:
    """A body's JSON value, or None when it is not JSON: not UTF-8 (or UTF-16/32, as
    ``json.loads`` reads bytes), not well formed, or nested deeper than the interpreter's
    recursion limit (``RecursionError``: a kilobyte of ``[`` is enough, and escaped the
    ``get_json(silent=True)`` used before as an HTML ``500``)."""
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def form_of(current: Request, data: bytes) -> Mapping[str, str]:
    """``request.form`` of a body already read within bounds (``data``), werkzeug's way and in
    its type.

    A plain URL-encoded body, the gateway's, is decoded as werkzeug does (invalid UTF-8: an
    empty form) by :func:`parse_form`, about 25 us faster than werkzeug's general path (its
    form parser, the content type's parameters, the stream looked up). Any other body goes
    through werkzeug's own form parser, over the bytes read. Give it the request itself
    (``request._get_current_object()``), not Flask's proxy: each attribute read through the
    proxy looks the request context up again (about 0.8 us a read, see ``view.py``).
    """
    if current.environ.get("CONTENT_TYPE") == URLENCODED:
        try:
            items = parse_form(data.decode())
        except ValueError:  # werkzeug's parser is silent: invalid UTF-8 is an empty form
            items = []
        form = current.parameter_storage_class(items)
        files = current.parameter_storage_class()
        stream = BytesIO()  # werkzeug's parser reads a URL-encoded body to its end
    else:
        stream = BytesIO(data)
        try:
            stream, form, files = current.make_form_data_parser().parse(
                stream, current.mimetype, len(data), current.mimetype_params)
        except Exception:  # noqa: BLE001  (a form werkzeug cannot read: an empty form)
            form = files = current.parameter_storage_class()
    # As werkzeug leaves the request once it has read the form (Request._load_form_data),
    # the stream too: without it, request.stream and get_data() would read again from the
    # server's input, already read, and raise ClientDisconnected (a 400) for a body with a
    # Content-Length; with it they give what they give after werkzeug's request.form.
    current.__dict__.update(stream=stream, form=form, files=files)
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
