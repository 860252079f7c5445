"""Hostile files and configuration (issue 30): every reader bounded before it allocates (XLSX sheet
spans, a native reader's crash in a child process, Parquet nested columns and sizes, CSV line and
record sizes; limits in settings.csv), source profiles parsed without YAML aliases and with a size
limit, encodings limited to text codecs, quoted headers matched after unquoting, and a misnamed FHIR
file named instead of ignored. The hostile files are generated here, a few KB each."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import polars as pl
import pytest
import xlsxwriter

from conftest import Drop
from pipelines.cli import main
from pipelines.ingest import native_csv
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.limits import default_limits
from pipelines.ingest.load import load_drop
from pipelines.ingest.profiles import parse_profile, read_profile_file
from pipelines.ingest.readers import read_parts
from pipelines.warehouse.reference import seed_reference

TE_HEADER = ["entry_id", "patient_id", "staff_id", "service_date", "minutes", "activity"]


def _warehouse(tmp_path: Path, name: str = "w", **settings: int) -> duckdb.DuckDBPyConnection:
    """A seeded warehouse, with some settings changed (as a customer's settings.csv would)."""
    conn = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
    seed_reference(conn)
    for name, value in settings.items():
        assert conn.execute("update ref_settings set value = ? where setting = ?", [str(value), name]).fetchall()
    return conn


def _grid_bomb(path: Path) -> Path:
    """A workbook of about 5 KB whose sheet spans A1:XFD1048576 (a header row and one cell in the last
    row and column): loading it asks for 2^39 bytes at once (issue 30: SIGABRT, exit 134)."""
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("Log")
    ws.write_row(0, 0, TE_HEADER)
    ws.write(1048575, 16383, "x")
    wb.close()
    assert path.stat().st_size < 10_000
    return path


def _rejected(conn, name: str) -> list[tuple]:
    return conn.sql("select status, detail from ingest_files where source_file = ? order by loaded_at",
                    params=[name]).fetchall()


def test_a_workbook_spanning_the_whole_grid_is_rejected_by_name_each_night_and_the_run_goes_on(drop: Drop, tmp_path):
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 20)
    folder = drop.write()
    _grid_bomb(folder / "time_entries_bomb.xlsx")
    conn = _warehouse(tmp_path)
    for night in (1, 2):  # recorded in the ledger and reported again each night, never loaded
        result = load_drop(conn, folder)
        (error,) = result.file_errors
        assert error == (
            f"{folder / 'time_entries_bomb.xlsx'}[Log]: the sheet spans A1:XFD1048576 (1,048,576 rows x 16,384"
            " columns), over the limit of 1,000,000 rows (setting xlsx_max_rows); not read"
        )
        assert [s for s, _ in _rejected(conn, "time_entries_bomb.xlsx")] == ["rejected"] * night
    assert conn.sql("select entry_id from raw_time_entries").fetchall() == [("E00001",)]


def test_bhi_run_with_the_grid_bomb_publishes_and_names_the_file_with_the_limit(drop: Drop, tmp_path, capsys):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 60)
    folder = drop.write()
    _grid_bomb(folder / "time_entries_bomb.xlsx")
    out = tmp_path / "out"
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-02-10", "--allow-stale"]) == 1
    err = capsys.readouterr().err
    assert (f"  {folder / 'time_entries_bomb.xlsx'}[Log]: the sheet spans A1:XFD1048576 (1,048,576 rows x 16,384"
            " columns), over the limit of 1,000,000 rows (setting xlsx_max_rows); not read") in err.splitlines()
    assert "bhi run: 1 file(s) rejected" in err
    assert (out / "claims.csv").exists()


def test_a_sheet_over_the_cell_limit_is_rejected_naming_the_setting(tmp_path):
    path = tmp_path / "time_entries.xlsx"
    wb = xlsxwriter.Workbook(path)
    ws = wb.add_worksheet("Log")
    ws.write_row(0, 0, TE_HEADER)
    ws.write(9999, 999, "x")  # A1:ALL10000: 10,000 rows x 1,000 columns, each within its own limit
    wb.close()
    limits = dataclasses.replace(default_limits(), xlsx_max_cells=1_000_000)
    with pytest.raises(ExtractError) as err:
        read_parts(path, "time_entries", limits=limits)
    assert str(err.value) == (f"{path}[Log]: the sheet spans A1:ALL10000 (10,000 rows x 1,000 columns), over the"
                              " limit of 1,000,000 cells (setting xlsx_max_cells); not read")


