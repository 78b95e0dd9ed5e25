"""A handset simulator: dials #121# against a running server, as a gateway would relay it.

One :class:`Handset` plays a session in any dialect, through the dialect's client half
(``ussd/gateways/<name>.py``: the requests its gateway sends, and how it reads our answers):
the dial, each input, and the requests a gateway sends when a session ends (hang-up, time-out,
and, for gateways that report it, the end after an ``END``). It makes the checks a gateway
makes on every reply (HTTP ``200``, the dialect's well-formed answer, a screen that fits one
USSD message) and sends the credentials: a token (in the path for gateways that are only given
a URL, else ``Authorization: Bearer``) or HTTP basic auth. Anything a gateway could not relay
to a handset is a :class:`~ussd.errors.SimulatorError`.

:func:`http_request` is how a dialect's :class:`~ussd.contract.WireRequest` goes over HTTP, for
the tests and the bench as well.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .contract import NOT_SERVED_HEADER, Dialect, EndKind, Reply, WireReply, WireRequest
from .errors import SimulatorError
from .text import fits, measure

URLENCODED = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Credentials:
    """What the simulated gateway sends to prove itself: a token, or a user and password."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, gateway: str, environ: Mapping[str, str] | None = None) -> Credentials:
        """The server's own ``USSD_<GATEWAY>_TOKEN`` / ``_BASIC_AUTH``, when set here too."""
        env = os.environ if environ is None else environ
        user, _, password = env.get(f"USSD_{gateway.upper()}_BASIC_AUTH", "").partition(":")
        return cls(token=env.get(f"USSD_{gateway.upper()}_TOKEN") or None,
                   user=user or None, password=password or None)


# method, URL, headers, body -> the answer; tests hand in one that calls a WSGI app directly.
Transport = Callable[[str, str, Mapping[str, str], bytes | None], WireReply]


def urllib_transport(timeout: float = 10.0) -> Transport:
    """HTTP through the standard library; header names in lower case; SimulatorError when the
    server cannot be reached."""

    def send(method: str, url: str, headers: Mapping[str, str], body: bytes | None
             ) -> WireReply:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return answer_of(response.status, response.headers,
                                 response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            return answer_of(error.code, error.headers, error.read().decode("utf-8", "replace"))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise SimulatorError(f"cannot reach {url}: {error}") from None

    return send


def answer_of(status: int, headers: Mapping[str, str], body: str) -> WireReply:
    """An HTTP answer as a :class:`WireReply`: the media type from ``Content-Type``, every
    header kept (names in lower case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    mimetype = lowered.get("content-type", "").split(";")[0].strip()
    return WireReply(status, mimetype, body, lowered)


def http_request(request: WireRequest, path: str) -> tuple[str, str, dict[str, str], bytes | None]:
    """``(method, target, headers, body)`` of ``request`` sent to ``path`` (``/ussd/<name>``):
    the query in the target, a form URL-encoded, a JSON body as JSON."""
    target = path + request.suffix
    if request.query:
        target += "?" + urllib.parse.urlencode(request.query)
    if request.form is not None:
        return (request.method, target, {"Content-Type": URLENCODED},
                urllib.parse.urlencode(request.form).encode())
    if request.json is not None:
        return (request.method, target, {"Content-Type": "application/json"},
                json.dumps(request.json).encode())
    return request.method, target, {}, None


class Handset:
    """One USSD session of one subscriber, through one gateway dialect, against one server."""

    def __init__(self, dialect: Dialect, url: str, msisdn: str, dial: str = "#121#",
                 credentials: Credentials | None = None, transport: Transport | None = None,
                 session_id: str | None = None):
        self.dialect = dialect
        self.base = url.rstrip("/")
        self.msisdn = msisdn
        self.dial = dial
        self.credentials = credentials or Credentials()
        self.transport = transport or urllib_transport()
        self.session_id = session_id or f"sim-{uuid.uuid4().hex[:16]}"
        self.inputs: list[str] = []
        self.ended = False

    def start(self) -> Reply:
        """Dial the code: the first hop."""
        return self._hop(self.dialect.dial(self.session_id, self.msisdn, self.dial))

    def send(self, text: str) -> Reply:
        """Type ``text`` and send it."""
        if self.ended:
            raise SimulatorError("the session has already ended")
        self.inputs.append(text)
        return self._hop(self.dialect.hop(self.session_id, self.msisdn, self.dial,
                                          tuple(self.inputs)))

    def hang_up(self) -> None:
        """The subscriber cancels: the gateway tells the server the session is over."""
        self._end(EndKind.HANG_UP)

    def time_out(self) -> None:
        """The subscriber stops answering: the gateway reports the session timed out."""
        self._end(EndKind.TIME_OUT)

    def _hop(self, request: WireRequest) -> Reply:
        reply = self.dialect.read_reply(self._send(request))
        if not fits(reply.text):
            length, limit = measure(reply.text)
            raise SimulatorError(f"screen of {length} characters exceeds {limit}: {reply.text!r}")
        self.ended = reply.end
        if reply.end:
            self._end(EndKind.COMPLETED)  # reported by the gateways that report it
        return reply

    def _end(self, kind: EndKind) -> None:
        request = self.dialect.end(self.session_id, self.msisdn, self.dial, tuple(self.inputs),
                                   kind)
        if request is not None:
            self.dialect.check_acknowledgement(self._send(request), request)
        self.ended = True

    def _send(self, request: WireRequest) -> WireReply:
        """Send one request with the credentials; SimulatorError unless the answer is 200."""
        credentials = self.credentials
        path = f"/ussd/{self.dialect.name}"
        if credentials.token and self.dialect.token_in_path:
            path += "/" + urllib.parse.quote(credentials.token, safe="")
        method, target, headers, body = http_request(request, path)
        if credentials.token and not self.dialect.token_in_path:
            headers["Authorization"] = f"Bearer {credentials.token}"
        elif not credentials.token and credentials.user is not None:
            pair = f"{credentials.user}:{credentials.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        answer = self.transport(method, self.base + target, headers, body)
        if answer.status != 200:
            hint = _hint(answer)
            if answer.status == 404 and "/ussd/" in self.base + "/":  # the callback's URL
                hint = ": --url is the server's address (http://host:port), without /ussd/..."
            raise SimulatorError(f"HTTP {answer.status} from {self.base}/ussd/{self.dialect.name}"
                                 + hint)
        return answer


def _hint(answer: WireReply) -> str:
    """What a refusal means, for the tester: for a ``404``, the server's own sentence when it
    says it does not serve the dialect (``gateways.view.NOT_SERVED_HEADER``); else what the
    status usually means (a 404: ``--url`` is not this service, or has a wrong path)."""
    said = answer.body.strip()
    if (answer.status == 404 and answer.header(NOT_SERVED_HEADER) is not None and said
            and len(said) <= 200 and "\n" not in said):
        return f": {said}"
    return {401: ": check --token, or --user and --password",
            403: ": this address is not on the gateway's allow-list",
            404: ": nothing there: is --url this service, with the dialect served "
                 "(USSD_GATEWAYS)?"}.get(answer.status, "")
