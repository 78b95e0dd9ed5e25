"""A handset simulator: dials #121# against a running server, as a gateway would relay it.

One small class per gateway dialect speaks its wire format (:class:`AfricasTalkingHandset`,
:class:`HubtelHandset`, :class:`FlaresHandset`): the dial, each input, and the messages a
gateway sends when a session ends (hang-up, timeout, Africa's Talking's end notification).
They share the checks a gateway makes on every reply (HTTP ``200``, the right content type,
a screen that fits one USSD message) and the credentials: a token (in the path for gateways
that are only given a URL, else ``Authorization: Bearer``) or HTTP basic auth. Anything a
gateway could not relay to a handset is a :class:`SimulatorError`.
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
from typing import ClassVar

from .errors import SimulatorError
from .text import fits, measure


@dataclass(frozen=True)
class Screen:
    """What the handset shows after one hop."""

    text: str
    end: bool


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


@dataclass(frozen=True)
class HttpReply:
    """What the server answered: status, headers (names in lower case) and body."""

    status: int
    headers: Mapping[str, str]
    body: str


# method, URL, headers, body -> the reply; tests hand in one that calls a WSGI app directly.
Transport = Callable[[str, str, Mapping[str, str], bytes | None], HttpReply]


def urllib_transport(timeout: float = 10.0) -> Transport:
    """HTTP through the standard library."""

    def send(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> HttpReply:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return HttpReply(response.status, _lower(response.headers),
                                 response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            body = error.read().decode("utf-8", "replace")
            return HttpReply(error.code, _lower(error.headers), body)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise SimulatorError(f"cannot reach {url}: {error}") from None

    return send


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


class Handset:
    """One USSD session of one subscriber, through one gateway dialect, against one server."""

    NAME: ClassVar[str]
    TOKEN_IN_PATH: ClassVar[bool] = False  # True: the gateway is only given a URL

    def __init__(self, url: str, msisdn: str, dial: str = "#121#",
                 credentials: Credentials | None = None, transport: Transport | None = None,
                 session_id: str | None = None):
        self.base = url.rstrip("/")
        self.msisdn = msisdn
        self.dial = dial
        self.credentials = credentials or Credentials()
        self.transport = transport or urllib_transport()
        self.session_id = session_id or f"sim-{uuid.uuid4().hex[:16]}"
        self.ended = False

    def start(self) -> Screen:
        """Dial the code: the first hop."""
        raise NotImplementedError

    def send(self, text: str) -> Screen:
        """Type ``text`` and send it."""
        raise NotImplementedError

    def hang_up(self) -> None:
        """The subscriber cancels: the gateway tells the server the session is over."""
        raise NotImplementedError

    def time_out(self) -> None:
        """The subscriber stops answering: the gateway reports the session timed out."""
        raise NotImplementedError

    # --- shared by every dialect ---------------------------------------------------------

    def _request(self, method: str, suffix: str = "", body: bytes | None = None,
                 content_type: str | None = None, query: Mapping[str, str] | None = None
                 ) -> HttpReply:
        """Send one request with the credentials; SimulatorError unless the answer is 200."""
        credentials = self.credentials
        path = f"/ussd/{self.NAME}"
        headers = {"Content-Type": content_type} if content_type else {}
        if credentials.token and self.TOKEN_IN_PATH:
            path += "/" + urllib.parse.quote(credentials.token, safe="")
        elif credentials.token:
            headers["Authorization"] = f"Bearer {credentials.token}"
        elif credentials.user is not None:
            pair = f"{credentials.user}:{credentials.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        url = self.base + path + suffix + ("?" + urllib.parse.urlencode(query) if query else "")
        reply = self.transport(method, url, headers, body)
        if reply.status != 200:
            hint = {401: ": check --token, or --user and --password",
                    403: ": this address is not on the gateway's allow-list"}
            raise SimulatorError(f"HTTP {reply.status} from {self.base}/ussd/{self.NAME}"
                                 + hint.get(reply.status, ""))
        return reply

    def _expect(self, reply: HttpReply, content_type: str) -> None:
        kind = reply.headers.get("content-type", "").split(";")[0].strip()
        if kind != content_type:
            raise SimulatorError(f"reply is {kind or 'untyped'}, not {content_type}: "
                                 f"{reply.body[:80]!r}")

    def _screen(self, text: str, end: bool) -> Screen:
        """The screen a handset shows, checked to fit one USSD message."""
        if not fits(text):
            length, limit = measure(text)
            raise SimulatorError(f"screen of {length} characters exceeds {limit}: {text!r}")
        self.ended = end
        return Screen(text, end)

    def _check_open(self) -> None:
        if self.ended:
            raise SimulatorError("the session has already ended")


class AfricasTalkingHandset(Handset):
    """Form posts with every input so far in ``text``; ``CON``/``END`` replies; events URL."""

    NAME = "africastalking"
    TOKEN_IN_PATH = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inputs: list[str] = []

    def start(self) -> Screen:
        return self._hop()

    def send(self, text: str) -> Screen:
        self._check_open()
        self.inputs.append(text)
        return self._hop()

    def hang_up(self) -> None:
        self._event("Incomplete", "")

    def time_out(self) -> None:
        self._event("Incomplete", "session timed out")

    def _hop(self) -> Screen:
        form = {"sessionId": self.session_id, "serviceCode": self.dial,
                "phoneNumber": self.msisdn, "networkCode": "61203", "text": "*".join(self.inputs)}
        reply = self._request("POST", body=urllib.parse.urlencode(form).encode(),
                              content_type="application/x-www-form-urlencoded")
        self._expect(reply, "text/plain")
        if reply.body.startswith(("CON ", "END ")):
            screen = self._screen(reply.body[4:], end=reply.body.startswith("END "))
        else:
            raise SimulatorError(f"reply starts with neither CON nor END: {reply.body[:80]!r}")
        if screen.end:
            self._event("Success", "")  # the gateway's end-of-session notification
        return screen

    def _event(self, status: str, error: str) -> None:
        form = {"sessionId": self.session_id, "serviceCode": self.dial,
                "phoneNumber": self.msisdn, "networkCode": "61203", "status": status,
                "durationInMillis": "0", "errorMessage": error,
                "input": "*".join(self.inputs)}
        self._request("POST", "/events", urllib.parse.urlencode(form).encode(),
                      "application/x-www-form-urlencoded")
        self.ended = True


class HubtelHandset(Handset):
    """JSON posts typed ``Initiation``/``Response``/``Release``/``Timeout``, with ``Sequence``."""

    NAME = "hubtel"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sequence = 0
        self.client_state = ""

    def start(self) -> Screen:
        return self._screen(*self._post("Initiation", self.dial))

    def send(self, text: str) -> Screen:
        self._check_open()
        return self._screen(*self._post("Response", text))

    def hang_up(self) -> None:
        self._close("Release")

    def time_out(self) -> None:
        self._close("Timeout")

    def _close(self, kind: str) -> None:
        text, end = self._post(kind, "")
        if not end or text:
            raise SimulatorError(f"a {kind} got {text!r}, not an empty Release")
        self.ended = True

    def _post(self, kind: str, message: str) -> tuple[str, bool]:
        self.sequence += 1
        body = {"Type": kind, "Mobile": self.msisdn, "SessionId": self.session_id,
                "ServiceCode": _code(self.dial).split("*")[0], "Message": message,
                "Operator": "Orange", "Sequence": self.sequence, "ClientState": self.client_state}
        reply = self._request("POST", body=json.dumps(body).encode(),
                              content_type="application/json")
        self._expect(reply, "application/json")
        try:
            payload = json.loads(reply.body)
            kind, text = payload["Type"], payload["Message"]
        except (ValueError, TypeError, KeyError):
            raise SimulatorError(f"reply is not Hubtel JSON: {reply.body[:80]!r}") from None
        if kind not in ("Response", "Release") or not isinstance(text, str):
            raise SimulatorError(f"reply Type is {kind!r}, not Response or Release")
        self.client_state = payload.get("ClientState") or ""
        return text, kind == "Release"


class FlaresHandset(Handset):
    """``GET`` with ``SessionID, MSISDN, input``; the ``Freeflow`` header says FC or FB."""

    NAME = "flares"
    TOKEN_IN_PATH = True

    def start(self) -> Screen:
        return self._hop(_code(self.dial))

    def send(self, text: str) -> Screen:
        self._check_open()
        return self._hop(text)

    def hang_up(self) -> None:
        self._abort("clean")

    def time_out(self) -> None:
        self._abort("error")

    def _hop(self, text: str) -> Screen:
        reply = self._request("GET", query=self._query(input=text))
        self._expect(reply, "text/plain")
        freeflow = reply.headers.get("freeflow")
        if freeflow not in ("FC", "FB"):
            raise SimulatorError(f"reply has Freeflow {freeflow!r}, not FC or FB")
        return self._screen(reply.body, end=freeflow == "FB")

    def _abort(self, kind: str) -> None:
        reply = self._request("GET", query=self._query(abort=kind))
        if reply.body:
            raise SimulatorError(f"an abort got {reply.body[:80]!r}, not an empty reply")
        self.ended = True

    def _query(self, **extra: str) -> dict[str, str]:
        return {"SessionID": self.session_id, "MSISDN": self.msisdn, **extra}


HANDSETS: dict[str, type[Handset]] = {
    handset.NAME: handset for handset in (AfricasTalkingHandset, HubtelHandset, FlaresHandset)
}


def _code(dial: str) -> str:
    """The dialled code as operator gateways pass it: ``#121*1#`` -> ``121*1``."""
    return dial.strip().lstrip("*#").rstrip("#")
