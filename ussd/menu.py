"""Menu definitions: parsed once at start-up from ``menus/`` into frozen, checked values.

``menus/menu.toml`` holds the screens; ``menus/texts/<language>.toml`` the words of each
language. :func:`parse_menu` refuses a broken menu with an :class:`InvalidMenuError` that says
what is wrong and where: an unknown target or action, a text missing in a language, a
placeholder the engine does not fill. Each problem says where it is (:class:`Problem`: the file
and the place in it), so that the files' lines can be named. Reading the files, and checking
that every screen fits one USSD message, is :func:`ussd.menu_files.load_menu`'s job.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from .errors import InvalidMenuError
from .rules import Language, Reason

# The actions a screen may name. Those that decide a migration route by the reasons of their
# outcomes; set_language goes to the screen's `next`; resume and restart answer the resume
# screen (see ussd/resume.py).
ACTIONS = ("choose_profile", "migrate", "set_language", "resume", "restart")
DECIDING = ("choose_profile", "migrate")
LISTS = {"profiles": "choose_profile", "languages": "set_language"}  # list -> its action
REFUSALS = (Reason.SAME_PROFILE, Reason.MONTHLY_LIMIT_REACHED, Reason.INSUFFICIENT_CONSUMPTION)
SYSTEM_SCREENS = (
    "unknown_subscriber", "too_many_invalid", "unavailable", "goodbye", "invalid_request",
    "resume", "processing", "busy",
)

# The placeholders the engine fills (see engine.screen_values and render.format_values).
FIELDS = frozenset(
    {"target", "current", "required", "consumed", "left", "used", "cap", "conditions"}
)
# Texts every language must have besides those the screens name.
COMMON_TEXTS = (
    "nav.back_home",
    "nav.more",
    "nav.invalid",
    "nav.current",
    "language.name",  # the language's own name, in the language list of every language
    "conditions.free",
    "conditions.threshold",
)
# The lines of {conditions} are filled per profile with these alone (render.conditions).
CONDITION_TEXTS = ("conditions.free", "conditions.threshold")
CONDITION_FIELDS = frozenset({"target", "required"})


class Problem(NamedTuple):
    """What is wrong in a menus folder, and where: ``file`` (``menu.toml``,
    ``texts/fr.toml``...), ``place`` the dotted TOML name of the table or key
    (``screens.main``, ``nav.more``), ``needle`` text on the line within it when the place is
    a table (an option's label); ``str()`` is the message alone."""

    file: str
    place: str
    message: str
    needle: str = ""

    def __str__(self) -> str:
        return self.message


MENU = "menu.toml"


def texts_file(language: Language) -> str:
    """The texts file of ``language``, as problems name it."""
    return f"texts/{language.value}.toml"


@dataclass(frozen=True)
class Option:
    """One numbered choice of a screen: go to a screen, or run an action."""

    label: str
    goto: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class Screen:
    """One screen of the dialogue."""

    name: str
    text: str
    options: tuple[Option, ...] = ()
    listing: str | None = None
    action: str | None = None
    outcomes: Mapping[Reason, str] = field(default_factory=lambda: MappingProxyType({}))
    end: bool = False
    fields: frozenset[str] = frozenset()  # placeholders its texts use, in any language
    next: str | None = None  # where a list's action that decides nothing goes
    nav: bool = True  # the "0 Retour | 00 Accueil" line (not on a screen with nowhere back)


@dataclass(frozen=True, eq=False)
class Menu:
    """The whole dialogue: screens, the texts of every language, and its few settings.

    Compared and hashed by identity (one per process, loaded at start-up), so that the
    renderer's cache can be keyed by the menu itself.
    """

    start: str
    screens: Mapping[str, Screen]
    texts: Mapping[Language, Mapping[str, str]]
    system: Mapping[str, str]
    max_invalid: int


def parse_menu(structure: Mapping, texts: Mapping[Language, Mapping[str, str]]) -> Menu:
    """Build a checked :class:`Menu` from already-read data."""
    problems: list[Problem] = []
    raw_screens = structure.get("screens")
    if not isinstance(raw_screens, Mapping) or not raw_screens:
        raise InvalidMenuError("menu.toml: no [screens]")
    screens = {}
    for name, raw in raw_screens.items():
        try:
            screens[name] = _parse_screen(name, raw, texts)
        except (TypeError, ValueError, KeyError) as error:
            needle = getattr(error, "needle", "")
            said = error.args[0] if isinstance(error, KeyError) and error.args else error
            problems.append(Problem(MENU, f"screens.{name}", f"screen {name!r}: {said}", needle))
    start = structure.get("start")
    if start not in raw_screens:
        problems.append(Problem(MENU, "start", f"start screen {start!r} does not exist"))
    system = structure.get("system", {})
    for role in SYSTEM_SCREENS:
        if system.get(role) not in raw_screens:
            problems.append(Problem(MENU, f"system.{role}" if role in system else "system",
                                    f"[system] {role} names no screen ({system.get(role)!r})"))
    max_invalid = structure.get("max_invalid", 2)
    if not isinstance(max_invalid, int) or max_invalid < 0:
        problems.append(Problem(MENU, "max_invalid",
                                f"max_invalid must be a whole number >= 0, got {max_invalid!r}"))
    for screen in screens.values():
        problems.extend(_dangling(screen, raw_screens))
    resume = screens.get(system.get("resume"))
    if resume is not None and {o.action for o in resume.options} != {"resume", "restart"}:
        problems.append(Problem(MENU, f"screens.{resume.name}",
                                f"screen {resume.name!r} ([system] resume) needs two options, "
                                "actions 'resume' and 'restart'"))
    for language in Language:
        where = texts_file(language)
        for key in COMMON_TEXTS:
            if key not in texts.get(language, {}):
                problems.append(Problem(where, key.rpartition(".")[0],
                                        f"{where}: missing {key!r}"))
        for key, value in texts.get(language, {}).items():
            problems.extend(Problem(where, key, f"{where} {key!r}: {problem}")
                            for problem in _placeholders(value)[1])
            if key in CONDITION_TEXTS:
                problems.extend(
                    Problem(where, key, f"{where} {key!r}: placeholder {{{name}}} is not "
                            "filled in a conditions line (only {target} and {required} are)")
                    for name in sorted(_placeholders(value)[0] - CONDITION_FIELDS)
                )
    if problems:
        raise InvalidMenuError("invalid menu:\n  " + "\n  ".join(map(str, problems)),
                               problems)
    return Menu(
        start=start,
        screens=MappingProxyType(screens),
        texts=MappingProxyType({lang: MappingProxyType(dict(t)) for lang, t in texts.items()}),
        system=MappingProxyType(dict(system)),
        max_invalid=max_invalid,
    )


def _parse_screen(name: str, raw: Mapping, texts: Mapping[Language, Mapping[str, str]]) -> Screen:
    if not isinstance(raw, Mapping):
        raise TypeError("must be a table")
    unknown = set(raw) - {"text", "options", "list", "action", "outcomes", "end", "next", "nav"}
    if unknown:
        raise _located(ValueError(f"unknown keys {sorted(unknown)}"), sorted(unknown)[0])
    options = tuple(
        Option(label=o["label"], goto=o.get("goto"), action=o.get("action"))
        for o in raw.get("options", [])
    )
    outcomes = {Reason(reason): target for reason, target in raw.get("outcomes", {}).items()}
    labels = [raw["text"], *(option.label for option in options)]
    fields: set[str] = set()
    for language in Language:
        for key in labels:
            if key not in texts.get(language, {}):
                raise _located(KeyError(f"text {key!r} missing in {texts_file(language)}"),
                               f'"{key}"')
            fields |= _placeholders(texts[language][key])[0]
    return Screen(
        name=name,
        text=raw["text"],
        options=options,
        listing=raw.get("list"),
        action=raw.get("action"),
        outcomes=MappingProxyType(outcomes),
        end=bool(raw.get("end", False)),
        fields=frozenset(fields),
        next=raw.get("next"),
        nav=bool(raw.get("nav", True)),
    )


def _located(error: Exception, needle: str) -> Exception:
    error.needle = needle  # the text on the screen's lines where it is wrong (Problem.needle)
    return error


def _dangling(screen: Screen, names: Mapping) -> list[Problem]:
    """What in ``screen`` points nowhere, or is missing for its actions to work."""
    problems = []
    where = f"screen {screen.name!r}"

    def problem(message: str, needle: str = "") -> None:
        problems.append(Problem(MENU, f"screens.{screen.name}", f"{where}: {message}", needle))

    if screen.listing is not None and screen.listing not in LISTS:
        problem(f"unknown list {screen.listing!r} (known: {', '.join(LISTS)})", "list")
    elif screen.listing is not None and screen.action != LISTS[screen.listing]:
        problem(f"the {screen.listing} list needs action {LISTS[screen.listing]!r}", "action")
    if screen.action == "set_language" and screen.next not in names:
        problem(f"set_language needs `next`, the screen it goes to ({screen.next!r} is none)",
                "next" if screen.next else "")
    actions = [screen.action] if screen.action else []
    for option in screen.options:
        label = f'"{option.label}"'
        if (option.goto is None) == (option.action is None):
            problem(f"option {option.label!r} needs exactly one of goto/action", label)
        if option.goto is not None and option.goto not in names:
            problem(f"option {option.label!r} goes to unknown {option.goto!r}", label)
        if option.action is not None:
            actions.append(option.action)
    for action in actions:
        if action not in ACTIONS:
            problem(f"unknown action {action!r} (known: {', '.join(ACTIONS)})", f'"{action}"')
    if any(action in DECIDING for action in actions):
        for reason in (Reason.APPROVED, *REFUSALS):
            if reason not in screen.outcomes:
                problem(f"no outcome for {reason.value!r}", "outcomes")
    for reason, target in screen.outcomes.items():
        if target not in names:
            problem(f"outcome {reason.value!r} goes to unknown {target!r}", f'"{target}"')
    if screen.end and (screen.options or screen.listing):
        problem("an end screen cannot offer choices")
    return problems


def _placeholders(template: str) -> tuple[set[str], list[str]]:
    """The names a template fills, and what is wrong with it (format specs, attributes...)."""
    names: set[str] = set()
    problems: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        return names, [f"bad braces ({error})"]
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in FIELDS:
            problems.append(f"unknown placeholder {{{name}}} (known: {', '.join(sorted(FIELDS))})")
        elif spec or conversion:
            problems.append(f"placeholder {{{name}}} must be plain, without !conversion or :spec")
        names.add(name)
    return names, problems
