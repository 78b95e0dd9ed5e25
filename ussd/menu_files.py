"""A menus folder read: ``menu.toml`` and ``texts/<language>.toml``, parsed and checked.

The menus are the repository's top-level ``menus/`` folder, shipped inside the wheel as
``ussd/menus/`` (package data read through ``importlib.resources``, so a wheel installed
anywhere finds them: ``settings.shipped_menus``); ``USSD_MENUS_DIR`` names
another folder instead. :mod:`ussd.menu` turns the parsed TOML into checked, frozen values
and :mod:`ussd.render` writes screens; this module joins the two at start-up (every screen
rendered once with the widest values, so one that cannot fit a USSD message is refused
before any hop), so that neither of them imports the other.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path

from .billing.receipt import check_receipts
from .errors import InvalidMenuError
from .menu import Menu, parse_menu
from .render import check_every_screen
from .rules import Language, Policy


def load_menu(directory: Traversable | Path | str, policy: Policy | None = None) -> Menu:
    """Read, parse and check the menu in ``directory`` (a folder, or the package's
    ``settings.DEFAULT_MENUS_DIR``); InvalidMenuError if anything is broken."""
    if isinstance(directory, str):
        directory = Path(directory)
    structure = _read_toml(directory / "menu.toml")
    texts = {
        language: _flatten(_read_toml(directory / "texts" / f"{language.value}.toml"))
        for language in Language
    }
    menu = parse_menu(structure, texts)
    check_every_screen(menu, policy or Policy())
    check_receipts(menu, policy or Policy())
    return menu


def _read_toml(path: Traversable) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidMenuError(f"{path}: file not found (USSD_MENUS_DIR names the menus folder; "
                               "unset, the menus shipped in the package are used)") from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidMenuError(f"{path}: {error}") from None


def _flatten(table: Mapping, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": "x"}}`` -> ``{"a.b": "x"}``: texts are addressed by dotted keys."""
    flat: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        elif isinstance(value, str):
            flat[f"{prefix}{key}"] = value
        else:
            raise InvalidMenuError(f"text {prefix + key!r} must be a string, got {value!r}")
    return flat
