"""``POST /api/v1/consumption``: billing feeds consumption in (scope ``consumption:write``).

The request and its answer as models (``openapi.py`` documents them with the rest); the entries
are checked and applied by :mod:`ussd.consumption`: every bad field named in one ``400``
problem and nothing applied, or everything applied. A field pydantic refuses (a string for an
amount, a field missing) is named with those the checks refuse (no such subscriber, a month to
come), in one problem: when spectree has found fields malformed, :func:`check_entries` runs
the checks on every other field, of the same entries too, so that billing mends its feed in
one go.
"""

from __future__ import annotations

import logging
from json import loads as json_loads
from typing import Annotated, Any, NoReturn

from flask import current_app, g, request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ..consumption import ENTRY_KINDS, MAX_ENTRIES, by_entry, check, entry_of, feed
from ..errors import InvalidConsumptionError
from .models import Count
from .openapi import check_request, model_errors, repeated_members
from .problems import fail

audit = logging.getLogger("ussd.api.audit")

# An amount billing sends: a JSON integer only. In pydantic's lax mode ``true``, ``"3000"`` and
# ``3000.0`` were read as 1, 3000 and 3000: a buggy feed changed eligibility silently.
FedAmount = Annotated[StrictInt, Field(ge=0, description="F CFA, a JSON integer")]

# 1,000 entries of about 120 bytes each, with room to spare.
MAX_BODY = 256 * 1024


class MonthEntry(BaseModel):
    """A subscriber's total for a month (it replaces what was there)."""

    model_config = ConfigDict(extra="forbid")

    msisdn: str = Field(examples=["+2250700000001"], description="any form the API takes")
    month: str = Field(examples=["2026-10"], description="YYYY-MM, not after this month")
    amount: FedAmount


class IncrementEntry(BaseModel):
    """A recharge or consumption record, added once (by its ``id``) to the month of ``at``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, examples=["rc-2026-11-15-000184"])
    msisdn: str = Field(examples=["+2250700000001"])
    amount: FedAmount
    at: str = Field(examples=["2026-11-15T10:00:00+00:00"],
                    description="ISO 8601 with its offset; its month in the operator's zone")


class ConsumptionRequest(BaseModel):
    """Totals and increments, up to 1,000 entries in all, applied all or nothing."""

    model_config = ConfigDict(extra="forbid")

    months: list[MonthEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)
    increments: list[IncrementEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)


class ConsumptionFed(BaseModel):
    """What was applied."""

    months: Count = Field(description="months' totals set")
    increments_counted: Count = Field(description="increments added")
    increments_replayed: Count = Field(description="increments whose id was counted before: "
                                                   "not added again")


def post_consumption(json: ConsumptionRequest) -> ConsumptionFed:
    """Feed consumption in.

    `months` set a subscriber's total for a month (`YYYY-MM`, not after this month);
    `increments` add an amount to the month of `at` (in the operator's time zone) once per
    `id`: a record sent again is not counted again. Up to 1,000 entries, checked before
    anything is written: every bad field of every entry (malformed: missing, unknown or given
    twice, an amount that is not a JSON integer; or refused: not a subscriber, a month or a
    moment to come, a moment before year 1 in the operator's zone, an amount out of range, an
    id or a month given twice) is named in one `400` problem, in the order of the entries, and
    nothing is applied. Scope `consumption:write`.
    """
    service = current_app.extensions["ussd"]
    try:
        fed = feed(service.store, json.model_dump(), service.clock(), service.zone)
    except InvalidConsumptionError as error:
        _refuse(error)
    audit.info("consumption client=%s months=%d counted=%d replayed=%d", g.api_client.name,
               fed.months, fed.counted, fed.replayed)
    return ConsumptionFed(months=fed.months, increments_counted=fed.counted,
                          increments_replayed=fed.replayed)


_check_body = check_request((ConsumptionRequest, "body"))


def check_entries(req: Any, resp: Any, error: Exception | None, instance: Any,
                  model_adapter: Any) -> None:
    """The hook spectree calls once it has checked the body, before the view.

    A body spectree found malformed that is still an object of lists of up to 1,000 entries
    gets one ``400`` naming, by entry, its malformed fields (pydantic's words) and the other
    fields the checks refuse (each field named once: one pydantic refused is not checked
    again): not the first only, and the others on a second try. Any other body is malformed
    as a whole (``openapi.check_request``): one that is not a JSON object too, which spectree
    reads as ``{}`` and finds well formed. A member given twice in an entry is named so,
    with the rest (its value is not checked); anywhere else, the body is malformed as a
    whole."""
    body = request.get_json(silent=True)
    if error is None and isinstance(body, dict):
        return  # well formed: the view checks the entries
    repeated = [] if body is not None else repeated_members(request.get_data())
    if repeated and all(entry_of(member["name"]) for member in repeated):
        body = json_loads(request.get_data())  # read now, each repeated member named below
    if not _entries_readable(body):
        _check_body(req, resp, error or ValueError("not a JSON object"), instance, model_adapter)
        return
    named = {member["name"] for member in repeated}
    errors = repeated + [found for found in model_errors(ConsumptionRequest, body, "body")
                         if found["name"] not in named]  # pydantic's word on a last value
    service = current_app.extensions["ussd"]
    try:
        check(body, service.clock(), service.zone, service.store.admin.known_subscribers,
              {found["name"] for found in errors})
    except InvalidConsumptionError as refused:
        errors += refused.errors
    _refuse(InvalidConsumptionError(by_entry(errors)))


def _entries_readable(body: object) -> bool:
    """An object whose lists of entries are lists, of up to 1,000 entries in all."""
    if not isinstance(body, dict):
        return False
    lists = [body.get(kind) or [] for kind in ENTRY_KINDS]
    return (all(isinstance(entries, list) for entries in lists)
            and sum(map(len, lists)) <= MAX_ENTRIES)


def _refuse(error: InvalidConsumptionError) -> NoReturn:
    fail("invalid-request", f"The request has bad entries: {error}.", errors=error.errors)
