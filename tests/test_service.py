"""The service (ussd/service.py) through whole #121# dialogues at the Africa's Talking endpoint:
exact screens, what is stored."""

from __future__ import annotations

import pytest
from conftest import ALICE, BRUNO, CELINE, JOHN, LAST_MONTH, NOBODY, THIS_MONTH, seed_subscribers

MAIN = ("CON Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
        "\n4. Language / Langue")
PROFILES_NOVAMIX = (
    "CON Choisissez votre nouveau profil:\n1. Novamix (actuel)\n2. Tigre\n3. Dauphin\n4. Aigle\n"
    "0 Retour | 00 Accueil"
)
PROFILES_TIGRE = PROFILES_NOVAMIX.replace("Novamix (actuel)", "Novamix").replace(
    "Tigre", "Tigre (actuel)"
)
CONFIRM_TIGRE_2_LEFT = (
    "CON Migration vers Tigre: gratuite. Il vous restera 2 migration(s) ce mois. "
    "Vos avantages en cours sont conservés.\n1. Confirmer\n2. Annuler\n0 Retour | 00 Accueil"
)
MIGRATED_TIGRE_2_LEFT = (
    "END Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la limite "
    "de leur validité. Migrations restantes ce mois: 2."
)
AIGLE_REFUSED_ALICE = (
    "CON Migration vers Aigle impossible: il faut au moins 8.000 F CFA de crédit consommé le "
    "mois passé. Vous avez consommé 3.000 F CFA.\n0 Retour | 00 Accueil"
)
LIMIT_REACHED = (
    "END Vous avez déjà effectué vos 3 migrations de ce mois. Réessayez le mois prochain."
)


def stored(service, msisdn):
    return service.store.admin.describe(msisdn, THIS_MONTH)


def test_main_menu_on_dial(dialler):
    assert dialler(ALICE).dial() == MAIN


def test_migration_to_tigre_end_to_end(dialler, service):
    session = dialler(ALICE)
    assert session.dial() == MAIN
    assert session.send("1") == PROFILES_NOVAMIX
    assert session.send("2") == CONFIRM_TIGRE_2_LEFT
    assert stored(service, ALICE)["profile"] == "novamix"  # nothing applied before confirming
    assert session.send("1") == MIGRATED_TIGRE_2_LEFT
    record = stored(service, ALICE)
    assert record["profile"] == "tigre"
    assert record["migrations_this_month"] == 1
    assert record["consumption"] == {LAST_MONTH: 3000}  # a migration never touches the rest
    [entry] = record["history"]
    assert entry == {
        "at": "2026-11-15T10:00:00+00:00", "from": "novamix", "to": "tigre",
        "channel": "ussd", "gateway": "africastalking", "session": session.session_id,
    }


def test_aigle_refused_with_figures_and_nothing_counted(dialler, service):
    session = dialler(ALICE)
    session.dial()
    session.send("1")
    assert session.send("4") == AIGLE_REFUSED_ALICE
    record = stored(service, ALICE)
    assert record["profile"] == "novamix"
    assert record["migrations_this_month"] == 0
    assert record["history"] == []


def test_tigre_refused_for_too_little_consumption(dialler):
    session = dialler(CELINE)
    session.dial()
    session.send("1")
    assert session.send("2") == (
        "CON Migration vers Tigre impossible: il faut au moins 2.500 F CFA de crédit consommé le "
        "mois passé. Vous avez consommé 1.200 F CFA.\n0 Retour | 00 Accueil"
    )
    # Another profile is open to her: back to the list, and Dauphin (free) to confirm.
    assert session.send("0") == PROFILES_NOVAMIX
    assert session.send("3").startswith("CON Migration vers Dauphin: gratuite.")


def test_same_profile_refused_without_using_a_migration(dialler, service):
    session = dialler(BRUNO)
    session.dial()
    assert session.send("1") == PROFILES_TIGRE
    assert session.send("2") == (
        "CON Vous avez déjà le profil Tigre. Aucune migration n'a été décomptée.\n"
        "0 Retour | 00 Accueil"
    )
    assert stored(service, BRUNO)["migrations_this_month"] == 0
    assert session.send("0") == PROFILES_TIGRE


def test_fourth_migration_of_the_month_hits_the_cap(dialler, service):
    for target, left in (("2", 2), ("3", 1), ("1", 0)):  # Tigre, Dauphin, Novamix
        session = dialler(ALICE)
        session.dial()
        session.send("1")
        session.send(target)
        assert session.send("1").endswith(f"Migrations restantes ce mois: {left}.")
    session = dialler(ALICE)
    session.dial()
    session.send("1")
    assert session.send("2") == LIMIT_REACHED
    record = stored(service, ALICE)
    assert record["profile"] == "novamix"
    assert record["migrations_this_month"] == 3
    assert [(e["from"], e["to"]) for e in record["history"]] == [
        ("novamix", "tigre"), ("tigre", "dauphin"), ("dauphin", "novamix")
    ]


