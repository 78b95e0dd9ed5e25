"""The composition root (ussd/assembly.py): the service built from settings alone, and the
embedded store filled with what the settings ask for (the demo set, seed files)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import Dialler

from ussd.assembly import build_service, worker_app
from ussd.months import month_of, previous_month
from ussd.settings import Settings
from ussd.store.keys import EVENTS
from ussd.web import create_app

# What "2. Mon profil" shows each demo subscriber (README: Demo subscribers).
DEMO_PROFILES = {
    "0700000001": "Votre profil: Novamix.\nMigrations restantes ce mois: 3 sur 3.\n"
                  "Crédit consommé le mois passé: 3.000 F CFA.",
    "0700000002": "Votre profil: Tigre.\nMigrations restantes ce mois: 3 sur 3.\n"
                  "Crédit consommé le mois passé: 9.500 F CFA.",
    "0700000003": "Votre profil: Novamix.\nMigrations restantes ce mois: 3 sur 3.\n"
                  "Crédit consommé le mois passé: 1.200 F CFA.",
    "0700000004": "Votre profil: Dauphin.\nMigrations restantes ce mois: 0 sur 3.\n"
                  "Crédit consommé le mois passé: 20.000 F CFA.",
    "0700000005": "Your profile: Aigle.\nMigrations left this month: 3 of 3.\n"
                  "Credit used last month: 12,000 F CFA.",
    "0700000006": "Votre profil: Novamix.\nMigrations restantes ce mois: 3 sur 3.\n"
                  "Crédit consommé le mois passé: 0 F CFA.",
}


def my_profile(app, number: str) -> str:
    return Dialler(app.test_client(), number).send("2")


@pytest.mark.parametrize("number", sorted(DEMO_PROFILES))
def test_the_demo_settings_fill_the_embedded_store(number):
    reply = my_profile(create_app(Settings(demo=True)), number)
    assert reply.startswith("CON " + DEMO_PROFILES[number] + "\n")


def test_the_demos_earlier_migrations_are_history_not_billing_events():
    app = create_app(Settings(demo=True))
    store = app.extensions["ussd"].store
    history = store.accounts.history("+2250700000004")
    assert [(entry["from"], entry["to"], entry["channel"], entry["client"])
            for entry in history] == [("aigle", "novamix", "web", "demo"),
                                      ("novamix", "tigre", "web", "demo"),
                                      ("tigre", "dauphin", "web", "demo")]
    assert list(store.outbox.waiting(EVENTS)) == []  # nothing for billing, nor an SMS, at start
    session = Dialler(app.test_client(), "0700000001")
    session.send("1")
    session.send("2")
    session.send("1")  # a migration made on the demo is billed as any other
    [waiting] = store.outbox.waiting(EVENTS)
    assert json.loads(waiting.entry.body)["msisdn"] == "+2250700000001"


@pytest.mark.parametrize(("variables", "history"), [
    ({"USSD_MONTHLY_CAP": "2"}, [("aigle", "novamix"), ("novamix", "tigre")]),  # to the cap
    ({"USSD_MONTHLY_CAP": "0"}, []),
    ({"USSD_THRESHOLD_TIGRE": "30000"}, [("aigle", "novamix"), ("novamix", "dauphin")]),
])
def test_the_demos_earlier_migrations_are_those_the_figures_approve(variables, history):
    app = create_app(Settings.from_env({"USSD_DEMO": "1", **variables}))
    entries = app.extensions["ussd"].store.accounts.history("+2250700000004")
    assert [(entry["from"], entry["to"]) for entry in entries] == history


def test_a_demo_left_running_past_the_months_end_keeps_its_figures():
    """Started on the month's last evening, dialled the next morning: the same credit
    consumed (0700000003 still short of Tigre, 0700000001 still enough for it), and the
    month's migrations start again, as the cap's do."""
    now = [datetime(2026, 11, 30, 23, 0, tzinfo=UTC)]
    app = create_app(Settings(demo=True), clock=lambda: now[0])
    now[0] = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    for number in ("0700000001", "0700000002", "0700000003", "0700000005"):
        assert my_profile(app, number).startswith("CON " + DEMO_PROFILES[number] + "\n")
    assert my_profile(app, "0700000004").startswith(
        "CON Votre profil: Dauphin.\nMigrations restantes ce mois: 3 sur 3.\n"
        "Crédit consommé le mois passé: 20.000 F CFA.\n")

def test_without_the_demo_setting_the_embedded_store_is_empty():
    assert my_profile(create_app(Settings()), "0700000001") == (
        "END Ce numéro n'est pas reconnu par le service #121#. Contactez le service client.")


def test_seed_files_named_in_the_settings_are_loaded(tmp_path):
    last_month = previous_month(month_of(datetime.now(UTC), ZoneInfo("Africa/Abidjan")))
    subscribers = tmp_path / "subscribers.csv"
    subscribers.write_text("msisdn,profile,language\n0709000001,Aigle,en\n")
    consumption = tmp_path / "consumption.csv"
    consumption.write_text(f"msisdn,month,amount\n0709000001,{last_month},8250\n")
    app = create_app(Settings(seed_files=(str(subscribers), str(consumption))))
    assert my_profile(app, "0709000001").startswith(
        "CON Your profile: Aigle.\nMigrations left this month: 3 of 3.\n"
        "Credit used last month: 8,250 F CFA.\n")


@pytest.mark.parametrize(("replace", "shown"), [(False, "Aigle"), (True, "Tigre")])
def test_seed_files_overlapping_keep_the_first_unless_replace(tmp_path, replace, shown):
    """As ``ussd seed`` on a Redis: a number the first file stored is left as it is by a
    later file, unless ``--replace`` (``serve --seed ... --replace``)."""
    first, later = tmp_path / "first.csv", tmp_path / "later.csv"
    first.write_text("msisdn,profile,language\n0709000001,Aigle,en\n")
    later.write_text("msisdn,profile,language\n0709000001,Tigre,en\n")
    app = create_app(Settings(seed_files=(str(first), str(later)), seed_replace=replace))
    assert my_profile(app, "0709000001").startswith(f"CON Your profile: {shown}.\n")


@pytest.mark.parametrize(("replace", "shown"), [
    (False, "Your profile: Aigle."), (True, "Votre profil: Novamix.")])
def test_a_seed_file_row_for_a_demo_number_is_kept_only_with_replace(tmp_path, caplog, replace,
                                                                     shown):
    """The demo first, then the files, as on a Redis: 0700000005 is the demo's (Aigle, en)
    unless ``--replace``."""
    path = tmp_path / "subs.csv"
    path.write_text("msisdn,profile,language\n0700000005,Novamix,fr\n")
    with caplog.at_level(logging.INFO, logger="ussd"):
        app = create_app(Settings(demo=True, seed_files=(str(path),), seed_replace=replace))
    assert my_profile(app, "0700000005").startswith(f"CON {shown}\n")
    told = "overwritten (--replace)" if replace else (
        "left as they are (--replace overwrites their profile and language)")
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("seed: ")] == [
        f"seed: {path}: 1 subscribers row(s) loaded: 0 added, 1 already stored and {told}"]


def test_a_client_handed_in_is_used_as_it_is_and_not_filled(redis_client, key_prefix):
    settings = Settings(key_prefix=key_prefix, demo=True)
    build_service(settings, redis_client=redis_client)
    assert redis_client.keys(f"{key_prefix}:*") == []
    assert my_profile(create_app(settings, redis_client=redis_client), "0700000001") == (
        "END Ce numéro n'est pas reconnu par le service #121#. Contactez le service client.")


def test_a_worker_builds_its_app_from_the_settings_it_is_handed(monkeypatch):
    monkeypatch.setenv("USSD_DEMO", "")  # the environment says nothing: the settings decide
    app = worker_app(Settings(demo=True), "ussd.wsgi:app")
    assert my_profile(app, "0700000002").startswith("CON Votre profil: Tigre.\n")
