"""Turning a screen and its values into the text of one USSD message (or several pages).

A screen is its text, then its numbered options, then the navigation line. When that does not
fit one message (see :mod:`ussd.text`), it is cut into pages at line boundaries (words, for a
line too long for a page of its own, which starts where the page is), each page but the last
offering ``99`` for the next: a long screen paginates rather than gets cut. A screen with
choices is refused when the menus load unless it fits one message
(:func:`check_every_screen`); should figures wider than the check foresaw page one all the
same, :func:`page_choices` says which choices each page shows (the engine takes no other).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from .contract import Reply
from .errors import InvalidMenuError, ScreenTooLongError
from .menu import Menu, Problem, Screen, texts_file
from .rules import (
    LANGUAGES_IN_ORDER,
    MAX_AMOUNT,
    PROFILES_IN_ORDER,
    Language,
    Policy,
    Profile,
)
from .text import fits, format_amount, measure, outside_gsm

# What a subscriber types to page on, go back and go home.
MORE = "99"
BACK = "0"
HOME = "00"

def widest_values(policy: Policy) -> dict[str, object]:
    """Values as wide as any real one under ``policy``, to check at load time that every
    screen fits: the longest profile names, the largest threshold or stored amount, the cap
    (migrations left and used never exceed it, unless it is lowered mid-month: 99 at least)."""
    most = max(policy.monthly_cap, 99)
    return {
        "target": Profile.NOVAMIX.value,
        "current": Profile.NOVAMIX.value,
        "required": max([99_999_999, *policy.thresholds.values()]),
        "consumed": MAX_AMOUNT,
        "left": most,
        "used": most,
    }


def render(
    menu: Menu,
    screen_name: str,
    language: Language,
    values: Mapping[str, object],
    policy: Policy,
    page: int = 0,
    error: bool = False,
) -> Reply:
    """The reply showing page ``page`` of ``screen_name`` filled with ``values``."""
    pages = screen_pages(menu, screen_name, language, values, policy, error)
    page = _within(page, pages)
    last = page == len(pages) - 1
    return Reply(pages[page], end=menu.screens[screen_name].end and last)


def screen_pages(
    menu: Menu,
    screen_name: str,
    language: Language,
    values: Mapping[str, object],
    policy: Policy,
    error: bool = False,
) -> list[str]:
    """Every page of a screen, each fitting one USSD message.

    Pages are cut with room for the invalid-input notice on each, so that a page re-shown with
    the notice is the same page, and ``99`` leads to the same next page either way.
    """
    return list(_layout(menu, screen_name, language, values, policy, error)[0])


def page_choices(
    menu: Menu,
    screen_name: str,
    language: Language,
    values: Mapping[str, object],
    policy: Policy,
    page: int = 0,
) -> frozenset[int]:
    """The numbers of the choices page ``page`` of a screen shows (those whose line begins
    there): all of them on a screen of one page."""
    pages, choices = _layout(menu, screen_name, language, values, policy, False)
    return choices[_within(page, pages)]


def _within(page: int, pages: Sequence) -> int:
    """``page`` as a page ``pages`` has: the first below it, the last beyond it."""
    return min(max(page, 0), len(pages) - 1)


def _layout(menu: Menu, screen_name: str, language: Language, values: Mapping[str, object],
            policy: Policy, error: bool) -> tuple[tuple[str, ...], tuple[frozenset[int], ...]]:
    """The pages of a screen, and the numbers of the choices each shows."""
    # The type goes in the key too: 1 and True are equal keys but different text.
    try:
        frozen = tuple(zip(values.keys(), map(type, values.values()), values.values(),
                           strict=True))
        return _cached_layout(menu, screen_name, language, frozen, policy, error)
    except TypeError:  # an unhashable value: render it uncached
        return _pages(menu, screen_name, language, values, policy, error)


# Rendering is pure and a hop renders a screen two or three times (``ended``, the reply):
# measuring every candidate page in GSM 03.38 dominated a hop's CPU before this cache. The
# menu is keyed by identity (one per process), the policy by value.
@lru_cache(maxsize=4096)
def _cached_layout(menu: Menu, screen_name: str, language: Language, frozen: tuple,
                   policy: Policy, error: bool
                   ) -> tuple[tuple[str, ...], tuple[frozenset[int], ...]]:
    values = {name: value for name, _, value in frozen}
    return _pages(menu, screen_name, language, values, policy, error)


def _pages(
    menu: Menu,
    screen_name: str,
    language: Language,
    values: Mapping[str, object],
    policy: Policy,
    error: bool,
) -> tuple[tuple[str, ...], tuple[frozenset[int], ...]]:
    texts = menu.texts[language]
    lines, first_choice, footer = _lines(menu, screen_name, language, values, policy)
    cut = _cut(lines, footer, texts["nav.more"], head=texts["nav.invalid"])
    pages = tuple(f"{texts['nav.invalid']}\n{page}" if error else page for page, _ in cut)
    choices = tuple(frozenset(index - first_choice + 1 for index in starts
                              if index >= first_choice) for _, starts in cut)
    return pages, choices


def _lines(menu: Menu, screen_name: str, language: Language, values: Mapping[str, object],
           policy: Policy) -> tuple[list[str], int, list[str]]:
    """A screen's lines (its text's, then its choices'), the index of the first choice among
    them, and the navigation line closing each page (none on the start and end screens)."""
    screen, texts = menu.screens[screen_name], menu.texts[language]
    filled = format_values(menu, language, values, policy)
    lines = texts[screen.text].format_map(filled).split("\n")
    choices = option_lines(menu, screen, language, values)
    navigates = screen.nav and not screen.end and screen_name != menu.start
    return lines + choices, len(lines), [texts["nav.back_home"]] if navigates else []


def option_lines(
    menu: Menu, screen: Screen, language: Language, values: Mapping[str, object]
) -> list[str]:
    """The numbered choices of a screen; the profile list marks the current profile, the
    language list names each language in itself."""
    texts = menu.texts[language]
    if screen.listing == "languages":
        return [f"{number}. {menu.texts[each]['language.name']}"
                for number, each in enumerate(LANGUAGES_IN_ORDER, start=1)]
    if screen.listing == "profiles":
        current = values.get("current")
        mark = texts["nav.current"]
        return [
            f"{number}. {profile.title}" + (f" {mark}" if profile.value == current else "")
            for number, profile in enumerate(PROFILES_IN_ORDER, start=1)
        ]
    return [f"{number}. {texts[o.label]}" for number, o in enumerate(screen.options, start=1)]


def choice_count(screen: Screen) -> int:
    """How many numbered choices a screen offers."""
    if screen.listing == "profiles":
        return len(PROFILES_IN_ORDER)
    if screen.listing == "languages":
        return len(LANGUAGES_IN_ORDER)
    return len(screen.options)


def format_values(
    menu: Menu, language: Language, values: Mapping[str, object], policy: Policy
) -> dict[str, str]:
    """The placeholders of the texts, written for reading: names titled, amounts in F CFA."""
    filled = {"cap": str(policy.monthly_cap), "conditions": conditions(menu, language, policy)}
    for name, value in values.items():
        if name in ("target", "current"):
            filled[name] = Profile(str(value)).title
        elif name in ("required", "consumed"):
            filled[name] = format_amount(int(value), language)
        else:
            filled[name] = str(value)
    return filled


def conditions(menu: Menu, language: Language, policy: Policy) -> str:
    """One line per profile, in the fixed order, saying what migrating to it needs."""
    texts = menu.texts[language]
    lines = []
    for profile in PROFILES_IN_ORDER:
        required = policy.required_for(profile)
        template = texts["conditions.threshold"] if required else texts["conditions.free"]
        lines.append(
            template.format_map({"target": profile.title,
                                 "required": format_amount(required, language)})
        )
    return "\n".join(lines)


def paginate(lines: list[str], footer: list[str], more: str, head: str = "") -> list[str]:
    """Cut ``lines`` into pages, ``footer`` closing each, that fit one message with ``head``."""
    return [page for page, _ in _cut(lines, footer, more, head)]


def _cut(lines: list[str], footer: list[str], more: str,
         head: str = "") -> list[tuple[str, frozenset[int]]]:
    """The pages of :func:`paginate`, each with the indexes of the lines that begin on it."""
    room = [head] if head else []
    if fits("\n".join(room + lines + footer)):
        return [("\n".join(lines + footer), frozenset(range(len(lines))))]
    tail = [more, *footer]
    # Each page: (line index, whether the line begins there, text) of what it shows.
    pages: list[list[tuple[int, bool, str]]] = [[]]
    for index, line in enumerate(lines):
        # A line that fits a page goes whole, to the next page if not to this one; a longer one
        # goes word by word, from where the page is: no page left short before it.
        words = [line] if fits("\n".join([*room, line, *tail])) else line.split(" ")
        for number, word in enumerate(words):
            page = pages[-1]
            shown = [text for _, _, text in page]
            if number and fits("\n".join([*room, *shown[:-1], f"{shown[-1]} {word}", *tail])):
                page[-1] = (index, page[-1][1], f"{shown[-1]} {word}")
                continue
            if page and not fits("\n".join([*room, *shown, word, *tail])):
                pages.append(page := [])
            page.append((index, number == 0, word))
    cut = []
    for number, page in enumerate(pages, start=1):
        closing = footer if number == len(pages) else [more, *footer]
        text = "\n".join([*(text for _, _, text in page), *closing])
        if not fits("\n".join([*room, text])):
            raise ScreenTooLongError(f"cannot fit one USSD message: {text!r}")
        cut.append((text, frozenset(index for index, begins, _ in page if begins)))
    return cut


def check_every_screen(menu: Menu, policy: Policy) -> None:
    """Render every screen in every language with the widest values; raise if one cannot fit,
    or if one with choices does not fit one message (see :func:`_choices_apart`)."""
    problems = []
    widest = widest_values(policy)
    for name in menu.screens:
        for language in Language:
            try:
                for error in (False, True):
                    screen_pages(menu, name, language, widest, policy, error)
            except ScreenTooLongError as failure:
                problems.append(Problem(texts_file(language), menu.screens[name].text,
                                        f"screen {name!r} in {language.value}: {failure}"))
                continue
            problems.extend(_choices_apart(menu, name, language, widest, policy))
    if problems:
        raise InvalidMenuError("screens too long for one USSD message:\n  "
                               + "\n  ".join(map(str, problems)), problems)


def _choices_apart(menu: Menu, name: str, language: Language, widest: Mapping[str, object],
                   policy: Policy) -> list[Problem]:
    """A screen with choices must fit one message: in pages, its choices would be on a page
    after the one a subscriber reads first (the engine takes a choice only on its page)."""
    screen = menu.screens[name]
    if not choice_count(screen) or len(screen_pages(menu, name, language, widest, policy)) == 1:
        return []
    texts = menu.texts[language]
    lines, _, footer = _lines(menu, name, language, widest, policy)
    whole = "\n".join([texts["nav.invalid"], *lines, *footer])  # as if on one page
    length, limit = measure(whole)
    odd = outside_gsm(whole)
    alphabet = f"UCS-2 ({odd!r} is not in GSM 03.38)" if odd else "GSM 03.38"
    keys = [screen.text, *(option.label for option in screen.options), *texts]
    key = next((key for key in keys if odd and odd in texts.get(key, "")), screen.text)
    return [Problem(texts_file(language), key, (
        f"screen {name!r} in {language.value}: a screen with choices must fit one message, "
        f"and this one is {length} characters in {alphabet}, over its {limit} (with the "
        f"widest figures and the line {texts['nav.invalid']!r})"))]

