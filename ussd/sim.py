"""A handset simulator: dials #121# against a running server, as a gateway would relay it.

It speaks the Africa's Talking dialect: every hop posts the inputs so far joined with ``*``,
and the reply's ``CON``/``END`` says whether the session goes on. Each reply is checked as a
handset would need it (a well-formed body that fits one USSD message); anything else is a
:class:`SimulatorError`.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

from .text import fits, measure


class SimulatorError(Exception):
    """The server answered something a gateway could not relay to a handset."""


@dataclass(frozen=True)
class Screen:
    """What the handset shows after one hop."""

    text: str
    end: bool


class Handset:
    """One USSD session of one subscriber against one server."""

    def __init__(self, url: str, msisdn: str, dial: str = "#121#", timeout: float = 10.0,
                 session_id: str | None = None):
        self.url = url.rstrip("/") + "/ussd/africastalking"
        self.msisdn = msisdn
        self.dial = dial
        self.timeout = timeout
        self.session_id = session_id or f"sim-{uuid.uuid4().hex[:16]}"
        self.inputs: list[str] = []
        self.ended = False

    def start(self) -> Screen:
        """Dial the code: the first hop, with no input."""
        return self._post()

    def send(self, text: str) -> Screen:
        """Type ``text`` and send it."""
        if self.ended:
            raise SimulatorError("the session has already ended")
        self.inputs.append(text)
        return self._post()

    def _post(self) -> Screen:
        form = {
            "sessionId": self.session_id,
            "serviceCode": self.dial,
            "phoneNumber": self.msisdn,
            "networkCode": "62303",
            "text": "*".join(self.inputs),
        }
        data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.url, data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read().decode("utf-8")
                kind = response.headers.get_content_type()
        except urllib.error.HTTPError as error:
            raise SimulatorError(f"HTTP {error.code} from {self.url}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise SimulatorError(f"cannot reach {self.url}: {error}") from None
        if kind != "text/plain":
            raise SimulatorError(f"reply is {kind}, not text/plain: {body[:80]!r}")
        if body.startswith("CON "):
            screen = Screen(body[4:], end=False)
        elif body.startswith("END "):
            screen = Screen(body[4:], end=True)
        else:
            raise SimulatorError(f"reply starts with neither CON nor END: {body[:80]!r}")
        if not fits(screen.text):
            length, limit = measure(screen.text)
            raise SimulatorError(f"screen of {length} characters exceeds {limit}: {screen.text!r}")
        self.ended = screen.end
        return screen
