"""Subscriber and consumption CSV files, checked whole before anything is stored (ussd/seed.py)."""

from __future__ import annotations

import fakeredis
import pytest

from ussd.errors import SeedError
from ussd.phone import normalize_msisdn
from ussd.rules import Channel, Language, Profile
from ussd.seed import DataKind, check_files, load_files, read_data_file
from ussd.store import Store


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def problems_of(path):
    with pytest.raises(SeedError) as failure:
        read_data_file(path)
    assert failure.value.path == str(path)
    assert str(path) in str(failure.value)
    assert "nothing loaded" in str(failure.value)
    return failure.value.problems


def test_subscribers_with_a_language_column(tmp_path):
    path = write(tmp_path, "subs.csv",
                 "msisdn,profile,language\n0700000001,Novamix,fr\n+2250700000005,AIGLE,EN\n"
                 "2250700000006,tigre,\n")
    data = read_data_file(path)
    assert data.kind is DataKind.SUBSCRIBERS
    assert data.path == str(path)
    assert data.rows == (
        ("+2250700000001", Profile.NOVAMIX, Language.FR),
        ("+2250700000005", Profile.AIGLE, Language.EN),
        ("+2250700000006", Profile.TIGRE, Language.FR),  # an empty language is French
    )


def test_subscribers_without_a_language_column_are_french(tmp_path):
    path = write(tmp_path, "subs.csv", "msisdn,profile\n0700000001,Dauphin\n")
    assert read_data_file(path).rows == (("+2250700000001", Profile.DAUPHIN, Language.FR),)


def test_consumption(tmp_path):
    path = write(tmp_path, "conso.csv",
                 "msisdn,month,amount\n0700000001,2026-10,3000\n0700000001,2026-09,0\n"
                 "0700000002, 2026-10 , 9500\n")
    data = read_data_file(path)
    assert data.kind is DataKind.CONSUMPTION
    assert data.rows == (
        ("+2250700000001", "2026-10", 3000),
        ("+2250700000001", "2026-09", 0),
        ("+2250700000002", "2026-10", 9500),
    )


def test_header_case_spaces_bom_crlf_and_blank_lines(tmp_path):
    text = ("\ufeffMSISDN , Profile\r\n\r\n0700000001,Tigre\r\n   ,  \r\n\r\n"
            "0700000002,Aigle\r\n\r\n")
    data = read_data_file(write(tmp_path, "subs.csv", text))
    assert data.kind is DataKind.SUBSCRIBERS
    assert [row[0] for row in data.rows] == ["+2250700000001", "+2250700000002"]


@pytest.mark.parametrize("text", ["msisdn,month,amount\n", "msisdn,profile\n\n  ,\n"])
def test_a_header_alone_is_refused(tmp_path, text):
    """An export that came out empty is a mistake to report, not a load of nothing."""
    assert problems_of(write(tmp_path, "data.csv", text)) == [
        "no rows: expected at least one after the header"]


@pytest.mark.parametrize(("text", "problem"), [
    ("msisdn,profile\n0700000001,Lion\n",
     "line 2: unknown profile 'Lion' (one of Novamix, Tigre, Dauphin, Aigle)"),
    ("msisdn,profile,language\n0700000001,Tigre,de\n", "line 2: unknown language 'de'"),
    ("msisdn,profile\n12345,Tigre\n", "line 2: not a valid CI number: '12345'"),
    ("msisdn,profile\n+33612345678,Tigre\n", "line 2: not a valid CI number: '+33612345678'"),
    ("msisdn,profile\n,Tigre\n", "line 2: not a phone number: ''"),
    ("msisdn,profile\n0700000001x,Tigre\n", "line 2: not a phone number: '0700000001x'"),
    ("msisdn,profile\n0700000001,Tigre,fr\n", "line 2: expected 2 fields, got 3"),
    ("msisdn,profile,language\n0700000001\n", "line 2: expected 3 fields, got 1"),
    ("msisdn,profile\n0700000001,Tigre\n+2250700000001,Aigle\n",
     "line 3: repeats line 2 (+2250700000001)"),
    ("msisdn,month,amount\n0700000001,2026-13,100\n", "line 2: not a YYYY-MM month: '2026-13'"),
    ("msisdn,month,amount\n0700000001,10/2026,100\n", "line 2: not a YYYY-MM month: '10/2026'"),
    ("msisdn,month,amount\n0700000001,2026-10,-100\n",
     "line 2: amount must be a whole number of F CFA, got '-100'"),
    ("msisdn,month,amount\n0700000001,2026-10,2.500\n",
     "line 2: amount must be a whole number of F CFA, got '2.500'"),
    ("msisdn,month,amount\n0700000001,2026-10,beaucoup\n", "line 2: amount must be a whole"),
    ("msisdn,month,amount\n0700000001,2026-10,\n", "line 2: amount must be a whole"),
    ("msisdn,month,amount\n0700000001,2026-10,10000000000000\n", "line 2: amount must be a whole"),
    ("msisdn,month,amount\n0700000001,2026-10\n", "line 2: expected 3 fields, got 2"),
    ("msisdn,month,amount\n0700000001,2026-10,5,6\n", "line 2: expected 3 fields, got 4"),
    ("msisdn,month,amount\n0700000001,2026-10,5\n+2250700000001,2026-10,6\n",
     "line 3: repeats line 2 (+2250700000001, 2026-10)"),
])
def test_a_bad_row_is_named_by_line(tmp_path, text, problem):
    [reported] = problems_of(write(tmp_path, "data.csv", text))
    assert reported.startswith(problem), reported


