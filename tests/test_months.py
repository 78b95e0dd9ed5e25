"""Calendar months in the operator's time zone (ussd/months.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ussd.months import first_day_of_next_month, month_of, parse_month, previous_month

ABIDJAN = ZoneInfo("Africa/Abidjan")  # UTC+0 all year
NEW_YORK = ZoneInfo("America/New_York")  # UTC-5 in winter
TOKYO = ZoneInfo("Asia/Tokyo")  # UTC+9


@pytest.mark.parametrize(("moment", "zone", "month"), [
    # Abidjan is on UTC: the month turns at midnight UTC.
    (datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC), ABIDJAN, "2026-11"),
    (datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC), ABIDJAN, "2026-12"),
    (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), ABIDJAN, "2026-12"),
    (datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC), ABIDJAN, "2027-01"),
    # New York: still November until 05:00 UTC on 1 December.
    (datetime(2026, 12, 1, 4, 59, 59, tzinfo=UTC), NEW_YORK, "2026-11"),
    (datetime(2026, 12, 1, 5, 0, 0, tzinfo=UTC), NEW_YORK, "2026-12"),
    # Tokyo: already December from 15:00 UTC on 30 November.
    (datetime(2026, 11, 30, 14, 59, 59, tzinfo=UTC), TOKYO, "2026-11"),
    (datetime(2026, 11, 30, 15, 0, 0, tzinfo=UTC), TOKYO, "2026-12"),
    # The moment's own offset does not matter, only the instant: 23:30 on 31 Jan in UTC-1.
    (datetime(2026, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1))), ABIDJAN, "2026-02"),
])
def test_month_of_in_the_operators_zone(moment, zone, month):
    assert month_of(moment, zone) == month


def test_month_of_refuses_a_naive_datetime():
    with pytest.raises(ValueError, match="timezone-aware"):
        month_of(datetime(2026, 11, 15, 10, 0), ABIDJAN)


@pytest.mark.parametrize(("month", "before"), [
    ("2026-01", "2025-12"),
    ("2026-02", "2026-01"),
    ("2026-12", "2026-11"),
    ("2000-01", "1999-12"),
])
def test_previous_month(month, before):
    assert previous_month(month) == before


@pytest.mark.parametrize(("month", "day"), [
    ("2026-11", date(2026, 12, 1)),
    ("2026-12", date(2027, 1, 1)),
])
def test_first_day_of_next_month(month, day):
    assert first_day_of_next_month(month) == day


def test_parse_month():
    assert parse_month("2026-01") == (2026, 1)
    assert parse_month("1999-12") == (1999, 12)
    assert parse_month("0001-01") == (1, 1)


@pytest.mark.parametrize("text", [
    "", "2026", "2026-1", "2026-13", "2026-00", "26-01", "2026/01", "01-2026", "2026-01-15",
    " 2026-01", "2026-01 ", "2026-01\n", "2026-Jan", "0000-12",
    "２０２６-01",  # full-width digits: would be stored under a field no hop ever reads
])
def test_parse_month_refuses_anything_but_yyyy_mm(text):
    with pytest.raises(ValueError, match="not a YYYY-MM month"):
        parse_month(text)
    with pytest.raises(ValueError):
        previous_month(text)
