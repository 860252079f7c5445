"""Large files are read in bounded memory (issue 12 item 7): a CSV or Parquet file is read in
batches of about `readers.BATCH_BYTES`, each mapped through the same profile steps and landed in
DuckDB, with row numbers continuing across batches. The batched read must equal a one-shot read,
and the Python heap of a read must stay near one batch, whatever the file's size."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import Drop
from pipelines.ingest import load as ingest_load
from pipelines.ingest import native_csv, readers
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.load import load_drop
from pipelines.ingest.profiles import parse_profile
from pipelines.ingest.readers import iter_parts
from pipelines.warehouse.reference import seed_reference

HEADER = "entry_id,patient_id,staff_id,service_date,minutes,activity,program,start_time,end_time,documented_at,encounter_id"


def _entries(n: int, seed: int = 3, odd: dict[int, str] | None = None) -> list[str]:
    """n time-entry records as CSV lines (with the awkward bits: quoted commas, quoted line breaks,
    doubled quotes, non-ASCII names); `odd` replaces the record at an index by a given line."""
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        note = rnd.choice(["", '"Lee, Ann"', '"two\nlines"', '"say ""hi"""', "Zoë Pérez", '"a\r\nb, c"'])
        lines.append(
            f"E{i:07d},P{rnd.randrange(500):04d},CM{rnd.randrange(9)},2026-0{rnd.randrange(1, 10)}-1{rnd.randrange(10)},"
            f"{rnd.randrange(1, 60)},follow_up,{note},,,,"
        )
        if odd and i in odd:
            lines[-1] = odd[i]
    return lines


def _write(path: Path, lines: list[str], newline: str = "\n", encoding: str = "utf-8") -> Path:
    path.write_bytes((newline.join([HEADER, *lines]) + newline).encode(encoding))
    return path


def _read_all(path: Path, batch_bytes: int, profile=None) -> tuple[int, pl.DataFrame, pl.DataFrame]:
    """(number of batches, the data of every batch, the malformed records of every batch)."""
    parts = list(iter_parts(path, "time_entries", profile, batch_bytes=batch_bytes))
    malformed = [p.malformed for p in parts if p.malformed is not None]
    empty = pl.DataFrame(schema={"source_row": pl.Int64, "reason": pl.String, "line": pl.String})
    return len(parts), pl.concat([p.data for p in parts]), pl.concat(malformed) if malformed else empty


# ---------------------------------------------------------------------------------------------------
# The batched read equals a one-shot read


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_batches_equal_a_one_shot_read_with_continuous_row_numbers(tmp_path, newline):
    path = _write(tmp_path / "time_entries.csv", _entries(20_000), newline)
    batches, data, malformed = _read_all(path, batch_bytes=16 << 10)
    assert batches >= 40  # ~1 MB in 16 kB batches
    assert malformed.height == 0
    # the oracle: polars reading the whole file at once (all text), rows numbered from 2
    whole = pl.read_csv(path, infer_schema=False)
    assert data.drop("source_row").select(whole.columns).equals(whole)
    assert data["source_row"].to_list() == list(range(2, whole.height + 2))
    one_batch, data_one, _ = _read_all(path, batch_bytes=1 << 30)
    assert one_batch == 1 and data.equals(data_one)


def test_a_quoted_line_break_on_a_batch_boundary_stays_in_its_record(tmp_path):
    # every record holds a quoted line break: any cut at a plain line end would split a record
    lines = [f'E{i:05d},P1,CM1,2026-05-04,{i % 50 + 1},follow_up,"x\ny\n""z""",,,,' for i in range(3000)]
    path = _write(tmp_path / "time_entries.csv", lines)
    batches, data, malformed = _read_all(path, batch_bytes=4096)
    assert batches > 20 and malformed.height == 0
    assert data["program"].unique().to_list() == ['x\ny\n"z"']
    assert data["source_row"].to_list() == list(range(2, 3002))


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig", "utf-16", "latin-1"])
def test_encodings_read_in_small_blocks_equal_the_whole_file_decoded(tmp_path, monkeypatch, encoding):
    """A character cut by a block boundary (multi-byte UTF-8, UTF-16 pairs) is decoded whole."""
    lines = [f"E{i:05d},P1,CM1,2026-05-04,{i % 50 + 1},follow_up,\u201cJos\u00e9\u201d P\u00e9rez {i},,,,"
             for i in range(2000)]
    if encoding == "latin-1":  # 0x81 is undefined in Windows-1252: only Latin-1 reads this file
        lines = [line.replace("\u201c", "\x81").replace("\u201d", "\x81") for line in lines]
    path = _write(tmp_path / "time_entries.csv", lines, encoding=encoding)
    monkeypatch.setattr(readers, "BLOCK_BYTES", 7)  # every block cuts characters
    batches, data, _ = _read_all(path, batch_bytes=2048)
    assert batches > 10
    expected = [line.split(",")[6] for line in lines]
    assert data["program"].to_list() == expected
    assert data["source_row"].to_list() == list(range(2, 2002))


