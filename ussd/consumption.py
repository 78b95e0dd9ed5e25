"""Consumption fed in by billing (``POST /api/v1/consumption``): months' totals and recharges.

Two kinds of entry, up to 1,000 a request:

* ``months``: ``{"msisdn", "month": "YYYY-MM", "amount"}`` sets that month's total (F CFA);
* ``increments``: ``{"id", "msisdn", "amount", "at"}`` adds ``amount`` to the month ``at`` falls
  in, in the operator's time zone, once per ``id`` for that subscriber and month: a recharge
  record sent again is not counted again, whatever its amount (its id is remembered
  ``INCREMENT_IDS_DAYS`` days, with the subscriber's month: the same id for another subscriber
  or month counts there).

Every entry is checked before anything is written: a number that is not a subscriber's, a month
or a moment not come yet, an amount out of range, an id or a subscriber's month given twice;
each bad field of each entry is named (``months.3.msisdn``), in the order of the entries, and
nothing is applied. Then the totals are set and the increments added, one atomic script per
bucket of subscribers (``keys.py``): a request whose write is cut short by an outage can be sent
again whole, since totals are set, not added, and increments are counted once by id.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .errors import InvalidConsumptionError, InvalidMsisdnError
from .months import MONTH_PATTERN, month_of
from .phone import normalize_msisdn
from .rules import MAX_AMOUNT

MAX_ENTRIES = 1000
ENTRY_KINDS = ("months", "increments")  # a request's lists of entries, in the order checked
# An entry's fields, in the order its errors are named.
ENTRY_FIELDS = {"months": ("msisdn", "month", "amount"),
                "increments": ("id", "msisdn", "amount", "at")}
MAX_ID = 128
INCREMENT_IDS_DAYS = 70  # past the month after the increment's: no rule reads it by then
CLOCK_SKEW = timedelta(minutes=5)  # billing's clock may run a little ahead of ours


@dataclass(frozen=True)
class MonthTotal:
    """A subscriber's consumption in ``month``, as billing computed it."""

    msisdn: str
    month: str
    amount: int


@dataclass(frozen=True)
class Increment:
    """A recharge or a consumption record, added once to its ``month``."""

    id: str
    msisdn: str
    amount: int
    month: str


@dataclass(frozen=True)
class Fed:
    """What a request did: totals set, increments counted, and increments seen before."""

    months: int
    counted: int
    replayed: int


def check(body: dict, now: datetime, zone: ZoneInfo, known: Callable[[list[str]], set[str]],
          malformed: Collection[str] = ()) -> tuple[list[MonthTotal], list[Increment]]:
    """The entries of a request body, checked; InvalidConsumptionError naming every bad field of
    every entry, in the order of the entries (``known(numbers)`` says which numbers are
    subscribers). What ``malformed`` names, for its form already, is not checked again: an
    entry (``months.3``) is passed over, a field (``months.3.amount``) alone, the entry's other
    fields checked still."""
    errors: list[dict] = []

    def bad(name: str, message: str) -> None:
        errors.append({"location": "body", "name": name, "message": message})

    def unnamed(where: str, field: str) -> bool:
        return f"{where}.{field}" not in malformed

    raw_months, raw_increments = body.get("months") or [], body.get("increments") or []
    if not raw_months and not raw_increments:
        bad("", "give months or increments (at least one entry)")
    if len(raw_months) + len(raw_increments) > MAX_ENTRIES:
        bad("", f"at most {MAX_ENTRIES} entries a request, got "
                f"{len(raw_months) + len(raw_increments)}")
        raise InvalidConsumptionError(errors)
    this_month = month_of(now, zone)
    totals, increments = [], []
    numbers: dict[str, list[str]] = {}  # each number, and every entry that names it
    seen_months: dict[tuple[str, str], int] = {}
    seen_ids: dict[str, int] = {}
    for index, entry in enumerate(raw_months):
        where = f"months.{index}"
        if where in malformed:
            continue
        msisdn = month = None
        if unnamed(where, "msisdn"):
            msisdn = _number(entry.get("msisdn"), f"{where}.msisdn", bad)
        if unnamed(where, "month"):
            month = entry.get("month")
            if not isinstance(month, str) or not MONTH_PATTERN.fullmatch(month):
                bad(f"{where}.month", f"not a YYYY-MM month: {month!r}")
                month = None
            elif month > this_month:
                bad(f"{where}.month", f"{month} has not begun (this month is {this_month})")
        if unnamed(where, "amount"):
            _amount(entry.get("amount"), f"{where}.amount", bad)
        if msisdn:  # looked up whatever the entry's other fields
            numbers.setdefault(msisdn, []).append(f"{where}.msisdn")
        if msisdn and month:
            if (msisdn, month) in seen_months:
                bad(where, f"repeats months.{seen_months[msisdn, month]} ({msisdn}, {month})")
            seen_months[msisdn, month] = index
            totals.append(MonthTotal(msisdn, month, entry.get("amount")))
    for index, entry in enumerate(raw_increments):
        where = f"increments.{index}"
        if where in malformed:
            continue
        msisdn = identity = month = None
        if unnamed(where, "msisdn"):
            msisdn = _number(entry.get("msisdn"), f"{where}.msisdn", bad)
        if unnamed(where, "id"):
            identity = entry.get("id")
            if not isinstance(identity, str) or not 0 < len(identity) <= MAX_ID:
                bad(f"{where}.id", f"an id of 1 to {MAX_ID} characters, got {identity!r}")
                identity = None
            elif identity in seen_ids:
                bad(f"{where}.id", f"repeats increments.{seen_ids[identity]}'s id")
            else:
                seen_ids[identity] = index
        if unnamed(where, "at"):
            month = _month_of(entry.get("at"), now, zone, f"{where}.at", bad)
        if unnamed(where, "amount"):
            _amount(entry.get("amount"), f"{where}.amount", bad)
        if msisdn:
            numbers.setdefault(msisdn, []).append(f"{where}.msisdn")
        if msisdn and identity and month:
            increments.append(Increment(identity, msisdn, entry.get("amount"), month))
    if numbers:  # looked up even when other entries are bad: every bad entry named at once
        subscribers = known(list(numbers))
        for msisdn, names in numbers.items():
            if msisdn not in subscribers:
                for where in names:
                    bad(where, f"no subscriber {msisdn}")
    if errors:
        raise InvalidConsumptionError(by_entry(errors))
    return totals, increments


