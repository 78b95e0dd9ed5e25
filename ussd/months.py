"""Calendar months in the operator's time zone, the unit of the cap and of consumption."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

# ASCII digits only, and fullmatch: "$" and "\d" would let "2026-01\n" and "２０２６-01" in,
# to be stored under a consumption field that no hop ever reads.
# The year 0 does not exist (datetime's years start at 1).
MONTH_PATTERN = re.compile(r"(?!0000)([0-9]{4})-(0[1-9]|1[0-2])")


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    """The ``YYYY-MM`` month that ``moment`` (timezone-aware) falls in, in ``zone``."""
    if moment.tzinfo is None:
        raise ValueError("month_of needs a timezone-aware datetime")
    local = moment.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def parse_month(text: str) -> tuple[int, int]:
    """``(year, month)`` of a ``YYYY-MM`` string; ValueError when it is not one."""
    match = MONTH_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(f"not a YYYY-MM month: {text!r}")
    return int(match.group(1)), int(match.group(2))


def previous_month(month: str) -> str:
    """The month before a ``YYYY-MM`` month."""
    year, number = parse_month(month)
    year, number = (year - 1, 12) if number == 1 else (year, number - 1)
    return f"{year:04d}-{number:02d}"


def first_day_of_next_month(month: str) -> date:
    """The day a ``YYYY-MM`` month's cap is lifted."""
    year, number = parse_month(month)
    return date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
