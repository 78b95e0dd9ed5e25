"""Turning a screen and its values into the text of one USSD message (or several pages).

A screen is its text, then its numbered options, then the navigation line. When that does not
fit one message (see :mod:`ussd.text`), it is cut into pages at line boundaries (words, for a
line too long on its own), each page but the last offering ``99`` for the next: a long screen
paginates rather than gets cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from .contract import Reply
from .errors import InvalidMenuError, ScreenTooLongError
from .menu import Menu, Problem, Screen, texts_file
from .rules import LANGUAGES_IN_ORDER, PROFILES_IN_ORDER, Language, Policy, Profile
from .text import fits, format_amount

# What a subscriber types to page on, go back and go home.
MORE = "99"
BACK = "0"
HOME = "00"

# Values as wide as any real one, to check at load time that every screen fits.
WIDEST_VALUES = {
    "target": Profile.NOVAMIX.value,
    "current": Profile.NOVAMIX.value,
    "required": 99_999_999,
    "consumed": 99_999_999,
    "left": 99,
    "used": 99,
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
    page = min(max(page, 0), len(pages) - 1)
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
    # The type goes in the key too: 1 and True are equal keys but different text.
    try:
        frozen = tuple(zip(values.keys(), map(type, values.values()), values.values(),
                           strict=True))
        return list(_cached_pages(menu, screen_name, language, frozen, policy, error))
    except TypeError:  # an unhashable value: render it uncached
        return _pages(menu, screen_name, language, values, policy, error)


# Rendering is pure and a hop renders a screen two or three times (``ended``, the reply):
# measuring every candidate page in GSM 03.38 dominated a hop's CPU before this cache. The
# menu is keyed by identity (one per process), the policy by value.
@lru_cache(maxsize=4096)
def _cached_pages(menu: Menu, screen_name: str, language: Language, frozen: tuple,
                  policy: Policy, error: bool) -> tuple[str, ...]:
    values = {name: value for name, _, value in frozen}
    return tuple(_pages(menu, screen_name, language, values, policy, error))


def _pages(
    menu: Menu,
    screen_name: str,
    language: Language,
    values: Mapping[str, object],
    policy: Policy,
    error: bool,
) -> list[str]:
    screen = menu.screens[screen_name]
    texts = menu.texts[language]
    filled = format_values(menu, language, values, policy)
    lines = texts[screen.text].format_map(filled).split("\n")
    lines += option_lines(menu, screen, language, values)
    navigates = screen.nav and not screen.end and screen_name != menu.start
    footer = [texts["nav.back_home"]] if navigates else []
    pages = paginate(lines, footer, texts["nav.more"], head=texts["nav.invalid"])
    return [f"{texts['nav.invalid']}\n{page}" for page in pages] if error else pages


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
    room = [head] if head else []
    whole = "\n".join(lines + footer)
    if fits("\n".join(room + lines + footer)):
        return [whole]
    units = [unit for line in lines for unit in _wrap(line, [*room, more, *footer])]
    pages: list[list[str]] = [[]]
    for unit in units:
        if pages[-1] and not fits("\n".join(room + pages[-1] + [unit, more, *footer])):
            pages.append([])
        pages[-1].append(unit)
    texts = ["\n".join([*page, more, *footer]) for page in pages[:-1]]
    texts.append("\n".join(pages[-1] + footer))
    for text in texts:
        if not fits("\n".join([*room, text])):
            raise ScreenTooLongError(f"cannot fit one USSD message: {text!r}")
    return texts


def _wrap(line: str, tail: list[str]) -> list[str]:
    """``line`` as it is, or cut between words when it cannot fit a page on its own."""
    if fits("\n".join([line, *tail])):
        return [line]
    chunks: list[str] = []
    for word in line.split(" "):
        if chunks and fits("\n".join([f"{chunks[-1]} {word}", *tail])):
            chunks[-1] = f"{chunks[-1]} {word}"
        else:
            chunks.append(word)
    return chunks


def check_every_screen(menu: Menu, policy: Policy) -> None:
    """Render every screen in every language with the widest values; raise if one cannot fit."""
    problems = []
    for name in menu.screens:
        for language in Language:
            for error in (False, True):
                try:
                    screen_pages(menu, name, language, WIDEST_VALUES, policy, error)
                except ScreenTooLongError as failure:
                    problems.append(Problem(texts_file(language), menu.screens[name].text,
                                            f"screen {name!r} in {language.value}: {failure}"))
                    break
    if problems:
        raise InvalidMenuError("screens too long for one USSD message:\n  "
                               + "\n  ".join(map(str, problems)), problems)
