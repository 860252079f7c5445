"""File formats: hand-made messy CSV (BOM, Windows-1252, CRLF, quoted newlines, ; tab |), Parquet and
XLSX (first sheet, a named sheet, every sheet), and the file-level errors that name file, sheet and column."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest
import xlsxwriter

from conftest import Drop
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.load import load_drop
from pipelines.ingest.profiles import parse_profile
from pipelines.ingest.readers import decode, read_parts, sniff_delimiter
from pipelines.warehouse.reference import seed_reference

STAFF_HEADER = ["staff_id", "role", "facility_id", "name"]


def _rows(path: Path, table: str = "staff", profile=None) -> list[dict]:
    (part,) = read_parts(path, table, profile)
    return part.data.to_dicts()


def _profile(raw: dict, tmp_path: Path):
    return parse_profile(raw, tmp_path / "test-profile.yaml")


def test_utf8_with_bom_header_is_clean(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_bytes(b"\xef\xbb\xbfstaff_id,role,facility_id,name\nS1,care_manager,F1,Zo\xc3\xab\n")
    assert _rows(path) == [
        {"staff_id": "S1", "role": "care_manager", "facility_id": "F1", "name": "Zoë", "source_row": 2}
    ]


def test_windows_1252_is_detected_when_not_utf8(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_bytes("staff_id,role,facility_id,name\nS1,care_manager,F1,José “Pepe” Pérez\n".encode("cp1252"))
    assert _rows(path)[0]["name"] == "José “Pepe” Pérez"


def test_latin1_is_the_last_resort(tmp_path):
    # 0x81 is undefined in Windows-1252, so only Latin-1 reads this file
    raw = b"staff_id,role,facility_id,name\nS1,care_manager,F1,A\x81\xe9\n"
    assert decode(raw, "auto", tmp_path / "x.csv") == raw.decode("latin-1")


def test_utf16_with_bom(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_bytes("staff_id\trole\tfacility_id\nS1\tcare_manager\tF1\n".encode("utf-16"))
    assert _rows(path)[0]["role"] == "care_manager"


def test_configured_encoding_that_does_not_fit_names_the_file(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_bytes("staff_id,role,facility_id,name\nS1,care_manager,F1,José\n".encode("cp1252"))
    profile = _profile({"csv": {"encoding": "utf-8"}}, tmp_path)
    with pytest.raises(ExtractError, match=r"staff.csv: cannot read file as utf-8 \(byte 53"):
        read_parts(path, "staff", profile)
    assert _rows(path, profile=_profile({"csv": {"encoding": "latin-1"}}, tmp_path))[0]["name"] == "José"


def test_crlf_and_quoted_newline_keep_records_and_row_numbers(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_bytes(b'staff_id,role,facility_id,name\r\nS1,care_manager,F1,"Line one\r\nline two, with comma"\r\nS2,therapist,F1,B\r\n')
    rows = _rows(path)
    assert [(r["staff_id"], r["source_row"]) for r in rows] == [("S1", 2), ("S2", 3)]
    assert rows[0]["name"] == "Line one\r\nline two, with comma"
    assert rows[1]["name"] == "B"  # no stray \r at the line end


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_delimiter_is_detected(tmp_path, delimiter):
    path = tmp_path / "staff.csv"
    lines = [STAFF_HEADER, ["S1", "care_manager", "F1", "Ann"], ["S2", "therapist", "F2", "Bo"]]
    path.write_text("\n".join(delimiter.join(line) for line in lines) + "\n")
    assert [r["facility_id"] for r in _rows(path)] == ["F1", "F2"]


def test_semicolon_file_with_commas_in_values_and_configured_delimiter(tmp_path):
    path = tmp_path / "staff.csv"
    path.write_text("staff_id;role;facility_id;name\nS1;care_manager;F1;Lee, Ann\nS2;therapist;F1;Roe, Bo\n")
    assert sniff_delimiter(path.read_text()) == ";"
    profile = _profile({"csv": {"delimiter": ";"}}, tmp_path)
    assert [r["name"] for r in _rows(path, profile=profile)] == ["Lee, Ann", "Roe, Bo"]
    # a wrong configured delimiter reads one column: the required columns are missing
    wrong = _profile({"csv": {"delimiter": "\t"}}, tmp_path)
    with pytest.raises(ExtractError, match=r"staff.csv: missing required column\(s\) staff_id, role, facility_id"):
        read_parts(path, "staff", wrong)


def test_empty_files_are_file_level_errors(tmp_path):
    empty = tmp_path / "staff.csv"
    empty.write_bytes(b"")
    with pytest.raises(ExtractError, match=r"staff.csv: empty file \(0 bytes\)"):
        read_parts(empty, "staff")
    blank = tmp_path / "staff_2.csv"
    blank.write_bytes(b"\xef\xbb\xbf\r\n")
    with pytest.raises(ExtractError, match=r"staff_2.csv: empty file \(expected a header row\)"):
        read_parts(blank, "staff")
    header_only = tmp_path / "staff_3.csv"
    header_only.write_text("staff_id,role,facility_id\n")
    assert _rows(header_only) == []  # a header without records is a valid, empty table


def test_parquet_native_types_become_canonical_text(tmp_path):
    path = tmp_path / "time_entries.parquet"
    pl.DataFrame({
        "Entry ID": ["E1", "E2"],
        "patient_id": ["P1", "P1"],
        "staff_id": ["S1", "S1"],
        "service_date": [dt.datetime(2026, 5, 4, 10, 30), dt.datetime(2026, 5, 5)],
        "minutes": [15.0, 20.0],
        "activity": ["follow_up", "follow_up"],
        "start_time": [dt.time(9, 5), None],
        "deleted": [False, True],
    }).write_parquet(path)
    (part,) = read_parts(path, "time_entries")
    assert part.data.to_dicts() == [
        {"entry_id": "E1", "patient_id": "P1", "staff_id": "S1", "service_date": "2026-05-04", "minutes": "15",
         "activity": "follow_up", "start_time": "09:05", "deleted": "false", "source_row": 1},
        {"entry_id": "E2", "patient_id": "P1", "staff_id": "S1", "service_date": "2026-05-05", "minutes": "20",
         "activity": "follow_up", "start_time": None, "deleted": "true", "source_row": 2},
    ]


def _workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    wb = xlsxwriter.Workbook(path)
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    time_fmt = wb.add_format({"num_format": "hh:mm"})
    dur_fmt = wb.add_format({"num_format": "[h]:mm:ss"})
    for name, rows in sheets.items():
        ws = wb.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, dt.timedelta):
                    ws.write_datetime(r, c, value, dur_fmt)
                elif isinstance(value, dt.time):
                    ws.write_datetime(r, c, value, time_fmt)
                elif isinstance(value, dt.datetime):
                    ws.write_datetime(r, c, value, date_fmt)
                elif value is not None:
                    ws.write(r, c, value)
    wb.close()
    return path


TE_HEADER = ["entry_id", "patient_id", "staff_id", "service_date", "minutes", "activity", "start_time"]


def _te(entry: str, day: int, minutes, start=dt.time(9, 0)) -> list:
    return [entry, "P1", "S1", dt.datetime(2026, 5, day), minutes, "follow_up", start]


def test_xlsx_first_sheet_by_default_with_excel_dates_times_and_durations(tmp_path):
    path = _workbook(tmp_path / "time_entries.xlsx", {
        "Log": [TE_HEADER, _te("E1", 4, dt.timedelta(minutes=25), dt.time(9, 5)), _te("E2", 5, 12.0)],
        "Other": [TE_HEADER, _te("X9", 6, 30)],
    })
    (part,) = read_parts(path, "time_entries")
    assert part.label == "time_entries.xlsx"
    assert part.data.select("entry_id", "service_date", "minutes", "start_time", "source_row").rows() == [
        ("E1", "2026-05-04", "25", "09:05", 2),
        ("E2", "2026-05-05", "12", "09:00", 3),
    ]


def test_xlsx_named_sheet_and_missing_sheet(tmp_path):
    path = _workbook(tmp_path / "time_entries.xlsx", {
        "Read me": [["This workbook holds the time log"]],
        "Time log": [TE_HEADER, _te("E1", 4, 20)],
    })
    named = _profile({"tables": {"time_entries": {"sheet": "time LOG"}}}, tmp_path)  # case-insensitive
    (part,) = read_parts(path, "time_entries", named)
    assert (part.label, part.data["entry_id"].to_list()) == ("time_entries.xlsx", ["E1"])
    missing = _profile({"tables": {"time_entries": {"sheet": "Entries"}}}, tmp_path)
    with pytest.raises(ExtractError, match=r"time_entries.xlsx: no sheet 'Entries' for table time_entries; "
                                           r"sheets found: Read me, Time log"):
        read_parts(path, "time_entries", missing)
    # the first sheet (the default) has no such columns: the error names file, sheet and column
    with pytest.raises(ExtractError, match=r"time_entries.xlsx\[Read me\]: missing required column\(s\) entry_id"):
        read_parts(path, "time_entries")


def test_xlsx_every_sheet_labels_each_part_and_skips_blank_sheets(tmp_path):
    path = _workbook(tmp_path / "time_entries.xlsx", {
        "May": [TE_HEADER, _te("E1", 4, 20), _te("E2", 5, 25)],
        "Blank": [],
        "June": [TE_HEADER, _te("E3", 6, 30)],
    })
    every = _profile({"sheet": "*"}, tmp_path)
    parts = read_parts(path, "time_entries", every)
    assert [(p.label, p.data["entry_id"].to_list(), p.data["source_row"].to_list()) for p in parts] == [
        ("time_entries.xlsx[May]", ["E1", "E2"], [2, 3]),
        ("time_entries.xlsx[June]", ["E3"], [2]),
    ]
    # a sheet pattern that matches nothing is an error naming the file and the sheets found
    with pytest.raises(ExtractError, match=r"no sheet matching '2027-\*'.*sheets found: May, Blank, June"):
        read_parts(path, "time_entries", _profile({"sheet": "2027-*"}, tmp_path))


def test_xlsx_empty_named_sheet_and_damaged_workbook(tmp_path):
    path = _workbook(tmp_path / "time_entries.xlsx", {"Log": [], "Other": [TE_HEADER]})
    with pytest.raises(ExtractError, match=r"time_entries.xlsx\[Log\]: empty sheet"):
        read_parts(path, "time_entries")
    broken = tmp_path / "time_entries_2.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ExtractError, match=r"time_entries_2.xlsx: cannot read file"):
        read_parts(broken, "time_entries")


def test_messy_files_load_through_the_ingest_with_sheet_labels_in_the_quarantine(drop: Drop, tmp_path):
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 20)
    folder = drop.write()
    # the roster re-delivered as Windows-1252, semicolons, CRLF
    (folder / "staff_2.csv").write_bytes(
        "staff_id;role;facility_id;name\r\nCM2;care_manager;F1;Renée\r\n".encode("cp1252")
    )
    _workbook(folder / "time_entries_book.xlsx", {
        "Jan": [TE_HEADER, ["X1", "P1", "CM1", dt.datetime(2026, 1, 6), 15, "follow_up", None]],
        "Feb": [TE_HEADER, ["X2", "P1", "CM1", dt.datetime(2026, 2, 6), 15, "golf", None]],
    })
    (folder / "bhi-profile.yaml").write_text(
        "tables:\n  time_entries:\n    files: ['time_entries*']\n    sheet: '*'\n"
    )
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_reference(conn)
    result = load_drop(conn, folder)
    assert result.file_errors == []
    assert conn.sql("select name from raw_staff where staff_id = 'CM2'").fetchall() == [("Renée",)]
    assert conn.sql("select entry_id, source_file from raw_time_entries order by entry_id").fetchall() == [
        ("E00001", "time_entries.csv"),
        ("X1", "time_entries_book.xlsx[Jan]"),
    ]
    assert conn.sql("select source_file, source_row, reason from quarantine").fetchall() == [
        ("time_entries_book.xlsx[Feb]", 2, "activity: unknown value 'golf'")
    ]


def test_the_quarantine_and_field_warnings_of_a_workbooks_sheets_export_in_one_order(drop: Drop, tmp_path):
    """The sheets of one workbook are one delivery and number their rows alike (row 2 on each sheet):
    the quarantine and field_warnings exports end their order with the table and the file[sheet], so
    the rows of two sheets come out in one order, whatever the order of the tables they are read from."""
    from pipelines.outputs.exports import EXPORTS

    drop.enroll("P1")
    folder = drop.write()
    header = [*TE_HEADER, "documented_at"]
    _workbook(folder / "time_entries_book.xlsx", {
        sheet: [header, [f"X{n}", "P1", "CM1", dt.datetime(2026, n, 6), 15, "golf", None, "not a time"],
                [f"Y{n}", "P1", "CM1", dt.datetime(2026, n, 7), 15, "follow_up", None, "not a time"]]
        for n, sheet in ((1, "Jan"), (2, "Feb"))
    })
    (folder / "bhi-profile.yaml").write_text(
        "tables:\n  time_entries:\n    files: ['time_entries*']\n    sheet: '*'\n"
    )
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_reference(conn)
    assert load_drop(conn, folder).file_errors == []
    queries = {name: EXPORTS[f"{name}.csv"] for name in ("quarantine", "field_warnings")}
    before = {name: conn.sql(q).fetchall() for name, q in queries.items()}
    assert [r[1:3] for r in before["quarantine"]] == [("time_entries_book.xlsx[Feb]", 2), ("time_entries_book.xlsx[Jan]", 2)]
    assert [r[1:4] for r in before["field_warnings"]] == [("time_entries_book.xlsx[Feb]", 3, "documented_at"),
                                                         ("time_entries_book.xlsx[Jan]", 3, "documented_at")]
    for table in ("quarantine", "field_warnings"):
        conn.execute(f"create or replace table {table} as select * exclude (_k)"
                     f" from (select *, row_number() over () as _k from {table}) order by _k desc")
    assert {name: conn.sql(q).fetchall() for name, q in queries.items()} == before


def test_an_entry_on_two_sheets_of_one_workbook_counts_once(drop: Drop, tmp_path):
    """The sheets of one workbook are one delivery (one delivery_seq): an entry id on two sheets would
    be two live versions of one entry and its minutes counted twice. The first, in sheet-label then
    row order, loads; the other is quarantined naming where the first is."""
    drop.enroll("P1")
    folder = drop.write()
    _workbook(folder / "time_entries_book.xlsx", {
        "Jan": [TE_HEADER, ["X1", "P1", "CM1", dt.datetime(2026, 1, 6), 15, "follow_up"]],
        "Feb": [TE_HEADER, ["X1", "P1", "CM1", dt.datetime(2026, 2, 6), 25, "follow_up"]],
    })
    (folder / "bhi-profile.yaml").write_text("tables:\n  time_entries:\n    files: ['time_entries*']\n    sheet: '*'\n")
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_reference(conn)
    assert load_drop(conn, folder).file_errors == []
    assert conn.sql("select entry_id, minutes, source_file from raw_time_entries where entry_id = 'X1'").fetchall() == [
        ("X1", 25, "time_entries_book.xlsx[Feb]")
    ]
    assert conn.sql("select source_file, source_row, reason from quarantine").fetchall() == [
        ("time_entries_book.xlsx[Jan]", 2,
         "entry_id: duplicate entry_id within the delivery (first in time_entries_book.xlsx[Feb] at row 2)")
    ]