def test_a_crash_of_the_xlsx_reader_rejects_that_file_not_the_run(drop: Drop, tmp_path):
    """With the span limits raised out of the way, the reader itself runs out of its address space
    (native_reader_memory_mb) and aborts: only its child process dies, the file is rejected by name."""
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 20)
    folder = drop.write()
    _grid_bomb(folder / "time_entries_bomb.xlsx")
    conn = _warehouse(tmp_path, xlsx_max_rows=10**9, xlsx_max_columns=10**9, xlsx_max_cells=10**12,
                      native_reader_memory_mb=2048)
    result = load_drop(conn, folder)
    assert result.file_errors == [
        f"{folder / 'time_entries_bomb.xlsx'}: the XLSX reader failed (out of memory under the limit of 2,048 MB,"
        " setting native_reader_memory_mb, or a crash); not read"
    ]
    assert conn.sql("select entry_id from raw_time_entries").fetchall() == [("E00001",)]


def test_a_parquet_list_column_rejects_the_file_in_one_line_and_an_unused_one_is_not_read(drop: Drop, tmp_path):
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 20)
    folder = drop.write()
    staff = {"staff_id": ["CM9"], "role": ["care_manager"], "facility_id": ["F1"]}
    pl.DataFrame({**staff, "name": [["Ann", "Lee"]]}).write_parquet(folder / "staff_2.parquet")
    pl.DataFrame({**staff, "staff_id": ["CM8"], "tags": [[{"k": "a"}]]}).write_parquet(folder / "staff_3.parquet")
    conn = _warehouse(tmp_path)
    result = load_drop(conn, folder)
    assert result.file_errors == [
        f"{folder / 'staff_2.parquet'}: column(s) name (large_list) hold nested values (a list, struct or map), not one"
        " value per row; write them as text or numbers; not read"
    ]
    assert conn.sql("select staff_id from raw_staff where staff_id like 'CM_' order by 1").fetchall() == [
        ("CM1",), ("CM8",)
    ]


def test_parquet_column_and_row_group_limits_are_settings(drop: Drop, tmp_path):
    drop.enroll("P1")
    folder = drop.write()
    pl.DataFrame({"staff_id": ["CM9"], "role": ["care_manager"], "facility_id": ["F1"],
                  **{f"extra_{i}": [i] for i in range(5)}}).write_parquet(folder / "staff_2.parquet")
    conn = _warehouse(tmp_path, parquet_max_columns=6)
    assert load_drop(conn, folder).file_errors == [
        f"{folder / 'staff_2.parquet'}: 8 columns, over the limit of 6 (setting parquet_max_columns); not read"
    ]
    conn = _warehouse(tmp_path, "w2", parquet_max_row_group_mb=0)
    (error,) = load_drop(conn, folder).file_errors
    assert "staff_2.parquet: a row group of 0 MB uncompressed, over the limit of 0 MB (setting parquet_max_row_group_mb)" in error


def test_csv_line_and_record_limits_reject_the_file_by_name(drop: Drop, tmp_path):
    drop.enroll("P1")
    folder = drop.write()
    (folder / "staff_2.csv").write_text("staff_id,role,facility_id,name\nCM9,care_manager,F1," + "x" * 300 + "\n")
    # a quoted field running over many short lines: each line is short, the record is not
    (folder / "staff_3.csv").write_text(
        'staff_id,role,facility_id,name\nCM8,care_manager,F1,"' + ("y" * 60 + "\n") * 20_000 + '"\n'
    )
    conn = _warehouse(tmp_path, csv_max_line_chars=200, csv_max_record_bytes=100_000)
    result = load_drop(conn, folder)
    assert result.file_errors == [
        f"{folder / 'staff_2.csv'}: a line longer than 200 characters, over the limit (setting csv_max_line_chars);"
        " not read",
        f"{folder / 'staff_3.csv'}: a record (a quoted field over several lines) longer than 100,000 bytes, over the"
        " limit (setting csv_max_record_bytes); not read",
    ]
    assert conn.sql("select count(*) from raw_staff where staff_id in ('CM8', 'CM9')").fetchall() == [(0,)]


