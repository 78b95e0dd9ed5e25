"""Every answer of the API that is not a success: RFC 9457 problem details.

A problem is ``application/problem+json`` with ``type``, ``title``, ``status`` and ``detail``,
plus members of its own: ``reason`` and the figures for a refusal by the rules, ``errors`` for
a malformed request, ``scope``, ``retry_after``... Its ``type`` is one of :data:`PROBLEM_TYPES`,
``/api/v1/problems/<name>`` (each served, with its description, by the API itself), or
``about:blank`` for what the HTTP status says alone (no such path, a method not allowed).
Whatever the input, the API answers a problem, never an HTML page: :func:`install` covers the
paths no route matches, and a bug is a ``500`` problem, logged without its message (it may
quote a key, so a whole phone number).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from flask import Blueprint, Flask, Response, abort, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..errors import IdempotencyKeyReusedError, StoreConflictError, StoreError
from ..observe import where_raised
from ..rules import Decision, Reason

PROBLEM_JSON = "application/problem+json"
API_PREFIX = "/api/"
TYPES_PATH = "/api/v1/problems/"

log = logging.getLogger("ussd.api")


@dataclass(frozen=True)
class ProblemType:
    """A kind of problem: its name (in its ``type`` URI), status, title and what it means."""

    name: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        """The problem's ``type``: a path of this API, where it is described."""
        return TYPES_PATH + self.name


PROBLEM_TYPES: Mapping[str, ProblemType] = {kind.name: kind for kind in (
    ProblemType("invalid-request", 400, "The request is malformed",
                "A path parameter, header or body that cannot be read (a JSON body with a "
                "member given twice in one object included): each one is named in `errors` "
                "(`location`, `name`, `message`). Fix the request; sending it again as it is "
                "will fail the same way."),
    ProblemType("unauthorized", 401, "Missing or unknown bearer token",
                "Send `Authorization: Bearer <token>` with the token of a client configured "
                "on the server."),
    ProblemType("missing-scope", 403, "The client lacks the scope this call needs",
                "The scope needed is in `scope`; a client's scopes are in the server's clients "
                "file."),
    ProblemType("unknown-subscriber", 404, "No such subscriber",
                "No subscriber holds this number (`msisdn`, normalised). A migration asked for "
                "it is not recorded under its idempotency key: it can be sent again later."),
    ProblemType("same-profile", 422, "The subscriber already has this profile",
                "Refused by the rules; no migration was counted. Figures in the members."),
    ProblemType("monthly-limit-reached", 422, "The month's migrations are all used",
                "Refused by the rules: `migrations_this_month` reached the monthly cap, for "
                "every channel together. Migrations open again on the 1st of next month."),
    ProblemType("insufficient-consumption", 422, "Not enough credit consumed last month",
                "Refused by the rules: the profile needs `required` F CFA consumed last "
                "month, the subscriber consumed `consumed`. Another profile may be open."),
    ProblemType("unknown-profile", 422, "No such profile",
                "The profiles are Novamix, Tigre, Dauphin and Aigle (any case)."),
    ProblemType("idempotency-key-reused", 422, "Idempotency key already used for another "
                "request",
                "This client sent this `Idempotency-Key` for this subscriber, within 24 h, "
                "with another body. Use a new key for a new request."),
    ProblemType("rate-limited", 429, "Too many requests",
                "This client's rate limit is reached: wait `retry_after` seconds (the "
                "`Retry-After` header) before the next request."),
    ProblemType("unavailable", 503, "Temporarily unavailable",
                "The service cannot reach its store. Nothing was applied unless a migration's "
                "answer says so; retry after `Retry-After` seconds with the same "
                "`Idempotency-Key`."),
)}


