"""Menus as validated data: the shipped menus, and broken ones refused clearly (ussd/menu.py)."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import ussd
from ussd.errors import InvalidMenuError
from ussd.menu_files import load_menu
from ussd.render import screen_pages
from ussd.rules import Language, Policy, Profile, Reason
from ussd.settings import DEFAULT_MENUS_DIR, Settings
from ussd.text import measure

WIDE_POLICY = Policy(monthly_cap=99, thresholds=dict.fromkeys(Profile, 99999999))


def test_the_shipped_menus_load(menu):
    assert menu.start == "main"
    assert menu.max_invalid == 2
    assert set(menu.texts) == {Language.FR, Language.EN}
    assert {"main", "profiles", "confirm", "my_profile", "conditions", "migrated"} <= set(
        menu.screens
    )
    for role in ("unknown_subscriber", "too_many_invalid", "unavailable", "goodbye",
                 "invalid_request", "processing", "busy"):
        assert menu.system[role] in menu.screens
    profiles = menu.screens["profiles"]
    assert (profiles.listing, profiles.action) == ("profiles", "choose_profile")
    assert profiles.outcomes[Reason.APPROVED] == "confirm"
    assert [o.action or o.goto for o in menu.screens["confirm"].options] == ["migrate", "cancelled"]
    assert menu.screens["migrated"].end and not menu.screens["main"].end


def test_the_shipped_menus_load_with_the_widest_policy():
    load_menu(DEFAULT_MENUS_DIR, WIDE_POLICY)


def test_the_shipped_menus_load_with_no_threshold_at_all():
    """Every profile open whatever was consumed: a policy built in code may say so."""
    assert "confirm" in load_menu(DEFAULT_MENUS_DIR, Policy(thresholds={})).screens


def widest_values():
    """Values as wide as real ones can be, with every profile as target and as current."""
    for target, current in itertools.product(Profile, Profile):
        yield {"target": target.value, "current": current.value, "required": 99_999_999,
               "consumed": 99_999_999, "left": 99, "used": 99}


@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("policy", [Policy(), WIDE_POLICY], ids=["default", "wide"])
def test_every_page_of_every_screen_fits_its_alphabet(menu, language, policy):
    checked = 0
    for name in menu.screens:
        for values in widest_values():
            for error in (False, True):
                for page in screen_pages(menu, name, language, values, policy, error):
                    length, limit = measure(page)
                    assert length <= limit, (name, language, error, length, limit, page)
                    checked += 1
    assert checked >= len(menu.screens) * 16 * 2


def test_the_shipped_texts_keep_to_the_gsm_alphabet(menu):
    # One character outside GSM 03.38 would cut the screen's limit from 182 to 80.
    for language, texts in menu.texts.items():
        for key, text in texts.items():
            assert measure(text)[1] == 182, (language, key, text)


def menus_copy(tmp_path):
    target = tmp_path / "menus"
    shutil.copytree(DEFAULT_MENUS_DIR, target)
    return target


def edit(directory, file, old, new):
    path = directory / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}: the test no longer matches the shipped menus"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(("file", "old", "new", "message"), [
    pytest.param(
        "menu.toml", 'goto = "my_profile"', 'goto = "nowhere"',
        "screen 'main': option 'main.my_profile' goes to unknown 'nowhere'",
        id="unknown-goto-target"),
    pytest.param(
        "menu.toml", 'action = "migrate"', 'action = "explode"',
        "screen 'confirm': unknown action 'explode' (known: choose_profile, migrate, set_language, "
        "resume, restart)",
        id="unknown-action"),
    pytest.param(
        "menu.toml", 'action = "choose_profile"', 'action = "__import__"',
        "screen 'profiles': unknown action '__import__'",
        id="action-names-are-never-evaluated"),
    pytest.param(
        "menu.toml", ', insufficient_consumption = "insufficient" }\n\n[screens.confirm]',
        ' }\n\n[screens.confirm]',
        "screen 'profiles': no outcome for 'insufficient_consumption'",
        id="missing-outcome"),
    pytest.param(
        "menu.toml", 'monthly_limit_reached = "limit_reached", insufficient_consumption = '
        '"insufficient" }\n\n# The languages',
        'monthly_limit_reached = "over", insufficient_consumption = "insufficient" }\n\n'
        '# The languages',
        "screen 'confirm': outcome 'monthly_limit_reached' goes to unknown 'over'",
        id="outcome-to-unknown-screen"),
    pytest.param(
        "menu.toml", 'start = "main"', 'start = "welcome"',
        "start screen 'welcome' does not exist", id="unknown-start"),
    pytest.param(
        "menu.toml", 'goodbye = "goodbye"', 'goodbye = "farewell"',
        "[system] goodbye names no screen ('farewell')", id="unknown-system-screen"),
    pytest.param(
        "menu.toml", 'text = "migrated.text"\nend = true',
        'text = "migrated.text"\nend = true\noptions = [{ label = "confirm.yes", goto = "main" }]',
        "screen 'migrated': an end screen cannot offer choices", id="end-screen-with-choices"),
    pytest.param(
        "menu.toml", '{ label = "confirm.no", goto = "cancelled" }',
        '{ label = "confirm.no", goto = "main", action = "migrate" }',
        "option 'confirm.no' needs exactly one of goto/action", id="goto-and-action"),
    pytest.param(
        "menu.toml", 'text = "main.title"', 'text = "main.titel"',
        "text 'main.titel' missing in texts/fr.toml", id="unknown-text-key"),
    pytest.param(
        "texts/en.toml", 'my_profile = "My profile"\n', '',
        "text 'main.my_profile' missing in texts/en.toml", id="text-missing-in-one-language"),
    pytest.param(
        "texts/fr.toml", 'more = "99 Suite"\n', '',
        "texts/fr.toml: missing 'nav.more'", id="navigation-text-missing"),
    pytest.param(
        "texts/fr.toml", "Il vous restera {left} migration(s)",
        "Il vous restera {balance} migration(s)",
        "texts/fr.toml 'confirm.title': unknown placeholder {balance}",
        id="unknown-placeholder"),
    pytest.param(
        "texts/en.toml", "Your profile: {current}.", "Your profile: {current.__class__}.",
        "texts/en.toml 'my_profile.text': unknown placeholder {current.__class__}",
        id="attribute-access"),
    pytest.param(
        "texts/en.toml", "Your profile: {current}.", "Your profile: {current[0]}.",
        "unknown placeholder {current[0]}", id="index-access"),
    pytest.param(
        "texts/fr.toml", "ce mois: {left}.", "ce mois: {left:>40}.",
        "texts/fr.toml 'migrated.text': placeholder {left} must be plain", id="format-spec"),
    pytest.param(
        "texts/fr.toml", "ce mois: {left}.", "ce mois: {left!r}.",
        "placeholder {left} must be plain", id="conversion"),
    pytest.param(
        "texts/fr.toml", "Votre profil: {current}.", "Votre profil: {current.",
        "texts/fr.toml 'my_profile.text': bad braces", id="unbalanced-brace"),
    pytest.param(
        "texts/en.toml", 'threshold = "{target}: at least {required} used last month"',
        'threshold = "{target}: {required} used last month, {cap} at most"',
        "texts/en.toml 'conditions.threshold': placeholder {cap}",
        id="placeholder-the-conditions-lines-do-not-fill"),
    pytest.param(
        "texts/fr.toml", 'goodbye = "Merci', 'goodbye = "' + "Merci" * 40 + ' Merci',
        "screen 'goodbye' in fr", id="unbreakable-word-longer-than-a-message"),
    pytest.param(
        "texts/en.toml", 'title = "Orange #121#"', 'title = "Orange #121# ' + "ê" * 90 + '"',
        "screen 'main' in en", id="unbreakable-ucs2-word-longer-than-80"),
    pytest.param(
        "texts/en.toml", 'current = "(current)"', 'current = 3',
        "text 'nav.current' must be a string", id="text-not-a-string"),
    pytest.param(
        "menu.toml", "[screens.main]", "[screens.main\n", "menu.toml", id="bad-toml-menu"),
    pytest.param(
        "texts/fr.toml", '[nav]\nback_home = "0', '[nav]\nback_home = 0"',
        "texts/fr.toml", id="bad-toml-texts"),
])
def test_a_broken_menu_is_refused_with_what_and_where(tmp_path, file, old, new, message):
    directory = menus_copy(tmp_path)
    edit(directory, file, old, new)
    with pytest.raises(InvalidMenuError) as failure:
        load_menu(directory)
    assert message in str(failure.value)


def test_every_problem_is_named_at_once(tmp_path):
    directory = menus_copy(tmp_path)
    edit(directory, "menu.toml", 'goto = "my_profile"', 'goto = "nowhere"')
    edit(directory, "menu.toml", 'action = "migrate"', 'action = "explode"')
    with pytest.raises(InvalidMenuError) as failure:
        load_menu(directory)
    assert "unknown 'nowhere'" in str(failure.value)
    assert "unknown action 'explode'" in str(failure.value)


@pytest.mark.parametrize("missing", ["menu.toml", "texts/en.toml"])
def test_a_missing_file_is_named(tmp_path, missing):
    directory = menus_copy(tmp_path)
    (directory / missing).unlink()
    with pytest.raises(InvalidMenuError, match="file not found") as failure:
        load_menu(directory)
    assert str(directory / missing) in str(failure.value)


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(InvalidMenuError, match="file not found") as failure:
        load_menu(tmp_path / "nowhere")
    # The operator is told which setting points there.
    assert "USSD_MENUS_DIR" in str(failure.value)


def test_the_menus_are_the_repositorys_in_a_checkout_and_the_packages_when_installed():
    # In a checkout, the top-level menus/ folder; a wheel carries it as package data, ussd/menus
    # (tests/test_install.py installs one, outside the repository, and dials through it).
    package = Path(ussd.__file__).parent
    assert Path(str(DEFAULT_MENUS_DIR)) == package.parent / "menus"
    assert (DEFAULT_MENUS_DIR / "menu.toml").is_file()
    assert Settings.from_env({}).menus_dir == DEFAULT_MENUS_DIR


def test_ussd_menus_dir_replaces_the_shipped_menus(tmp_path):
    directory = menus_copy(tmp_path)
    edit(directory, "texts/fr.toml", "Changer de profil", "Changer d'offre")
    settings = Settings.from_env({"USSD_MENUS_DIR": str(directory)})
    assert settings.menus_dir == directory
    menu = load_menu(settings.menus_dir)
    assert "Changer d'offre" in menu.texts[Language.FR]["main.change_profile"]


def test_a_long_screen_loads_when_it_can_be_paged(tmp_path):
    directory = menus_copy(tmp_path)
    long_text = " ".join(["Vous gardez vos avantages en cours."] * 12)  # ~430 characters
    edit(directory, "texts/fr.toml", 'goodbye = "Merci d\'avoir utilisé #121#."',
         f'goodbye = "{long_text}"')
    menu = load_menu(directory)
    pages = screen_pages(menu, "goodbye", Language.FR, {}, Policy())
    assert len(pages) >= 3
    assert all(measure(page)[0] <= 182 for page in pages)


def test_a_ucs2_text_is_checked_against_80(tmp_path):
    # 100 characters fit 182 in GSM-7; one "ê" makes the screen UCS-2, where they must page.
    # A screen without choices may: the language chosen, here.
    directory = menus_copy(tmp_path)
    text = "Bienvenue sur le service de changement de profil, une fête de vos avantages"
    edit(directory, "texts/fr.toml", 'set = "Langue enregistrée', f'set = "{text} ')
    menu = load_menu(directory)
    pages = screen_pages(menu, "language_set", Language.FR, {}, Policy(), error=True)
    assert len(pages) >= 2
    assert [measure(page)[1] for page in pages if "ê" in page] == [80]
    assert all(measure(page)[0] <= measure(page)[1] for page in pages)
    # The same screen in GSM-7 ("fete") is one page: the alphabet is what cut it.
    gsm = menus_copy(tmp_path / "gsm")
    edit(gsm, "texts/fr.toml", 'set = "Langue enregistrée', f'set = "{text.replace("ê", "e")} ')
    assert len(screen_pages(load_menu(gsm), "language_set", Language.FR, {}, Policy(),
                            error=True)) == 1
    # On a screen with choices (the main menu) the same text is refused: they would be on
    # page 2 (tests/test_cli_menu.py names the file, line, length and limit).
    edit(directory, "texts/fr.toml", 'title = "Orange #121#"', f'title = "{text}"')
    with pytest.raises(InvalidMenuError, match="screen 'main' in fr: a screen with choices "
                       "must fit one message, and this one is 174 characters in UCS-2"):
        load_menu(directory)


@pytest.mark.parametrize(("title", "policy", "values", "length"), [
    pytest.param(  # 182 with 99 migrations left; a cap of 1,000 leaves up to 999
        "Migration to {target}: free. You will have {left} migration(s) left this month. "
        "Your current benefits are kept, all of them, always.", Policy(monthly_cap=1000),
        {"target": "novamix", "left": 999}, 184, id="migrations-left-up-to-the-cap"),
    pytest.param(  # 179 with 99,999,999 F CFA, as checked before; a seed file or the API
        # stores up to 10**12 (1,000,000,000,000 F CFA)
        "Migration to {target}: free ({consumed} used last month). You will have {left} "
        "migration(s) left this month. Benefits kept.", Policy(),
        {"target": "novamix", "left": 2, "consumed": 10**12}, 186, id="consumption-stored"),
])
def test_the_widest_figures_are_those_the_settings_and_the_data_allow(tmp_path, title, policy,
                                                                      values, length):
    directory = menus_copy(tmp_path)
    edit(directory, "texts/en.toml",
         "Migration to {target}: free. You will have {left} migration(s) left this month. "
         "Your current benefits are kept.", title)
    if policy.monthly_cap > 99:
        load_menu(directory, Policy(monthly_cap=99))  # fits with two digits left
    with pytest.raises(InvalidMenuError, match=rf"screen 'confirm' in en: a screen with "
                       rf"choices must fit one message, and this one is {length} characters"):
        load_menu(directory, policy)
    # Such figures are real: rendered, the confirmation would put a choice on page 2.
    unchecked = load_menu(menus_copy(tmp_path / "shipped"))
    long_title = {**unchecked.texts[Language.EN], "confirm.title": title}
    texts = {**unchecked.texts, Language.EN: long_title}
    pages = screen_pages(replace(unchecked, texts=texts), "confirm", Language.EN, values, policy)
    assert (len(pages), "2. Cancel" in pages[0], "2. Cancel" in pages[1]) == (2, False, True)
