"""Subscriber and consumption data from CSV files, streamed: every file checked whole before
anything is stored, in memory that does not grow with the files.

Two kinds of file, told apart by their header:

* subscribers: ``msisdn,profile[,language]`` (language ``fr`` when absent or empty);
* consumption: ``msisdn,month,amount`` (``month`` as ``YYYY-MM``, ``amount`` in F CFA): for a
  known subscriber (in Redis, or in a subscribers file given before it), and a month that has
  begun.

Each file is read once, row by row (its header line before, to load subscribers' files first:
so a file on disk, not a pipe), and its checked rows are staged in a private SQLite
database on disk (the standard library's ``sqlite3``: its index finds repeated rows and its
table holds what to store, so a file of any size costs a few MiB of memory). Every file is
read, even after a bad one: when files have bad rows, or none, one :class:`SeedError` names
each bad file's rows by line (a consumption file's rows of unknown subscribers with its other
bad rows, looked up 1000 numbers per round trip once the file is read: a bad subscribers
file's good rows count as known, and when a file that may hold subscribers could not be read,
an unknown one is said to be perhaps in it), and nothing of any file is loaded; otherwise the
staged rows go to Redis, 1000 per round trip.

A subscribers file adds the subscribers not stored yet; one stored already (by an earlier
load, or a file before in this one) keeps its profile and language, which may have changed
since the file was made (a migration, a language chosen), unless the load is told to replace
them. A consumption row sets its month's total: billing's figure is the truth.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import SeedError
from .seed_rows import consumption_row, subscriber_row
from .seed_staging import (
    BATCH,
    CountingReader,
    DataKind,
    Meter,
    Problems,
    Progress,
    Staging,
    counted,
    file_size,
)

MAX_FIELD = 64  # characters: a number, a profile, a month, an amount are far shorter

HEADERS = {
    ("msisdn", "profile"): DataKind.SUBSCRIBERS,
    ("msisdn", "profile", "language"): DataKind.SUBSCRIBERS,
    ("msisdn", "month", "amount"): DataKind.CONSUMPTION,
}


@dataclass(frozen=True)
class DataFile:
    """A checked CSV file: its kind and how many rows it has (``rows``: the rows themselves,
    from :func:`read_data_file` only; ``stored``: of a subscribers file, how many of its
    subscribers were stored already, from :func:`load_files` only)."""

    path: str
    kind: DataKind
    count: int
    rows: tuple[tuple, ...] = ()
    stored: int | None = None


def read_data_file(path: Path | str, this_month: str | None = None) -> DataFile:
    """Check one small file alone and return its rows (consumption subscribers unchecked);
    SeedError if anything in it is wrong. Loading goes through :func:`load_files`."""
    rows: list[tuple] = []
    staging = Staging()
    try:
        kind = _stage(staging, 0, str(path), this_month, rows.append)
    finally:
        staging.close()  # its temporary database, now rather than when collected
    return DataFile(str(path), kind, len(rows), tuple(rows))


def check_files(paths: Iterable, this_month: str | None = None) -> list[DataFile]:
    """Check each file's rows alone (not whether its consumption's subscribers exist), in
    bounded memory; one SeedError naming every bad file's rows, as :func:`load_files` does."""
    staging = Staging()
    try:
        return _check_all(staging, paths, this_month)
    finally:
        staging.close()


def load_files(store, paths: Iterable, this_month: str | None = None, dry_run: bool = False,
               progress: Progress | None = None,
               replace: bool = False) -> list[tuple[DataFile, int]]:
    """Check every file, then store them all (``dry_run``: store nothing): bad files stop the
    load before any write, with one SeedError naming every bad file's rows. ``store`` (None:
    nobody is known but the files' own) tells which subscribers exist; ``this_month``
    (``YYYY-MM``) refuses the months after it. A subscriber stored already keeps its profile
    and language, unless ``replace``. Each file with how many rows were stored (checked, for
    a dry run), a subscribers file with how many of its subscribers were stored already
    (``DataFile.stored``; a dry run looks them up, 1000 per round trip)."""
    paths = [str(path) for path in paths]
    known = store.admin.known_subscribers if store is not None else _nobody
    staging = Staging()
    try:
        read = Meter(progress, "checking", sum(map(file_size, paths)))
        files = _check_all(staging, paths, this_month, read.advance, known)
        if dry_run:
            return _look_up(staging, files, known, progress)
        loaded = []
        stored = Meter(progress, "loading", sum(data.count for data in files))
        for number, data in enumerate(files):
            rows = counted(staging.rows(number, data.kind), stored.advance)
            if data.kind is DataKind.SUBSCRIBERS:
                report = store.admin.add_subscribers(rows, replace)
                loaded.append((dataclasses.replace(data, stored=report.stored),
                               report.added + report.stored))
            else:
                loaded.append((data, store.admin.put_consumption(rows)))
        return loaded
    finally:
        staging.close()


