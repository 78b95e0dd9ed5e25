"""What fits in one USSD message, and how amounts are written (ussd/text.py)."""

from __future__ import annotations

import pytest

from ussd.text import GSM_LIMIT, UCS2_LIMIT, fits, format_amount, measure


def test_the_limits_are_those_of_one_ussd_message():
    assert (GSM_LIMIT, UCS2_LIMIT) == (182, 80)


@pytest.mark.parametrize(("text", "measured"), [
    ("Orange #121#", (12, 182)),
    ("", (0, 182)),
    # French letters of the GSM 03.38 default alphabet keep the whole text in GSM-7.
    ("é", (1, 182)),
    ("è à ù ì ò É Ç", (13, 182)),
    ("Votre profil est désormais Tigre.", (33, 182)),
    # One letter outside it makes the whole text UCS-2, counted in UTF-16 units.
    ("ê", (1, 80)),
    ("ç", (1, 80)),
    ("Migration réussie, à bientôt", (28, 80)),
    # Characters of the extension table take two septets.
    ("€", (2, 182)),
    ("{[~]}", (10, 182)),
    ("€ ê", (3, 80)),  # in UCS-2 the euro sign is one unit again
])
def test_measure_tells_the_alphabet_and_counts_in_its_units(text, measured):
    assert measure(text) == measured


@pytest.mark.parametrize(("text", "fitting"), [
    ("a" * 182, True),
    ("a" * 183, False),
    ("é" * 182, True),
    ("ê" * 80, True),
    ("ê" * 81, False),
    ("ê" + "a" * 79, True),
    ("ê" + "a" * 80, False),  # 81 characters: fine in GSM-7, too long once UCS-2
    ("€" * 91, True),
    ("€" * 92, False),  # 92 characters but 184 septets
    ("a" * 181 + "€", False),
])
def test_fits_one_message(text, fitting):
    assert fits(text) is fitting


@pytest.mark.parametrize(("amount", "written"), [
    (0, "0 F CFA"),
    (999, "999 F CFA"),
    (1000, "1.000 F CFA"),
    (2500, "2.500 F CFA"),
    (8000, "8.000 F CFA"),
    (1234567, "1.234.567 F CFA"),
])
def test_format_amount_as_the_source_writes_it(amount, written):
    assert format_amount(amount) == written
