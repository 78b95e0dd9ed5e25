"""A menus folder read: ``menu.toml`` and ``texts/<language>.toml``, parsed and checked.

The menus are the repository's top-level ``menus/`` folder, shipped inside the wheel as
``ussd/menus/`` (package data read through ``importlib.resources``, so a wheel installed
anywhere finds them: ``settings.shipped_menus``); ``USSD_MENUS_DIR`` names
another folder instead. :mod:`ussd.menu` turns the parsed TOML into checked, frozen values
and :mod:`ussd.render` writes screens; this module joins the two at start-up (every screen
rendered once with the widest values, so one that cannot fit a USSD message is refused
before any hop), so that neither of them imports the other. Every problem is reported with
its file and line (``ussd menu check`` prints them all), every file's syntax errors at once.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path

from .billing.receipt import check_receipts
from .errors import InvalidMenuError
from .menu import Menu, Problem, parse_menu, texts_file
from .render import check_every_screen
from .rules import Language, Policy


def load_menu(directory: Traversable | Path | str, policy: Policy | None = None) -> Menu:
    """Read, parse and check the menu in ``directory`` (a folder, or the package's
    ``settings.DEFAULT_MENUS_DIR``); InvalidMenuError if anything is broken."""
    if isinstance(directory, str):
        directory = Path(directory)
    files = {name: _read_toml(_file(directory, name))
             for name in ("menu.toml", *(texts_file(language) for language in Language))}
    broken = [problem for problem in files.values() if isinstance(problem, str)]
    if broken:
        raise InvalidMenuError("invalid menu:\n  " + "\n  ".join(broken))
    try:
        problems: list[Problem] = []
        texts = {language: _flatten(files[texts_file(language)], texts_file(language), problems)
                 for language in Language}
        if problems:
            raise InvalidMenuError("invalid menu:\n  " + "\n  ".join(map(str, problems)),
                                   problems)
        menu = parse_menu(files["menu.toml"], texts)
        check_every_screen(menu, policy or Policy())
        check_receipts(menu, policy or Policy())
    except InvalidMenuError as error:
        raise _with_lines(directory, error) from None
    return menu


def _file(directory: Traversable, name: str) -> Traversable:
    return directory.joinpath(*name.split("/"))


def _read_toml(path: Traversable) -> dict | str:
    """The parsed file, or what is wrong with it (its path and line first)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (FileNotFoundError, NotADirectoryError):
        return (f"{path}: file not found (USSD_MENUS_DIR names the menus folder; unset, the "
                "menus shipped in the package are used)")
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+), column \d+\)", str(error))
        return f"{path}:{found.group(1) if found else 1}: {error}"


def _with_lines(directory: Traversable, error: InvalidMenuError) -> InvalidMenuError:
    """``error`` with each problem preceded by its file and line (``menus/menu.toml:12:``)."""
    if not error.problems:
        return error
    head = str(error).split("\n", 1)[0]
    lines = []
    for problem in error.problems:
        path = _file(directory, problem.file)
        line = line_of(path.read_text(encoding="utf-8"), problem.place, problem.needle)
        lines.append(f"{path}:{line}: {problem.message}")
    return InvalidMenuError(head + "\n  " + "\n  ".join(lines), error.problems)


def line_of(text: str, place: str, needle: str = "") -> int:
    """The line (from 1) of ``place`` in a TOML file: a key's line, or a table's header, or
    the first line of the table holding ``needle``; the nearest table's when the place is
    not written (a missing key), else 1."""
    tables: dict[str, tuple[int, int]] = {"": (1, 1)}  # table -> (header, last line)
    keys: dict[str, int] = {}
    table, lines = "", text.splitlines()
    for number, line in enumerate(lines, start=1):
        stripped = line.split("#", 1)[0].strip() if not line.lstrip().startswith("{") else ""
        if stripped.startswith("[") and not stripped.startswith("[["):
            table = stripped.strip("[]").strip()
            tables[table] = (number, number)
            continue
        tables[table] = (tables[table][0], number)
        if "=" in stripped and not stripped.startswith(("{", "]")):
            key = stripped.split("=", 1)[0].strip().strip('"')
            keys.setdefault(f"{table}.{key}" if table else key, number)
    if place in keys and not needle:
        return keys[place]
    while place not in tables and "." in place:
        place = place.rsplit(".", 1)[0]  # a key not written: its table
    first, last = tables.get(place, (1, 1))
    if needle:
        for number in range(first, last + 1):
            if needle in lines[number - 1]:
                return number
    return first


def _flatten(table: Mapping, file: str, problems: list[Problem],
             prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": "x"}}`` -> ``{"a.b": "x"}``: texts are addressed by dotted keys. A value
    that is not text is added to ``problems``."""
    flat: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, file, problems, f"{prefix}{key}."))
        elif isinstance(value, str):
            flat[f"{prefix}{key}"] = value
        else:
            problems.append(Problem(file, prefix + key,
                                    f"text {prefix + key!r} must be a string, got {value!r}"))
    return flat