def test_an_encoding_error_names_the_same_byte_when_read_in_blocks(tmp_path, monkeypatch):
    path = tmp_path / "staff.csv"
    path.write_bytes("staff_id,role,facility_id,name\nS1,care_manager,F1,José\n".encode("cp1252"))
    profile = parse_profile({"csv": {"encoding": "utf-8"}}, tmp_path / "p.yaml")
    monkeypatch.setattr(readers, "BLOCK_BYTES", 5)
    with pytest.raises(ExtractError, match=r"staff.csv: cannot read file as utf-8 \(byte 53: b'\\xe9'\)"):
        list(iter_parts(path, "staff", profile))


def test_profile_mapping_applies_to_every_batch(tmp_path):
    profile = parse_profile(
        {"tables": {"time_entries": {
            "columns": {"Visit Date": "service_date", "Role Minutes": "minutes"},
            "formats": {"service_date": ["%m/%d/%Y"]},
            "values": {"activity": {"FU": "follow_up"}},
            "minutes": {"duration": True},
        }}},
        tmp_path / "p.yaml",
    )
    header = "entry_id,patient_id,staff_id,Visit Date,Role Minutes,activity"
    body = [f"E{i:05d},P1,CM1,05/{i % 28 + 1:02d}/2026,0:{i % 50 + 10},FU" for i in range(5000)]
    path = tmp_path / "time_entries.csv"
    path.write_text("\n".join([header, *body]) + "\n")
    batches, data, _ = _read_all(path, batch_bytes=8192, profile=profile)
    assert batches > 10
    assert data["service_date"].to_list() == [f"2026-05-{i % 28 + 1:02d}" for i in range(5000)]
    assert data["minutes"].to_list() == [str(i % 50 + 10) for i in range(5000)]
    assert data["activity"].unique().to_list() == ["follow_up"]


# ---------------------------------------------------------------------------------------------------
# Malformed records: quarantined by row, in batches too


def test_malformed_rows_in_later_batches_keep_their_row_numbers(tmp_path):
    """An even-quoted file with a record of too many fields: only its batch is read record by
    record; rows before and after keep the numbers of a one-shot read."""
    odd = {1500: "E9999999,P1,CM1,2026-05-04,20,follow_up,,,,,,EXTRA"}
    path = _write(tmp_path / "time_entries.csv", _entries(4000, odd=odd))
    batches, data, malformed = _read_all(path, batch_bytes=8192)
    assert batches > 10
    assert malformed.rows() == [(1502, "malformed row: 12 fields where the header has 11",
                                 "E9999999,P1,CM1,2026-05-04,20,follow_up,,,,,,EXTRA")]
    _, data_one, malformed_one = _read_all(path, batch_bytes=1 << 30)
    assert data.equals(data_one) and malformed.equals(malformed_one)
    assert sorted(data["source_row"].to_list() + [1502]) == list(range(2, 4002))


def test_an_unterminated_quote_is_read_record_by_record_in_batches(tmp_path):
    """An odd number of quotes: the whole file is read record by record, still in batches, and the
    result is the same whatever the batch size."""
    odd = {10: 'E8888888,"P1,CM1,2026-05-04,20,follow_up,,,,,', 3000: "E9999999,P1,CM1,2026-05-04,20,x,,,,,,EXTRA"}
    path = _write(tmp_path / "time_entries.csv", _entries(4000, odd=odd))
    batches, data, malformed = _read_all(path, batch_bytes=8192)
    one, data_one, malformed_one = _read_all(path, batch_bytes=1 << 30)
    assert batches > 10 and one == 1
    assert data.equals(data_one) and malformed.equals(malformed_one)
    assert malformed["source_row"].to_list() == [12, 3002]
    assert malformed["reason"][0] == "malformed row: a quote is not closed, or a quoted field is malformed"
    assert data.height == 3998 and data["source_row"].is_sorted()


# ---------------------------------------------------------------------------------------------------
# Parquet in batches of rows


def test_parquet_batches_equal_a_one_shot_read_and_judge_floats_over_the_file(tmp_path):
    n = 30_000
    path = tmp_path / "time_entries.parquet"
    pl.DataFrame({
        "entry_id": [f"E{i}" for i in range(n)],
        "patient_id": ["P1"] * n,
        "staff_id": ["CM1"] * n,
        "service_date": pl.date_range(pl.date(2026, 1, 1), pl.date(2026, 12, 31), eager=True).sample(
            n, with_replacement=True, seed=1),
        "minutes": [float(i % 50 + 1) for i in range(n)],  # whole numbers: written without .0
        "activity": ["follow_up"] * n,
        # one fraction in the last rows: the whole column keeps its decimals, in every batch
        "activity_minutes": [1.0] * (n - 1) + [1.5],
    }).write_parquet(path, row_group_size=5000)
    profile = parse_profile({"tables": {"time_entries": {"columns": {"activity_minutes": "program"}}}},
                            tmp_path / "p.yaml")
    batches, data, _ = _read_all(path, batch_bytes=64 << 10, profile=profile)
    one, data_one, _ = _read_all(path, batch_bytes=1 << 30, profile=profile)
    assert batches > 5 and one == 1
    assert data.equals(data_one)
    assert data["source_row"].to_list() == list(range(1, n + 1))
    assert data["minutes"][0] == "1" and data["program"][0] == "1.0" and data["program"][-1] == "1.5"


