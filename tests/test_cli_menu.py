"""``ussd menu check`` and ``ussd menu graph`` (ussd/cli_menu.py, ussd/menu_graph.py).

``check`` refuses what start-up refuses, every problem with its file and line; ``graph``
draws the menu as Mermaid. Exact output, on copies of the shipped menus broken on purpose.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ussd.cli import main
from ussd.errors import InvalidMenuError
from ussd.menu_files import line_of, load_menu
from ussd.settings import DEFAULT_MENUS_DIR


def run(*args: str):
    return CliRunner().invoke(main, ["menu", *args], catch_exceptions=False)


@pytest.fixture
def menus(tmp_path) -> Path:
    target = tmp_path / "menus"
    shutil.copytree(DEFAULT_MENUS_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` (once) in the file; the line it was on."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}: the test no longer matches the shipped menus"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text[:text.index(old)].count("\n") + 1


def test_the_shipped_menus_check_clean():
    result = run("check")
    assert (result.exit_code, result.output) == (0, (
        f"{DEFAULT_MENUS_DIR}: 20 screens, every text in fr, en, every screen fits one USSD "
        "message: OK\n"))


def test_every_problem_is_named_with_its_file_and_line(menus):
    menu_toml, fr, en = menus / "menu.toml", menus / "texts/fr.toml", menus / "texts/en.toml"
    goto = edit(menu_toml, 'goto = "my_profile"', 'goto = "nowhere"')
    placeholder = edit(fr, 'more = "99 Suite"', 'more = "99 Suite {page}"')
    edit(en, 'yes = "Confirm"\n', "")
    lines = menu_toml.read_text(encoding="utf-8").splitlines()
    label = next(number for number, line in enumerate(lines, start=1)
                 if number > lines.index("[screens.confirm]") and '"confirm.yes"' in line)
    result = run("check", str(menus))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{menu_toml}:{label}: screen 'confirm': text 'confirm.yes' missing in texts/en.toml",
        f"{menu_toml}:{goto}: screen 'main': option 'main.my_profile' goes to unknown 'nowhere'",
        f"{fr}:{placeholder}: texts/fr.toml 'nav.more': unknown placeholder {{page}} (known: "
        "cap, conditions, consumed, current, left, required, target, used)",
    ]


def test_texts_that_are_not_text_are_named_in_every_file(menus):
    fr, en = menus / "texts/fr.toml", menus / "texts/en.toml"
    first = edit(fr, 'title = "Orange #121#"', "title = []")
    second = edit(en, 'title = "Orange #121#"', "title = 5")
    result = run("check", str(menus))
    assert (result.exit_code, result.output.splitlines()) == (1, [
        f"{fr}:{first}: text 'main.title' must be a string, got []",
        f"{en}:{second}: text 'main.title' must be a string, got 5",
    ])


def test_a_dangling_outcome_points_at_its_line(menus):
    menu_toml = menus / "menu.toml"
    line = edit(menu_toml, 'monthly_limit_reached = "limit_reached", insufficient_consumption'
                ' = "insufficient" }\n\n# The languages', 'monthly_limit_reached = "over", '
                'insufficient_consumption = "insufficient" }\n\n# The languages')
    result = run("check", str(menus))
    assert (result.exit_code, result.output) == (1, (
        f"{menu_toml}:{line}: screen 'confirm': outcome 'monthly_limit_reached' goes to unknown "
        "'over'\n"))


def test_a_screen_too_long_points_at_its_text(menus):
    fr = menus / "texts/fr.toml"
    line = edit(fr, 'goodbye = "Merci d\'avoir utilisé #121#."',
                'goodbye = "' + "ê" * 30 + " " + "ê" * 90 + '"')
    result = run("check", str(menus))
    assert result.exit_code == 1
    assert result.output.startswith(f"{fr}:{line}: screen 'goodbye' in fr: cannot fit one USSD "
                                    "message")


def test_a_screen_with_choices_must_fit_one_message_in_the_alphabet_it_needs(menus):
    # One curly apostrophe makes the confirmation UCS-2: 80 characters, where it takes 165
    # with the widest figures and the invalid-choice line. Cut into pages, "1. Confirm"
    # would be on page 2 while 1 confirms from page 1: refused, as start-up refuses it.
    en = menus / "texts/en.toml"
    line = edit(en, "Migration to {target}: free.", "Migration to {target}: it’s free.")
    problem = (f"{en}:{line}: screen 'confirm' in en: a screen with choices must fit one "
               "message, and this one is 165 characters in UCS-2 ('’' is not in GSM 03.38), "
               "over its 80 (with the widest figures and the line 'Invalid choice.')")
    result = run("check", str(menus))
    assert (result.exit_code, result.output) == (1, problem + "\n")
    with pytest.raises(InvalidMenuError) as failure:
        load_menu(menus)
    assert str(failure.value) == "screens too long for one USSD message:\n  " + problem


def test_a_screen_with_choices_over_182_gsm_characters_is_refused_at_its_text(menus):
    fr = menus / "texts/fr.toml"
    edit(fr, 'no = "Annuler"', 'no = "Annuler' + " et revenir" * 6 + '"')
    line = edit(fr, "title = \"Migration vers {target}", "title = \"Migration vers {target}")
    result = run("check", str(menus))
    # 241 characters, "|" of "0 Retour | 00 Accueil" counting two (GSM 03.38's extension).
    assert (result.exit_code, result.output) == (1, (
        f"{fr}:{line}: screen 'confirm' in fr: a screen with choices must fit one message, "
        "and this one is 242 characters in GSM 03.38, over its 182 (with the widest figures "
        "and the line 'Choix invalide.')\n"))


def test_syntax_errors_of_every_file_at_once(menus):
    menu_toml, en = menus / "menu.toml", menus / "texts/en.toml"
    first = edit(menu_toml, 'start = "main"', 'start = "main')
    second = edit(en, 'more = "99 More"', 'more 99 More')
    result = run("check", str(menus))
    assert result.exit_code == 1
    assert [re.sub(r" \(at line.*", "", line) for line in result.output.splitlines()] == [
        f"{menu_toml}:{first}: Illegal character '\\n'",
        f"{en}:{second}: Expected '=' after a key in a key/value pair",
    ]


def test_start_up_names_the_same_lines(menus):
    line = edit(menus / "menu.toml", 'goto = "my_profile"', 'goto = "nowhere"')
    with pytest.raises(Exception, match=rf"menu.toml:{line}: screen 'main'"):
        load_menu(menus)


def test_check_reads_the_folder_the_server_uses(menus, monkeypatch):
    monkeypatch.setenv("USSD_MENUS_DIR", str(menus))
    line = edit(menus / "menu.toml", 'start = "main"', 'start = "welcome"')
    result = run("check")
    assert (result.exit_code, result.output) == (
        1, f"{menus / 'menu.toml'}:{line}: start screen 'welcome' does not exist\n")


@pytest.mark.parametrize(("place", "needle", "line"), [
    ("start", "", 1), ("screens.main", "", 3), ("screens.main.text", "", 4),
    ("screens.main", '"b"', 6), ("screens.main.missing", "", 3), ("nowhere.at.all", "", 1),
    ("system.goodbye", "", 9),
])
def test_line_of_a_place(place, needle, line):
    text = ('start = "main"\n\n[screens.main]\ntext = "t"\noptions = [\n  { label = "b" },\n]\n'
            '[system]\ngoodbye = "g"  # a comment = not a key\n')
    assert line_of(text, place, needle) == line


# --- graph -----------------------------------------------------------------------------------


def test_the_graph_of_the_shipped_menu_has_every_screen_and_every_way(menus):
    result = run("graph")
    assert result.exit_code == 0
    graph = result.output
    menu = load_menu(DEFAULT_MENUS_DIR)
    for name in menu.screens:
        assert re.search(rf"^\s+{name}\(?\[\"{name}<br/>", graph, re.M), name
    for name, screen in menu.screens.items():
        for option in screen.options:
            if option.goto:
                assert re.search(rf"^  {name} -->\|\"\d\. [^\"]+\"\| {option.goto}$", graph,
                                 re.M), (name, option.goto)
        for reason, target in screen.outcomes.items():
            assert f': {reason.value}"| {target}\n' in graph
    assert graph.startswith("flowchart TD\n")
    assert '  main["main<br/>Orange #35;121#35;"]\n' in graph
    assert '  migrated(["migrated<br/>Votre profil est désormais {target}. Vo…"])\n' in graph
    assert '  resume -->|"1. Oui"| dropped(["the screen the dropped dialogue was on"])\n' in graph
    assert '  resume -->|"2. Non"| main\n' in graph
    assert '  language -->|"1-2 set_language"| language_set\n' in graph
    assert '  profiles -.->|"1-4 choose_profile: insufficient_consumption"| insufficient\n' in graph


def test_the_graph_in_english_and_a_broken_folder_refused(menus):
    english = run("graph", "--language", "en").output
    assert '  main -->|"1. Change profile"| profiles\n' in english
    edit(menus / "menu.toml", 'goto = "my_profile"', 'goto = "nowhere"')
    result = run("graph", str(menus))
    assert result.exit_code == 1
    assert "goes to unknown 'nowhere'" in result.output
    assert "ussd menu check names every problem" in result.output