def test_cap_is_per_calendar_month(dialler, service, clock):
    from datetime import UTC, datetime

    # "last month" seen from December
    service.store.admin.put_consumption([(ALICE, "2026-11", 3000)])
    for target in ("2", "3", "1"):
        session = dialler(ALICE)
        session.dial()
        session.send("1", target)
        session.send("1")
    clock.now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    session = dialler(ALICE)
    session.dial()
    session.send("1")
    assert session.send("2") == CONFIRM_TIGRE_2_LEFT


def test_confirm_then_retry_gives_same_reply_and_migrates_once(dialler, service):
    session = dialler(ALICE)
    session.dial()
    session.send("1", "2")
    assert session.send("1") == MIGRATED_TIGRE_2_LEFT
    assert session.post("1*2*1") == MIGRATED_TIGRE_2_LEFT  # the gateway retries the hop
    assert session.post("1*2*1") == MIGRATED_TIGRE_2_LEFT
    assert stored(service, ALICE)["migrations_this_month"] == 1
    assert len(stored(service, ALICE)["history"]) == 1


def test_every_hop_retried_gives_the_same_reply(dialler):
    session = dialler(ALICE)
    first = session.dial()
    assert session.post("") == first
    second = session.send("1")
    assert session.post("1") == second == PROFILES_NOVAMIX


def test_chained_input_in_the_first_hop(dialler, service):
    session = dialler(ALICE)
    assert session.post("1*2") == CONFIRM_TIGRE_2_LEFT
    assert session.post("1*2*1") == MIGRATED_TIGRE_2_LEFT
    assert stored(service, ALICE)["profile"] == "tigre"


@pytest.mark.parametrize("code", ["*121*1#", "#121*1#"])
def test_dialling_121_star_1_starts_at_the_profile_list(dialler, code):
    session = dialler(ALICE, service_code=code)
    assert session.dial() == PROFILES_NOVAMIX
    assert session.send("2") == CONFIRM_TIGRE_2_LEFT


@pytest.mark.parametrize("code", ["*121*1*4#", "#121*1*4#"])
def test_dialling_the_whole_path_decides_at_once(dialler, code):
    assert dialler(ALICE, service_code=code).dial() == AIGLE_REFUSED_ALICE


@pytest.mark.parametrize("code", ["#121#", "*121#"])
def test_both_service_codes(dialler, code):
    assert dialler(ALICE, service_code=code).dial() == MAIN


def test_back_and_home(dialler):
    session = dialler(ALICE)
    session.dial()
    session.send("1")
    assert session.send("2") == CONFIRM_TIGRE_2_LEFT
    assert session.send("0") == PROFILES_NOVAMIX
    assert session.send("0") == MAIN
    session.send("1")
    session.send("2")
    assert session.send("00") == MAIN
    assert session.send("1") == PROFILES_NOVAMIX


def test_cancel_says_the_request_was_cancelled_and_migrates_nothing(dialler, service):
    session = dialler(ALICE)
    session.dial()
    session.send("1", "2")
    assert session.send("2") == (
        "END Votre demande de changement de profil est annulée. Aucune migration n'a été "
        "décomptée."
    )
    record = stored(service, ALICE)
    assert (record["profile"], record["migrations_this_month"], record["history"]) == (
        "novamix", 0, [])


@pytest.mark.parametrize("text", ["0", "00"])
def test_0_and_00_on_the_main_menu_show_it_again_without_counting(dialler, text):
    session = dialler(ALICE)
    session.dial()
    assert session.send("7") == "CON Choix invalide.\n" + MAIN[4:]
    for _ in range(4):  # more than the invalid inputs allowed: never the polite end
        assert session.send(text) == MAIN
    assert session.send("1") == PROFILES_NOVAMIX


def test_invalid_input_reshows_with_notice_then_ends(dialler):
    session = dialler(ALICE)
    session.dial()
    assert session.send("7") == "CON Choix invalide.\n" + MAIN[4:]
    assert session.send("abc") == "CON Choix invalide.\n" + MAIN[4:]
    assert session.send("9") == "END Trop de choix invalides. Merci de recomposer #121#."


def test_a_valid_input_resets_the_invalid_count(dialler):
    session = dialler(ALICE)
    session.dial()
    session.send("7")
    assert session.send("1") == PROFILES_NOVAMIX
    assert session.send("5") == "CON Choix invalide.\n" + PROFILES_NOVAMIX[4:]
    assert session.send("2") == CONFIRM_TIGRE_2_LEFT