def test_every_bad_row_is_reported_with_its_own_line(tmp_path):
    path = write(tmp_path, "conso.csv",
                 "msisdn,month,amount\n0700000001,2026-10,100\n\nbad,2026-10,1\n"
                 "0700000002,2026-10,1\n0700000002,2026-1,1\n0700000003,2026-10,x\n")
    problems = problems_of(path)
    assert [p.split(":")[0] for p in problems] == ["line 4", "line 6", "line 7"]
    message = str(SeedError(str(path), problems))
    assert message.startswith(f"{path}: 3 bad row(s), nothing loaded\n  line 4: ")


def test_a_row_after_a_quoted_newline_is_named_by_its_own_line(tmp_path):
    """A record numbers from the line it starts on, not from the records before it."""
    path = write(tmp_path, "subs.csv", 'msisdn,profile,language\n0700000001,"Tig\nre",fr\n'
                                       "0700000002,Bogus,fr\n")
    assert [p.split(":")[0] for p in problems_of(path)] == ["line 2", "line 4"]


def test_a_field_too_long_is_named_by_its_length_not_quoted(tmp_path):
    path = write(tmp_path, "subs.csv", f"msisdn,profile\n0700000001,{'x' * 100_000}\n")
    assert problems_of(path) == ["line 2: a field of 100000 characters (at most 64)"]


def test_a_pipe_is_refused_as_not_a_file_on_disk(tmp_path):
    import os

    read, write_end = os.pipe()
    os.write(write_end, b"msisdn,profile\n0700000001,Tigre\n")
    os.close(write_end)
    try:
        with pytest.raises(SeedError) as failure:
            check_files([f"/dev/fd/{read}"])
    finally:
        os.close(read)
    assert str(failure.value).endswith(
        "not a regular file (a pipe, a device?): give a file on disk")


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    """Ordering the files opened each to read its header: a FIFO no one writes to blocked."""
    import os
    import threading

    fifo = tmp_path / "subs.csv"
    os.mkfifo(fifo)
    found: list[SeedError] = []

    def check() -> None:
        try:
            check_files([str(fifo)])
        except SeedError as error:
            found.append(error)

    checking = threading.Thread(target=check, daemon=True)
    checking.start()
    checking.join(5)
    if checking.is_alive():  # unblock it: a writer that closes at once
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert [str(error).splitlines()[-1].strip() for error in found] == [
        "not a regular file (a pipe, a device?): give a file on disk"]
    path = write(tmp_path, "conso.csv",
                 "msisdn,month,amount\n0700000001,2026-09,1\n0700000001,2026-10,2\n")
    assert len(read_data_file(path).rows) == 2


@pytest.mark.parametrize("header", ["msisdn,amount", "phone,profile", "msisdn,profile,month",
                                    "msisdn;profile", "0700000001,Tigre"])
def test_an_unknown_header_is_refused(tmp_path, header):
    [problem] = problems_of(write(tmp_path, "data.csv", f"{header}\n0700000001,Tigre\n"))
    assert problem.startswith("line 1: unknown header")
    assert "msisdn,profile,language" in problem and "msisdn,month,amount" in problem


