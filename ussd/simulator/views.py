"""The simulator's Flask blueprint: the page, its static files, its configuration and moves.

``GET /simulator/`` the page; ``GET /simulator/static/<file>`` its CSS and JavaScript;
``GET /simulator/api/config`` what the page offers (the dialects served, the codes answered,
the session TTL, the demo subscribers when the demo is loaded); ``POST /simulator/api/move``
one move (JSON in and out, see :mod:`ussd.simulator.play`), its body read within the bounds of a
gateway's (``gateways/reading.py``: ``413`` unread over :data:`MAX_BODY`, ``408`` when slow).
With ``USSD_SIMULATOR_AUTH`` set, every one of them asks for HTTP basic auth (compared in
constant time).
"""

from __future__ import annotations

import base64
import hmac
from pathlib import Path

from flask import Blueprint, Response, jsonify, redirect, request

from ..demo import DEMO_NUMBERS, DEMO_SUBSCRIBERS
from ..errors import SimulatorError
from ..gateways import enabled as served_dialects
from ..gateways.fields import MAX_INPUT, ServiceCodes
from ..gateways.reading import Bounds, TooLargeError, TooSlowError, read_json
from ..months import month_of
from ..rules import Profile
from ..service import UssdService
from ..settings import Settings
from .play import ACTIONS, command, play

STATIC = Path(__file__).resolve().parent / "static"
MAX_INPUTS = 64  # a session's inputs: more than any dialogue, fewer than a flood
MAX_BODY = 64 * 1024  # a move: 64 inputs of MAX_INPUT characters, room for escapes


def blueprint(service: UssdService, settings: Settings) -> Blueprint:
    """The simulator's routes, for this service and these settings."""
    pages = Blueprint("simulator", __name__, url_prefix="/simulator", static_folder=str(STATIC))
    dialects = {dialect.name: dialect for dialect in served_dialects(settings)}
    codes = ServiceCodes(settings.service_codes)
    credentials = settings.simulator_auth
    bounds = Bounds(MAX_BODY, settings.limits.body_timeout)

    @pages.before_request
    def authenticate() -> Response | None:
        if credentials is None or _authorised(credentials):
            return None
        return Response("the simulator needs its user and password (USSD_SIMULATOR_AUTH)\n",
                        401, {"WWW-Authenticate": 'Basic realm="ussd simulator"'},
                        content_type="text/plain; charset=utf-8")

    @pages.get("")
    def bare() -> Response:
        return redirect(request.path + "/", code=308)

    @pages.get("/")
    def page() -> Response:
        response = pages.send_static_file("index.html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @pages.get("/api/config")
    def config() -> Response:
        return jsonify(dialects=list(dialects), codes=list(settings.service_codes),
                       ttl=settings.session_ttl, resume_window=settings.resume_window,
                       demo=_demo(service) if settings.demo else [])

    @pages.post("/api/move")
    def move() -> tuple[Response, int] | Response:
        arrived = bounds.clock()
        try:
            body = read_json(bounds.body(request, arrived))
        except TooLargeError:
            return jsonify(error=f"a move is {MAX_BODY} bytes at most"), 413
        except TooSlowError:
            return jsonify(error="the move took too long to come"), 408
        try:
            gateway, action, session_id, msisdn, code, inputs = _read(body, dialects)
            played = play(service, dialects[gateway], codes, action, session_id, msisdn, code,
                          inputs)
        except SimulatorError as error:
            return jsonify(error=str(error)), 400
        ending = action if action in ("hang_up", "time_out") else None
        return jsonify(**played.as_json(), command=command(
            request.host_url.rstrip("/"), gateway, msisdn, code, list(inputs), ending))

    return pages


def _demo(service: UssdService) -> list[dict]:
    """The demo subscribers as they stand now (testers migrate them and change their
    language), with what each is there to show."""
    month = month_of(service.clock(), service.zone)
    rows = []
    for (number, *_, shows), msisdn in zip(DEMO_SUBSCRIBERS, DEMO_NUMBERS, strict=True):
        stored = service.store.admin.describe(msisdn, month) or {}
        profile = Profile.parse(stored.get("profile") or "")
        rows.append({"msisdn": number, "profile": profile.title if profile else "-",
                     "language": stored.get("language", "-"), "shows": shows})
    return rows


def _read(body: object, dialects: dict) -> tuple[str, str, str, str, str, tuple[str, ...]]:
    """The move a JSON body asks for; SimulatorError for one that is not a move."""
    if not isinstance(body, dict):
        raise SimulatorError("a move is a JSON object")
    gateway, action = body.get("gateway"), body.get("action")
    if gateway not in dialects:
        # The allowed values, never the value sent: a caller's text is not echoed back.
        raise SimulatorError(f"no such dialect served here (served: {', '.join(dialects)})")
    if action not in ACTIONS:
        raise SimulatorError(f"no such move (moves: {', '.join(ACTIONS)})")
    fields = [body.get(name) for name in ("session", "msisdn", "code")]
    inputs = body.get("inputs", [])
    if not all(isinstance(value, str) and 0 < len(value) <= 64 for value in fields):
        raise SimulatorError("session, msisdn and code must be text (64 characters at most)")
    if not isinstance(inputs, list) or not all(isinstance(text, str) for text in inputs):
        raise SimulatorError("inputs must be a list of texts")
    # Two limits, each named: an input too long was told "(64 at most)", about their number.
    if len(inputs) > MAX_INPUTS:
        raise SimulatorError(f"a session takes {MAX_INPUTS} inputs at most")
    if any(len(text) > MAX_INPUT for text in inputs):
        raise SimulatorError(f"an input is {MAX_INPUT} characters at most: no handset sends "
                             "more in one USSD message")
    return gateway, action, *fields, tuple(inputs)


def _authorised(credentials: str) -> bool:
    """True when the request's basic auth is ``user:password``, compared in constant time."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded, validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(given, credentials.encode())