def test_my_profile(dialler):
    session = dialler(ALICE)
    session.dial()
    assert session.send("2") == (
        "CON Votre profil: Novamix.\nMigrations restantes ce mois: 3 sur 3.\n"
        "Crédit consommé le mois passé: 3.000 F CFA.\n0 Retour | 00 Accueil"
    )
    assert session.send("0") == MAIN


def test_conditions_paginate_when_too_long(dialler):
    first_page = (
        "Migration gratuite, 3 maximum par mois.\nNovamix: sans condition\n"
        "Tigre: au moins 2.500 F CFA consommés le mois passé\n99 Suite\n"
        "0 Retour | 00 Accueil"
    )
    second_page = (
        "CON Dauphin: sans condition\nAigle: au moins 8.000 F CFA consommés le mois passé\n"
        "0 Retour | 00 Accueil"
    )
    session = dialler(ALICE)
    session.dial()
    assert session.send("3") == "CON " + first_page
    assert session.send("99") == second_page
    assert session.send("99") == "CON Choix invalide.\n" + second_page[4:]  # no third page
    assert session.send("0") == "CON " + first_page  # 0 on page 2: back to page 1
    assert session.send("0") == MAIN


def test_pages_are_kept_with_the_invalid_notice(dialler):
    session = dialler(ALICE)
    session.dial()
    session.send("3")
    assert session.send("7").startswith("CON Choix invalide.\nMigration gratuite")
    assert session.send("99") == (
        "CON Dauphin: sans condition\nAigle: au moins 8.000 F CFA consommés le mois passé\n"
        "0 Retour | 00 Accueil"
    )


def test_english_subscriber(dialler, service):
    session = dialler(JOHN)
    assert session.dial() == (
        "CON Orange #121#\n1. Change profile\n2. My profile\n3. Migration conditions"
        "\n4. Language / Langue"
    )
    assert session.send("1") == (
        "CON Choose your new profile:\n1. Novamix\n2. Tigre\n3. Dauphin\n4. Aigle (current)\n"
        "0 Back | 00 Home"
    )
    assert session.send("1") == (
        "CON Migration to Novamix: free. You will have 2 migration(s) left this month. "
        "Your current benefits are kept.\n1. Confirm\n2. Cancel\n0 Back | 00 Home"
    )
    assert session.send("1") == (
        "END Your profile is now Novamix. You keep your current benefits within their "
        "validity. Migrations left this month: 2."
    )
    assert stored(service, JOHN)["profile"] == "novamix"


def test_unknown_subscriber_is_told_at_once(dialler):
    assert dialler(NOBODY).dial() == (
        "END Ce numéro n'est pas reconnu par le service #121#. Contactez le service client."
    )


@pytest.mark.parametrize("form_change", [
    {"phoneNumber": "12345"},
    {"phoneNumber": "+33612345678"},
    {"serviceCode": "*999#"},
    {"sessionId": ""},
])
def test_malformed_requests_get_a_clean_end(client, form_change):
    form = {"sessionId": "x1", "serviceCode": "*121#", "phoneNumber": ALICE, "text": ""}
    form.update(form_change)
    response = client.post("/ussd/africastalking", data=form)
    assert response.status_code == 200
    assert response.get_data(as_text=True) == (
        "END Demande non reconnue. Merci de composer #121#."
    )


def test_local_number_format_is_the_same_subscriber(dialler, service):
    session = dialler("0700000001")
    session.dial()
    session.send("1", "2")
    assert session.send("1") == MIGRATED_TIGRE_2_LEFT
    assert stored(service, ALICE)["profile"] == "tigre"


def test_session_record_has_a_ttl(dialler, service):
    session = dialler(ALICE)
    session.dial()
    key = service.store.keys.session(ALICE, "africastalking", session.session_id)
    assert 0 < service.store.redis.ttl(key) <= 180


def test_end_notification_closes_the_session_and_changes_no_subscriber(dialler, client, service):
    session = dialler(ALICE)
    session.dial()
    session.send("1")
    key = service.store.keys.session(ALICE, "africastalking", session.session_id)
    assert service.store.redis.exists(key)
    response = client.post("/ussd/africastalking/events", data={
        "sessionId": session.session_id, "phoneNumber": ALICE, "status": "Incomplete",
        "durationInMillis": "12000", "errorMessage": "",
    })
    assert response.status_code == 200
    assert not service.store.redis.exists(key)
    assert stored(service, ALICE)["profile"] == "novamix"


def test_reseeding_does_not_touch_migration_counts(dialler, service):
    session = dialler(ALICE)
    session.dial()
    session.send("1", "2")
    session.send("1")
    seed_subscribers(service.store)  # billing reloads the subscribers
    assert stored(service, ALICE)["migrations_this_month"] == 1
