"""Exports are rewritten only when their content changed (manifest.csv: rows and checksum per file).
The evidence trail (~30M rows at 10M entries) stays in the warehouse: a nightly run writes no file of
it; `bhi evidence` writes one service month on demand (the close writes its own, test_month_end.py),
and a publication drops the claim_evidence/ folder an earlier version published."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys

import duckdb
import pytest

from conftest import REPO_ROOT, copy_sample_run
from pipelines.cli import main
from pipelines.outputs.exports import EXPORTS, MANIFEST, RETIRED_EVIDENCE_DIR, write_exports
from pipelines.outputs.publication import PUBLICATIONS, current_folder, publish, staging_folder


@pytest.fixture
def conn(sample_run):
    """A warehouse with every table the exports read (from the session's run of the bundled sample)."""
    conn = duckdb.connect()
    conn.execute(f"attach '{sample_run[0] / 'warehouse.duckdb'}' as sample (read_only)")
    # every table of the run: the exports read marts, reference tables and the remittance side
    tables = conn.sql("select table_name from duckdb_tables() where database_name = 'sample'").fetchall()
    for (table,) in tables:
        conn.execute(f"create table {table} as select * from sample.{table}")
    return conn


def _read(path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _mtimes(out) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.csv") if p.name != MANIFEST}


def test_every_file_with_a_manifest_and_no_evidence_file(conn, tmp_path):
    counts = write_exports(conn, tmp_path)
    assert counts["claims.csv"] == len(_read(tmp_path / "claims.csv")) > 0
    assert counts["files written"] == len(EXPORTS) and counts["files unchanged"] == 0
    manifest = {m["file"]: int(m["rows"]) for m in _read(tmp_path / MANIFEST)}
    assert set(manifest) == set(EXPORTS)
    assert {p.name for p in tmp_path.iterdir()} == set(EXPORTS) | {MANIFEST}  # the evidence stays in the warehouse


def test_a_bhi_run_publishes_no_evidence_folder(sample_run):
    out = sample_run[0]
    assert not (out / RETIRED_EVIDENCE_DIR).exists() and not (out / RETIRED_EVIDENCE_DIR).is_symlink()
    assert not (current_folder(out) / RETIRED_EVIDENCE_DIR).exists()
    assert "bhi evidence --out" in sample_run[1]  # the summary says where the evidence is now


def test_an_unchanged_file_is_not_written_again(conn, tmp_path):
    write_exports(conn, tmp_path)
    before = _mtimes(tmp_path)
    assert write_exports(conn, tmp_path)["files written"] == 0
    assert _mtimes(tmp_path) == before

    conn.execute("update fct_claims set units = units + 1 where claim_line_id = (select min(claim_line_id) from fct_claims)")
    assert write_exports(conn, tmp_path)["files written"] == 1
    after = _mtimes(tmp_path)
    assert {name for name in after if after[name] != before[name]} == {"claims.csv"}


def test_a_duplicated_row_a_missing_or_an_edited_file_is_written_again(conn, tmp_path):
    write_exports(conn, tmp_path)
    # the same row twice changes the checksum (a sum of row hashes; an xor would cancel out)
    rows = len(_read(tmp_path / "quarantine.csv"))
    assert rows > 0
    conn.execute("insert into quarantine select * from quarantine limit 1")
    assert write_exports(conn, tmp_path)["files written"] == 1
    assert len(_read(tmp_path / "quarantine.csv")) == rows + 1
    (tmp_path / "near_threshold.csv").unlink()
    assert write_exports(conn, tmp_path)["files written"] == 1
    assert (tmp_path / "near_threshold.csv").exists()
    # a file edited by hand (e.g. saved from a spreadsheet) is restored from the warehouse
    claims = (tmp_path / "claims.csv").read_text()
    (tmp_path / "claims.csv").write_text(claims.replace(",", ";"))
    assert write_exports(conn, tmp_path)["files written"] == 1
    assert (tmp_path / "claims.csv").read_text() == claims


# --------------------------------------------------------------------------- bhi evidence


COLUMNS = ["patient_id", "service_month", "program", "section", "item", "status", "minutes", "detail", "sort_order"]


def _warehouse_rows(warehouse, month: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(
            f"select {', '.join(COLUMNS)} from fct_claim_evidence where service_month = ?::date", [f"{month}-01"]
        ).fetchall()
    return [tuple("" if v is None else v.strftime("%Y-%m") if c == "service_month" else str(v)
                  for c, v in zip(COLUMNS, row)) for row in rows]


def test_bhi_evidence_writes_the_month_the_warehouse_holds(sample_run, tmp_path, capsys):
    out = tmp_path / "out"  # the warehouse of the session's run, the file under another out folder
    warehouse = sample_run[0] / "warehouse.duckdb"
    assert main(["evidence", "--out", str(out), "--warehouse", str(warehouse), "--month", "2026-09"]) == 0
    target = out / "evidence" / "claim_evidence_2026-09_as_of_2026-10-20.csv"
    expected = _warehouse_rows(warehouse, "2026-09")
    assert capsys.readouterr().out.strip() == (
        f"evidence 2026-09 (closed month, warehouse as of 2026-10-20): {len(expected):,} rows -> {target}"
    )
    with target.open(newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == COLUMNS
        written = [tuple(r) for r in reader]
    assert len(expected) > 100 and sorted(written) == sorted(expected)  # the same rows, none more, none less
    # sorted to read each patient-month top-down: a stable file, the same every time it is written
    keys = [(r[0], r[2], int(r[8]), r[4]) for r in written]
    assert keys == sorted(keys)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    first = target.read_bytes()
    again = tmp_path / "again.csv"
    assert main(["evidence", "--out", str(out), "--warehouse", str(warehouse), "--month", "2026-09", "--to", str(again)]) == 0
    assert again.read_bytes() == first
    capsys.readouterr()
    assert main(["evidence", "--out", str(out), "--warehouse", str(warehouse), "--month", "2026-10", "--to",
                 str(tmp_path / "open.csv")]) == 0
    assert "evidence 2026-10 (open month, to date, warehouse as of 2026-10-20)" in capsys.readouterr().out


def test_bhi_evidence_fails_in_one_line_without_evidence_or_warehouse(sample_run, tmp_path, capsys):
    warehouse = sample_run[0] / "warehouse.duckdb"
    target = tmp_path / "x.csv"
    assert main(["evidence", "--out", str(tmp_path), "--warehouse", str(warehouse), "--month", "2024-01",
                 "--to", str(target)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"bhi evidence: no evidence for 2024-01 in {warehouse} (as of 2026-10-20): no enrolled"
                   " patient-month in that service month; nothing written")
    assert not target.exists() and not list(tmp_path.iterdir())
    assert main(["evidence", "--out", str(tmp_path / "nothing"), "--month", "2026-09"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bhi evidence: no warehouse at {tmp_path / 'nothing' / 'warehouse.duckdb'}: run `bhi run` first"
                   " (or pass --warehouse)"]
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()  # a warehouse no run finished on
    assert main(["evidence", "--out", str(tmp_path), "--warehouse", str(tmp_path / "empty.duckdb"), "--month", "2026-09"]) == 1
    assert "holds no evidence trail: no `bhi run` finished on it" in capsys.readouterr().err


def test_bhi_evidence_reads_only_the_published_run_and_never_while_a_run_writes(sample_run, tmp_path, capsys):
    # a run opens the warehouse step by step: between two steps a read-only reader would see this
    # run's as-of date with last night's evidence, and make the run's next step fail to open the file
    out = copy_sample_run(sample_run, tmp_path / "out")
    warehouse, target = out / "warehouse.duckdb", tmp_path / "e.csv"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_RUN_LOCK, str(warehouse)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready"
        capsys.readouterr()
        for command in (["evidence", "--out", str(out), "--month", "2026-09", "--to", str(target)],
                        ["explain", "--warehouse", str(warehouse), "--patient", "P0001", "--month", "2026-09"]):
            assert main(command) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"warehouse {warehouse} is being written by a run" in err[0], err
            assert f"process {holder.pid}: test holder" in err[0] and "try again when that run finishes" in err[0]
        assert not target.exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # readers do not exclude each other, and the lock is free again
    assert main(["evidence", "--out", str(out), "--month", "2026-09", "--to", str(target)]) == 0
    # a run that did not publish (failed, killed) left its tables: not the published claims' evidence
    target.unlink()
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("update run_parameters set run_id = 'a-run-that-was-killed'")
    capsys.readouterr()
    assert main(["evidence", "--out", str(out), "--month", "2026-09", "--to", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bhi evidence: the last run on {warehouse} (as of 2026-10-20) did not publish (it failed or was"
                   " killed): its evidence is not that of the published claims; nothing written. Run `bhi run`"
                   " again (or `bhi restore`)"]
    assert not target.exists()


HOLD_RUN_LOCK = """
import sys
from pathlib import Path
from pipelines.safety import acquire_run_lock
acquire_run_lock(Path(sys.argv[1]), "test holder")
print("ready", flush=True)
sys.stdin.read()
"""


# --------------------------------------------------------------------------- the folder earlier versions published


def _published_names(out) -> set[str]:
    return {e.name for e in os.scandir(out) if e.name != PUBLICATIONS}


def test_a_publication_drops_the_evidence_folder_an_earlier_version_published(tmp_path):
    out = tmp_path / "out"
    # published by an earlier version: claims.csv and claim_evidence/ in run folder "old"
    old = staging_folder(out, "old")
    (old / "claims.csv").write_text("claim_line_id\n")
    (old / RETIRED_EVIDENCE_DIR).mkdir()
    (old / RETIRED_EVIDENCE_DIR / "2026-09.csv").write_text("patient_id\n")
    publish(out, "old", "2026-10-20")
    assert _published_names(out) == {"claims.csv", RETIRED_EVIDENCE_DIR}
    # this version's run starts from links of the published files, without the evidence folder
    new = staging_folder(out, "new")
    assert {p.name for p in new.iterdir()} == {"claims.csv"}
    publish(out, "new", "2026-10-21")
    assert _published_names(out) == {"claims.csv"}
    assert {p.name for p in current_folder(out).iterdir()} == {"claims.csv"}


def test_an_out_folder_from_before_publications_loses_its_evidence_folder(tmp_path):
    out = tmp_path / "out"
    (out / RETIRED_EVIDENCE_DIR).mkdir(parents=True)
    (out / RETIRED_EVIDENCE_DIR / "2026-09.csv").write_text("patient_id\n")
    (out / "claims.csv").write_text("claim_line_id\n")
    staging_folder(out, "first")
    publish(out, "first", "2026-10-20")
    assert _published_names(out) == {"claims.csv"}
    assert (out / "claims.csv").read_text() == "claim_line_id\n"


def test_every_export_is_the_same_whatever_the_row_order_of_the_tables_it_reads(drop, build):
    """An export's ORDER BY ends with its grain's keys, so rows that tie on the leading sort columns
    come out in one order: each export query gives the same rows in the same order after every table
    it reads is rewritten in reverse row order. The drop has such ties: two exclusion reasons of 20
    minutes (minutes_reconciliation), and a patient in two programs with no next code in either
    (near_threshold: no dollars, no minutes needed)."""
    from pipelines.warehouse.models import load_exports

    drop.enroll("P1", program="cocm", consent_on=None)
    drop.enroll("P1", program="bhi", consent_on=None, initiating_visit=None)
    drop.log("P1", "2026-03-03", 20, program="cocm")
    drop.log("P1", "2026-03-04", 20, staff="NOBODY")  # unknown_staff
    drop.log("P9", "2026-03-04", 20)  # patient_not_enrolled
    drop.enroll("P3", program="cocm")
    drop.enroll("P3", program="bhi", initiating_visit=None)
    for day in range(1, 13):  # past the last add-on the payer pays in cocm, past 99484 in bhi
        drop.log("P3", f"2026-06-{day:02d}", 20, program="cocm")
        drop.log("P3", f"2026-06-{day:02d}", 10, program="bhi", staff="CS1")
    conn = build(drop, "2026-06-15", every_model=True)
    assert conn.sql("select count(*) from fct_near_threshold where patient_id = 'P3'"
                    " and dollars_gained is null and minutes_needed is null").fetchall() == [(2,)]
    before = {name: conn.sql(query).fetchall() for name, query in EXPORTS.items()}
    for table in sorted({t for q in load_exports() for t in q.upstream}):
        conn.execute(f"create or replace table {table} as select * exclude (_k)"
                     f" from (select *, row_number() over () as _k from {table}) order by _k desc")
    after = {name: conn.sql(query).fetchall() for name, query in EXPORTS.items()}
    assert [n for n in before if before[n] != after[n]] == []
    assert len(before["minutes_reconciliation.csv"]) == 4 and len(before["near_threshold.csv"]) == 4
