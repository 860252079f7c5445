"""Exports are rewritten only when their content changed (manifest.csv: rows and checksum per file),
and the evidence trail is one file per service month (claim_evidence/<YYYY-MM>.csv): at 10M
entries it is ~30M rows, and a nightly run should rewrite only the months that changed."""

from __future__ import annotations

import csv

import duckdb
import pytest

from pipelines.outputs.exports import EVIDENCE_DIR, EXPORTS, MANIFEST, write_exports

EVIDENCE = [
    # patient, month, program, section, item, status, minutes, detail, sort_order
    ("P2", "2026-01-01", "cocm", "entry", "E9", "counted", 30, "2026-01-09 call", 10),
    ("P1", "2026-01-01", "cocm", "outcome", "codes", "billed", 40, "99492", 0),
    ("P1", "2026-01-01", "cocm", "entry", "E1", "counted", 40, "2026-01-05 call", 10),
    ("P1", "2026-02-01", "cocm", "outcome", "codes", "nothing billable", 10, "", 0),
]


@pytest.fixture
def conn(sample_run):
    """A warehouse with every table the exports read (from the session's run of the bundled sample)."""
    conn = duckdb.connect()
    conn.execute(f"attach '{sample_run[0] / 'warehouse.duckdb'}' as sample (read_only)")
    for table in {"fct_claims", "fct_unpriced_claim_lines", "fct_near_threshold", "fct_outreach_plan", "fct_revenue_gap",
                  "fct_claim_changes", "quarantine", "field_warnings", "fct_minutes_reconciliation",
                  "fct_rule_set_what_if", "fct_modifier_advisories", "fct_month_completeness"}:
        conn.execute(f"create table {table} as select * from sample.{table}")
    conn.execute("create table fct_claim_evidence as select * from sample.fct_claim_evidence where false")
    conn.executemany("insert into fct_claim_evidence by position values (?, ?::date, ?, ?, ?, ?, ?, ?, ?)", EVIDENCE)
    return conn


def _read(path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _mtimes(out) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.csv") if p.name != MANIFEST}


def test_every_file_and_one_evidence_file_per_month_with_a_manifest(conn, tmp_path):
    counts = write_exports(conn, tmp_path)
    assert counts["claims.csv"] == len(_read(tmp_path / "claims.csv")) > 0
    assert counts["claim_evidence (all months)"] == 4
    assert counts["files written"] == len(EXPORTS) + 2 and counts["files unchanged"] == 0
    january = _read(tmp_path / EVIDENCE_DIR / "2026-01.csv")
    assert sorted((r["patient_id"], r["item"]) for r in january) == [("P1", "E1"), ("P1", "codes"), ("P2", "E9")]
    assert {r["service_month"] for r in january} == {"2026-01"}
    manifest = {m["file"]: int(m["rows"]) for m in _read(tmp_path / MANIFEST)}
    assert manifest["claim_evidence/2026-01.csv"] == 3 and manifest["claim_evidence/2026-02.csv"] == 1
    assert set(manifest) == set(EXPORTS) | {"claim_evidence/2026-01.csv", "claim_evidence/2026-02.csv"}


def test_an_unchanged_file_is_not_written_again(conn, tmp_path):
    write_exports(conn, tmp_path)
    before = _mtimes(tmp_path)
    assert write_exports(conn, tmp_path)["files written"] == 0
    assert _mtimes(tmp_path) == before

    conn.execute("update fct_claim_evidence set status = 'excluded' where item = 'E9'")
    conn.execute("update fct_claims set units = units + 1 where claim_line_id = (select min(claim_line_id) from fct_claims)")
    assert write_exports(conn, tmp_path)["files written"] == 2
    after = _mtimes(tmp_path)
    assert {name for name in after if after[name] != before[name]} == {"claims.csv", "claim_evidence/2026-01.csv"}
    assert [r["status"] for r in _read(tmp_path / EVIDENCE_DIR / "2026-01.csv") if r["item"] == "E9"] == ["excluded"]


def test_a_duplicated_row_a_missing_or_an_edited_file_is_written_again(conn, tmp_path):
    write_exports(conn, tmp_path)
    # the same row twice changes the checksum (a sum of row hashes; an xor would cancel out)
    conn.execute("insert into fct_claim_evidence select * from fct_claim_evidence where service_month = '2026-02-01'")
    assert write_exports(conn, tmp_path)["files written"] == 1
    assert len(_read(tmp_path / EVIDENCE_DIR / "2026-02.csv")) == 2
    (tmp_path / "near_threshold.csv").unlink()
    assert write_exports(conn, tmp_path)["files written"] == 1
    assert (tmp_path / "near_threshold.csv").exists()
    # a file edited by hand (e.g. saved from a spreadsheet) is restored from the warehouse
    claims = (tmp_path / "claims.csv").read_text()
    (tmp_path / "claims.csv").write_text(claims.replace(",", ";"))
    assert write_exports(conn, tmp_path)["files written"] == 1
    assert (tmp_path / "claims.csv").read_text() == claims


def test_a_month_without_rows_loses_its_file(conn, tmp_path):
    write_exports(conn, tmp_path)
    conn.execute("delete from fct_claim_evidence where service_month = '2026-02-01'")
    write_exports(conn, tmp_path)
    assert sorted(p.name for p in (tmp_path / EVIDENCE_DIR).iterdir()) == ["2026-01.csv"]
    assert "claim_evidence/2026-02.csv" not in {m["file"] for m in _read(tmp_path / MANIFEST)}
