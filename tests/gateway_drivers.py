"""Test drivers that play a USSD session through each gateway dialect, as its gateway would.

Every driver has the same interface (``dial``, ``send``, ``retry``, ``hang_up``, ``time_out``,
``first_hop``), so that one table of dialogues drives every dialect; each asserts its
dialect's exact wire format (status, headers, body) on every reply and returns the
:class:`Screen` the handset would show.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Screen:
    """What the handset shows: the text, and whether the session ends with it."""

    text: str
    end: bool


class Driver:
    """One session of one subscriber through one dialect, on a Flask test client."""

    NAME = ""
    TELLS_RETRIES = True  # the dialect lets the server recognise a repeated hop
    PATH = ""

    def __init__(self, client, msisdn: str, dial: str = "#121#", session_id: str | None = None,
                 headers: dict | None = None, path: str | None = None,
                 remote_addr: str = "127.0.0.1"):
        self.client = client
        self.msisdn = msisdn
        self.code = dial
        self.session_id = session_id or f"{self.NAME}-{uuid.uuid4().hex[:12]}"
        self.headers = headers or {}
        self.path = path or self.PATH
        self.remote_addr = remote_addr
        self.last: dict | None = None

    def dial(self) -> Screen:
        """The first hop."""
        return self.hop(self.first_hop())

    def send(self, *inputs: str) -> Screen:
        """Type inputs (several at once: chained with ``*``) and return the screen."""
        return self.hop(self.next_hop(inputs))

    def retry(self) -> Screen:
        """The gateway sends the last hop again."""
        return self.hop(self.last)

    def hop(self, fields: dict) -> Screen:
        self.last = fields
        return self.screen(self.request(fields))

    # Per dialect: the request fields, the request, the reply's screen, and the ending.
    def first_hop(self, **broken) -> dict:
        raise NotImplementedError

    def next_hop(self, inputs: tuple[str, ...]) -> dict:
        raise NotImplementedError

    def request(self, fields: dict):
        raise NotImplementedError

    def screen(self, response) -> Screen:
        raise NotImplementedError

    def hang_up(self):
        raise NotImplementedError

    def time_out(self):
        raise NotImplementedError

    def _environ(self) -> dict:
        return {"REMOTE_ADDR": self.remote_addr}


class AfricasTalking(Driver):
    """Form posts; ``text`` holds every input since the dial."""

    NAME = "africastalking"
    PATH = "/ussd/africastalking"
    # logical field -> form field, for the requests the tests break on purpose
    FIELDS = {"number": "phoneNumber", "session": "sessionId", "code": "serviceCode",
              "input": "text"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inputs: list[str] = []

    def first_hop(self, **broken) -> dict:
        form = {"sessionId": self.session_id, "serviceCode": self.code,
                "phoneNumber": self.msisdn, "networkCode": "61203", "text": ""}
        form.update({self.FIELDS[name]: value for name, value in broken.items()})
        return form

    def next_hop(self, inputs):
        self.inputs.extend(inputs)
        return {**self.first_hop(), "text": "*".join(self.inputs)}

    def request(self, fields):
        return self.client.post(self.path, data=fields, headers=self.headers,
                                environ_base=self._environ())

    def screen(self, response) -> Screen:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        body = response.get_data(as_text=True)
        assert body[:4] in ("CON ", "END "), body
        return Screen(body[4:], end=body.startswith("END "))

    def _event(self, status: str):
        response = self.client.post(self.path + "/events", headers=self.headers,
                                    environ_base=self._environ(), data={
            "sessionId": self.session_id, "serviceCode": self.code,
            "phoneNumber": self.msisdn, "networkCode": "61203", "status": status,
            "durationInMillis": "21000", "errorMessage": "", "input": "*".join(self.inputs),
        })
        return response

    def hang_up(self):
        response = self._event("Incomplete")
        assert (response.status_code, response.get_data()) == (200, b"")
        return response

    def time_out(self):
        return self.hang_up()  # Africa's Talking reports both as an Incomplete session


class Hubtel(Driver):
    """JSON posts typed Initiation/Response/Release/Timeout, numbered by ``Sequence``."""

    NAME = "hubtel"
    PATH = "/ussd/hubtel"
    FIELDS = {"number": "Mobile", "session": "SessionId", "code": "Message", "input": "Message"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sequence = 0
        self.state = ""

    def _body(self, kind: str, message: str) -> dict:
        self.sequence += 1
        self.state = f"state-{self.sequence}"
        return {"Type": kind, "Mobile": self.msisdn, "SessionId": self.session_id,
                "ServiceCode": "121", "Message": message, "Operator": "Orange",
                "Sequence": self.sequence, "ClientState": self.state}

    def first_hop(self, **broken) -> dict:
        body = self._body("Initiation", self.code)
        body.update({self.FIELDS[name]: value for name, value in broken.items()})
        return body

    def next_hop(self, inputs):
        return self._body("Response", "*".join(inputs))

    def request(self, fields):
        data = fields if isinstance(fields, (bytes, str)) else json.dumps(fields)
        return self.client.post(self.path, data=data, content_type="application/json",
                                headers=self.headers, environ_base=self._environ())

    def screen(self, response) -> Screen:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        payload = json.loads(response.get_data(as_text=True))
        assert list(payload) == ["Type", "Message", "ClientState"]
        sent = self.last.get("ClientState") if isinstance(self.last, dict) else None
        assert payload["ClientState"] == (sent if isinstance(sent, str) else "")
        assert payload["Type"] in ("Response", "Release")
        return Screen(payload["Message"], end=payload["Type"] == "Release")

    def _close(self, kind: str):
        body = self._body(kind, "")
        response = self.request(body)
        assert response.status_code == 200
        assert json.loads(response.get_data(as_text=True)) == {
            "Type": "Release", "Message": "", "ClientState": body["ClientState"]}
        return response

    def hang_up(self):
        return self._close("Release")

    def time_out(self):
        return self._close("Timeout")


class Flares(Driver):
    """GETs: the first carries the dialled code, each later one only the latest input."""

    NAME = "flares"
    PATH = "/ussd/flares"
    TELLS_RETRIES = False  # nothing in a Flares request tells a retry from a new input
    FIELDS = {"number": "MSISDN", "session": "SessionID", "code": "input", "input": "input"}

    def first_hop(self, **broken) -> dict:
        query = {"SessionID": self.session_id, "MSISDN": self.msisdn,
                 "input": self.code.strip("*#")}
        query.update({self.FIELDS[name]: value for name, value in broken.items()})
        return query

    def next_hop(self, inputs):
        return {"SessionID": self.session_id, "MSISDN": self.msisdn, "input": "*".join(inputs)}

    def request(self, fields):
        return self.client.get(self.path, query_string=fields, headers=self.headers,
                               environ_base=self._environ())

    def screen(self, response) -> Screen:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.headers["Freeflow"] in ("FC", "FB")
        assert response.headers["Cache-Control"] == "no-store"
        return Screen(response.get_data(as_text=True), end=response.headers["Freeflow"] == "FB")

    def _abort(self, kind: str):
        response = self.request({"SessionID": self.session_id, "MSISDN": self.msisdn,
                                 "abort": kind})
        assert (response.status_code, response.get_data()) == (200, b"")
        assert "Freeflow" not in response.headers
        return response

    def hang_up(self):
        return self._abort("clean")

    def time_out(self):
        return self._abort("error")


DRIVERS = (AfricasTalking, Hubtel, Flares)
