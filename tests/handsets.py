"""Playing a gateway in tests, through each dialect's client half (``ussd/gateways/<name>.py``).

:class:`Gateway` is a dialect as the tests play it: its gateway's requests, addressed
(:class:`Call`), and the exact checks of every answer. An answer must be what the gateway reads
(the dialect's ``read_reply``, a screen that is not empty) and, byte for byte, what the
dialect's server half writes for the request sent (``wire``, or ``acknowledge`` for an end
report), with werkzeug's ``Content-Type``. ``GATEWAYS`` holds one per registered dialect.

:class:`Handset` plays one session over any transport, ``send(call) -> Answer``: the Flask test
client (:func:`test_client_transport`, with the caller's address and headers) or a real HTTP
server on loopback (:func:`serving` and :func:`http_transport`). It keeps every hop it sent, so
that a test can send an earlier hop again as a gateway retry would (``replay``), and gives a
hop's fields to send broken on purpose (``first_hop(number=..., session=..., code=...,
input=...)``): which wire field carries what is found by asking the client half, never
written here.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from werkzeug.serving import make_server

from ussd.contract import End, EndKind, Reply, WireReply, WireRequest
from ussd.errors import BadRequestError, InvalidMsisdnError, MalformedReplyError
from ussd.gateways import DIALECTS, dialect
from ussd.sim import http_request, urllib_transport

REFUSED = (BadRequestError, InvalidMsisdnError)


class Screen(NamedTuple):
    """What the handset shows: the text, and whether the session ends with it."""

    text: str
    end: bool


@dataclass(frozen=True)
class Call:
    """One request of a gateway as sent: where to, with which headers, from which address.

    ``raw``, when set, is sent as the body instead of the request's own fields.
    """

    request: WireRequest
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    remote_addr: str = "127.0.0.1"
    raw: bytes | str | None = None


@dataclass(slots=True)
class Answer(WireReply):
    """An answer as a transport got it, with the request it answers (for the exact checks)."""

    sent: WireRequest | None = None


Transport = Callable[[Call], Answer]


def content_type(mimetype: str) -> str:
    """The ``Content-Type`` every answer of this media type carries."""
    return mimetype + ("; charset=utf-8" if mimetype.startswith("text/") else "")


class Gateway:
    """One dialect, as its gateway sends requests and as the tests check our answers."""

    def __init__(self, wire_format):
        self.wire_format = wire_format
        self.name = self.NAME = wire_format.name
        self.PATH = f"/ussd/{wire_format.name}"
        self.numbers_hops = self.TELLS_RETRIES = wire_format.numbers_hops
        probe = WireRequest("GET")
        # Every header the dialect ever writes: an answer without one must not carry it.
        self.own_headers = {name for end in (False, True)
                            for name in wire_format.wire(Reply("x", end), probe).headers}

    def __repr__(self) -> str:
        return f"Gateway({self.name})"

    def __call__(self, client, msisdn: str, dial: str = "#121#", session_id: str | None = None,
                 headers: Mapping[str, str] | None = None, path: str | None = None,
                 remote_addr: str = "127.0.0.1") -> Handset:
        """A session of ``msisdn`` on a Flask test client."""
        return Handset(test_client_transport(client), self, msisdn, code=dial,
                       session_id=session_id or f"{self.name}-{uuid.uuid4().hex[:12]}",
                       path=path, headers=headers, remote_addr=remote_addr, client=client)

    # --- the gateway's requests ------------------------------------------------------------

    def dial(self, session_id: str, msisdn: str, code: str = "*121#") -> Call:
        """The first hop's request."""
        return Call(self.wire_format.dial(session_id, msisdn, code), self.PATH)

    def hop(self, session_id: str, msisdn: str, inputs, code: str = "*121#") -> Call:
        """The request carrying the last of ``inputs`` (all the inputs typed so far)."""
        return Call(self.wire_format.hop(session_id, msisdn, code, tuple(inputs)), self.PATH)

    def end(self, session_id: str, msisdn: str, code: str = "*121#", inputs=(),
            kind: EndKind = EndKind.HANG_UP) -> Call:
        """The gateway's report that the session has ended."""
        return Call(self.wire_format.end(session_id, msisdn, code, tuple(inputs), kind), self.PATH)

    def fields(self, request: WireRequest) -> dict:
        """The fields of a request: its form, JSON body or query, as the dialect sends them."""
        return dict(getattr(request, self.wire_format.body))

    def carriers(self, logical: str) -> list[str]:
        """The wire fields that carry ``logical`` (number, session, code, input): those that
        differ between two requests built with two values of it."""
        build = {
            "number": lambda value: self.wire_format.dial("S", value, "*121#"),
            "session": lambda value: self.wire_format.dial(value, "+2250700000001", "*121#"),
            "code": lambda value: self.wire_format.dial("S", "+2250700000001", value),
            "input": lambda value: self.wire_format.hop("S", "+2250700000001", "*121#", (value,)),
        }[logical]
        values = {"number": ("+2250700000001", "+2250700000002"), "session": ("S1", "S2"),
                  "code": ("*121*1#", "*121*2#"), "input": ("1", "2")}[logical]
        first, second = (self.fields(build(value)) for value in values)
        return [name for name in first if first[name] != second.get(name)]

    # --- the checks of our answers ---------------------------------------------------------

    def reply(self, answer: Answer) -> Screen:
        """The screen of a hop's answer; AssertionError unless it is exactly the dialect's."""
        assert answer.status == 200, f"{self.name}: HTTP {answer.status}: {answer.body[:200]!r}"
        try:
            reply = self.wire_format.read_reply(answer)
        except MalformedReplyError as error:
            raise AssertionError(f"{self.name}: {error}") from None
        assert reply.text, f"{self.name}: an empty screen"
        self._exact(answer, self.wire_format.wire(reply, answer.sent))
        return Screen(reply.text, reply.end)

    def check_end_report(self, answer: Answer) -> None:
        """AssertionError unless ``answer`` is exactly the acknowledgement of the end report
        sent; a report the dialect refuses gets the refusal, which ends the session."""
        assert answer.status == 200, f"{self.name}: end report answered {answer.status}"
        try:
            event = self.wire_format.parse(answer.sent)
        except REFUSED:
            event = None
        if not isinstance(event, End):
            assert self.reply(answer).end, f"{self.name}: a refused end report left it open"
            return
        try:
            self.wire_format.check_acknowledgement(answer, answer.sent)
        except MalformedReplyError as error:
            raise AssertionError(f"{self.name}: {error}") from None
        self._exact(answer, self.wire_format.acknowledge(event, answer.sent))

    def is_end_report(self, query: Mapping) -> bool:
        """True when a request with this query string reports an ended session."""
        first = {name: value[0] if isinstance(value, list) else value
                 for name, value in query.items()}
        try:
            event = self.wire_format.parse(WireRequest("GET", query=first, form={}))
        except REFUSED:
            return False
        return isinstance(event, End)

    def _exact(self, answer: Answer, expected: WireReply) -> None:
        got = (answer.status, answer.mimetype, answer.header("Content-Type"), answer.body)
        assert got == (expected.status, expected.mimetype, content_type(expected.mimetype),
                       expected.body), f"{self.name}: {got!r}"
        for name in self.own_headers:
            assert answer.header(name) == expected.header(name), f"{self.name}: header {name}"


