"""Africa's Talking's SMS API: one receipt per call, as its bulk SMS endpoint takes it.

``POST`` form ``username``, ``to``, ``message`` and, when set, ``from`` (the sender id), with
the ``apiKey`` header and ``Accept: application/json``. The provider answers ``201`` with one
status per recipient: ``100`` Processed, ``101`` Sent or ``102`` Queued is an accepted SMS;
``500``/``501`` (its own or its gateway's error) is worth another attempt; any other (an invalid
number, a blacklisted one, no credit left...) refuses it, with the provider's words kept in
the dead letter. A ``2xx`` that lists no recipient is taken as accepted: sending again an SMS
the provider may have taken is the one thing never to do.
"""

from __future__ import annotations

import json

import httpx

from .client import USER_AGENT
from .delivery import Outcome, Verdict, failed_call, judge

ACCEPTED = frozenset({100, 101, 102})
PROVIDER_ERRORS = frozenset({500, 501})


class SmsClient:
    """Sends receipts (``{"id", "to", "message"}``) through Africa's Talking."""

    def __init__(self, url: str, username: str | None, api_key: str | None,
                 sender: str | None, timeout: float, http: httpx.Client | None = None):
        self.url = url
        self.username = username or ""
        self.sender = sender
        self.timeout = timeout
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self.headers = {"Accept": "application/json", "User-Agent": USER_AGENT,
                        "apiKey": api_key or ""}

    def send(self, body: str) -> Outcome:
        """One attempt at sending the receipt ``body`` (JSON)."""
        receipt = json.loads(body)
        form = {"username": self.username, "to": receipt["to"], "message": receipt["message"]}
        if self.sender:
            form["from"] = self.sender
        try:
            response = self.http.post(self.url, data=form, headers=self.headers)
        except httpx.HTTPError as error:
            return failed_call(error, self.timeout)
        outcome = judge(response)
        if outcome.verdict is not Verdict.DELIVERED:
            return outcome
        return _recipient_outcome(response, outcome)

    def close(self) -> None:
        """Close the client's connections."""
        self.http.close()


def _recipient_outcome(response: httpx.Response, accepted: Outcome) -> Outcome:
    """The verdict of the one recipient of a ``2xx`` answer."""
    try:
        recipients = response.json()["SMSMessageData"]["Recipients"]
        recipient = recipients[0]
        code = int(recipient["statusCode"])
    except (ValueError, KeyError, IndexError, TypeError):
        return accepted
    said = f"provider status {code} {recipient.get('status', '')}".rstrip()
    if code in ACCEPTED:
        return Outcome(Verdict.DELIVERED, f"{said}, {recipient.get('messageId', 'no id')}")
    if code in PROVIDER_ERRORS:
        return Outcome(Verdict.RETRY, said)
    return Outcome(Verdict.REFUSED, said)
