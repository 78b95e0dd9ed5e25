"""One move of the browser simulator's handset, through a dialect's real wire format.

The page says what the tester did (dial, send an input, hang up, time out) and this module
plays it as the chosen gateway would: the dialect's client half builds the very request its
gateway sends (:meth:`~ussd.contract.Dialect.dial`, ``hop``, ``end``), the server half answers
it as the gateway endpoint does (:func:`ussd.gateways.view.answer`: parse, the service, the
wire reply; only the gateway's authentication is not asked for), and the client half reads
the answer back (``read_reply``), so that the page shows what the gateway would get. An
``END`` is followed by the end-of-session report of the gateways that send one (Africa's
Talking's ``Success``), as ``ussd sim`` does. No Flask API here: the view turns a
:class:`Move` into JSON.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from ..contract import Dialect, EndKind, WireReply, WireRequest
from ..errors import InvalidMsisdnError, MalformedReplyError, SimulatorError
from ..gateways.fields import ServiceCodes
from ..gateways.view import answer
from ..phone import normalize_msisdn
from ..render import screen_pages
from ..service import UssdService
from ..session import Session
from ..sim import http_request
from ..text import GSM_LIMIT, measure

ACTIONS = ("dial", "send", "hang_up", "time_out")
ENDINGS = {"hang_up": EndKind.HANG_UP, "time_out": EndKind.TIME_OUT}


@dataclass
class Move:
    """What one move showed: the screen (None after a hang-up or a time-out), and every
    request and answer that went over the wire for it, written as HTTP."""

    screen: str | None = None
    end: bool = True
    length: int = 0
    limit: int = GSM_LIMIT
    page: int | None = None  # from 1
    pages: int | None = None
    ttl: int = 0  # seconds the session's record has left
    exchanges: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        """The move as the page reads it."""
        alphabet = "GSM 03.38" if self.limit == GSM_LIMIT else "UCS-2"
        return {"screen": self.screen, "end": self.end, "length": self.length,
                "limit": self.limit, "alphabet": alphabet, "page": self.page,
                "pages": self.pages, "ttl": self.ttl, "wire": self.exchanges}


def play(service: UssdService, dialect: Dialect, codes: ServiceCodes, action: str,
         session_id: str, msisdn: str, code: str, inputs: tuple[str, ...]) -> Move:
    """Play ``action`` (one of ``ACTIONS``) in a session; ``inputs`` are every input sent so
    far, the last one this move's when it sends one. SimulatorError for a move that cannot
    be played (no input to send) or an answer the gateway could not read."""
    move = Move()
    if action in ENDINGS:
        request = dialect.end(session_id, msisdn, code, inputs, ENDINGS[action])
        if request is not None:
            _exchange(service, dialect, codes, request, move)
        return move
    if action == "send" and not inputs:
        raise SimulatorError("nothing to send")
    request = (dialect.dial(session_id, msisdn, code) if action == "dial"
               else dialect.hop(session_id, msisdn, code, inputs))
    reply = _exchange(service, dialect, codes, request, move)
    try:
        screen = dialect.read_reply(reply)
    except MalformedReplyError as error:
        raise SimulatorError(f"the gateway could not read the answer: {error}") from None
    move.screen, move.end = screen.text, screen.end
    move.length, move.limit = measure(screen.text)
    _session_state(service, dialect, session_id, msisdn, move)
    if screen.end:  # reported by the gateways that report it (Africa's Talking)
        report = dialect.end(session_id, msisdn, code, inputs, EndKind.COMPLETED)
        if report is not None:
            _exchange(service, dialect, codes, report, move)
    return move


def command(base_url: str, gateway: str, msisdn: str, code: str, inputs: list[str],
            ending: str | None) -> str:
    """The ``ussd sim`` command line that plays the same session again."""
    words = ["ussd", "sim", "--url", base_url, "--gateway", gateway, "--msisdn", msisdn,
             "--dial", code]
    for text in inputs:
        words += ["--input", text]
    if ending in ENDINGS:
        words.append("--" + ending.replace("_", "-"))
    return shlex.join(words)


def _exchange(service: UssdService, dialect: Dialect, codes: ServiceCodes,
              request: WireRequest, move: Move) -> WireReply:
    reply = answer(dialect, request, service, codes)
    move.exchanges.append({"request": _request_text(dialect, request),
                           "reply": _reply_text(reply)})
    return reply


def _session_state(service: UssdService, dialect: Dialect, session_id: str, msisdn: str,
                   move: Move) -> None:
    """The page of the screen shown and the session's time left, from its live record."""
    try:
        number = normalize_msisdn(msisdn)
    except InvalidMsisdnError:
        return  # refused: there is no session
    record, move.ttl = service.store.admin.live_session(number, dialect.name, session_id)
    if record is None:
        return
    session = Session.loads(record)
    pages = screen_pages(service.menu, session.screen, session.language, session.values,
                         service.policy, error=session.invalid > 0)
    move.page, move.pages = min(session.page, len(pages) - 1) + 1, len(pages)


def _request_text(dialect: Dialect, request: WireRequest) -> str:
    """The request as the gateway sends it over HTTP (without its credentials)."""
    method, target, headers, body = http_request(request, f"/ussd/{dialect.name}")
    head = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in
                                             headers.items())]
    return "\n".join(head) + ("\n\n" + _pretty(body.decode()) if body else "")


def _reply_text(reply: WireReply) -> str:
    """The answer as the gateway gets it over HTTP."""
    content_type = reply.mimetype + ("; charset=utf-8" if reply.mimetype.startswith("text/")
                                     else "")
    head = [f"HTTP/1.1 {reply.status}", f"Content-Type: {content_type}",
            *(f"{name}: {value}" for name, value in reply.headers.items())]
    return "\n".join(head) + "\n\n" + reply.body


def _pretty(body: str) -> str:
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        return body  # a form: as it is sent