def _look_up(staging: Staging, files: list[DataFile], known: Callable[[list[str]], set[str]],
             progress: Progress | None) -> list[tuple[DataFile, int]]:
    """What a dry run tells of the checked ``files``: each with its rows, a subscribers file
    with how many of its subscribers a load would find stored already (in Redis, or in a
    subscribers file before it)."""
    looked_up = Meter(progress, "looking up", sum(data.count for data in files
                                                  if data.kind is DataKind.SUBSCRIBERS))
    told, earlier = [], []
    for number, data in enumerate(files):
        if data.kind is DataKind.SUBSCRIBERS:
            stored = staging.stored_before(number, earlier, known, looked_up.advance)
            data = dataclasses.replace(data, stored=stored)
            earlier.append(number)
        told.append((data, data.count))
    return told


def _check_all(staging: Staging, paths: Iterable, this_month: str | None,
               progress: Callable[[int], None] | None = None,
               known: Callable[[list[str]], set[str]] | None = None) -> list[DataFile]:
    """Read and check every file into ``staging``, on past a bad one to name its problems too;
    one SeedError telling of every bad file. Subscribers' files first, whatever the order
    given: a consumption row's subscriber may be in any of them (and they are stored first
    too); each kind in the order given, told of and stored in that order."""
    files, bad = [], []
    for number, path in enumerate(sorted(map(str, paths), key=_consumption_first_last)):
        if os.path.exists(path) and not os.path.isfile(path):  # read twice: its header first
            bad.append(SeedError(path, ["not a regular file (a pipe, a device?): give a file "
                                        "on disk"], rows=0))
            continue
        try:
            kind = _stage(staging, number, path, this_month, progress=progress, known=known)
        except SeedError as error:
            bad.append(error)
            continue
        files.append(DataFile(path, kind, staging.count(number)))
    if bad:
        raise SeedError.of_files(bad)
    return files