GATEWAYS = {name: Gateway(dialect(name)) for name in DIALECTS}


def served_dialects() -> list[Gateway]:
    """Every dialect the application serves, in registration order."""
    return [GATEWAYS[name] for name in DIALECTS]


# --- transports ------------------------------------------------------------------------------

def encode(call: Call) -> tuple[str, str, dict[str, str], bytes | None]:
    """``(method, target, headers, body)`` of a call over HTTP, through the simulator's own."""
    method, target, headers, body = http_request(call.request, call.path)
    headers.update(call.headers)
    if call.raw is not None:
        body = call.raw.encode() if isinstance(call.raw, str) else call.raw
    return method, target, headers, body


def flask_response(client, call: Call):
    """The Flask test response to ``call``."""
    method, target, headers, body = encode(call)
    path, _, query = target.partition("?")
    return client.open(path, method=method, query_string=query, headers=headers, data=body,
                       environ_base={"REMOTE_ADDR": call.remote_addr})


def flask_answer(response, sent: WireRequest) -> Answer:
    """A Flask test response as an :class:`Answer` to ``sent``."""
    return Answer(response.status_code, response.mimetype, response.get_data(as_text=True),
                  response.headers, sent)


def test_client_transport(client) -> Transport:
    """Calls through a Flask test client."""
    return lambda call: flask_answer(flask_response(client, call), call.request)


test_client_transport.__test__ = False  # a helper, not a test


def http_transport(base_url: str, timeout: float = 30.0) -> Transport:
    """Calls over real HTTP (urllib), to a server such as :func:`serving` runs."""
    send = urllib_transport(timeout)

    def call_over_http(call: Call) -> Answer:
        method, target, headers, body = encode(call)
        answer = send(method, base_url + target, headers, body)
        return Answer(answer.status, answer.mimetype, answer.body, answer.headers, call.request)

    return call_over_http


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Serve ``app`` on a free loopback port, a thread per request; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    server.daemon_threads = True
    server.socket.listen(1024)  # room for every racing connection at once (werkzeug: 128)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- a handset -------------------------------------------------------------------------------