def problem(kind: str | int, detail: str, headers: Mapping[str, str] | None = None,
            **members: object) -> Response:
    """The problem response of ``kind``: a name of :data:`PROBLEM_TYPES`, or an HTTP status
    (``about:blank``, titled by the status)."""
    if isinstance(kind, int):
        status, body = kind, {"type": "about:blank", "title": _phrase(kind)}
    else:
        known = PROBLEM_TYPES[kind]
        status, body = known.status, {"type": known.uri, "title": known.title}
    body.update(status=status, detail=detail, **members)
    response = Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status,
                        mimetype=PROBLEM_JSON)
    response.headers.extend(headers or {})
    return response


def fail(kind: str | int, detail: str, headers: Mapping[str, str] | None = None,
         **members: object) -> NoReturn:
    """Answer the current request with a problem, from anywhere in its handling."""
    abort(problem(kind, detail, headers, **members))


def refusal(decision: Decision, headers: Mapping[str, str] | None = None) -> Response:
    """The ``422`` of a migration the rules refused, with the reason code and its figures."""
    reason = decision.reason
    if reason is Reason.UNKNOWN_PROFILE:
        return problem("unknown-profile", "No such profile: the profiles are Novamix, Tigre, "
                       "Dauphin and Aigle.", headers, reason=reason.value)
    target = decision.target.title if decision.target else None
    if reason is Reason.SAME_PROFILE:
        detail = f"The subscriber already has the profile {target}; no migration was counted."
    elif reason is Reason.MONTHLY_LIMIT_REACHED:
        detail = (f"The {decision.migrations_used} migrations of this month are used; "
                  f"migrations open again on the 1st of next month.")
    else:
        detail = (f"{target} needs at least {decision.required} F CFA of credit consumed last "
                  f"month; the subscriber consumed {decision.consumed} F CFA.")
    return problem(reason.value.replace("_", "-"), detail, headers, reason=reason.value,
                   profile=target, current=decision.current.title if decision.current else None,
                   required=decision.required, consumed=decision.consumed,
                   migrations_this_month=decision.migrations_used,
                   migrations_left=decision.migrations_left)


def install(app: Flask, api: Blueprint | None) -> None:
    """Answer with problems under ``/api/``: the paths and methods no route takes (the API on
    or off), and, in ``api``'s views, the store's failures, a reused key and any bug. Any
    other path no route takes (a gateway's URL mistyped, a method the gateway's route does
    not take) is answered one plain line, never an HTML page: what reads it is a gateway's
    log or an engineer's ``curl``."""

    def no_route(error: HTTPException):
        headers = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        if not request.path.startswith(API_PREFIX):
            return Response(f"{error.code} {error.name}: {error.description}\n", error.code,
                            headers, content_type="text/plain; charset=utf-8")
        return problem(error.code or 404, error.description or "", headers)

    app.register_error_handler(404, no_route)
    app.register_error_handler(405, no_route)
    if api is None:
        return

    @api.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        if error.response is not None:  # fail(): the problem is made already
            return error.response
        return no_route(error)

    @api.errorhandler(IdempotencyKeyReusedError)
    def reused(error: IdempotencyKeyReusedError) -> Response:
        return problem("idempotency-key-reused",
                       f"This Idempotency-Key was first sent with the profile "
                       f"{error.asked_before!r}, not {error.asked_now!r}.",
                       reason="idempotency_key_reused")

    @api.errorhandler(StoreError)
    def unavailable(error: StoreError) -> Response:
        kind = "conflict" if isinstance(error, StoreConflictError) else "unreachable"
        log.warning("api store %s on %s %s: %s", kind, request.method,
                    request.url_rule.rule if request.url_rule else "-", type(error).__name__)
        return problem("unavailable", "The service cannot reach its store just now.",
                       {"Retry-After": "1"}, retry_after=1)

    @api.errorhandler(Exception)
    def bug(error: Exception) -> Response:
        log.error("api %s %s failed: %s at %s", request.method,
                  request.url_rule.rule if request.url_rule else "-", type(error).__name__,
                  where_raised(error))
        return problem(500, "An error on our side; it is logged.")


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