def by_entry(errors: list[dict]) -> list[dict]:
    """``errors`` in the order of the entries they name: the request's own first, then
    ``months`` and ``increments`` by index; an entry's own (``months.3``) before its fields',
    its fields' in the order of :data:`ENTRY_FIELDS`, then any other member's; errors of one
    field in the order they were found."""

    def order(error: dict) -> tuple[int, int, int]:
        name = error["name"]
        entry = entry_of(name)
        if entry is None:
            return (0, 0, 0)
        kind, index = entry
        fields = ENTRY_FIELDS[kind]
        field = name.split(".", 2)[2] if name.count(".") >= 2 else None
        rank = -1 if field is None else fields.index(field) if field in fields else len(fields)
        return (1 + ENTRY_KINDS.index(kind), index, rank)

    return sorted(errors, key=order)


def entry_of(name: str) -> tuple[str, int] | None:
    """The entry an error's ``name`` is about (``("months", 3)`` for ``months.3.amount``), or
    None when it is about the request as a whole."""
    kind, _, rest = name.partition(".")
    index = rest.partition(".")[0]
    return (kind, int(index)) if kind in ENTRY_KINDS and index.isdigit() else None


def _number(value: object, where: str, bad: Callable[[str, str], None]) -> str | None:
    try:
        return normalize_msisdn(value) if isinstance(value, str) else _refuse(value)
    except InvalidMsisdnError as error:
        bad(where, str(error))
        return None


def _refuse(value: object) -> str:
    raise InvalidMsisdnError(f"not a phone number: {value!r}")


def _amount(value: object, where: str, bad: Callable[[str, str], None]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
        bad(where, f"a whole number of F CFA from 0 to {MAX_AMOUNT}, got {value!r}")


def _month_of(at: object, now: datetime, zone: ZoneInfo, where: str,
              bad: Callable[[str, str], None]) -> str | None:
    """The month (operator's zone) of an ISO 8601 moment with its offset, not to come, and
    not before year 1 there (``0001-01-01T00:00:00+00:00`` is, at Abidjan's old -0:16)."""
    try:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        bad(where, f"an ISO 8601 moment with its offset (2026-11-15T10:00:00+00:00), got {at!r}")
        return None
    if moment > now + CLOCK_SKEW:
        bad(where, f"{at} has not come yet")
        return None
    try:
        return month_of(moment, zone)
    except OverflowError:
        bad(where, f"{at} is out of range: before year 1 in the operator's time zone")
        return None


def feed(store, body: dict, now: datetime, zone: ZoneInfo) -> Fed:
    """Check a request body's entries (InvalidConsumptionError: nothing applied), then apply
    them on ``store``: two round trips, one to look the numbers up and one to write."""
    totals, increments = check(body, now, zone, store.admin.known_subscribers)
    counted = store.consumption.feed(totals, increments, INCREMENT_IDS_DAYS * 24 * 3600)
    return Fed(months=len(totals), counted=counted, replayed=len(increments) - counted)