# ---------------------------------------------------------------------------------------------------
# Ingest lands the batches


def _warehouse(tmp_path: Path, name: str) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
    seed_reference(conn)
    return conn


def test_ingest_in_small_batches_loads_the_same_rows_and_quarantine(drop: Drop, tmp_path, monkeypatch):
    drop.enroll("P0001")
    drop.write()
    bad = {7: 'E8888888,"P1,CM1,2026-05-04,20,follow_up,,,,,', 900: "E1,P1,CM1,2026-05-04,0,follow_up,,,,,"}
    _write(drop.folder / "time_entries.csv", _entries(3000, odd=bad))
    _write(drop.folder / "time_entries_2.csv", _entries(2000, seed=9, odd={1000: "E2,P1,CM1,x,,,,,,,,,"}))

    def snapshot(conn):
        return {t: conn.sql(f"select * from {t} order by all").fetchall()
                for t in ("raw_time_entries", "quarantine", "field_warnings")} | {
            "ledger": conn.sql("select source_file, status, rows_read, rows_loaded, rows_quarantined"
                               " from ingest_files order by all").fetchall()}

    whole = _warehouse(tmp_path, "whole")
    load_drop(whole, drop.folder)
    monkeypatch.setattr(readers, "BATCH_BYTES", 4096)
    monkeypatch.setattr(readers, "BLOCK_BYTES", 1000)
    batched = _warehouse(tmp_path, "batched")
    result = load_drop(batched, drop.folder)
    assert result.rows_read["time_entries"] == 5000
    assert batched.sql("select count(*) from quarantine where reason like 'malformed row%'").fetchall() == [(2,)]
    assert snapshot(batched) == snapshot(whole)


def test_a_file_failing_after_some_batches_landed_is_rejected_whole(drop: Drop, tmp_path, monkeypatch):
    drop.enroll("P0001")
    drop.month("P0001", "2026-05", 40)
    drop.write()
    _write(drop.folder / "time_entries_2.csv", _entries(500))
    real = ingest_load.iter_parts

    def failing(path, table, *args, **kwargs):
        for i, part in enumerate(real(path, table, *args, **kwargs)):
            if path.name == "time_entries_2.csv" and i == 1:
                raise ExtractError(f"{path}: cannot read file (a test failure after the first batch)")
            yield part

    monkeypatch.setattr(readers, "BATCH_BYTES", 4096)
    monkeypatch.setattr(ingest_load, "iter_parts", failing)
    # every file through the batched reader (a well-formed CSV file is otherwise read by DuckDB in one statement)
    monkeypatch.setattr(native_csv, "plan", lambda *args, **kwargs: None)
    conn = _warehouse(tmp_path, "w")
    result = load_drop(conn, drop.folder)
    assert [e.split(": ", 1)[1] for e in result.file_errors] == ["cannot read file (a test failure after the first batch)"]
    assert conn.sql("select distinct source_file from raw_time_entries").fetchall() == [("time_entries.csv",)]
    assert result.rows_loaded["time_entries"] == 2  # the other file's entries only
    assert conn.sql("select status, rows_read from ingest_files where source_file = 'time_entries_2.csv'"
                    ).fetchall() == [("rejected", 0)]


# ---------------------------------------------------------------------------------------------------
# Memory: the Python heap of a read holds about one batch, not the file


@pytest.mark.parametrize("unterminated", [False, True], ids=["fast path", "record by record"])
def test_reading_a_file_holds_about_one_batch_of_it(tmp_path, monkeypatch, unterminated):
    """tracemalloc sees every Python allocation of the read (bytes, decoded text, the csv module's
    records; not polars' own buffers): reading the whole file at once, as the reader did before,
    peaks at twice the file or more. In batches the peak is some batches (a batch of the csv
    module's records takes about ten times its bytes), whatever the file size."""
    monkeypatch.setattr(readers, "BATCH_BYTES", 64 << 10)
    monkeypatch.setattr(readers, "BLOCK_BYTES", 16 << 10)
    odd = {5: 'E8888888,"P1,CM1,2026-05-04,20,follow_up,,,,,'} if unterminated else None
    path = _write(tmp_path / "time_entries.csv", _entries(120_000, odd=odd))
    size = path.stat().st_size
    assert size > (3 << 20)
    list(iter_parts(_write(tmp_path / "warm_up.csv", _entries(10)), "time_entries"))  # lazy imports
    tracemalloc.start()
    try:
        rows = sum(part.data.height for part in iter_parts(path, "time_entries"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == (119_999 if unterminated else 120_000)
    assert peak < size / 4, f"peak {peak} bytes for a file of {size} bytes"
