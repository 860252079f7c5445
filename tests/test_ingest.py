"""Extract drops: file-level errors name the file and column; bad rows are quarantined with reasons."""

from __future__ import annotations

import json
import re

import duckdb
import polars as pl
import pytest

from conftest import Drop, write_csv
from pipelines.cli import main
from pipelines.ingest.load import ExtractError, load_drop
from pipelines.warehouse.reference import seed_reference


def _ingest(tmp_path, folder):
    conn = duckdb.connect(str(tmp_path / "ingest.duckdb"))
    seed_reference(conn)
    return conn, load_drop(conn, folder)


def test_missing_required_column_names_file_column_and_what_was_found(drop: Drop, tmp_path):
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 20)
    folder = drop.write()
    df = pl.read_csv(folder / "time_entries.csv", infer_schema=False).drop("minutes")
    df.write_csv(folder / "time_entries.csv")
    conn, result = _ingest(tmp_path, folder)
    # the file is rejected (named, with the column); the other files load
    (message,) = result.file_errors
    assert conn.sql("select count(*) from raw_time_entries").fetchall() == [(0,)]
    assert conn.sql("select count(*) from raw_enrollments").fetchall() == [(1,)]
    assert conn.sql("select status from ingest_files where source_file = 'time_entries.csv'").fetchall() == [
        ("rejected",)
    ]
    assert "time_entries.csv" in message
    assert "missing required column(s) minutes" in message
    assert "columns found: entry_id, patient_id, staff_id, service_date, activity" in message


def test_missing_required_table_lists_the_files_found(drop: Drop, tmp_path):
    folder = drop.write()
    (folder / "psych_reviews.csv").unlink()
    with pytest.raises(ExtractError, match=r"no file for required table\(s\) psych_reviews.*files found: encounters.csv"):
        _ingest(tmp_path, folder)


def test_unreadable_file_is_named(drop: Drop, tmp_path):
    folder = drop.write()
    (folder / "encounters_2.parquet").write_bytes(b"not a parquet file")
    _, result = _ingest(tmp_path, folder)
    (message,) = result.file_errors
    assert re.search(r"encounters_2.parquet: cannot read file", message)


def test_bad_rows_are_quarantined_with_file_row_column_and_reason(drop: Drop, tmp_path):
    drop.enroll("P1")
    drop.enroll("P2", payer="no_such_payer")
    drop.log("P1", "2026-01-05", 20)  # row 2: good
    drop.log("P1", "2026-01-06", "0")  # row 3
    drop.log("P1", "2026-13-05", "10")  # row 4
    drop.log("", "2026-01-07", "10")  # row 5
    drop.log("P1", "2026-01-08", "abc")  # row 6
    drop.log("P1", "2026-01-09", "12.5")  # row 7
    drop.log("P1", "2026-01-09", "10", activity="golf")  # row 8
    drop.entries.append(dict(drop.entries[0]))  # row 9: duplicate entry_id E00001 in the same file
    conn, result = _ingest(tmp_path, drop.write())
    rows = conn.sql(
        "select table_name, source_file, source_row, columns, reason from quarantine order by table_name, source_row"
    ).fetchall()
    assert rows == [
        ("enrollments", "enrollments.csv", 3, "payer_id", "payer_id: unknown payer (not in reference or payers extract)"),
        ("time_entries", "time_entries.csv", 3, "minutes", "minutes: minutes must be greater than 0"),
        ("time_entries", "time_entries.csv", 4, "service_date", "service_date: cannot read the value as a date (YYYY-MM-DD)"),
        ("time_entries", "time_entries.csv", 5, "patient_id", "patient_id: missing required value"),
        ("time_entries", "time_entries.csv", 6, "minutes", "minutes: cannot read 'abc' as a whole number"),
        ("time_entries", "time_entries.csv", 7, "minutes", "minutes: cannot read '12.5' as a whole number"),
        ("time_entries", "time_entries.csv", 8, "activity", "activity: unknown value 'golf'"),
        ("time_entries", "time_entries.csv", 9, "entry_id", "entry_id: duplicate entry_id within the file (first at row 2)"),
    ]
    record = json.loads(conn.sql("select record from quarantine where source_row = 6 and table_name = 'time_entries'").fetchall()[0][0])
    assert record["minutes"] == "abc"  # the raw row is kept, nothing is lost
    assert result.rows_read["time_entries"] == 8
    assert (result.rows_loaded["time_entries"], result.rows_quarantined["time_entries"]) == (1, 7)
    ledger = conn.sql("select source_file, rows_read, rows_loaded, rows_quarantined from ingest_files where table_name = 'time_entries'").fetchall()
    assert ledger == [("time_entries.csv", 8, 1, 7)]


def test_parquet_and_xlsx_files_load_like_csv(drop: Drop, tmp_path):
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 20)
    folder = drop.write()
    extra = pl.select(
        entry_id=pl.lit("X1"), patient_id=pl.lit("P1"), staff_id=pl.lit("CM1"),
        service_date=pl.date(2026, 1, 6), minutes=pl.lit(15), activity=pl.lit("follow_up"),
    )
    extra.write_parquet(folder / "time_entries_extra.parquet")
    extra.with_columns(entry_id=pl.lit("X2"), minutes=pl.lit(12.0)).write_excel(folder / "time_entries_sheet.xlsx")
    conn, _ = _ingest(tmp_path, folder)
    rows = conn.sql("select entry_id, service_date::varchar, minutes, source_file from raw_time_entries order by entry_id").fetchall()
    assert rows == [
        ("E00001", "2026-01-05", 20, "time_entries.csv"),
        ("X1", "2026-01-06", 15, "time_entries_extra.parquet"),
        ("X2", "2026-01-06", 12, "time_entries_sheet.xlsx"),
    ]


def test_file_error_leaves_the_previous_warehouse_intact(drop: Drop, tmp_path, capsys):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    folder = drop.write()
    out = tmp_path / "out"
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-02-10", "--allow-stale"]) == 0
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        before = conn.sql("select * from fct_claims").fetchall()
    assert len(before) == 1
    # a broken re-delivery: enrollments lose a required column
    write_csv(folder / "enrollments.csv", [{"patient_id": "P1", "program": "cocm"}])
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-02-10"]) == 1
    err = capsys.readouterr().err
    assert "enrollments.csv: missing required column(s) payer_id, facility_id, billing_provider_id, enrolled_on" in err
    assert "columns found: patient_id, program" in err
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.sql("select * from fct_claims").fetchall() == before
        assert conn.sql("select count(*) from raw_enrollments").fetchall() == [(1,)]


def test_payer_booleans_read_in_any_case(drop: Drop, tmp_path):
    drop.payers = [
        {"payer_id": "P_A", "rule_set": "cms_midpoint", "count_consultant_time": "TRUE"},
        {"payer_id": "P_B", "rule_set": "full_time", "count_consultant_time": "No"},
        {"payer_id": "P_C", "rule_set": "full_time", "count_consultant_time": "maybe"},
    ]
    conn, _ = _ingest(tmp_path, drop.write())
    assert conn.sql("select payer_id, count_consultant_time from raw_payers order by 1").fetchall() == [
        ("p_a", True),
        ("p_b", False),
    ]
    assert conn.sql("select source_row, reason from quarantine").fetchall() == [
        (4, "count_consultant_time: cannot read 'maybe' as true/false")
    ]
