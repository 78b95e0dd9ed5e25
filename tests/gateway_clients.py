"""Playing a gateway in tests: each dialect's requests and replies, a handset, a real server.

``DIALECTS`` holds one :class:`Dialect` per gateway wire format: how that gateway numbers a
session's hops, what its requests look like and how to read (and check) its replies. The
reliability tests run over this table, keeping those that ``ussd.gateways`` serves.
:class:`Handset` plays one session over any transport with ``send(request) -> Answer``: the
Flask test client (:func:`test_client_transport`) or a real HTTP server on loopback
(:func:`serving` and :func:`http_transport`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from werkzeug.serving import make_server


@dataclass(frozen=True)
class Request:
    """One HTTP request of a gateway."""

    method: str
    path: str
    form: dict | None = None
    json: object = None
    query: dict | None = None


@dataclass(frozen=True)
class Answer:
    """One HTTP response, as any transport gives it."""

    status: int
    mimetype: str
    headers: dict
    body: str


Transport = Callable[[Request], Answer]


class MalformedReplyError(AssertionError):
    """The reply is not a well-formed reply of the dialect."""


@dataclass(frozen=True)
class Dialect:
    """One gateway's wire format, as the gateway itself speaks it."""

    name: str
    numbers_hops: bool  # a replayed hop can be recognised (cumulative text, or a sequence)

    def dial(self, session_id: str, msisdn: str, code: str = "*121#") -> Request:
        raise NotImplementedError

    def hop(self, session_id: str, msisdn: str, inputs: list[str], code: str = "*121#") -> Request:
        """The request carrying the last of ``inputs`` (all the inputs typed so far)."""
        raise NotImplementedError

    def end(self, session_id: str, msisdn: str) -> Request:
        """The gateway's report that the session has ended."""
        raise NotImplementedError

    def reply(self, answer: Answer) -> tuple[str, bool]:
        """``(text, end)`` of a hop's reply; MalformedReplyError unless well formed."""
        raise NotImplementedError

    def is_end_report(self, query: dict) -> bool:
        """True when a request with this query string reports an ended session."""
        return False

    def check_end_report(self, answer: Answer) -> None:
        """MalformedReplyError unless ``answer`` is a fit answer to an end-of-session report."""
        if answer.status != 200:
            raise MalformedReplyError(f"end report answered {answer.status}")


class AfricasTalking(Dialect):
    def _form(self, session_id, msisdn, text, code):
        return {"sessionId": session_id, "serviceCode": code, "phoneNumber": msisdn,
                "networkCode": "62303", "text": text}

    def dial(self, session_id, msisdn, code="*121#"):
        form = self._form(session_id, msisdn, "", code)
        return Request("POST", "/ussd/africastalking", form=form)

    def hop(self, session_id, msisdn, inputs, code="*121#"):
        form = self._form(session_id, msisdn, "*".join(inputs), code)
        return Request("POST", "/ussd/africastalking", form=form)

    def end(self, session_id, msisdn):
        return Request("POST", "/ussd/africastalking/events", form={
            "sessionId": session_id, "phoneNumber": msisdn, "status": "Success",
            "durationInMillis": "5000", "errorMessage": "", "serviceCode": "*121#"})

    def reply(self, answer):
        if answer.status != 200 or answer.mimetype != "text/plain":
            raise MalformedReplyError(f"{answer.status} {answer.mimetype}: {answer.body[:200]!r}")
        for prefix, end in (("CON ", False), ("END ", True)):
            if answer.body.startswith(prefix) and len(answer.body) > len(prefix):
                return answer.body[len(prefix):], end
        raise MalformedReplyError(f"neither CON nor END: {answer.body[:200]!r}")


class Hubtel(Dialect):
    def _body(self, kind, session_id, msisdn, message, sequence):
        return {"Type": kind, "Mobile": msisdn, "SessionId": session_id, "ServiceCode": "*121#",
                "Message": message, "Operator": "vodafone", "Sequence": sequence,
                "ClientState": f"state-{sequence}"}

    def dial(self, session_id, msisdn, code="*121#"):
        return Request("POST", "/ussd/hubtel",
                       json=self._body("Initiation", session_id, msisdn, code, 1))

    def hop(self, session_id, msisdn, inputs, code="*121#"):
        return Request("POST", "/ussd/hubtel", json=self._body(
            "Response", session_id, msisdn, inputs[-1], len(inputs) + 1))

    def end(self, session_id, msisdn):
        body = self._body("Release", session_id, msisdn, "", 99)
        return Request("POST", "/ussd/hubtel", json=body)

    def reply(self, answer):
        if answer.status != 200 or answer.mimetype != "application/json":
            raise MalformedReplyError(f"{answer.status} {answer.mimetype}: {answer.body[:200]!r}")
        try:
            payload = json.loads(answer.body)
        except ValueError:
            raise MalformedReplyError(f"not JSON: {answer.body[:200]!r}") from None
        if (not isinstance(payload, dict) or payload.get("Type") not in ("Response", "Release")
                or not isinstance(payload.get("Message"), str)
                or not isinstance(payload.get("ClientState"), str)):
            raise MalformedReplyError(f"not a Hubtel reply: {answer.body[:200]!r}")
        return payload["Message"], payload["Type"] == "Release"

    def check_end_report(self, answer):
        message, end = self.reply(answer)
        if not end:
            raise MalformedReplyError("a Release must be answered with a Release")


