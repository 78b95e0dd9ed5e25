"""The API's views, under ``/api/v1``: the client checked first, then the request, then the
service (``ussd.accounts``, the path ``ussd migrate`` takes too).

Every view is behind :func:`client_with`: the bearer token (``401``), the scope (``403``), then
the client's rate limit (``429``). The first two need no Redis call, so a refused request
costs the store nothing. Then spectree checks the request against its models (a ``400``
problem naming every bad part, ``openapi.check_request``), then the view asks the service.
One audit line per migration request, answered or refused (``Observer.api_migration``): the
client, the masked number, the status and the decision.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, g, request
from spectree import Response as Answers

from .. import metrics
from ..accounts import Accounts, Asker, Migrated, Outcome
from ..errors import IdempotencyKeyReusedError, OutcomeUnknownError
from ..observe import Observer
from ..rules import Reason
from ..store.keys import request_digest
from . import consumption, idempotency
from .clients import Client, Clients, Scope, unauthorized
from .models import (
    History,
    InvalidRequest,
    MigrationApplied,
    MigrationHeaders,
    MigrationPending,
    MigrationRequest,
    MissingScope,
    NotFound,
    Offer,
    OpenApiDocument,
    Problem,
    ProblemTypeInfo,
    Refusal,
    RetryLater,
    SubscriberPage,
)
from .openapi import check_request, document_text, spec
from .problems import PROBLEM_TYPES, fail, refusal
from .ratelimit import RateLimiter

MAX_BODY = 16 * 1024  # a migration request is a few dozen bytes
PENDING_RETRY = 2  # seconds before learning a pending migration's outcome: a stall's length
JSON_TYPES = ("application/json",)
MSISDN_DOC = ("The subscriber's number: +225 and 10 digits, 225 and 10 digits, or the 10 "
              "digits alone (07...).")


@dataclass(frozen=True)
class ApiState:
    """What the views of one app work with (``app.extensions["ussd.api"]``)."""

    accounts: Accounts
    clients: Clients
    limiter: RateLimiter
    observer: Observer


def _state() -> ApiState:
    return current_app.extensions["ussd.api"]


def client_with(scope: Scope) -> Callable:
    """The view behind the client checks: its token, ``scope``, its rate limit."""

    def decorate(view: Callable[..., object]) -> Callable[..., object]:
        @functools.wraps(view)
        def checked(**path: str) -> object:
            state = _state()
            authorization = request.headers.get("Authorization")
            client = state.clients.identify(authorization)
            if client is None:
                detail, challenge = unauthorized(authorization)
                fail("unauthorized", detail, {"WWW-Authenticate": challenge})
            g.api_client = client
            if not client.may(scope):
                fail("missing-scope", f"The client {client.name} lacks the scope {scope}.",
                     scope=scope.value)
            wait = state.limiter.wait(client.name, client.rate_limit) if client.rate_limit \
                else None
            if wait is not None:
                fail("rate-limited", f"The client {client.name} is over its rate limit; retry "
                     f"in {wait} s.", {"Retry-After": str(wait)}, retry_after=wait)
            return view(**path)

        return checked

    return decorate


_ANSWERS = {"HTTP_400": InvalidRequest, "HTTP_401": Problem, "HTTP_403": MissingScope,
            "HTTP_404": NotFound, "HTTP_429": RetryLater, "HTTP_503": RetryLater}
_CLIENT = {"security": {"bearer": []},
           "path_parameter_descriptions": {"msisdn": MSISDN_DOC}}


@spec.validate(resp=Answers(HTTP_200=SubscriberPage, **_ANSWERS), tags=["subscribers"],
               operation_id="getSubscriber", **_CLIENT)
def get_subscriber(msisdn: str) -> SubscriberPage:
    """A subscriber's "Mon profil" page.

    The profile, the migrations left this month and last month's consumption, and for every
    profile, in the fixed order, whether a migration to it would be approved now and why.
    Scope `subscribers:read`.
    """
    page = _state().accounts.page(g.msisdn)
    if page is None:
        _unknown(g.msisdn)
    standing = page.standing
    return SubscriberPage(
        msisdn=page.msisdn, profile=standing.profile.title, language=page.language,
        month=page.month, migrations_this_month=standing.migrations_this_month,
        migrations_left=page.migrations_left, monthly_cap=page.monthly_cap,
        consumption_last_month=standing.consumed_last_month,
        offers=[Offer(profile=offer.target.title, current=offer.target is standing.profile,
                      eligible=offer.approved, reason=offer.reason, required=offer.required,
                      consumed=offer.consumed) for offer in page.offers])


@spec.validate(json=MigrationRequest, headers=MigrationHeaders, tags=["migrations"],
               resp=Answers(HTTP_201=MigrationApplied, HTTP_202=MigrationPending,
                            HTTP_408=Problem, HTTP_413=Problem, HTTP_415=Problem,
                            HTTP_422=Refusal, **_ANSWERS),
               operation_id="createMigration", **_CLIENT,
               before=check_request((MigrationRequest, "body"), (MigrationHeaders, "header")))
def post_migration(msisdn: str, json: MigrationRequest,
                   headers: MigrationHeaders) -> tuple[MigrationApplied, int, dict]:
    """Ask for a migration.

    Decided by the same rules as USSD and applied atomically, under the monthly cap shared by
    every channel; the channel is the client's. Approved and applied: `201`; refused: `422`
    with the reason code and its figures. The `Idempotency-Key` (required) names the request
    for 24 h: the same key and body again get the same status and body (`Idempotent-Replayed:
    true`) and apply nothing again, even while the first is in flight; the same key with
    another body: `422`. Sent to the store without an answer in time: `202`, the outcome to be
    learnt by sending the same request again. Scope `migrations:write`.
    """
    key = idempotency.key_of(headers.idempotency_key)
    if key is None:  # the model's pattern lets none through: kept should the two part
        fail("invalid-request", "The request is malformed: header Idempotency-Key: an empty "
             "or broken quoted string.", errors=[{"location": "header",
                                                  "name": "Idempotency-Key",
                                                  "message": "an empty or broken quoted string"}])
    client: Client = g.api_client
    g.request_digest = request_digest(client.name, key)[:12]
    try:
        outcome = _state().accounts.migrate(g.msisdn, json.profile,
                                            Asker(client.channel, client.name),
                                            idempotency_key=key)
    except IdempotencyKeyReusedError:
        g.decision = "idempotency_key_reused"  # for the audit line; problems.py answers it
        raise
    except OutcomeUnknownError:  # perhaps applied: never a 5xx (ussd/settle.py)
        g.decision = "pending"
        return MigrationPending(
            msisdn=g.msisdn, reason="pending", retry_after=PENDING_RETRY,
            detail="The migration was sent and no answer came in time: it may be applied, "
                   "once at most. Send this request again with the same Idempotency-Key to "
                   "learn its outcome."), 202, {"Retry-After": str(PENDING_RETRY)}
    g.outcome = outcome
    replayed = idempotency.replay_headers(outcome.replayed)
    decision = outcome.decision
    if decision.reason is Reason.UNKNOWN_SUBSCRIBER:
        _unknown(g.msisdn)
    if outcome.migration is None:
        abort(refusal(decision, replayed))  # as every problem: spectree leaves it as it is
    return MigrationApplied(
        msisdn=g.msisdn, reason="approved", migration=_migration(outcome.migration),
        required=decision.required, consumed=decision.consumed,
        migrations_this_month=outcome.migrations_this_month,
        migrations_left=decision.migrations_left), 201, replayed


@spec.validate(resp=Answers(HTTP_200=History, **_ANSWERS), tags=["migrations"],
               operation_id="listMigrations", **_CLIENT)
def get_migrations(msisdn: str) -> History:
    """A subscriber's migrations, newest first, through every channel.

    Each with when (`at`), from, to, the channel, and who asked: the API client's name, the
    USSD gateway's, or `cli`. Scope `subscribers:read`.
    """
    history = _state().accounts.history(g.msisdn)
    if history is None:
        _unknown(g.msisdn)
    return History(msisdn=g.msisdn, migrations=[_migration(entry) for entry in history])


@spec.validate(resp=Answers(HTTP_200=OpenApiDocument), tags=["about"], operation_id="openapi")
def get_openapi() -> Response:
    """This OpenAPI 3.1 document."""
    return Response(document_text(), mimetype="application/json")


@spec.validate(resp=Answers(HTTP_200=ProblemTypeInfo, HTTP_404=Problem), tags=["about"],
               operation_id="getProblemType")
def get_problem_type(name: str) -> ProblemTypeInfo:
    """What a problem `type` of this API means (its `type` URI is this path)."""
    kind = PROBLEM_TYPES[name]  # the route takes no other name
    return ProblemTypeInfo(type=kind.uri, title=kind.title, status=kind.status,
                           description=kind.description)


# The billing issue's endpoint (ussd/api/consumption.py), documented with the others.
feed_consumption = spec.validate(
    json=consumption.ConsumptionRequest, tags=["consumption"], operation_id="feedConsumption",
    resp=Answers(HTTP_200=consumption.ConsumptionFed, HTTP_408=Problem, HTTP_413=Problem,
                 HTTP_415=Problem,
                 **_ANSWERS), **_CLIENT,
    before=consumption.check_entries)(consumption.post_consumption)


def _migration(migrated: Migrated) -> dict:
    return {"at": migrated.at, "from": migrated.source.title, "to": migrated.target.title,
            "channel": migrated.channel, "client": migrated.client}


def _unknown(msisdn: str) -> None:
    fail("unknown-subscriber", f"No subscriber holds the number {msisdn}.",
         reason="unknown_subscriber", msisdn=msisdn)


def _body_checks(view: Callable[..., object], max_body: int = MAX_BODY) -> Callable[..., object]:
    """A JSON body, not a large one, not a slow one: ``415`` and ``413`` before it is read (one
    sent in chunks: once a byte past ``max_body`` is), ``408`` once it has come, when that took
    over ``USSD_BODY_TIMEOUT`` (as a gateway's, ``gateways/reading.py``)."""

    @functools.wraps(view)
    def checked(**path: str) -> object:
        if request.mimetype not in JSON_TYPES and not request.mimetype.endswith("+json"):
            fail(415, "Send the body as application/json.")
        # werkzeug stops a chunked body at the limit without a word: read one byte past it.
        request.max_content_length = max_body + 1  # a larger Content-Length: 413 unread
        if len(request.get_data(cache=True)) > max_body:  # read now, once, to time it
            abort(413)
        limit = current_app.extensions["ussd"].settings.limits.body_timeout
        if time.perf_counter() - g.api_started > limit:
            fail(408, f"The body took over {limit:g} s to come.")
        return view(**path)

    return checked


def blueprint() -> Blueprint:
    """The API's routes, for one app (its state in ``app.extensions["ussd.api"]``)."""
    api = Blueprint("api", __name__, url_prefix="/api/v1")
    read, write = client_with(Scope.SUBSCRIBERS_READ), client_with(Scope.MIGRATIONS_WRITE)
    # No automatic OPTIONS answer: every answer is one the document describes (a 405 here).
    for rule, endpoint, view, methods in (
            ("/subscribers/<msisdn>", "get_subscriber", read(get_subscriber), ["GET"]),
            ("/subscribers/<msisdn>/migrations", "get_migrations", read(get_migrations),
             ["GET"]),
            ("/subscribers/<msisdn>/migrations", "post_migration",
             write(_body_checks(post_migration)), ["POST"]),
            ("/consumption", "post_consumption", client_with(Scope.CONSUMPTION_WRITE)(
                _body_checks(feed_consumption, consumption.MAX_BODY)), ["POST"]),
            ("/openapi.json", "get_openapi", get_openapi, ["GET"]),
            (f"/problems/<any({', '.join(map(repr, PROBLEM_TYPES))}):name>", "get_problem_type",
             get_problem_type, ["GET"])):
        api.add_url_rule(rule, endpoint, view, methods=methods, provide_automatic_options=False)
    api.before_request(_started)
    api.after_request(_finished)
    return api


def _started() -> None:
    g.api_started = time.perf_counter()


def _finished(response: Response) -> Response:
    """Count the request; write the audit line of a migration request."""
    endpoint = (request.endpoint or "-").removeprefix("api.")
    client: Client | None = g.get("api_client")
    metrics.record_api_request(endpoint, client.name if client else "-",
                               response.status_code, time.perf_counter() - g.api_started)
    if endpoint == "post_migration":
        outcome: Outcome | None = g.get("outcome")
        applied = None
        if outcome is not None and outcome.migration is not None and not outcome.replayed:
            migration = outcome.migration
            applied = (migration.channel, migration.source.value, migration.target.value)
        _state().observer.api_migration(
            client.name if client else None, g.get("msisdn"), response.status_code,
            outcome.decision.reason.value if outcome else g.get("decision"),
            outcome.replayed if outcome else None, g.get("request_digest"), applied)
    return response