@pytest.mark.parametrize("text", ["", "\ufeff"])
def test_an_empty_file_is_refused(tmp_path, text):
    assert problems_of(write(tmp_path, "data.csv", text)) == ["empty file: expected a header line"]


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = write(tmp_path, "data.csv", "msisdn,profile\n0700000001,Tigré\n", encoding="utf-16")
    [problem] = problems_of(path)
    assert problem.startswith("cannot read")


def test_a_missing_file_is_refused(tmp_path):
    [problem] = problems_of(tmp_path / "nowhere.csv")
    assert problem.startswith("cannot read")


@pytest.fixture
def store(key_prefix):
    return Store(fakeredis.FakeRedis(decode_responses=True), prefix=key_prefix)


def test_load_files_stores_subscribers_and_consumption(tmp_path, store):
    subscribers = write(tmp_path, "subs.csv", "msisdn,profile,language\n0700000001,Tigre,en\n"
                                              "0700000002,Aigle,\n")
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-10,3000\n")
    loaded = load_files(store, [subscribers, consumption])
    assert [(data.kind, count) for data, count in loaded] == [
        (DataKind.SUBSCRIBERS, 2), (DataKind.CONSUMPTION, 1)
    ]
    alice = store.admin.describe("+2250700000001", "2026-11")
    assert (alice["profile"], alice["language"], alice["consumption"]) == (
        "tigre", "en", {"2026-10": 3000}
    )
    assert store.admin.describe("+2250700000002", "2026-11")["language"] == "fr"


def snapshot(store):
    return {key: store.redis.hgetall(key) for key in store.redis.keys(f"{store.keys.prefix}:*")}


def test_load_files_loads_nothing_when_one_file_is_bad(tmp_path, store):
    store.admin.put_subscribers([("+2250700000009", Profile.DAUPHIN, Language.FR)])
    before = snapshot(store)
    assert before
    good = write(tmp_path, "subs.csv", "msisdn,profile\n0700000001,Tigre\n")
    also_good = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000009,2026-10,5\n")
    bad = write(tmp_path, "bad.csv", "msisdn,month,amount\n0700000001,2026-10,-5\n")
    with pytest.raises(SeedError) as failure:
        load_files(store, [good, also_good, bad])
    assert str(bad) in str(failure.value)
    assert "line 2" in str(failure.value)
    assert snapshot(store) == before


def test_every_bad_file_is_named_in_one_error_and_nothing_is_stored(tmp_path, store):
    """Before, the load stopped at the first bad file; now every file is read and each bad
    one told of as a lone bad file is, in the order they are read (subscribers' first)."""
    store.admin.put_subscribers([("+2250700000009", Profile.DAUPHIN, Language.FR)])
    before = snapshot(store)
    bad_consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000009,2026-10,5\n"
                                                   "0700000009,2026-10,6\n0700000077,2026-10,1\n")
    good = write(tmp_path, "good.csv", "msisdn,profile\n0700000002,Aigle\n")
    unreadable = write(tmp_path, "utf16.csv", "msisdn,profile\n", encoding="utf-16")
    bad_subscribers = write(tmp_path, "subs.csv", "msisdn,profile\n0700000001,Lion\n")
    with pytest.raises(SeedError) as failure:
        load_files(store, [bad_consumption, good, unreadable, bad_subscribers], "2026-11")
    error = failure.value
    assert (error.path, [other.path for other in error.others]) == (
        str(unreadable), [str(bad_subscribers), str(bad_consumption)])
    assert str(error).startswith(f"{unreadable}: 1 problem(s), nothing loaded\n"
                                 "  cannot read: ")
    assert str(error).split("\n", 2)[2] == (
        f"{bad_subscribers}: 1 bad row(s), nothing loaded\n"
        "  line 2: unknown profile 'Lion' (one of Novamix, Tigre, Dauphin, Aigle)\n"
        f"{bad_consumption}: 2 bad row(s), nothing loaded\n"
        "  line 3: repeats line 2 (+2250700000009, 2026-10)\n"
        "  line 4: no subscriber +2250700000077 "
        f"(it may be in {unreadable}, whose rows could not be read)")
    assert snapshot(store) == before
    with pytest.raises(SeedError) as dry:
        load_files(store, [bad_consumption, good, unreadable, bad_subscribers], "2026-11",
                   dry_run=True)
    assert str(dry.value) == str(error)


def test_a_bad_subscribers_files_good_rows_are_known_to_the_consumption_after_it(tmp_path,
                                                                                  store):
    """Only the bad row is named: a consumption row of a number in a good row of a bad
    subscribers file is not refused as 'no subscriber' as well."""
    subscribers = write(tmp_path, "subs.csv", "msisdn,profile\n0700000001,Tigre\n"
                                              "0700000002,Lion\n")
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-10,5\n")
    with pytest.raises(SeedError) as failure:
        load_files(store, [consumption, subscribers], "2026-11")
    assert (failure.value.path, failure.value.problems, failure.value.others) == (
        str(subscribers),
        ["line 3: unknown profile 'Lion' (one of Novamix, Tigre, Dauphin, Aigle)"], ())
    assert snapshot(store) == {}


def test_a_subscriber_not_found_may_be_in_a_file_that_could_not_be_read(tmp_path, store):
    """Before, a consumption row of a number in an unreadable subscribers file (or one of a
    header we do not know) was told 'load the subscribers first', though it may be there. A
    consumption file unreadable past its header is no subscribers file: not named, and told
    of with the consumption files (before, a bad byte in its first 8 KiB put it first)."""
    store.admin.put_subscribers([("+2250700000009", Profile.DAUPHIN, Language.FR)])
    before = snapshot(store)
    unreadable = write(tmp_path, "utf16.csv", "msisdn,profile\n0700000001,Tigre\n",
                       encoding="utf-16")
    misnamed = write(tmp_path, "typo.csv", "msisdn,profil\n0700000002,Tigre\n")
    good = write(tmp_path, "good.csv", "msisdn,profile\n0700000003,Aigle\n")
    cut_short = write(tmp_path, "cut.csv", "msisdn,month,amount\n0700000009,2026-10,1\n")
    cut_short.write_bytes(cut_short.read_bytes() + b"0700000009,2026-09,\xff\n")
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-10,5\n"
                                               "0700000003,2026-10,5\n0700000009,2026-10,5\n"
                                               "0700000002,2026-10,5\n")
    with pytest.raises(SeedError) as failure:
        load_files(store, [cut_short, consumption, unreadable, good, misnamed], "2026-11")
    maybe = f"it may be in {unreadable} or {misnamed}, whose rows could not be read"
    assert str(failure.value) == (
        f"{unreadable}: 1 problem(s), nothing loaded\n"
        "  cannot read: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte\n"
        f"{misnamed}: 1 problem(s), nothing loaded\n"
        "  line 1: unknown header 'msisdn,profil' (known: msisdn,profile; "
        "msisdn,profile,language; msisdn,month,amount)\n"
        f"{cut_short}: 1 problem(s), nothing loaded\n"  # with consumption: its header says so
        "  cannot read: 'utf-8' codec can't decode byte 0xff in position 60: invalid start "
        "byte\n"
        f"{consumption}: 2 bad row(s), nothing loaded\n"
        f"  line 2: no subscriber +2250700000001 ({maybe})\n"
        f"  line 5: no subscriber +2250700000002 ({maybe})")
    assert snapshot(store) == before


def test_check_files_names_every_bad_file_in_the_order_load_files_reads_them(tmp_path,
                                                                             store):
    """What ``ussd serve --seed`` checks before it starts: each file alone, every bad one told,
    subscribers' files first as ``load_files`` (and ``ussd seed``) tell of them; before, in
    the order given."""
    bad_consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-1,5\n")
    good = write(tmp_path, "good.csv", "msisdn,profile\n0700000002,Aigle\n")
    bad_subscribers = write(tmp_path, "subs.csv", "msisdn,profile\n")
    given = [bad_consumption, good, bad_subscribers]
    with pytest.raises(SeedError) as failure:
        check_files(given, "2026-11")
    assert str(failure.value) == (
        f"{bad_subscribers}: 1 problem(s), nothing loaded\n"
        "  no rows: expected at least one after the header\n"
        f"{bad_consumption}: 1 bad row(s), nothing loaded\n"
        "  line 2: not a YYYY-MM month: '2026-1'")
    with pytest.raises(SeedError) as loading:
        load_files(store, given, "2026-11")
    assert str(loading.value) == str(failure.value)
    consumption = write(tmp_path, "good_conso.csv", "msisdn,month,amount\n0700000002,2026-10,5\n")
    assert [(data.path, data.kind, data.count)
            for data in check_files([consumption, good, good])] == [
        (str(good), DataKind.SUBSCRIBERS, 1), (str(good), DataKind.SUBSCRIBERS, 1),
        (str(consumption), DataKind.CONSUMPTION, 1)]
    assert [data.path for data, _ in load_files(store, [consumption, good], "2026-11")] == [
        str(good), str(consumption)]


def test_a_month_not_begun_is_refused(tmp_path):
    path = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-11,5\n"
                                        "0700000002,2026-12,5\n")
    with pytest.raises(SeedError) as failure:
        read_data_file(path, this_month="2026-11")
    assert failure.value.problems == ["line 3: month 2026-12 has not begun (this month is "
                                      "2026-11)"]


def test_consumption_of_an_unknown_subscriber_is_refused_by_line(tmp_path, store):
    store.admin.put_subscribers([("+2250700000009", Profile.DAUPHIN, Language.FR)])
    subscribers = write(tmp_path, "subs.csv", "msisdn,profile\n0700000001,Tigre\n")
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-10,1\n"
                                               "0700000009,2026-10,2\n0700000003,2026-10,3\n"
                                               "0700000004,2026-09,4\n0700000003,2026-09,5\n")
    before = snapshot(store)
    with pytest.raises(SeedError) as failure:
        load_files(store, [subscribers, consumption], "2026-11")
    assert failure.value.path == str(consumption)
    assert failure.value.problems == [
        "line 4: no subscriber +2250700000003 (load the subscribers first)",
        "line 5: no subscriber +2250700000004 (load the subscribers first)",
        "line 6: no subscriber +2250700000003 (load the subscribers first)"]
    assert snapshot(store) == before
    # Known from Redis (...09) or from a subscribers file given before (...01): loaded.
    good = write(tmp_path, "good.csv", "msisdn,month,amount\n0700000001,2026-10,1\n"
                                       "0700000009,2026-11,2\n")
    loaded = load_files(store, [subscribers, good], "2026-11")
    assert [(data.kind, count) for data, count in loaded] == [
        (DataKind.SUBSCRIBERS, 1), (DataKind.CONSUMPTION, 2)]
    assert store.admin.describe("+2250700000009", "2026-11")["consumption"] == {"2026-11": 2}


def test_unknown_subscribers_are_named_with_the_other_bad_rows(tmp_path, store):
    """One run names every bad row: before, the rows of unknown subscribers were looked up only
    once every other row was good, so they were named on the next run."""
    store.admin.put_subscribers([("+2250700000001", Profile.TIGRE, Language.FR)])
    before = snapshot(store)
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000099,2026-10,5\n"
                                               "0700000001,2026-10,abc\n0700000098,2026-10,x\n"
                                               "0700000098,2026-09,7\n")
    with pytest.raises(SeedError) as failure:
        load_files(store, [consumption], "2026-11", dry_run=True)
    assert failure.value.path == str(consumption)
    assert failure.value.problems == [
        "line 2: no subscriber +2250700000099 (load the subscribers first)",
        "line 3: amount must be a whole number of F CFA, got 'abc'",
        "line 4: amount must be a whole number of F CFA, got 'x'",
        "line 5: no subscriber +2250700000098 (load the subscribers first)"]
    assert snapshot(store) == before


def test_a_dry_run_checks_everything_and_stores_nothing(tmp_path, store):
    subscribers = write(tmp_path, "subs.csv", "msisdn,profile\n0700000001,Tigre\n")
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-10,1\n")
    loaded = load_files(store, [subscribers, consumption], "2026-11", dry_run=True)
    assert [(data.kind, count) for data, count in loaded] == [
        (DataKind.SUBSCRIBERS, 1), (DataKind.CONSUMPTION, 1)]
    assert snapshot(store) == {}


def test_progress_is_told_in_bytes_then_rows(tmp_path, store):
    rows = "".join(f"07{n:08d},Tigre\n" for n in range(2500))
    path = write(tmp_path, "subs.csv", "msisdn,profile\n" + rows)
    seen = []
    load_files(store, [path], "2026-11", progress=lambda *told: seen.append(told))
    size = path.stat().st_size
    checking = [told for told in seen if told[0] == "checking"]
    assert checking[-1] == ("checking", size, size)
    assert [told for told in seen if told[0] == "loading"] == [
        ("loading", 1000, 2500), ("loading", 2000, 2500)]