def _alias_bomb(levels: int) -> str:
    """The classic YAML alias bomb: each level a list of nine aliases of the one before."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    return "\n".join(lines) + f"\nname: *{chr(ord('a') + levels - 1)}\n"


def test_a_yaml_alias_bomb_as_the_drops_profile_gives_one_short_line(drop: Drop, tmp_path):
    # six levels (9^6 strings) keep the old behaviour cheap to show (a message of megabytes); at nine
    # levels (350 bytes) it ran out of memory; either way the first alias is refused now
    folder = drop.write()
    (folder / "bhi-profile.yaml").write_text(_alias_bomb(6))
    assert len(_alias_bomb(9)) < 400
    conn = _warehouse(tmp_path)
    with pytest.raises(ExtractError) as err:
        load_drop(conn, folder)
    message = str(err.value)
    assert message == (f"profile {folder / 'bhi-profile.yaml'}: line 2: YAML aliases (*name) are not allowed in a"
                       " profile; write the value out")


def test_a_profile_over_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("name: big\n" + "# padding\n" * 7000)  # 70 KB of comments
    with pytest.raises(ExtractError, match=r"^profile .*big.yaml: larger than 65,536 bytes, over the limit "
                                           r"\(setting profile_max_bytes\); not read$"):
        read_profile_file(path)


@pytest.mark.parametrize("codec", ["zlib_codec", "rot13", "base64_codec", "hex_codec"])
def test_an_encoding_that_is_not_a_text_codec_is_refused_naming_the_setting(tmp_path, codec):
    with pytest.raises(ExtractError) as err:
        parse_profile({"tables": {"staff": {"csv": {"encoding": codec}}}}, tmp_path / "p.yaml")
    assert str(err.value) == (
        f"profile {tmp_path / 'p.yaml'}: tables.staff.csv.encoding: '{codec}' is not a text encoding"
        " (e.g. utf-8, cp1252, latin-1, utf-16)"
    )
    assert parse_profile({"csv": {"encoding": "cp1252"}}, tmp_path / "p.yaml").csv.encoding == "cp1252"


def test_a_quoted_header_is_matched_by_a_profile_after_unquoting(tmp_path):
    path = tmp_path / "time_entries.csv"
    path.write_text('"entry""id",patient_id,staff_id,service_date,minutes,activity\nE1,P1,S1,2026-01-05,20,follow_up\n')
    # the profile key copied from the file as written: "entry""id" (the header entry"id, CSV-quoted)
    profile = parse_profile({"tables": {"time_entries": {"columns": {'"entry""id"': "entry_id"}}}}, tmp_path / "p.yaml")
    (part,) = read_parts(path, "time_entries", profile)
    assert part.data.select("entry_id", "minutes").rows() == [("E1", "20")]
    # DuckDB's reader (the path a plain file takes in a load) finds the column the same way
    assert native_csv.plan(path, "time_entries", profile).sources["entry_id"] == 0


def test_a_misnamed_fhir_file_is_rejected_by_name_not_ignored(drop: Drop, tmp_path):
    drop.enroll("P1")
    folder = drop.write()
    (folder / "Encounter_zz.ndjson").write_text('{"resourceType": "Encounter", "id": "V9"}\n')
    (folder / "ObservationDefinition.ndjson").write_text('{"resourceType": "ObservationDefinition", "id": "D"}\n')
    conn = _warehouse(tmp_path)
    result = load_drop(conn, folder)
    assert result.file_errors == [
        f"{folder / 'Encounter_zz.ndjson'}: not a FHIR Bulk Data file name (expected <Resource>[_N].ndjson, e.g."
        " Encounter_2.ndjson); not read: rename it"
    ]
    assert [s for s, _ in _rejected(conn, "Encounter_zz.ndjson")] == ["rejected"]
    # a Bulk Data file of a resource the ingest does not read is still ignored, as documented
    assert _rejected(conn, "ObservationDefinition.ndjson") == []