def _stage(staging: Staging, number: int, path: str, this_month: str | None,
           keep: Callable[[tuple], None] | None = None,
           progress: Callable[[int], None] | None = None,
           known: Callable[[list[str]], set[str]] | None = None) -> DataKind:
    """Read and check one file into ``staging`` (and hand each row to ``keep``); with
    ``known`` (which of these numbers are subscribers), a consumption row's subscriber too."""
    problems = Problems()
    try:
        with open(path, "rb") as raw:
            reader = CountingReader(raw, progress)
            handle = io.TextIOWrapper(reader, encoding="utf-8-sig", newline="")
            lines = csv.reader(handle)
            header = next(lines, None)
            if header is None:
                raise SeedError(path, ["empty file: expected a header line"], rows=0)
            header_key = _header_key(header)
            kind = HEADERS.get(header_key)
            if kind is None:
                staging.unread.append(path)  # rows not read: subscribers, for all we know
                headers = "; ".join(",".join(h) for h in HEADERS)
                raise SeedError(path, [f"line 1: unknown header {','.join(header_key)!r} "
                                       f"(known: {headers})"], rows=0)
            parse = subscriber_row if kind is DataKind.SUBSCRIBERS else consumption_row
            least, most = (2 if kind is DataKind.SUBSCRIBERS else 3), len(header_key)
            batch: list[tuple] = []
            total = 0
            ended = lines.line_num  # a record's first line: a quoted field may hold newlines
            for cells in lines:
                line, ended = ended + 1, lines.line_num
                if not any(cell.strip() for cell in cells):
                    continue
                if not least <= len(cells) <= most:
                    problems.add(f"line {line}: expected {most} fields, got {len(cells)}")
                    continue
                if (longest := max(map(len, cells))) > MAX_FIELD:  # not quoted whole, below
                    problems.add(f"line {line}: a field of {longest} characters (at most "
                                 f"{MAX_FIELD})")
                    continue
                try:
                    row = parse([cell.strip() for cell in cells], this_month)
                except ValueError as error:
                    problems.add(f"line {line}: {error}")
                    continue
                total += 1
                if keep is not None:
                    keep(row)
                batch.append((line, row[0], *(str(value) for value in row[1:])))
                if len(batch) == BATCH:
                    staging.add(number, batch)
                    batch = []
            staging.add(number, batch)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        if _header_kind(path) is not DataKind.CONSUMPTION:
            staging.unread.append(path)  # not read whole: it may have held subscribers
        raise SeedError(path, [f"cannot read: {error}"], rows=0) from None
    repeated = set()  # lines: a repeated row of an unknown subscriber is one bad row, not two
    for line, first, msisdn, second in staging.repeats(number, kind):
        identity = msisdn if kind is DataKind.SUBSCRIBERS else f"{msisdn}, {second}"
        problems.add(f"line {line}: repeats line {first} ({identity})")
        repeated.add(line)
    if kind is DataKind.CONSUMPTION and known is not None:
        # The rows that were read, even when others were not: every bad row named at once.
        _check_subscribers(staging, number, known, problems, repeated)
    if not problems.total and not total:
        problems.add("no rows: expected at least one after the header", row=False)
    if kind is DataKind.SUBSCRIBERS:
        # A bad file's good rows too: the consumption files after it are not refused for them.
        staging.db.execute("INSERT OR IGNORE INTO known SELECT msisdn FROM rows WHERE file = ?",
                           (number,))
    if problems.total:
        raise SeedError(path, problems.in_order(), total=problems.total, rows=problems.rows)
    return kind


def _check_subscribers(staging: Staging, number: int, known: Callable[[list[str]], set[str]],
                       problems: Problems, repeated: set[int]) -> None:
    """Add to ``problems`` every staged consumption row whose subscriber is neither ``known``
    (in Redis) nor in a subscribers file given before (one look-up per 1000 numbers); a row
    ``repeated`` (its line), counted as a bad row already."""
    cursor = staging.db.execute(
        "SELECT DISTINCT msisdn FROM rows WHERE file = ? AND msisdn NOT IN "
        "(SELECT msisdn FROM known)", (number,))
    unknown = 0
    while batch := [msisdn for (msisdn,) in cursor.fetchmany(BATCH)]:
        subscribers = known(batch)
        missing = [(number, msisdn) for msisdn in batch if msisdn not in subscribers]
        staging.db.executemany("INSERT INTO unknown VALUES (?, ?)", missing)
        unknown += len(missing)
    if not unknown:
        return  # spares a pass over the file's rows
    # Not "load the subscribers first" when they may be in a file we could not read.
    why = (f"it may be in {' or '.join(staging.unread)}, whose rows could not be read"
           if staging.unread else "load the subscribers first")
    for line, msisdn in staging.db.execute(
            "SELECT line, msisdn FROM rows WHERE file = ? AND msisdn IN "
            "(SELECT msisdn FROM unknown WHERE file = ?) ORDER BY line", (number, number)):
        problems.add(f"line {line}: no subscriber {msisdn} ({why})", row=line not in repeated)


def _consumption_first_last(path: str) -> bool:
    """True for a file whose header is consumption's; any other, unreadable ones included,
    goes first and is told of there."""
    return _header_kind(path) is DataKind.CONSUMPTION


def _header_kind(path: str) -> DataKind | None:
    """The kind a file's header line names, that line read alone: a bad byte further on (in
    the first chunk :func:`_stage` decodes) does not hide it. None for no header we know, and
    for what is not a regular file (a named pipe would block its open, and lose its line)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as handle:
            line = handle.readline(1024).decode("utf-8-sig")
        return HEADERS.get(_header_key(next(csv.reader([line]), [])))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def _header_key(header: list[str]) -> tuple[str, ...]:
    """A header line as :data:`HEADERS` knows it: its cells trimmed, in lower case."""
    return tuple(cell.strip().lower() for cell in header)


def _nobody(numbers: list[str]) -> set[str]:
    return set()