class Handset:
    """One USSD session of a subscriber, played as ``dialect``'s gateway would send it.

    Every hop sent is kept in ``requests`` (hop number -> call; 0 is the dial) with its screen
    in ``replies``. ``first_hop`` and ``next_hop`` give a hop's fields, ``hop`` sends fields
    and checks the screen, ``request`` sends fields (or a raw body) as they are and gives the
    Flask response (on a test client), ``screen`` checks one.
    """

    def __init__(self, send_request: Transport, dialect: Gateway, msisdn: str,
                 code: str = "*121#", session_id: str | None = None, *,
                 path: str | None = None, headers: Mapping[str, str] | None = None,
                 remote_addr: str = "127.0.0.1", client=None):
        self.send_request = send_request
        self.dialect = dialect
        self.NAME = dialect.name
        self.msisdn = msisdn
        self.code = code
        self.session_id = session_id or f"S{uuid.uuid4().hex[:16]}"
        self.path = path or dialect.PATH
        self.headers = dict(headers or {})
        self.remote_addr = remote_addr
        self.client = client
        self.inputs: list[str] = []
        self.requests: list[Call] = []
        self.replies: list[Screen] = []
        self.last: Mapping | bytes | None = None  # the fields of the last hop sent

    def dial(self) -> Screen:
        """The first hop."""
        return self._hop(self._dial_request())

    def send(self, *inputs: str) -> Screen:
        """Type inputs (several at once: chained with ``*``, in one hop)."""
        self.inputs.append("*".join(inputs))
        return self._hop(self._hop_request())

    def replay(self, number: int) -> Screen:
        """Send hop ``number`` (0: the dial) again, exactly as it was sent."""
        return self.dialect.reply(self.send_request(self.requests[number]))

    def retry(self) -> Screen:
        """The gateway sends the last hop again."""
        return self.hop(self.last)

    def hang_up(self) -> Answer:
        """The gateway's report that the subscriber hung up, checked."""
        return self._end(EndKind.HANG_UP)

    def time_out(self) -> Answer:
        """The gateway's report that the session timed out, checked."""
        return self._end(EndKind.TIME_OUT)

    def report_end(self, **changes: str) -> Answer:
        """A hang-up report with some of its wire fields changed, checked."""
        request = self._end_request(EndKind.HANG_UP)
        fields = {**self.dialect.fields(request), **changes}
        answer = self.send_request(self._call(request, fields))
        self.dialect.check_end_report(answer)
        return answer

    def first_hop(self, **broken: str) -> dict:
        """The dial's fields, with the logical ones named (number, session, code, input) set
        to the values given, as they are."""
        fields = self.dialect.fields(self._dial_request())
        for logical, value in broken.items():
            for name in self.dialect.carriers(logical):
                fields[name] = value
        return fields

    def next_hop(self, inputs: tuple[str, ...]) -> dict:
        """The fields of the next hop, typing ``inputs`` (chained with ``*``)."""
        self.inputs.append("*".join(inputs))
        return self.dialect.fields(self._hop_request())

    def hop(self, fields: Mapping | bytes) -> Screen:
        """Send a hop with these fields; its checked screen."""
        self.last = fields
        return self.dialect.reply(self.send_request(self._call(self._dial_request(), fields)))

    def request(self, fields: Mapping | bytes | str):
        """Send a hop with these fields (or this raw body) unchecked: the Flask response."""
        return flask_response(self.client, self._call(self._dial_request(), fields))

    def screen(self, response) -> Screen:
        """The checked screen of a Flask response to a hop with the fields sent last."""
        sent = self._call(self._dial_request(), self.last).request
        return self.dialect.reply(flask_answer(response, sent))

    def _hop(self, request: WireRequest) -> Screen:
        call = self._call(request)
        screen = self.dialect.reply(self.send_request(call))
        self.last = self.dialect.fields(request)
        self.requests.append(call)
        self.replies.append(screen)
        return screen

    def _end(self, kind: EndKind) -> Answer:
        answer = self.send_request(self._call(self._end_request(kind)))
        self.dialect.check_end_report(answer)
        return answer

    def _dial_request(self) -> WireRequest:
        return self.dialect.wire_format.dial(self.session_id, self.msisdn, self.code)

    def _hop_request(self) -> WireRequest:
        return self.dialect.wire_format.hop(self.session_id, self.msisdn, self.code,
                                        tuple(self.inputs))

    def _end_request(self, kind: EndKind) -> WireRequest:
        return self.dialect.wire_format.end(self.session_id, self.msisdn, self.code,
                                        tuple(self.inputs), kind)

    def _call(self, request: WireRequest, fields: Mapping | bytes | str | None = None) -> Call:
        """``request`` as this handset sends it; with other fields, or a raw body, if given."""
        raw = None
        if isinstance(fields, (bytes, str)):
            raw = fields
        elif fields is not None:
            request = replace(request, **{self.dialect.wire_format.body: dict(fields)})
        return Call(request, self.path, self.headers, self.remote_addr, raw)


def json_or_none(body: bytes | str | None) -> object:
    """A body as the server's JSON read takes it (``get_json(force=True, silent=True)``)."""
    try:
        return json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return None
