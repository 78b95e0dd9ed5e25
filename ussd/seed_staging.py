"""Where ``ussd seed`` keeps a load's checked rows until every file has passed: a private
SQLite database on disk (the standard library's ``sqlite3``), so that finding repeated rows
and holding what to store costs a few MiB of memory whatever the files' size; a file's
problems as they are found; and how far a load has got, for its progress bars."""

from __future__ import annotations

import io
import os
import sqlite3
from collections.abc import Callable, Iterator
from enum import StrEnum

from .rules import LANGUAGE_BY_CODE, PROFILE_BY_VALUE

BATCH = 1000  # rows per SQLite statement and per Redis round trip
MAX_PROBLEMS = 1000  # a file's problems named in full; beyond, counted

# Called as a load goes: ("checking", bytes read, bytes in all), then ("loading", rows
# stored, rows in all).
Progress = Callable[[str, int, int], None]


class DataKind(StrEnum):
    """What a CSV file holds."""

    SUBSCRIBERS = "subscribers"
    CONSUMPTION = "consumption"


class Staging:
    """The checked rows of a load, in a temporary SQLite database on disk (deleted on close)."""

    def __init__(self):
        # "": a private temporary database on disk, its cache a few MiB whatever its size.
        self.db = sqlite3.connect("")
        self.db.execute("CREATE TABLE rows (file INTEGER, line INTEGER, msisdn TEXT, "
                        "b TEXT, c TEXT, PRIMARY KEY (file, line))")
        self.db.execute("CREATE TABLE known (msisdn TEXT PRIMARY KEY)")
        self.db.execute("CREATE TABLE unknown (file INTEGER, msisdn TEXT)")  # no subscriber's
        # The files not read whole that may have held subscribers (unreadable, or of a header
        # we do not know): a subscriber not found may be in one of them.
        self.unread: list[str] = []

    def add(self, file: int, batch: list[tuple]) -> None:
        self.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?, ?)",
                            [(file, *row) for row in batch])

    def count(self, file: int) -> int:
        return self.db.execute("SELECT count(*) FROM rows WHERE file = ?", (file,)).fetchone()[0]

    def repeats(self, file: int, kind: DataKind) -> Iterator[tuple[int, int, str, str]]:
        """``(line, first line, msisdn, month)`` of each row repeating an earlier one of its
        file (the same number; for consumption, the same number and month), by line."""
        # Indexed once the first file is staged: one sort, rather than a B-tree kept up to
        # date through every insert.
        self.db.execute("CREATE INDEX IF NOT EXISTS identity ON rows (file, msisdn, b, line)")
        identity = "msisdn, b" if kind is DataKind.CONSUMPTION else "msisdn"
        repeated = self.db.execute(
            f"SELECT {identity}, group_concat(line) FROM rows WHERE file = ? "
            f"GROUP BY {identity} HAVING count(*) > 1", (file,))
        found = []
        for *_, lines in repeated:
            first, *later = sorted(int(line) for line in lines.split(","))
            found += [(line, first, *_) for line in later]
        for line, first, msisdn, *month in sorted(found):
            yield line, first, msisdn, month[0] if month else ""

    def rows(self, file: int, kind: DataKind) -> Iterator[tuple]:
        """A staged file's rows, in its order, as :func:`read_data_file` gives them."""
        rows = self.db.execute("SELECT msisdn, b, c FROM rows WHERE file = ? ORDER BY line",
                               (file,))
        for msisdn, b, c in rows:
            yield ((msisdn, PROFILE_BY_VALUE[b], LANGUAGE_BY_CODE[c])
                   if kind is DataKind.SUBSCRIBERS else (msisdn, b, int(c)))

    def stored_before(self, file: int, earlier: list[int],
                      known: Callable[[list[str]], set[str]],
                      advance: Callable[[int], None]) -> int:
        """How many numbers of subscribers file ``file`` a load finds stored already: given in
        the ``earlier`` subscribers files of this load, or ``known`` (which of these numbers
        are subscribers: one look-up per ``BATCH`` numbers); ``advance`` told of each batch."""
        given = f"SELECT msisdn FROM rows WHERE file IN ({', '.join('?' * len(earlier))})"
        [[stored]] = self.db.execute(
            f"SELECT count(*) FROM rows WHERE file = ? AND msisdn IN ({given})", (file, *earlier))
        advance(stored)
        cursor = self.db.execute(
            f"SELECT msisdn FROM rows WHERE file = ? AND msisdn NOT IN ({given})", (file, *earlier))
        while batch := [msisdn for (msisdn,) in cursor.fetchmany(BATCH)]:
            stored += len(known(batch))
            advance(len(batch))
        return stored

    def close(self) -> None:
        self.db.close()


class Problems:
    """A file's problems: the first ``MAX_PROBLEMS`` named, all counted, and the bad rows they
    are in (a row may have two: repeated, and of an unknown subscriber)."""

    def __init__(self):
        self.named: list[str] = []
        self.total = 0
        self.rows = 0

    def add(self, problem: str, row: bool = True) -> None:
        """Count ``problem``; ``row``: it makes one more bad row (False: a row told of
        already, or the file's own problem)."""
        self.total += 1
        self.rows += row
        if len(self.named) < MAX_PROBLEMS:
            self.named.append(problem)

    def in_order(self) -> list[str]:
        """The problems named, by line (the file's own, of no line, first)."""
        return sorted(self.named, key=_line_of)


def _line_of(problem: str) -> int:
    return int(problem.split(":")[0].removeprefix("line ")) if problem.startswith("line ") else 0


class CountingReader(io.RawIOBase):
    """A binary file that reports the bytes read to ``progress``."""

    def __init__(self, raw, progress: Callable[[int], None] | None):
        self.raw, self.progress = raw, progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        read = self.raw.readinto(buffer)
        if self.progress is not None and read:
            self.progress(read)
        return read


def file_size(path: str) -> int:
    """Bytes of the file at ``path`` (a meter's total), 0 when it cannot be read: said when
    the file is read."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


class Meter:
    """Adds up what one phase of a load has done, for ``progress``."""

    def __init__(self, progress: Progress | None, phase: str, total: int):
        self.progress, self.phase, self.total, self.done = progress, phase, total, 0

    def advance(self, amount: int) -> None:
        self.done += amount
        if self.progress is not None:
            self.progress(self.phase, self.done, self.total)


def counted(rows: Iterator, advance: Callable[[int], None]) -> Iterator:
    """``rows``, telling ``advance`` of each ``BATCH`` of them as they go by."""
    for count, row in enumerate(rows, start=1):
        if count % BATCH == 0:
            advance(BATCH)
        yield row
