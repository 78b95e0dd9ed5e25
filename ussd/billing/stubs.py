"""A billing server and an SMS provider on loopback: for the demo (``ussd stub-billing``) and
the tests, which need real HTTP servers that fail, time out and refuse on a schedule.

Each stub records every request it receives (method, path, headers, body) and answers from
its ``schedule`` first (an :class:`Answer`: a status, a delay longer than the client's timeout,
a dropped connection...), then as the real thing would: billing applies each
``Idempotency-Key`` once (``200``, and says ``duplicate`` for a key seen before); the SMS
provider answers as Africa's Talking does (``201``, one recipient, ``statusCode`` 101). While
"down" (``POST /_stub/down?seconds=N``, or :meth:`StubServer.go_down`) every call gets ``503``;
``POST /_stub/up`` ends it. ``GET /_stub/requests`` lists what was received, as JSON.
"""

from __future__ import annotations

import hmac
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Answer:
    """One scheduled answer: ``status`` with ``body`` and ``headers`` after ``delay`` seconds;
    or, with ``drop``, the connection closed without a word."""

    status: int = 200
    body: str = ""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class Received:
    """One request as the stub received it (header names in lower case)."""

    method: str
    path: str
    headers: dict
    body: bytes
    at: float

    def json(self):
        """The body, parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body, parsed as a URL-encoded form (one value per name)."""
        return {name: values[0] for name, values in parse_qs(self.body.decode()).items()}


class StubServer:
    """An HTTP server on ``host:port`` (0: any free port) in a thread of its own."""

    name = "stub"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, schedule: Iterable[Answer] = (),
                 echo: Callable[[str], None] | None = None):
        self.received: list[Received] = []
        self.echo = echo
        self._schedule: deque[Answer] = deque(schedule)
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"{self.name}-stub", daemon=True)

    @property
    def url(self) -> str:
        """``http://host:port/`` of this stub."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def schedule(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order, before answering as usual."""
        with self._lock:
            self._schedule.extend(answers)

    def go_down(self, seconds: float) -> None:
        """Answer ``503`` to everything for ``seconds`` (0: come back up now)."""
        self._down_until = time.monotonic() + seconds

    def answer(self, request: Received) -> Answer:
        """What the real server would answer (the subclasses')."""
        return Answer(200)

    def _next(self, request: Received) -> Answer:
        with self._lock:
            self.received.append(request)
            if self._schedule:
                return self._schedule.popleft()
            if time.monotonic() < self._down_until:
                if self.echo:
                    self.echo(f"{self.name}: down, 503 to {self.about(request)}")
                return Answer(503, "down for maintenance", {"Retry-After": "1"})
            return self.answer(request)

    def about(self, request: Received) -> str:
        """What a request is about, in the echo of a refusal."""
        return request.path


class BillingStub(StubServer):
    """Billing: applies each event once by its ``Idempotency-Key``; with ``token``, refuses a
    call without ``Authorization: Bearer <token>`` (``401``)."""

    name = "billing"

    def __init__(self, *args, token: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.token = token
        self.applied: list[dict] = []  # each event applied, once, in order
        self._keys: set[str] = set()

    def answer(self, request: Received) -> Answer:
        expected = f"Bearer {self.token}" if self.token else None
        given = request.headers.get("authorization", "")
        if expected and not hmac.compare_digest(given.encode(), expected.encode()):
            return Answer(401, '{"error": "unauthorized"}')
        key = request.headers.get("idempotency-key")
        if not key:
            return Answer(400, '{"error": "Idempotency-Key required"}')
        try:
            event = request.json()
        except ValueError:
            return Answer(400, '{"error": "not JSON"}')
        if key in self._keys:
            if self.echo:
                self.echo(f"billing: duplicate {key}: applied before, not again")
            return Answer(200, json.dumps({"id": key, "status": "duplicate"}))
        self._keys.add(key)
        self.applied.append(event)
        if self.echo:
            self.echo(f"billing: applied {key}: {event.get('msisdn')} {event.get('from')} -> "
                      f"{event.get('to')} ({event.get('channel')}, {event.get('client')})")
        return Answer(200, json.dumps({"id": key, "status": "applied"}))

    def about(self, request: Received) -> str:
        """The event a call is about: its ``Idempotency-Key`` (the event's id)."""
        return request.headers.get("idempotency-key") or request.path


class SmsStub(StubServer):
    """Africa's Talking's SMS API; with ``api_key``, refuses a call without that ``apiKey``
    header (``401``, as the provider does)."""

    name = "sms"

    def __init__(self, *args, api_key: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.api_key = api_key
        self.sent: list[dict] = []  # each SMS accepted, in order

    def answer(self, request: Received) -> Answer:
        given = request.headers.get("apikey", "")
        if self.api_key and not hmac.compare_digest(given.encode(), self.api_key.encode()):
            return Answer(401, "The supplied authentication is invalid")
        form = request.form()
        if not form.get("to") or not form.get("message") or not form.get("username"):
            return Answer(400, "Must have username, to and message")
        self.sent.append(form)
        if self.echo:
            self.echo(f"sms: to {form['to']}: {form['message']}")
        recipient = {"statusCode": 101, "number": form["to"], "status": "Success",
                     "cost": "XOF 10.0000", "messageId": f"ATXid_{len(self.sent)}"}
        return Answer(201, json.dumps({"SMSMessageData": {
            "Message": "Sent to 1/1 Total Cost: XOF 10.0000", "Recipients": [recipient]}}),
            {"Content-Type": "application/json"})


def _handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # the stub's echo says what matters
            pass

        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/_stub/requests":
                listed = [{"method": r.method, "path": r.path, "headers": r.headers,
                           "body": r.body.decode(errors="replace"), "at": r.at}
                          for r in stub.received]
                return self._send(Answer(200, json.dumps(listed)))
            return self._handle()

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/_stub/down":
                seconds = float(parse_qs(parts.query).get("seconds", ["60"])[0])
                stub.go_down(seconds)
                return self._send(Answer(200, f"down for {seconds:g} s\n"))
            if parts.path == "/_stub/up":
                stub.go_down(0)
                return self._send(Answer(200, "up\n"))
            return self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Received(self.command, self.path,
                               {name.lower(): value for name, value in self.headers.items()},
                               body, time.time())
            answer = stub._next(request)
            if answer.delay:
                time.sleep(answer.delay)
            if answer.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(answer)

        def _send(self, answer: Answer) -> None:
            payload = answer.body.encode()
            self.send_response(answer.status)
            headers = {"Content-Type": "text/plain; charset=utf-8", **answer.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler
