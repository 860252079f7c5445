"""Plain CSV files are landed by DuckDB's own reader (pipelines/ingest/native_csv.py, issue 15): the
result must be exactly what the batched reader (polars, the csv module record by record) gives,
row numbers, empty values, padded short records, malformed records and file errors included. A
file DuckDB would read differently goes to the batched reader."""

from __future__ import annotations

import contextlib
import random
import stat
import tracemalloc
from pathlib import Path

import duckdb
import pytest

from conftest import Drop, seeded_warehouse
from pipelines.ingest import load as ingest_load
from pipelines.ingest import native_csv
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.extract_format import TABLES
from pipelines.ingest.load import load_drop
from pipelines.ingest.profiles import parse_profile

HEADER = "entry_id,patient_id,staff_id,service_date,minutes,activity,program,start_time,end_time,documented_at,encounter_id"
REAL_PLAN = native_csv.plan


def _snapshot(conn: duckdb.DuckDBPyConnection) -> dict:
    tables = ["raw_time_entries", "quarantine", "field_warnings"]
    out = {t: conn.sql(f"select * from {t} order by all").fetchall() for t in tables}
    out["ledger"] = conn.sql(
        "select source_file, status, detail, rows_read, rows_loaded, rows_quarantined from ingest_files order by all"
    ).fetchall()
    return out


def _load_both(tmp_path: Path, folder: Path, monkeypatch, profile=None) -> tuple[dict, dict]:
    """(DuckDB's reader where it applies, the batched reader for every file)."""
    results = []
    for name, plan in (("native", REAL_PLAN), ("batched", lambda *args, **kwargs: None)):
        monkeypatch.setattr(native_csv, "plan", plan)
        conn = seeded_warehouse(tmp_path / f"{name}.duckdb")
        load_drop(conn, folder, profile=profile)
        results.append(_snapshot(conn))
        conn.close()
    monkeypatch.setattr(native_csv, "plan", REAL_PLAN)
    return results[0], results[1]


def _drop(drop: Drop) -> Path:
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 20)
    return drop.write()


ROWS = [
    "E1,P1,CM1,2026-01-05,20,follow_up,,,,,",
    'E2,P1,CM1,2026-01-06,15,follow_up,,,,"2026-01-06T17:00:00",""',  # a quoted empty value
    'E3,P1,CM1,2026-01-07,10,Follow_Up,cocm,09:00,09:10,,"V 1, ""x"""',
    "E4,P1,CM1,2026-01-08,10,follow_up",  # fewer fields than the header: padded
    "E5, P1 ,CM1,2026-01-09,abc,golf,,9am,,last tuesday,Zoë Pérez",
    "E1,P1,CM1,2026-01-10,5,follow_up,,,,,",  # a duplicate entry_id
    ",P1,CM1,2026-01-11,5,follow_up,,,,,",
]

CASES = {
    "plain": "\n".join([HEADER, *ROWS]) + "\n",
    "crlf, no last line end": "\r\n".join([HEADER, *ROWS]),
    "quoted line breaks": "\n".join(
        [HEADER, *ROWS, 'E6,P1,CM1,2026-01-12,5,follow_up,,,,,"V\n2"', 'E7,P1,CM1,2026-01-13,5,follow_up,,,,,"a\r\nb"']) + "\n",
    "every field quoted, crlf": "\r\n".join(
        [HEADER] + [",".join(f'"{v}"' for v in r.split(",")) for r in ROWS if '"' not in r]) + "\r\n",
    "header only": HEADER + "\n",
    "more fields than the header": "\n".join([HEADER, *ROWS[:2], "E8,P1,CM1,2026-01-12,5,follow_up,,,,,,EXTRA", *ROWS[2:]]) + "\n",
    "an empty field after the last column": "\n".join([HEADER, ROWS[0], ROWS[0].replace("E1", "E9") + ",", ROWS[3]]) + "\n",
    "more fields than the header, quoted": "\n".join([HEADER, ROWS[2], 'E8,P1,CM1,2026-01-12,5,follow_up,,,,,"x",']) + "\n",
    "a blank line": "\n".join([HEADER, ROWS[0], "", ROWS[3], "   "]) + "\n\n",
    "a lone carriage return": "\n".join([HEADER, ROWS[0], "E8,P1,CM1\r,2026-01-12,5,follow_up,,,,,", ROWS[3]]) + "\n",
    "line ends of both kinds": HEADER + "\r\n" + "\n".join(ROWS) + "\n",
    "a space before a quoted field": "\n".join([HEADER, ROWS[0], 'E8,P1,CM1,2026-01-12,5,follow_up,, "09:00",,,', ROWS[3]]) + "\n",
    "a quote inside an unquoted field": "\n".join([HEADER, ROWS[0], 'E8,P1,CM1,2026-01-12,5,follow_up,,,,,V"1"', ROWS[3]]) + "\n",
    "an unterminated quote": "\n".join([HEADER, ROWS[0], 'E8,"P1,CM1,2026-01-12,5,follow_up,,,,,', ROWS[3]]) + "\n",
    "a repeated header name": "\n".join([HEADER + ",minutes", ROWS[0] + ",7"]) + "\n",
    "semicolons": "\n".join([HEADER.replace(",", ";"), *(r.replace(",", ";") for r in ROWS if '"' not in r)]) + "\n",
}


# every case in UTF-8; in the encodings read from a transcoded copy (a BOM, Windows-1252), the cases
# whose bytes the copy could change: line ends, quotes, a non-ASCII value (ROWS[4])
ENCODED = ["plain", "crlf, no last line end", "quoted line breaks", "a lone carriage return", "an unterminated quote"]


@pytest.mark.parametrize(
    "content, encoding",
    [pytest.param(CASES[c], "utf-8", id=f"utf-8-{c}") for c in CASES]
    + [pytest.param(CASES[c], e, id=f"{e}-{c}") for e in ("utf-8-sig", "cp1252") for c in ENCODED],
)
def test_duckdb_reader_lands_what_the_batched_reader_lands(drop: Drop, tmp_path, monkeypatch, content, encoding):
    folder = _drop(drop)
    (folder / "time_entries_2.csv").write_bytes(content.encode(encoding))
    native, batched = _load_both(tmp_path, folder, monkeypatch)
    assert native == batched
    assert native["ledger"]  # the comparison saw the loads


def test_random_csv_files_land_the_same_both_ways(tmp_path, monkeypatch):
    """Small random files, well-formed or not (quotes, line ends, delimiters, short and long
    records, encodings): DuckDB's reader where it applies lands exactly what the batched reader does."""
    rnd = random.Random(15)
    spec = TABLES["psych_reviews"]
    conn = duckdb.connect()
    chars = ["a", "b", " ", "é", "€", ",", "\n", "\r\n", '"', "\t", ";", "\r"]

    def value(delimiter: str) -> str:
        text = "".join(rnd.choice(chars[:5] if rnd.random() < 0.8 else chars) for _ in range(rnd.randrange(5)))
        if rnd.random() < 0.3:
            return '"' + text.replace('"', '""') + '"'
        return text if rnd.random() < 0.1 else "".join(ch for ch in text if ch not in f'"\r\n{delimiter}')

    def land(path: Path, plan) -> object:
        monkeypatch.setattr(native_csv, "plan", plan)
        try:
            errors = ingest_load._land(conn, spec, [path], {path: 1})
        except Exception as exc:  # noqa: BLE001  (both ways must fail alike)
            return type(exc).__name__
        return errors, conn.sql("select * from _landing_psych_reviews order by source_row, _malformed nulls first").fetchall()

    used = 0
    for _ in range(400):
        delimiter, eol = rnd.choice([",", ",", ";", "\t", "|"]), rnd.choice(["\n", "\r\n"])
        names = [f'"{n}"' if rnd.random() < 0.2 else n for n in ("review_id", "patient_id", "review_date", "consultant_id")]
        lines = [delimiter.join(names)] + [
            delimiter.join(value(delimiter) for _ in range(rnd.choice([4, 4, 4, 3, 1, 5])))
            for _ in range(rnd.randrange(6))
        ]
        text = "".join(line + rnd.choice([eol] * 20 + ["\n", "\r\n", "\r"]) for line in lines)
        path = tmp_path / "psych_reviews.csv"
        path.write_bytes(text.encode(rnd.choice(["utf-8", "utf-8-sig", "cp1252", "utf-16"]), errors="replace"))
        with contextlib.suppress(ExtractError):  # an encoding error: the same from both readers (checked below)
            used += REAL_PLAN(path, "psych_reviews") is not None
        assert land(path, REAL_PLAN) == land(path, lambda *args, **kwargs: None), repr(text)
    assert used > 100  # DuckDB's reader was tried on a good share of them


def test_a_well_formed_file_is_not_read_by_the_batched_reader(drop: Drop, tmp_path, monkeypatch):
    folder = _drop(drop)
    (folder / "time_entries_2.csv").write_text("\n".join([HEADER, *ROWS]) + "\n")
    real = ingest_load.iter_parts

    def batched(path, table, *args, **kwargs):
        assert not path.name.startswith("time_entries"), f"{path.name} went to the batched reader"
        yield from real(path, table, *args, **kwargs)

    monkeypatch.setattr(ingest_load, "iter_parts", batched)
    conn = seeded_warehouse(tmp_path / "w.duckdb")
    result = load_drop(conn, folder)
    assert result.rows_read["time_entries"] == 1 + len(ROWS)
    assert conn.sql(
        "select source_row, patient_id, encounter_id from raw_time_entries where source_file = 'time_entries_2.csv'"
        " order by source_row"
    ).fetchall() == [(2, "P1", None), (3, "P1", None), (4, "P1", 'V 1, "x"'), (5, "P1", None)]


@pytest.mark.parametrize(
    "content",
    [
        "\n".join([HEADER, ROWS[0], "", ROWS[3]]),
        "\n".join([HEADER, ROWS[0], 'E8,"P1,CM1,2026-01-12,5,follow_up,,,,,']),
        "\n".join([HEADER, 'E8,P1,CM1,2026-01-12,5,follow_up,,,,,"x",']),
        "\n".join([HEADER, 'E8,P1,CM1,2026-01-12,5,follow_up,, "09:00",,,']),
        HEADER + "\r\n" + ROWS[0] + "\n",
    ],
    ids=["blank line", "unterminated quote", "quoted file with a long record", "space before a quote", "mixed line ends"],
)
def test_files_duckdb_would_read_differently_go_to_the_batched_reader(tmp_path, content):
    path = tmp_path / "time_entries.csv"
    path.write_text(content + "\n")
    assert native_csv.plan(path, "time_entries") is None


def test_a_profile_that_maps_values_keeps_the_batched_reader_and_renames_do_not(tmp_path):
    path = tmp_path / "time_entries.csv"
    path.write_text("\n".join([HEADER.replace("patient_id", "MRN"), *ROWS]) + "\n")
    renamed = parse_profile({"tables": {"time_entries": {"columns": {"MRN": "patient_id"}}}}, tmp_path / "a.yaml")
    mapped = parse_profile({"tables": {"time_entries": {"columns": {"MRN": "patient_id"},
                                                       "values": {"activity": {"FU": "follow_up"}}}}}, tmp_path / "b.yaml")
    dated = parse_profile({"formats": {"date": "%m/%d/%Y"}}, tmp_path / "c.yaml")
    plan = native_csv.plan(path, "time_entries", renamed)
    assert plan is not None and plan.sources["patient_id"] == 1
    assert native_csv.plan(path, "time_entries", mapped) is None
    assert native_csv.plan(path, "time_entries", dated) is None
    staff = tmp_path / "staff.csv"
    staff.write_text("staff_id,role,facility_id\nS1,care_manager,F1\n")
    assert native_csv.plan(staff, "staff", dated) is not None  # staff has no date column: nothing to format


def test_renamed_columns_land_the_same_both_ways(drop: Drop, tmp_path, monkeypatch):
    folder = _drop(drop)
    (folder / "time_entries.csv").unlink()
    (folder / "log_1.csv").write_text("\n".join([HEADER.replace("patient_id", "MRN").replace("minutes", "Mins"), *ROWS]) + "\n")
    (folder / "bhi-profile.yaml").write_text(
        "tables:\n  time_entries:\n    files: ['log_*.csv']\n    columns: {MRN: patient_id, Mins: minutes}\n"
    )
    native, batched = _load_both(tmp_path, folder, monkeypatch)
    assert native == batched and len(native["raw_time_entries"]) == 4


def test_missing_columns_and_encoding_errors_are_the_same_file_errors(drop: Drop, tmp_path, monkeypatch):
    folder = _drop(drop)
    (folder / "time_entries_2.csv").write_text("entry_id,patient_id,staff_id\nE8,P1,CM1\n")
    (folder / "staff_2.csv").write_bytes("staff_id,role,facility_id,name\nS1,care_manager,F1,José\n".encode("cp1252"))
    (folder / "bhi-profile.yaml").write_text("csv: {encoding: utf-8}\n")
    native, batched = _load_both(tmp_path, folder, monkeypatch)
    assert native == batched
    details = [d for (_, status, d, *_) in native["ledger"] if status == "rejected"]
    assert any("time_entries_2.csv: missing required column(s) service_date, minutes, activity" in d for d in details)
    assert any("staff_2.csv: cannot read file as utf-8 (byte 53: b'\\xe9')" in d for d in details)


def test_a_large_file_keeps_its_row_numbers(drop: Drop, tmp_path, monkeypatch):
    """Large enough for DuckDB to read in parallel (4 threads here): every row keeps the number of its
    record; the well-formed file is DuckDB's to read, never the batched reader's."""
    folder = _drop(drop)
    n = 150_000
    rows = [f"{{}}{i:07d},P1,CM1,2026-01-{i % 28 + 1:02d},{i % 50 + 1},follow_up,,,,," for i in range(n)]
    (folder / "time_entries_2.csv").write_text("\n".join([HEADER, *(r.format("F") for r in rows)]) + "\n")
    rows[70_000] += ",EXTRA"  # an extra field late in the file: the whole file goes to the batched reader
    (folder / "time_entries_3.csv").write_text("\n".join([HEADER, *(r.format("E") for r in rows)]) + "\n")
    real = ingest_load.iter_parts

    def batched(path, table, *args, **kwargs):
        assert path.name != "time_entries_2.csv", "the well-formed file went to the batched reader"
        yield from real(path, table, *args, **kwargs)

    monkeypatch.setattr(ingest_load, "iter_parts", batched)
    conn = seeded_warehouse(tmp_path / "w.duckdb")
    conn.execute("set threads = 4")  # (test warehouses run on one thread)
    load_drop(conn, folder)
    for name, prefix, loaded in (("time_entries_2.csv", "F", n), ("time_entries_3.csv", "E", n - 1)):
        assert conn.sql(
            f"select count(*), count(*) filter (where entry_id <> '{prefix}' || lpad((source_row - 2)::varchar, 7, '0'))"
            f" from raw_time_entries where source_file = '{name}'"
        ).fetchall() == [(loaded, 0)]
    assert conn.sql("select source_file, source_row from quarantine").fetchall() == [("time_entries_3.csv", 70_002)]


def test_a_file_in_another_encoding_is_read_from_a_private_copy_that_is_removed(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_bytes("staff_id,role,facility_id,name\nS1,care_manager,F1,Zoë “Z” Pérez\n".encode("cp1252"))
    plan = native_csv.plan(path, "staff")
    assert plan is not None and plan.encoding == "cp1252"
    with native_csv.readable_path(plan) as copy:
        assert copy != path
        assert stat.S_IMODE(copy.parent.stat().st_mode) == 0o700
        assert copy.read_text(encoding="utf-8").endswith("Zoë “Z” Pérez\n")
    assert not copy.parent.exists()


def test_checking_a_quoted_file_holds_about_one_batch_of_it(tmp_path, monkeypatch):
    """The well-formedness check of a file with quotes reads it a batch of records at a time."""
    from pipelines.ingest import readers

    monkeypatch.setattr(readers, "BATCH_BYTES", 64 << 10)
    monkeypatch.setattr(readers, "BLOCK_BYTES", 16 << 10)
    rows = [f'E{i:07d},P1,CM1,2026-01-05,20,follow_up,,,,,"V {i}, ""x"""' for i in range(100_000)]
    path = tmp_path / "time_entries.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    size = path.stat().st_size
    assert size > (3 << 20)
    native_csv.plan(path, "time_entries")  # lazy imports
    tracemalloc.start()
    try:
        plan = native_csv.plan(path, "time_entries")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert plan is not None and plan.quoted
    assert peak < size / 4, f"peak {peak} bytes for a file of {size} bytes"


def test_a_utf8_file_is_read_as_delivered_whatever_the_profile_calls_utf8(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_text("staff_id,role,facility_id,name\nS1,care_manager,F1,Zoë\n", encoding="utf-8")
    profile = parse_profile({"csv": {"encoding": "UTF8"}}, tmp_path / "p.yaml")
    plan = native_csv.plan(path, "staff", profile)
    assert plan is not None
    with native_csv.readable_path(plan) as readable:
        assert readable == path