class Flares(Dialect):
    def dial(self, session_id, msisdn, code="*121#"):
        return Request("GET", "/ussd/flares", query={
            "SessionID": session_id, "MSISDN": msisdn, "input": code.strip("*#")})

    def hop(self, session_id, msisdn, inputs, code="*121#"):
        return Request("GET", "/ussd/flares", query={
            "SessionID": session_id, "MSISDN": msisdn, "input": inputs[-1]})

    def end(self, session_id, msisdn):
        return Request("GET", "/ussd/flares", query={
            "SessionID": session_id, "MSISDN": msisdn, "abort": "clean"})

    def is_end_report(self, query):
        return "abort" in query

    def reply(self, answer):
        if answer.status != 200 or answer.mimetype != "text/plain":
            raise MalformedReplyError(f"{answer.status} {answer.mimetype}: {answer.body[:200]!r}")
        flag = answer.headers.get("Freeflow")
        if flag not in ("FC", "FB") or not answer.body:
            raise MalformedReplyError(f"Freeflow {flag!r}, body {answer.body[:200]!r}")
        return answer.body, flag == "FB"


# Every gateway dialect we know how to play. A new dialect module in ussd/gateways/ needs an
# entry here: tests/test_fuzz.py fails until it has one.
DIALECTS = {
    "africastalking": AfricasTalking("africastalking", numbers_hops=True),
    "hubtel": Hubtel("hubtel", numbers_hops=True),
    "flares": Flares("flares", numbers_hops=False),
}


def served_dialects() -> list[Dialect]:
    """The dialects of the table that the application serves (``ussd.gateways``)."""
    from ussd.gateways import dialect_modules

    return [DIALECTS[m.NAME] for m in dialect_modules() if m.NAME in DIALECTS]


# --- transports ------------------------------------------------------------------------------

def test_client_transport(client) -> Transport:
    """Requests through a Flask test client."""

    def send(request: Request) -> Answer:
        response = client.open(request.path, method=request.method, data=request.form,
                               json=request.json, query_string=request.query)
        return Answer(response.status_code, response.mimetype, dict(response.headers),
                      response.get_data(as_text=True))

    return send


test_client_transport.__test__ = False  # a helper, not a test


def http_transport(base_url: str, timeout: float = 30.0) -> Transport:
    """Requests over real HTTP (urllib), to a server such as :func:`serving` runs."""

    def send(request: Request) -> Answer:
        url = base_url + request.path
        if request.query:
            url += "?" + urllib.parse.urlencode(request.query)
        data, headers = None, {}
        if request.form is not None:
            data = urllib.parse.urlencode(request.form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif request.json is not None:
            data = json.dumps(request.json).encode()
            headers["Content-Type"] = "application/json"
        call = urllib.request.Request(url, data=data, headers=headers, method=request.method)
        try:
            with urllib.request.urlopen(call, timeout=timeout) as response:
                status, head, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, head, body = error.code, error.headers, error.read()
        mimetype = (head.get("Content-Type") or "").split(";")[0].strip()
        return Answer(status, mimetype, dict(head.items()), body.decode("utf-8"))

    return send


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

@dataclass
class Handset:
    """One USSD session of a subscriber, played as ``dialect``'s gateway would send it.

    Every request sent is kept in ``requests`` (hop number -> request) with its reply in
    ``replies``, so that a test can send any earlier hop again, as a gateway retry would.
    """

    send_request: Transport
    dialect: Dialect
    msisdn: str
    code: str = "*121#"
    session_id: str = field(default_factory=lambda: f"S{uuid.uuid4().hex[:16]}")
    inputs: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    replies: list[tuple[str, bool]] = field(default_factory=list)

    def dial(self) -> tuple[str, bool]:
        """The first hop."""
        return self._hop(self.dialect.dial(self.session_id, self.msisdn, self.code))

    def send(self, text: str) -> tuple[str, bool]:
        """Type one input."""
        self.inputs.append(text)
        request = self.dialect.hop(self.session_id, self.msisdn, list(self.inputs), self.code)
        return self._hop(request)

    def replay(self, number: int) -> tuple[str, bool]:
        """Send hop ``number`` (0: the dial) again, exactly as it was sent."""
        return self.dialect.reply(self.send_request(self.requests[number]))

    def hang_up(self) -> Answer:
        """The gateway's end-of-session report."""
        answer = self.send_request(self.dialect.end(self.session_id, self.msisdn))
        self.dialect.check_end_report(answer)
        return answer

    def _hop(self, request: Request) -> tuple[str, bool]:
        reply = self.dialect.reply(self.send_request(request))
        self.requests.append(request)
        self.replies.append(reply)
        return reply
