"""The cap and "last month" follow the calendar month in the configured zone (USSD_TIMEZONE):
an attempt at 23:59:59 on the last day counts in that month, one at 00:00:00 on the first day
in the next. Time is injected (a clock the test sets), never slept.

Tokyo (UTC+9) and New York (UTC-5, UTC-4 in summer) make the zone visible: at their local
midnight UTC is still in the other month, so a service reading the month in UTC would fail.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import ALICE
from handsets import Handset, served_dialects, test_client_transport

from ussd.months import month_of, previous_month
from ussd.rules import Language, Profile
from ussd.settings import Settings
from ussd.store import Store
from ussd.web import create_app

# zone, the last month's year and month: the boundary is its last second and the next first.
BOUNDARIES = [
    ("Africa/Abidjan", 2026, 11),  # the operator's zone, UTC+0
    ("Asia/Tokyo", 2026, 11),  # UTC+9: local midnight of 1 December is 15:00 UTC on 30 November
    ("America/New_York", 2026, 12),  # UTC-5, and a year boundary: local midnight is 05:00 UTC
    ("America/New_York", 2026, 10),  # UTC-4 (daylight time ends at 02:00 on 1 November)
    ("Africa/Abidjan", 2028, 2),  # a leap year's 29 February
]
IDS = [f"{zone}-{year}-{month:02d}" for zone, year, month in BOUNDARIES]
CAP_REACHED = "Vous avez déjà effectué vos 3 migrations de ce mois. Réessayez le mois prochain."


def instants(zone: str, year: int, month: int) -> tuple[datetime, datetime, str, str]:
    """The boundary's two instants, in UTC as the real clock gives them, and the two months."""
    local = ZoneInfo(zone)
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    first = datetime(next_year, next_month, 1, 0, 0, 0, tzinfo=local)
    last = datetime.fromtimestamp(first.timestamp() - 1, tz=local)
    assert (last.hour, last.minute, last.second, last.month) == (23, 59, 59, month)
    return (last.astimezone(UTC), first.astimezone(UTC), f"{year:04d}-{month:02d}",
            f"{next_year:04d}-{next_month:02d}")


@pytest.mark.parametrize(("zone", "year", "month"), BOUNDARIES, ids=IDS)
def test_the_month_of_each_instant(zone, year, month):
    last, first, old, new = instants(zone, year, month)
    assert month_of(last, ZoneInfo(zone)) == old
    assert month_of(first, ZoneInfo(zone)) == new
    if zone != "Africa/Abidjan":  # in UTC both instants fall in the same month
        assert month_of(last, ZoneInfo("UTC")) == month_of(first, ZoneInfo("UTC"))


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=BOUNDARIES, ids=IDS)
def boundary(request, redis_client, key_prefix):
    """An app in the boundary's zone, its clock, and the instants; Alice on Novamix with 3.000
    F CFA consumed in the month that ends and nothing the month before."""
    zone, year, month = request.param
    last, first, old, new = instants(zone, year, month)
    store = Store(redis_client, prefix=key_prefix)
    store.admin.put_subscribers([(ALICE, Profile.NOVAMIX, Language.FR)])
    store.admin.put_consumption([(ALICE, previous_month(old), 0), (ALICE, old, 3000)])
    clock = Clock(last)
    app = create_app(Settings(key_prefix=key_prefix, timezone=zone),
                     redis_client=redis_client, clock=clock)
    return app, clock, last, first, old, new


def dialogue(app, *inputs: str) -> str:
    phone = Handset(test_client_transport(app.test_client()), served_dialects()[0], ALICE)
    phone.dial()
    for text in inputs:
        reply, ends = phone.send(text)
    if not ends:
        phone.send("00")  # left at home: nothing for the next dialogue to offer to resume
    return reply


def test_cap_and_last_month_switch_at_local_midnight(boundary):
    app, clock, last, first, old, new = boundary
    store = app.extensions["ussd"].store
    # 23:59:59: "last month" is the one before, with nothing consumed: Tigre is refused...
    assert dialogue(app, "1", "2") == (
        "Migration vers Tigre impossible: il faut au moins 2.500 F CFA de crédit consommé le "
        "mois passé. Vous avez consommé 0 F CFA.\n0 Retour | 00 Accueil")
    # ...and three migrations use up this month's cap.
    for target, left in (("3", 2), ("1", 1), ("3", 0)):  # Dauphin, Novamix, Dauphin
        assert dialogue(app, "1", target, "1").endswith(f"Migrations restantes ce mois: {left}.")
    assert dialogue(app, "1", "1") == CAP_REACHED
    # 00:00:00: a new month; its cap is fresh and "last month" (3.000 F CFA) opens Tigre.
    clock.now = first
    assert dialogue(app, "1", "2", "1") == (
        "Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la limite de "
        "leur validité. Migrations restantes ce mois: 2.")
    stored = store.admin.describe(ALICE, new)
    assert stored["migrations_by_month"] == {old: 3, new: 1}
    assert [entry["at"] for entry in stored["history"]] == [
        last.isoformat(timespec="seconds")] * 3 + [first.isoformat(timespec="seconds")]


def test_a_session_straddling_midnight_counts_where_it_is_confirmed(boundary):
    app, clock, _last, first, old, new = boundary
    store = app.extensions["ussd"].store
    for target in ("3", "1"):  # two migrations before midnight: one left this month
        dialogue(app, "1", target, "1")
    phone = Handset(test_client_transport(app.test_client()), served_dialects()[0], ALICE)
    phone.dial()
    phone.send("1")
    assert phone.send("3")[0].startswith(
        "Migration vers Dauphin: gratuite. Il vous restera 0 migration(s) ce mois.")
    clock.now = first  # confirmed one second later, in the new month: decided again there
    assert phone.send("1") == (
        "Votre profil est désormais Dauphin. Vous gardez vos avantages en cours dans la limite "
        "de leur validité. Migrations restantes ce mois: 2.", True)
    assert store.admin.describe(ALICE, new)["migrations_by_month"] == {old: 2, new: 1}
