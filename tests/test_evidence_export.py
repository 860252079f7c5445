"""The evidence trail is written one file per service month (claim_evidence/<YYYY-MM>.csv), and a run
rewrites only the months whose rows changed: at 10M entries the trail is ~30M rows."""

from __future__ import annotations

import csv

import duckdb
import pytest

from pipelines.exports import EVIDENCE_DIR, EVIDENCE_MANIFEST, write_evidence

ROWS = [
    # patient, month, program, section, item, status, minutes, detail, sort_order
    ("P2", "2026-01-01", "cocm", "entry", "E9", "counted", 30, "2026-01-09 call", 10),
    ("P1", "2026-01-01", "cocm", "outcome", "codes", "billed", 40, "99492", 0),
    ("P1", "2026-01-01", "cocm", "entry", "E1", "counted", 40, "2026-01-05 call", 10),
    ("P1", "2026-02-01", "cocm", "outcome", "codes", "nothing billable", 10, "", 0),
]


@pytest.fixture
def conn():
    conn = duckdb.connect()
    conn.execute(
        "create table fct_claim_evidence (patient_id varchar, service_month date, program varchar, section varchar,"
        " item varchar, status varchar, minutes integer, detail varchar, sort_order integer)"
    )
    conn.executemany("insert into fct_claim_evidence values (?, ?::date, ?, ?, ?, ?, ?, ?, ?)", ROWS)
    return conn


def _read(path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _mtimes(folder) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.csv") if p.name != EVIDENCE_MANIFEST}


def test_one_sorted_file_per_month_with_a_manifest(conn, tmp_path):
    counts = write_evidence(conn, tmp_path)
    folder = tmp_path / EVIDENCE_DIR
    assert counts == {"claim_evidence rows": 4, "claim_evidence months": 2, "claim_evidence months rewritten": 2}
    january = _read(folder / "2026-01.csv")
    # a patient-month reads top-down: patient, program, outcome before entries
    assert [(r["patient_id"], r["item"]) for r in january] == [("P1", "codes"), ("P1", "E1"), ("P2", "E9")]
    assert january[0]["service_month"] == "2026-01"
    manifest = _read(folder / EVIDENCE_MANIFEST)
    assert [(m["month"], m["rows"]) for m in manifest] == [("2026-01", "3"), ("2026-02", "1")]


def test_an_unchanged_month_is_not_rewritten(conn, tmp_path):
    write_evidence(conn, tmp_path)
    folder = tmp_path / EVIDENCE_DIR
    before = _mtimes(folder)
    assert write_evidence(conn, tmp_path)["claim_evidence months rewritten"] == 0
    assert _mtimes(folder) == before

    conn.execute("update fct_claim_evidence set status = 'excluded' where item = 'E9'")
    assert write_evidence(conn, tmp_path)["claim_evidence months rewritten"] == 1
    after = _mtimes(folder)
    assert after["2026-02.csv"] == before["2026-02.csv"] and after["2026-01.csv"] != before["2026-01.csv"]
    assert [r["status"] for r in _read(folder / "2026-01.csv") if r["item"] == "E9"] == ["excluded"]


def test_a_duplicated_row_or_a_missing_file_is_written_again(conn, tmp_path):
    write_evidence(conn, tmp_path)
    folder = tmp_path / EVIDENCE_DIR
    # the same row twice changes the checksum (a sum of row hashes; an xor would cancel out)
    conn.execute("insert into fct_claim_evidence select * from fct_claim_evidence where service_month = '2026-02-01'")
    assert write_evidence(conn, tmp_path)["claim_evidence months rewritten"] == 1
    assert len(_read(folder / "2026-02.csv")) == 2
    (folder / "2026-01.csv").unlink()
    assert write_evidence(conn, tmp_path)["claim_evidence months rewritten"] == 1
    assert len(_read(folder / "2026-01.csv")) == 3


def test_a_month_without_rows_loses_its_file(conn, tmp_path):
    write_evidence(conn, tmp_path)
    conn.execute("delete from fct_claim_evidence where service_month = '2026-02-01'")
    counts = write_evidence(conn, tmp_path)
    folder = tmp_path / EVIDENCE_DIR
    assert counts["claim_evidence months"] == 1
    assert sorted(p.name for p in folder.iterdir()) == ["2026-01.csv", EVIDENCE_MANIFEST]
