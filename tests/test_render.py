"""A screen to the text of one USSD message, with pages (ussd/render.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ussd.errors import ScreenTooLongError
from ussd.render import conditions, format_values, page_choices, paginate, render, screen_pages
from ussd.rules import Language, Policy, Profile
from ussd.text import fits, measure

FOOTER = ["0 Retour | 00 Accueil"]
MORE = "99 Suite"
HEAD = "Choix invalide."
FR, EN = Language.FR, Language.EN
POLICY = Policy()


def assert_every_page_fits(pages, head=HEAD):
    for page in pages:
        assert fits(page), (measure(page), page)
        assert fits(f"{head}\n{page}"), (measure(f"{head}\n{page}"), page)


def test_a_short_screen_is_one_page_without_99():
    assert paginate(["Bonjour", "1. Oui"], FOOTER, MORE, HEAD) == [
        "Bonjour\n1. Oui\n0 Retour | 00 Accueil"
    ]


def test_long_screens_are_cut_between_lines_and_every_page_fits():
    lines = [f"{n:02d} " + "x" * 47 for n in range(1, 11)]  # ten lines of 50 characters
    pages = paginate(lines, FOOTER, MORE, HEAD)
    assert len(pages) > 1
    assert_every_page_fits(pages)
    for page in pages[:-1]:
        assert page.endswith(f"\n{MORE}\n{FOOTER[0]}")
    assert pages[-1].endswith(f"\n{FOOTER[0]}")
    assert MORE not in pages[-1]
    # Cut at lines: every line comes back whole, in order, each exactly once.
    shown = [line for page in pages for line in page.split("\n") if line not in (MORE, *FOOTER)]
    assert shown == lines


def test_pages_leave_room_for_the_invalid_notice():
    # 3 lines of 58 characters fit 182 on their own (3*58 + 2 newlines = 176), but not with the
    # notice in front: the cut must be the same whether or not the notice is shown.
    lines = ["y" * 58] * 3
    assert fits("\n".join(lines))
    pages = paginate(lines, [], MORE, HEAD)
    assert len(pages) == 2
    assert_every_page_fits(pages)


def test_an_over_long_line_is_wrapped_at_words():
    words = [f"mot{n:02d}" for n in range(60)]  # 60 words of 5 characters: 359 characters
    pages = paginate([" ".join(words)], FOOTER, MORE, HEAD)
    assert len(pages) >= 2
    assert_every_page_fits(pages)
    shown = " ".join(
        line for page in pages for line in page.split("\n") if line not in (MORE, *FOOTER)
    )
    assert shown.split(" ") == words  # no word cut, none lost, none repeated
    assert MORE not in pages[-1]


def test_a_line_too_long_for_a_page_starts_where_the_page_is():
    # Cut into chunks of a page each, the long line used to start on page 2, page 1 showing
    # its first line alone (36 of 182 characters). Word by word, it fills page 1 first.
    words = "word " * 60
    pages = paginate(["Title line", words.strip()], FOOTER, MORE, HEAD)
    assert pages == [
        "Title line\n" + "word " * 23 + f"word\n{MORE}\n{FOOTER[0]}",
        "word " * 26 + f"word\n{MORE}\n{FOOTER[0]}",
        "word " * 8 + f"word\n{FOOTER[0]}",
    ]
    # Full: one " word" more (5) would pass 182, with the notice it must have room for.
    assert [measure(f"{HEAD}\n{page}")[0] for page in pages[:-1]] == [178, 182]


def test_a_ucs2_screen_is_cut_at_80():
    lines = [f"Ligne {n} à être affichée" for n in range(8)]  # "ê": UCS-2
    pages = paginate(lines, FOOTER, MORE, HEAD)
    assert len(pages) > 1
    for page in pages:
        assert measure(f"{HEAD}\n{page}")[1] == 80
    assert_every_page_fits(pages)


def test_an_unbreakable_word_longer_than_a_message_cannot_fit():
    with pytest.raises(ScreenTooLongError, match="cannot fit one USSD message"):
        paginate(["Bonjour", "z" * 200], FOOTER, MORE, HEAD)


def test_format_values_writes_names_and_amounts_for_reading(menu):
    filled = format_values(
        menu, FR, {"target": "tigre", "current": "aigle", "required": 8000, "consumed": 1234567,
                   "left": 2, "used": 1}, POLICY,
    )
    assert filled["target"] == "Tigre"
    assert filled["current"] == "Aigle"
    assert filled["required"] == "8.000 F CFA"
    assert filled["consumed"] == "1.234.567 F CFA"
    assert (filled["left"], filled["used"], filled["cap"]) == ("2", "1", "3")


def test_conditions_follow_the_policy(menu):
    policy = Policy(monthly_cap=5, thresholds={Profile.DAUPHIN: 1000, Profile.AIGLE: 12500})
    assert conditions(menu, FR, policy) == (
        "Novamix: sans condition\nTigre: sans condition\n"
        "Dauphin: au moins 1.000 F CFA consommés le mois passé\n"
        "Aigle: au moins 12.500 F CFA consommés le mois passé"
    )
    assert conditions(menu, EN, POLICY) == (
        "Novamix: no condition\nTigre: at least 2,500 F CFA used last month\n"
        "Dauphin: no condition\nAigle: at least 8,000 F CFA used last month"
    )


def test_the_profile_list_marks_the_current_profile(menu):
    reply = render(menu, "profiles", EN, {"current": "dauphin"}, POLICY)
    assert reply.text == (
        "Choose your new profile:\n1. Novamix\n2. Tigre\n3. Dauphin (current)\n4. Aigle\n"
        "0 Back | 00 Home"
    )
    assert reply.end is False


def test_the_start_screen_has_no_back_line_and_end_screens_none(menu):
    assert "Retour" not in render(menu, "main", FR, {}, POLICY).text
    migrated = render(menu, "migrated", FR, {"target": "aigle", "left": 0}, POLICY)
    assert migrated.text == (
        "Votre profil est désormais Aigle. Vous gardez vos avantages en cours dans la limite "
        "de leur validité. Migrations restantes ce mois: 0."
    )
    assert migrated.end is True


def test_a_long_screen_renders_page_by_page(menu):
    # With a cap of 99 and thresholds of a billion F CFA, the conditions take several pages.
    policy = Policy(monthly_cap=99, thresholds=dict.fromkeys(Profile, 999999999))
    pages = screen_pages(menu, "conditions", FR, {}, policy)
    assert len(pages) >= 2
    assert_every_page_fits(pages)
    assert [render(menu, "conditions", FR, {}, policy, page=n).text for n in
            range(len(pages))] == pages
    assert "99 Suite" not in pages[-1]
    # A page number past the end shows the last page rather than failing.
    assert render(menu, "conditions", FR, {}, policy, page=len(pages) + 3).text == pages[-1]


def test_a_paginated_end_screen_ends_only_on_its_last_page(menu):
    texts = {language: dict(menu.texts[language]) for language in Language}
    texts[FR]["migrated.text"] = " ".join(["Votre profil est désormais {target}."] * 8)
    long_menu = replace(menu, texts=texts)
    pages = screen_pages(long_menu, "migrated", FR, {"target": "tigre"}, POLICY)
    assert len(pages) >= 2
    assert_every_page_fits(pages)
    replies = [render(long_menu, "migrated", FR, {"target": "tigre"}, POLICY, page=n)
               for n in range(len(pages))]
    assert [reply.end for reply in replies] == [False] * (len(pages) - 1) + [True]
    assert pages[0].endswith("\n99 Suite")  # an end screen has no back line, only 99
    assert pages[-1].endswith("Tigre.")


def test_the_invalid_notice_heads_every_page_and_keeps_the_cut(menu):
    policy = Policy(monthly_cap=99, thresholds=dict.fromkeys(Profile, 999999999))
    plain = screen_pages(menu, "conditions", FR, {}, policy)
    noticed = screen_pages(menu, "conditions", FR, {}, policy, error=True)
    assert noticed == [f"Choix invalide.\n{page}" for page in plain]
    assert all(fits(page) for page in noticed)


def test_page_choices_are_the_choices_whose_line_begins_on_the_page(menu):
    # A main menu in UCS-2 (the curly apostrophe), which the menus check would refuse.
    title = "Orange #121# \u2019 welcome to the service"
    paged = replace(menu, texts={**menu.texts, EN: {**menu.texts[EN], "main.title": title}})
    assert screen_pages(paged, "main", EN, {}, POLICY) == [
        f"{title}\n1. Change profile\n99 More",
        "2. My profile\n3. Migration conditions\n4. Language / Langue"]
    assert [page_choices(paged, "main", EN, {}, POLICY, page) for page in (0, 1, 5)] == [
        {1}, {2, 3, 4}, {2, 3, 4}]  # past the end: the last page's, as render shows it
    assert page_choices(menu, "main", EN, {}, POLICY) == {1, 2, 3, 4}
    assert page_choices(menu, "conditions", FR, {}, POLICY) == frozenset()
