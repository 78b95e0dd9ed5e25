"""What a good row of a ``ussd seed`` file is, for each kind of file (``ussd/seed.py``): its
values, or a ValueError saying what is wrong with it."""

from __future__ import annotations

from .errors import InvalidMsisdnError
from .months import parse_month
from .phone import normalize_msisdn
from .rules import LANGUAGE_BY_CODE, MAX_AMOUNT, Language, Profile


def _msisdn(text: str) -> str:
    try:
        return normalize_msisdn(text)
    except InvalidMsisdnError as error:
        raise ValueError(str(error)) from None


def subscriber_row(cells: list[str], this_month: str | None) -> tuple[str, Profile, Language]:
    """A subscribers file's row (``msisdn, profile[, language]``, trimmed); ValueError saying
    what is wrong with it."""
    msisdn = _msisdn(cells[0])
    profile = Profile.parse(cells[1])
    if profile is None:
        names = ", ".join(p.title for p in Profile)
        raise ValueError(f"unknown profile {cells[1]!r} (one of {names})")
    language_text = cells[2].lower() if len(cells) > 2 and cells[2] else Language.FR.value
    language = LANGUAGE_BY_CODE.get(language_text)
    if language is None:
        raise ValueError(f"unknown language {cells[2]!r} (fr or en)")
    return msisdn, profile, language


def consumption_row(cells: list[str], this_month: str | None) -> tuple[str, str, int]:
    """A consumption file's row (``msisdn, month, amount``, trimmed), of a month begun by
    ``this_month`` (None: any month); ValueError saying what is wrong with it."""
    msisdn = _msisdn(cells[0])
    parse_month(cells[1])
    if this_month is not None and cells[1] > this_month:
        raise ValueError(f"month {cells[1]} has not begun (this month is {this_month})")
    if not cells[2].isdigit() or int(cells[2]) > MAX_AMOUNT:
        raise ValueError(f"amount must be a whole number of F CFA, got {cells[2]!r}")
    return msisdn, cells[1], int(cells[2])
