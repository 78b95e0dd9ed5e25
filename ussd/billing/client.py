"""Billing's HTTP client: each event POSTed as JSON, exactly as the outbox holds it.

httpx, for its pooled, thread-safe client (the relay's deliveries share one), its separate
connect/read/write timeouts and no retry of its own: attempts are the relay's to count, to
space out and to dead-letter, across relays and restarts, so the client must make exactly one
call per attempt.
"""

from __future__ import annotations

import json

import httpx

from .. import __version__
from .delivery import Outcome, failed_call, judge

USER_AGENT = f"ussd121-relay/{__version__}"


class BillingClient:
    """POSTs events to ``url``: ``Idempotency-Key: <event id>``, and ``Authorization: Bearer
    <token>`` when a token is set."""

    def __init__(self, url: str, token: str | None, timeout: float,
                 http: httpx.Client | None = None):
        self.url = url
        self.timeout = timeout
        self.http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self.headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def send(self, body: str) -> Outcome:
        """One attempt at delivering the event ``body`` (JSON, sent byte for byte)."""
        headers = {**self.headers, "Idempotency-Key": json.loads(body)["id"]}
        try:
            response = self.http.post(self.url, content=body.encode(), headers=headers)
        except httpx.HTTPError as error:
            return failed_call(error, self.timeout)
        return judge(response)

    def close(self) -> None:
        """Close the client's connections."""
        self.http.close()
