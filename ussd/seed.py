"""Subscriber and consumption data from CSV files, checked whole before anything is stored.

Two kinds of file, told apart by their header:

* subscribers: ``msisdn,profile[,language]`` (language ``fr`` when absent or empty);
* consumption: ``msisdn,month,amount`` (``month`` as ``YYYY-MM``, ``amount`` in F CFA).

A file with any bad row raises :class:`SeedError` naming every bad row by file and line, and
nothing of it is loaded.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .errors import InvalidMsisdnError, SeedError
from .months import parse_month
from .phone import normalize_msisdn
from .rules import LANGUAGE_BY_CODE, Language, Profile

MAX_AMOUNT = 10**12


class DataKind(StrEnum):
    """What a CSV file holds."""

    SUBSCRIBERS = "subscribers"
    CONSUMPTION = "consumption"


HEADERS = {
    ("msisdn", "profile"): DataKind.SUBSCRIBERS,
    ("msisdn", "profile", "language"): DataKind.SUBSCRIBERS,
    ("msisdn", "month", "amount"): DataKind.CONSUMPTION,
}


@dataclass(frozen=True)
class DataFile:
    """The checked rows of one CSV file."""

    path: str
    kind: DataKind
    rows: tuple[tuple, ...]


def read_data_file(path: Path | str) -> DataFile:
    """Read and check one CSV file; SeedError if anything in it is wrong."""
    path = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SeedError(path, [f"cannot read: {error}"]) from None
    if not lines:
        raise SeedError(path, ["empty file: expected a header line"])
    header = tuple(cell.strip().lower() for cell in lines[0])
    kind = HEADERS.get(header)
    if kind is None:
        known = "; ".join(",".join(h) for h in HEADERS)
        raise SeedError(path, [f"line 1: unknown header {','.join(header)!r} (known: {known})"])
    parse = _subscriber_row if kind is DataKind.SUBSCRIBERS else _consumption_row
    rows, problems, seen = [], [], {}
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header) or len(cells) < (2 if kind is DataKind.SUBSCRIBERS else 3):
            problems.append(f"line {number}: expected {len(header)} fields, got {len(cells)}")
            continue
        try:
            row = parse([cell.strip() for cell in cells])
        except ValueError as error:
            problems.append(f"line {number}: {error}")
            continue
        identity = row[:2] if kind is DataKind.CONSUMPTION else row[:1]
        if identity in seen:
            problems.append(f"line {number}: repeats line {seen[identity]} ({', '.join(identity)})")
            continue
        seen[identity] = number
        rows.append(row)
    if problems:
        raise SeedError(path, problems)
    return DataFile(path, kind, tuple(rows))


def load_files(store, paths) -> list[tuple[DataFile, int]]:
    """Check every file, then store them all: a bad file stops the load before any write."""
    files = [read_data_file(path) for path in paths]
    loaded = []
    for data in files:
        if data.kind is DataKind.SUBSCRIBERS:
            loaded.append((data, store.admin.put_subscribers(data.rows)))
        else:
            loaded.append((data, store.admin.put_consumption(data.rows)))
    return loaded


def _msisdn(text: str) -> str:
    try:
        return normalize_msisdn(text)
    except InvalidMsisdnError as error:
        raise ValueError(str(error)) from None


def _subscriber_row(cells: list[str]) -> tuple[str, Profile, Language]:
    msisdn = _msisdn(cells[0])
    profile = Profile.parse(cells[1])
    if profile is None:
        names = ", ".join(p.title for p in Profile)
        raise ValueError(f"unknown profile {cells[1]!r} (one of {names})")
    language_text = cells[2].lower() if len(cells) > 2 and cells[2] else Language.FR.value
    language = LANGUAGE_BY_CODE.get(language_text)
    if language is None:
        raise ValueError(f"unknown language {cells[2]!r} (fr or en)")
    return msisdn, profile, language


def _consumption_row(cells: list[str]) -> tuple[str, str, int]:
    msisdn = _msisdn(cells[0])
    parse_month(cells[1])
    if not cells[2].isdigit() or int(cells[2]) > MAX_AMOUNT:
        raise ValueError(f"amount must be a whole number of F CFA, got {cells[2]!r}")
    return msisdn, cells[1], int(cells[2])
