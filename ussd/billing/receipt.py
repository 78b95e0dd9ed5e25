"""The subscriber's SMS receipt of a migration billing has acknowledged (pure).

Its words are ``sms.migrated`` in ``menus/texts/<language>.toml``, with ``{target}`` (the new
profile), ``{left}`` (migrations left this month) and ``{cap}``. A receipt is one SMS: at most
160 characters of the GSM 03.38 alphabet (``text.fits_sms``), checked for every language with
the widest values when the menus load, so that no receipt is ever cut or refused.
"""

from __future__ import annotations

import json
import string

from ..errors import InvalidMenuError
from ..menu import Menu
from ..rules import LANGUAGE_BY_CODE, PROFILES_IN_ORDER, Language, Policy, Profile
from ..text import fits_sms

TEXT = "sms.migrated"
FIELDS = frozenset({"target", "left", "cap"})


def receipt_text(menu: Menu, language: Language, target: Profile, left: int,
                 policy: Policy) -> str:
    """The receipt's words for a migration to ``target`` with ``left`` migrations left."""
    return menu.texts[language][TEXT].format_map(
        {"target": target.title, "left": str(left), "cap": str(policy.monthly_cap)})


def receipt_of(menu: Menu, event: str, policy: Policy) -> str:
    """The receipt (JSON ``{"id", "to", "message"}``) of a billing event (JSON): in the
    subscriber's language, with the migrations left after this one."""
    fields = json.loads(event)
    language = LANGUAGE_BY_CODE.get(fields.get("language"), Language.FR)
    left = max(policy.monthly_cap - int(fields["migrations_this_month"]), 0)
    text = receipt_text(menu, language, Profile(fields["to"]), left, policy)
    return json.dumps({"id": fields["id"], "to": fields["msisdn"], "message": text},
                      ensure_ascii=False, separators=(",", ":"))


def check_receipts(menu: Menu, policy: Policy) -> None:
    """InvalidMenuError unless every language's receipt, with the widest values, is one SMS
    and fills nothing but ``{target}``, ``{left}`` and ``{cap}``."""
    problems = []
    for language in Language:
        template = menu.texts[language].get(TEXT)
        if template is None:
            problems.append(f"texts/{language.value}.toml: missing {TEXT!r}")
            continue
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        if names - FIELDS:
            problems.append(f"texts/{language.value}.toml {TEXT!r}: only {{target}}, {{left}} "
                            f"and {{cap}} are filled in an SMS")
            continue
        widest = Policy(monthly_cap=max(policy.monthly_cap, 99), thresholds=policy.thresholds)
        for target in PROFILES_IN_ORDER:
            text = receipt_text(menu, language, target, widest.monthly_cap, widest)
            if not fits_sms(text):
                problems.append(f"texts/{language.value}.toml {TEXT!r}: not one SMS (160 GSM "
                                f"03.38 characters) for {target.title}: {text!r}")
                break
    if problems:
        raise InvalidMenuError("invalid SMS receipt:\n  " + "\n  ".join(problems))

