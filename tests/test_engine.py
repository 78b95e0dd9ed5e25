"""The pure menu engine, without Redis: records in, records out (ussd/engine.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ussd.engine import Migration, begin, ended, reply_of, step
from ussd.render import choice_count, screen_pages
from ussd.rules import Decision, Language, Policy, Profile, Reason, Standing, decide
from ussd.session import Session

N, T, D, A = Profile.NOVAMIX, Profile.TIGRE, Profile.DAUPHIN, Profile.AIGLE
POLICY = Policy()
ALICE = Standing(N, migrations_this_month=0, consumed_last_month=3000)

MAIN = ("Orange #121#\n1. Changer de profil\n2. Mon profil\n3. Conditions de migration"
        "\n4. Language / Langue")
PROFILES = (
    "Choisissez votre nouveau profil:\n1. Novamix (actuel)\n2. Tigre\n3. Dauphin\n4. Aigle\n"
    "0 Retour | 00 Accueil"
)
CONFIRM_TIGRE = (
    "Migration vers Tigre: gratuite. Il vous restera 2 migration(s) ce mois. "
    "Vos avantages en cours sont conservés.\n1. Confirmer\n2. Annuler\n0 Retour | 00 Accueil"
)
INVALID = "Choix invalide.\n"


def walk(menu, inputs, standing=ALICE, language=None, policy=POLICY):
    """The record after typing ``inputs`` from the start, and every migration asked for."""
    session = begin(menu, standing, language, policy)
    migrations = []
    for text in inputs:
        result = step(menu, session, text, standing, policy)
        session = result.session
        if result.migration is not None:
            migrations.append(result.migration)
    return session, migrations


def shown(menu, session, policy=POLICY):
    reply = reply_of(menu, session, policy)
    return ("END " if reply.end else "CON ") + reply.text


def test_begin_for_a_known_subscriber_shows_the_main_menu(menu):
    session = begin(menu, ALICE, None, POLICY)
    assert session == Session(screen="main", language=Language.FR)
    assert shown(menu, session) == "CON " + MAIN


def test_begin_in_the_subscribers_language(menu):
    session = begin(menu, ALICE, Language.EN, POLICY)
    assert session.language is Language.EN
    assert shown(menu, session) == (
        "CON Orange #121#\n1. Change profile\n2. My profile\n3. Migration conditions"
        "\n4. Language / Langue"
    )


@pytest.mark.parametrize(("language", "text"), [
    (None, "Ce numéro n'est pas reconnu par le service #121#. Contactez le service client."),
    (Language.EN, "This number is not known to the #121# service. Please contact customer care."),
])
def test_begin_for_an_unknown_subscriber_ends_at_once(menu, language, text):
    session = begin(menu, None, language, POLICY)
    assert shown(menu, session) == "END " + text
    assert ended(menu, session, POLICY)
    # Whatever is typed next, nothing moves.
    assert step(menu, session, "1", None, POLICY).session == session


def test_option_1_lists_the_profiles_with_the_current_one_marked(menu):
    session, migrations = walk(menu, ["1"])
    assert shown(menu, session) == "CON " + PROFILES
    assert session.back == ("main",)
    assert migrations == []


def test_choosing_a_profile_decides_at_once_but_never_migrates(menu):
    session, migrations = walk(menu, ["1", "2"])
    assert shown(menu, session) == "CON " + CONFIRM_TIGRE
    assert migrations == []


def test_a_refusal_another_profile_avoids_stays_open_with_0_back_to_the_list(menu):
    session, migrations = walk(menu, ["1", "4"])
    assert shown(menu, session) == (
        "CON Migration vers Aigle impossible: il faut au moins 8.000 F CFA de crédit consommé "
        "le mois passé. Vous avez consommé 3.000 F CFA.\n0 Retour | 00 Accueil"
    )
    assert migrations == []
    back = step(menu, session, "0", ALICE, POLICY).session
    assert shown(menu, back) == "CON " + PROFILES
    assert shown(menu, step(menu, back, "2", ALICE, POLICY).session) == "CON " + CONFIRM_TIGRE


def test_a_refusal_in_english_writes_thousands_with_a_comma(menu):
    poor = Standing(N, migrations_this_month=0, consumed_last_month=7999)
    session, _ = walk(menu, ["1", "4"], poor, Language.EN)
    assert shown(menu, session) == (
        "CON Migration to Aigle refused: it needs at least 8,000 F CFA of credit used last "
        "month. You used 7,999 F CFA.\n0 Back | 00 Home"
    )
    session, _ = walk(menu, ["1", "4"], poor, Language.FR)
    assert "au moins 8.000 F CFA" in shown(menu, session)
    assert "Vous avez consommé 7.999 F CFA." in shown(menu, session)


def test_the_limit_screen_when_the_months_migrations_are_used(menu):
    standing = Standing(N, migrations_this_month=3, consumed_last_month=99_000)
    session, migrations = walk(menu, ["1", "3"], standing)
    assert shown(menu, session) == (
        "END Vous avez déjà effectué vos 3 migrations de ce mois. Réessayez le mois prochain."
    )
    assert migrations == []


def test_confirming_an_approved_decision_asks_for_the_migration(menu):
    session, [migration] = walk(menu, ["1", "2", "1"])
    assert shown(menu, session) == (
        "END Votre profil est désormais Tigre. Vous gardez vos avantages en cours dans la "
        "limite de leur validité. Migrations restantes ce mois: 2."
    )
    assert migration.target is T
    assert migration.expected == ALICE  # what the store must still find, atomically
    # The decision it rests on, decided again on what the store must find.
    assert decide(migration.expected, migration.target, POLICY) == Decision(
        Reason.APPROVED, T, current=N, required=2500, consumed=3000,
        migrations_used=0, migrations_left=2,
    )


def test_confirm_decides_again_on_the_standing_of_the_moment(menu):
    confirm, _ = walk(menu, ["1", "2"])
    # Meanwhile another channel used up the month's migrations.
    spent = Standing(D, migrations_this_month=3, consumed_last_month=3000)
    result = step(menu, confirm, "1", spent, POLICY)
    assert result.migration is None
    assert shown(menu, result.session).startswith("END Vous avez déjà effectué vos 3 migrations")
    # ... or moved the subscriber to the very profile being confirmed.
    already = Standing(T, migrations_this_month=1, consumed_last_month=3000)
    result = step(menu, confirm, "1", already, POLICY)
    assert result.migration is None
    assert shown(menu, result.session) == (
        "CON Vous avez déjà le profil Tigre. Aucune migration n'a été décomptée.\n"
        "0 Retour | 00 Accueil"
    )


@pytest.mark.parametrize("moved", [
    Standing(T, migrations_this_month=1, consumed_last_month=3000),  # to Tigre, elsewhere
    Standing(N, migrations_this_month=0, consumed_last_month=1200),  # credit corrected down
], ids=["profile held now", "credit too low now"])
def test_0_on_a_refusal_of_the_confirmation_goes_back_to_the_list(menu, moved):
    """The confirmation asked, but it cannot be drawn again without the decision it showed:
    ``0`` goes back past it, to the list that led to it (drawn from the standing of now)."""
    confirm, _ = walk(menu, ["1", "2"])
    refused = step(menu, confirm, "1", moved, POLICY).session
    assert shown(menu, refused).endswith("\n0 Retour | 00 Accueil")
    back = step(menu, refused, "0", moved, POLICY).session
    current = "Tigre" if moved.profile is T else "Novamix"
    assert shown(menu, back) == "CON " + PROFILES.replace(" (actuel)", "").replace(
        f"{current}\n", f"{current} (actuel)\n", 1)
    assert back.back == ("main",)  # and 0 again: home
    assert shown(menu, step(menu, back, "0", moved, POLICY).session) == "CON " + MAIN


def test_cancel_says_the_request_was_cancelled_and_migrates_nothing(menu):
    session, migrations = walk(menu, ["1", "2", "2"])
    assert shown(menu, session) == (
        "END Votre demande de changement de profil est annulée. Aucune migration n'a été "
        "décomptée."
    )
    assert migrations == []


def test_nothing_moves_after_the_end(menu):
    session, _ = walk(menu, ["1", "2", "1"])
    for text in ("1", "0", "00", "99"):
        result = step(menu, session, text, ALICE, POLICY)
        assert result.session == session
        assert result.migration is None  # a repeated confirm never migrates twice


def test_0_goes_back_one_screen_and_00_home(menu):
    confirm, _ = walk(menu, ["1", "2"])
    assert confirm.back == ("main", "profiles")
    back = step(menu, confirm, "0", ALICE, POLICY).session
    assert shown(menu, back) == "CON " + PROFILES
    assert back.back == ("main",)
    home = step(menu, confirm, "00", ALICE, POLICY).session
    assert shown(menu, home) == "CON " + MAIN
    assert home.back == ()
    assert shown(menu, step(menu, back, "0", ALICE, POLICY).session) == "CON " + MAIN


def test_99_is_invalid_on_a_screen_of_one_page(menu):
    main = begin(menu, ALICE, None, POLICY)
    session = step(menu, main, "99", ALICE, POLICY).session
    assert shown(menu, session) == "CON " + INVALID + MAIN


@pytest.mark.parametrize("text", ["0", "00"])
def test_0_and_00_on_the_main_menu_show_it_again_without_counting_as_invalid(menu, text):
    main = begin(menu, ALICE, None, POLICY)
    after_a_mistake = step(menu, main, "7", ALICE, POLICY).session
    assert after_a_mistake.invalid == 1
    session = after_a_mistake
    for _ in range(menu.max_invalid + 2):  # as often as typed: never the polite end
        session = step(menu, session, text, ALICE, POLICY).session
        assert session == main
        assert shown(menu, session) == "CON " + MAIN


def test_99_pages_a_long_screen_and_0_goes_back_a_page_then_leaves_it(menu):
    conditions, _ = walk(menu, ["3"])
    first = shown(menu, conditions)
    assert first.endswith("\n99 Suite\n0 Retour | 00 Accueil")
    second = step(menu, conditions, "99", ALICE, POLICY).session
    assert second.page == 1
    assert shown(menu, second) == (
        "CON Dauphin: sans condition\nAigle: au moins 8.000 F CFA consommés le mois passé\n"
        "0 Retour | 00 Accueil"
    )
    past_the_end = step(menu, second, "99", ALICE, POLICY).session
    assert (past_the_end.page, past_the_end.invalid) == (1, 1)
    back_to_page_1 = step(menu, second, "0", ALICE, POLICY).session
    assert back_to_page_1 == conditions
    assert shown(menu, back_to_page_1) == first
    assert shown(menu, step(menu, back_to_page_1, "0", ALICE, POLICY).session) == "CON " + MAIN


@pytest.mark.parametrize(
    "text", ["7", "5", "abc", "", "01", "1.0", "+1", "-1", "²", "١", "1" * 500]
)
def test_invalid_input_reshows_the_screen_with_a_notice(menu, text):
    profiles, _ = walk(menu, ["1"])
    result = step(menu, profiles, text, ALICE, POLICY)
    assert result.migration is None
    assert result.session.screen == "profiles"
    assert result.session.invalid == 1
    assert shown(menu, result.session) == "CON " + INVALID + PROFILES


def test_input_is_read_without_surrounding_spaces(menu):
    session, _ = walk(menu, [" 1 "])
    assert session.screen == "profiles"


def test_too_many_invalid_inputs_end_politely(menu):
    session, _ = walk(menu, ["1", "9", "9"])
    assert session.invalid == 2
    assert shown(menu, session) == "CON " + INVALID + PROFILES
    session = step(menu, session, "9", ALICE, POLICY).session
    assert shown(menu, session) == "END Trop de choix invalides. Merci de recomposer #121#."
    assert ended(menu, session, POLICY)


def test_a_valid_input_resets_the_invalid_count(menu):
    session, _ = walk(menu, ["9", "9", "1", "9", "9"])
    assert session.screen == "profiles"
    assert session.invalid == 2
    assert not ended(menu, session, POLICY)


def test_the_subscriber_vanishing_mid_session_ends_it(menu):
    profiles, _ = walk(menu, ["1"])
    session = step(menu, profiles, "2", None, POLICY).session
    assert shown(menu, session).startswith("END Ce numéro n'est pas reconnu")


def test_my_profile_shows_the_standing(menu):
    standing = Standing(T, migrations_this_month=1, consumed_last_month=12_500)
    session, _ = walk(menu, ["2"], standing)
    assert shown(menu, session) == (
        "CON Votre profil: Tigre.\nMigrations restantes ce mois: 2 sur 3.\n"
        "Crédit consommé le mois passé: 12.500 F CFA.\n0 Retour | 00 Accueil"
    )


def test_the_language_is_kept_through_the_dialogue(menu):
    john = Standing(A, 0, 12_000)
    session, [migration] = walk(menu, ["1", "1", "1"], john, Language.EN)
    assert session.language is Language.EN
    assert migration.target is N
    assert shown(menu, session) == (
        "END Your profile is now Novamix. You keep your current benefits within their "
        "validity. Migrations left this month: 2."
    )
    assert Session.loads(session.dumps()).language is Language.EN


def test_thresholds_come_from_the_policy(menu):
    policy = Policy(monthly_cap=1, thresholds={T: 5000})
    session, _migrations = walk(menu, ["1", "2"], policy=policy)
    assert shown(menu, session, policy) == (
        "CON Migration vers Tigre impossible: il faut au moins 5.000 F CFA de crédit consommé "
        "le mois passé. Vous avez consommé 3.000 F CFA.\n0 Retour | 00 Accueil"
    )
    session, [migration] = walk(menu, ["1", "4", "1"], policy=policy)
    assert migration.target is A
    assert shown(menu, session, policy).endswith("Migrations restantes ce mois: 0.")


LANGUAGES_FR = "Langue / Language:\n1. Francais\n2. English\n0 Retour | 00 Accueil"
MAIN_EN = ("Orange #121#\n1. Change profile\n2. My profile\n3. Migration conditions\n"
           "4. Language / Langue")


def test_the_subscriber_chooses_english_from_the_main_menu(menu):
    languages, _ = walk(menu, ["4"])
    assert shown(menu, languages) == "CON " + LANGUAGES_FR
    chosen = step(menu, languages, "2", ALICE, POLICY)
    assert chosen.language is Language.EN  # for the caller to store
    assert chosen.migration is None
    assert chosen.session.language is Language.EN
    assert shown(menu, chosen.session) == (
        "CON Your language is now English. It will be used for #121# and your SMS.\n"
        "0 Back | 00 Home")
    assert shown(menu, step(menu, chosen.session, "0", ALICE, POLICY).session) == (
        "CON Language / Langue:\n1. Francais\n2. English\n0 Back | 00 Home")
    assert shown(menu, step(menu, chosen.session, "00", ALICE, POLICY).session) == (
        "CON " + MAIN_EN)


def test_the_subscriber_goes_back_to_french(menu):
    session, _ = walk(menu, ["4"], language=Language.EN)
    chosen = step(menu, session, "1", ALICE, POLICY)
    assert (chosen.language, chosen.session.language) == (Language.FR, Language.FR)
    assert shown(menu, chosen.session) == (
        "CON Langue enregistrée: Francais. Elle sera utilisée pour #121# et vos SMS.\n"
        "0 Retour | 00 Accueil")


@pytest.mark.parametrize("text", ["3", "0 2", "fr"])
def test_only_a_listed_language_is_chosen(menu, text):
    languages, _ = walk(menu, ["4"])
    result = step(menu, languages, text, ALICE, POLICY)
    assert result.language is None
    assert shown(menu, result.session) == "CON " + INVALID + LANGUAGES_FR


def test_a_step_that_changes_no_language_says_none(menu):
    session = begin(menu, ALICE, None, POLICY)
    for text in ("1", "2", "0", "3"):
        result = step(menu, session, text, ALICE, POLICY)
        assert result.language is None
        session = result.session


def test_the_resume_screen_resumes_or_starts_afresh(menu):
    confirm, _ = walk(menu, ["1", "2"])
    prompt = Session("resume", suspended=confirm)
    assert shown(menu, prompt) == "CON Reprendre où vous en étiez ?\n1. Oui\n2. Non"
    resumed = step(menu, prompt, "1", ALICE, POLICY)
    assert resumed.migration is None  # resuming applies nothing
    assert resumed.session == confirm
    afresh = step(menu, prompt, "2", ALICE, POLICY).session
    assert (afresh.screen, afresh.suspended, afresh.back) == ("main", None, ())
    home = step(menu, prompt, "00", ALICE, POLICY).session
    assert (home.screen, home.suspended) == ("main", None)
    wrong = step(menu, prompt, "3", ALICE, POLICY).session
    assert (wrong.screen, wrong.invalid, wrong.suspended) == ("resume", 1, confirm)


# A confirmation whose text needs UCS-2 (the curly apostrophe): 80 characters a page, so its
# choices go to page 2. `ussd menu check` refuses such a menu (tests/test_cli_menu.py); the
# engine must not act on a choice the subscriber has not been shown all the same.
CURLY = ("Migration to {target}: it\u2019s free. You will have {left} migration(s) left this "
         "month. Your current benefits are kept.")


def test_a_choice_is_taken_only_on_the_page_that_shows_it(menu):
    texts = {**menu.texts, Language.EN: {**menu.texts[Language.EN], "confirm.title": CURLY}}
    curly = replace(menu, texts=texts)
    confirm, _ = walk(curly, ["1", "2"], language=Language.EN)
    page_1 = "Migration to Tigre: it\u2019s free. You will\n99 More\n0 Back | 00 Home"
    assert shown(curly, confirm) == "CON " + page_1
    for text in ("1", "2"):  # neither Confirm nor Cancel is on page 1
        result = step(curly, confirm, text, ALICE, POLICY)
        assert result.migration is None
        assert (result.session.screen, result.session.page, result.session.invalid) == (
            "confirm", 0, 1)
        assert shown(curly, result.session) == "CON Invalid choice.\n" + page_1
    page_2 = step(curly, confirm, "99", ALICE, POLICY).session
    assert shown(curly, page_2) == (
        "CON have 2 migration(s) left this month. Your current benefits are kept.\n1. Confirm\n"
        "2. Cancel\n0 Back | 00 Home")
    confirmed = step(curly, page_2, "1", ALICE, POLICY)
    assert confirmed.migration == Migration(T, ALICE)
    assert shown(curly, confirmed.session).startswith("END Your profile is now Tigre.")


def test_choices_split_over_two_pages_are_each_taken_on_their_own(menu):
    title = "Orange #121# \u2019 welcome to the service"  # UCS-2: "1." on page 1, the rest on 2
    texts = {**menu.texts, Language.EN: {**menu.texts[Language.EN], "main.title": title}}
    paged = replace(menu, texts=texts)
    main = begin(paged, ALICE, Language.EN, POLICY)
    assert shown(paged, main) == f"CON {title}\n1. Change profile\n99 More"
    assert step(paged, main, "2", ALICE, POLICY).session == main.changed(invalid=1)
    assert step(paged, main, "1", ALICE, POLICY).session.screen == "profiles"
    page_2 = step(paged, main, "99", ALICE, POLICY).session
    assert shown(paged, page_2) == (
        "CON 2. My profile\n3. Migration conditions\n4. Language / Langue")
    assert step(paged, page_2, "1", ALICE, POLICY).session == page_2.changed(invalid=1)
    assert step(paged, page_2, "2", ALICE, POLICY).session.screen == "my_profile"


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("policy", [POLICY, Policy(monthly_cap=99, thresholds=dict.fromkeys(
    Profile, 99_999_999))], ids=["default", "wide"])
def test_every_shipped_screen_with_choices_is_one_page_so_every_choice_counts(menu, language,
                                                                              policy):
    # The rule above changes nothing for the shipped menus: no screen of theirs with choices is
    # ever paged, whatever the subscriber's figures.
    for name, screen in menu.screens.items():
        count = choice_count(screen)
        if not count:
            continue
        for values in ({"target": "novamix", "current": "dauphin", "left": 99, "used": 99},
                       {"target": "tigre", "current": "novamix", "left": 0, "used": 3}):
            assert len(screen_pages(menu, name, language, values, policy)) == 1, (name, count)
