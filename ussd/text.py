"""What fits in one USSD message, and how amounts are written.

A USSD message carries 160 bytes: 182 characters when every character is in the GSM 03.38
default alphabet (7 bits each; the extension table's characters such as ``€`` take two), or 80
characters in UCS-2 otherwise. The ``gsm0338`` codec tells which alphabet a text needs.
Amounts are written as the source writes them in French (``8.000 F CFA``), with a comma in
English (``8,000 F CFA``).
"""

from __future__ import annotations

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

from .rules import Language

GSM_LIMIT = 182
UCS2_LIMIT = 80
SMS_LIMIT = 160  # one SMS: 140 bytes of 7-bit characters


def measure(text: str) -> tuple[int, int]:
    """``(length, limit)`` of ``text`` in the units of the alphabet it needs."""
    try:
        return len(text.encode("gsm03.38")), GSM_LIMIT
    except UnicodeEncodeError:
        return len(text.encode("utf-16-le")) // 2, UCS2_LIMIT


def outside_gsm(text: str) -> str | None:
    """The first character of ``text`` not in the GSM 03.38 alphabet (the one that makes it
    UCS-2), or None."""
    try:
        text.encode("gsm03.38")
    except UnicodeEncodeError as error:
        return text[error.start]
    return None


def fits(text: str) -> bool:
    """True when ``text`` fits in one USSD message."""
    length, limit = measure(text)
    return length <= limit


def fits_sms(text: str) -> bool:
    """True when ``text`` is one SMS of the GSM 03.38 alphabet: at most 160 characters, those
    of the extension table (``€``, ``[``...) counting two."""
    try:
        return len(text.encode("gsm03.38")) <= SMS_LIMIT
    except UnicodeEncodeError:
        return False


# The thousands separator of each language: the source's dot in French, a comma in English.
THOUSANDS = {Language.FR: ".", Language.EN: ","}


def format_amount(amount: int, language: Language = Language.FR) -> str:
    """An amount as ``language`` writes it: ``2500`` -> ``2.500 F CFA`` (``2,500`` in English)."""
    return f"{amount:,} F CFA".replace(",", THOUSANDS[language])