def test_very_many_bad_rows_are_counted_and_the_first_named(tmp_path):
    path = write(tmp_path, "subs.csv", "msisdn,profile\n" + "0700000001,Lion\n" * 1500)
    with pytest.raises(SeedError) as failure:
        read_data_file(path)
    assert len(failure.value.problems) == 1000
    assert str(failure.value).startswith(f"{path}: 1500 bad row(s), nothing loaded\n  line 2:")
    assert str(failure.value).endswith("\n  ... and 1480 more")


def test_memory_does_not_grow_with_the_file(tmp_path, monkeypatch):
    """Checking 20,000 or 80,000 rows takes about the same memory (tracemalloc's peak): rows
    held in memory would cost about 15 MiB more. The numbers' cache (phone.normalize_msisdn,
    bounded at 32,768) is left out: its table's size depends on its churn. No store: a dry run
    on one looks the numbers up too, 1000 per round trip (slow on fakeredis under tracemalloc)."""
    import tracemalloc

    monkeypatch.setattr("ussd.seed_rows.normalize_msisdn", normalize_msisdn.__wrapped__)
    peaks = []
    for count in (20_000, 80_000):
        path = tmp_path / f"subs{count}.csv"
        with path.open("w") as handle:
            handle.write("msisdn,profile,language\n")
            handle.writelines(f"+22507{n:08d},Tigre,fr\n" for n in range(count))
        tracemalloc.start()
        [(_, rows)] = load_files(None, [path], "2026-11", dry_run=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert rows == count
    assert peaks[1] - peaks[0] < 2**20, peaks
    assert peaks[1] < 8 * 2**20


def test_the_order_of_the_files_does_not_matter(tmp_path, store):
    """A consumption file given before the subscribers' file its numbers are in: both are
    read and stored, subscribers first (before, its rows were refused: 'no subscriber')."""
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000101,2026-10,1500\n")
    subscribers = write(tmp_path, "subs.csv", "msisdn,profile\n0700000101,Tigre\n")
    loaded = load_files(store, [consumption, subscribers], "2026-11")
    assert [(data.path, data.kind, count) for data, count in loaded] == [
        (str(subscribers), DataKind.SUBSCRIBERS, 1), (str(consumption), DataKind.CONSUMPTION, 1)]
    record = store.admin.describe("+2250700000101", "2026-11")
    assert (record["profile"], record["consumption"]) == ("tigre", {"2026-10": 1500})


# --- a file loaded again ----------------------------------------------------------------------


def test_a_file_loaded_again_leaves_every_stored_subscriber_as_it_is(tmp_path, store, service):
    """Before, loading a subscribers file again put a subscriber who had migrated since back on
    the file's profile (the history still saying novamix -> tigre, one migration this month),
    and a file with no language column put one who had English back to French. Now a stored
    subscriber keeps its profile and language; only the new ones are added. A consumption row
    still sets its month's total: billing's figure is the truth."""
    subscribers = write(tmp_path, "subs.csv", "msisdn,profile,language\n0700000001,Novamix,fr\n"
                                              "0700000005,Aigle,en\n")
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-10,3000\n")
    loaded = load_files(store, [subscribers, consumption], "2026-11")
    assert [(data.kind, data.stored, count) for data, count in loaded] == [
        (DataKind.SUBSCRIBERS, 0, 2), (DataKind.CONSUMPTION, None, 1)]
    assert service.migrate("+2250700000001", "tigre", Channel.WEB, client="cli").approved
    again = write(tmp_path, "again.csv", "msisdn,profile\n0700000001,Novamix\n"
                                         "0700000005,Aigle\n0700000006,Dauphin\n")
    corrected = write(tmp_path, "conso2.csv", "msisdn,month,amount\n0700000001,2026-10,2600\n")
    loaded = load_files(store, [again, corrected], "2026-11")
    assert [(data.path, data.stored, count) for data, count in loaded] == [
        (str(again), 2, 3), (str(corrected), None, 1)]
    alice = store.admin.describe("+2250700000001", "2026-11")
    assert (alice["profile"], alice["language"], alice["migrations_this_month"]) == (
        "tigre", "fr", 1)
    assert [(entry["from"], entry["to"]) for entry in alice["history"]] == [("novamix", "tigre")]
    assert alice["consumption"] == {"2026-10": 2600}
    john = store.admin.describe("+2250700000005", "2026-11")
    assert (john["profile"], john["language"]) == ("aigle", "en")
    new = store.admin.describe("+2250700000006", "2026-11")
    assert (new["profile"], new["language"]) == ("dauphin", "fr")


def test_replace_overwrites_the_stored_subscribers_profile_and_language(tmp_path, store,
                                                                        service):
    """Asked for: the file's profile and language, whatever the subscriber did since (the
    history and the month's count stay as they were)."""
    subscribers = write(tmp_path, "subs.csv", "msisdn,profile,language\n0700000001,Novamix,en\n")
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000001,2026-10,3000\n")
    load_files(store, [subscribers, consumption], "2026-11")
    assert service.migrate("+2250700000001", "tigre", Channel.WEB, client="cli").approved
    again = write(tmp_path, "again.csv", "msisdn,profile\n0700000001,Novamix\n"
                                         "0700000002,Aigle\n")
    [(data, count)] = load_files(store, [again], "2026-11", replace=True)
    assert (data.stored, count) == (1, 2)
    alice = store.admin.describe("+2250700000001", "2026-11")
    assert (alice["profile"], alice["language"], alice["migrations_this_month"]) == (
        "novamix", "fr", 1)
    assert store.admin.describe("+2250700000002", "2026-11")["profile"] == "aigle"


def test_a_dry_run_counts_the_subscribers_a_load_would_find_stored(tmp_path, store):
    """Looked up in Redis, 1000 per round trip, or found in a subscribers file before in the
    same load: the very counts the load then gives, nothing stored meanwhile."""
    store.admin.put_subscribers([("+2250700000001", Profile.TIGRE, Language.EN)])
    before = snapshot(store)
    first = write(tmp_path, "first.csv", "msisdn,profile\n0700000001,Novamix\n"
                                         "0700000002,Novamix\n")
    second = write(tmp_path, "second.csv", "msisdn,profile\n0700000002,Aigle\n"
                                           "0700000003,Aigle\n0700000001,Aigle\n")
    consumption = write(tmp_path, "conso.csv", "msisdn,month,amount\n0700000003,2026-10,5\n")
    files = [consumption, first, second]
    counts = [(data.path, data.stored, count)
              for data, count in load_files(store, files, "2026-11", dry_run=True)]
    assert counts == [(str(first), 1, 2), (str(second), 2, 3), (str(consumption), None, 1)]
    assert snapshot(store) == before
    assert [(data.path, data.stored, count)
            for data, count in load_files(store, files, "2026-11")] == counts
    assert [store.admin.describe(f"+225070000000{n}", "2026-11")["profile"]
            for n in (1, 2, 3)] == ["tigre", "novamix", "aigle"]


def test_the_error_counts_bad_rows_and_problems_apart(tmp_path, store):
    """Before: "9 bad row(s)" for 8, the problems counted as rows (line 3 repeats line 2 and
    its subscriber is unknown: one row, two problems); and "1 bad row(s)" for a file it could
    not read, of no row at all."""
    store.admin.put_subscribers([("+2250700000009", Profile.DAUPHIN, Language.FR)])
    bad = write(tmp_path, "bad.csv", "msisdn,month,amount\n0700000077,2026-10,1\n"
                                     "0700000077,2026-10,2\n0700000009,2026-10,x\n"
                                     "0700000009,2026-13,1\nbad,2026-10,1\n"
                                     "0700000009,2026-10,1,2\n0700000009,2026-12,1\n"
                                     "0700000009,2026-09,5\n0700000009,2026-09,6\n")
    unreadable = write(tmp_path, "utf16.csv", "msisdn,profile\n0700000001,Tigre\n",
                       encoding="utf-16")
    with pytest.raises(SeedError) as failure:
        load_files(store, [bad, unreadable], "2026-11")
    error = failure.value
    assert (error.path, error.rows, error.total) == (str(unreadable), 0, 1)
    [other] = error.others
    assert (other.path, other.rows, other.total) == (str(bad), 8, 9)
    told = str(error).splitlines()
    assert [line for line in told if not line.startswith("  ")] == [
        f"{unreadable}: 1 problem(s), nothing loaded",
        f"{bad}: 8 bad row(s) (9 problems), nothing loaded"]
    assert [line.split(":")[0] for line in told[3:]] == [
        "  line 2", "  line 3", "  line 3", "  line 4", "  line 5", "  line 6", "  line 7",
        "  line 8", "  line 10"]
