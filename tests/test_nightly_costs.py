"""The nightly run's fixed costs cut without changing what it builds: fct_x12_claim_lines (the 837P
elements of every closed-month claim line) is rebuilt only for the run's scope. A new patients file
puts its patients in the scope; a new providers or facility_billing file changes claim lines of
every patient of that provider, so it forces a full build. After each night the incremental tables
equal a fresh full build of the same folder. Runs the real Dagster job."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from conftest import Drop, build_warehouse, write_csv
from pipelines.run import run_pipeline

X12_TABLES = ["fct_claims", "fct_x12_claim_lines", "fct_x12_claims_held"]

PATIENT_COLUMNS = ["patient_id", "member_id", "last_name", "first_name", "birth_date", "sex", "address_line",
                   "city", "state", "postal_code"]
PROVIDER_COLUMNS = ["provider_id", "npi", "taxonomy_code", "last_name", "first_name"]


def _patient(patient_id: str, last_name: str) -> dict:
    return {"patient_id": patient_id, "member_id": f"M{patient_id}", "last_name": last_name, "first_name": "Ann",
            "birth_date": "1960-02-03", "sex": "F", "address_line": "1 Main St", "city": "Durham", "state": "NC",
            "postal_code": "27701"}


def _provider(last_name: str) -> dict:
    return {"provider_id": "BP1", "npi": "1234567893", "taxonomy_code": "207Q00000X", "last_name": last_name,
            "first_name": "Lee"}


def _differences(warehouse, fresh, table: str) -> int:
    """Rows in one table and not in the other (delivery_seq aside: a fresh build numbers files by name)."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        conn.execute(f"attach '{fresh}' as fresh (read_only)")
        cols = ", ".join(r[0] for r in conn.sql(f"describe {table}").fetchall() if r[0] != "delivery_seq")
        return conn.sql(
            f"select count(*) from ((select {cols} from main.{table} except all select {cols} from fresh.{table})"
            f" union all (select {cols} from fresh.{table} except all select {cols} from main.{table}))"
        ).fetchall()[0][0]


@pytest.fixture
def folder(drop: Drop):
    for patient in ("P1", "P2", "P3"):
        drop.enroll(patient, enrolled_on="2026-01-05", consent_on="2026-01-05")
        drop.month(patient, "2026-01", 40)
        drop.month(patient, "2026-02", 25)
    path = drop.write()
    write_csv(path / "patients.csv", [_patient(p, "Smith") for p in ("P1", "P2", "P3")], PATIENT_COLUMNS)
    write_csv(path / "providers.csv", [_provider("Jones")], PROVIDER_COLUMNS)
    return path


def _night(folder, out, tmp_path, as_of: str, expect: str) -> dict:
    outcome = run_pipeline(folder, out, as_of=dt.date.fromisoformat(as_of))
    assert outcome.success, outcome.error
    assert outcome.build["mode"] == expect, outcome.build
    fresh = tmp_path / f"fresh-{as_of}.duckdb"
    build_warehouse(fresh, folder, as_of, every_model=True).close()
    diffs = {t: _differences(out / "warehouse.duckdb", fresh, t) for t in X12_TABLES}
    assert {t: n for t, n in diffs.items() if n} == {}
    return outcome.build


def _claim_lines(out, patient_id: str) -> list[tuple]:
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "select patient_last_name, rendering_last_name from fct_x12_claim_lines where patient_id = ?"
            " order by claim_line_id", [patient_id]
        ).fetchall()


def test_x12_claim_lines_follow_patients_and_providers_night_by_night(folder, tmp_path):
    out = tmp_path / "out"
    _night(folder, out, tmp_path, "2026-03-10", "full")
    assert _claim_lines(out, "P2") and {r[0] for r in _claim_lines(out, "P2")} == {"SMITH"}

    # a corrected surname for P2: only P2 is rebuilt, and its claim lines carry the new name
    write_csv(folder / "patients_2026-03-11.csv", [_patient("P2", "Brown")], PATIENT_COLUMNS)
    build = _night(folder, out, tmp_path, "2026-03-11", "incremental")
    assert build["patients"] == 1
    assert {r[0] for r in _claim_lines(out, "P2")} == {"BROWN"}
    assert {r[0] for r in _claim_lines(out, "P1")} == {"SMITH"}

    # a renamed rendering provider reaches every patient's claim lines: full build
    write_csv(folder / "providers_2026-03-12.csv", [_provider("Green")], PROVIDER_COLUMNS)
    build = _night(folder, out, tmp_path, "2026-03-12", "full")
    assert "new delivery of providers" in build["reason"]
    assert {r[1] for p in ("P1", "P2", "P3") for r in _claim_lines(out, p)} == {"GREEN"}

    # nothing new: nothing rebuilt, the claim lines stay
    assert _night(folder, out, tmp_path, "2026-03-13", "incremental")["patients"] == 0
    assert {r[1] for r in _claim_lines(out, "P3")} == {"GREEN"}


def test_copy_file_copies_and_the_copy_is_independent(tmp_path, monkeypatch):
    """The warehouse copy (`cp --reflink=auto` semantics): same bytes, and a later write to the
    warehouse does not reach the copy (a hard link would fail this); when copy_file_range is
    refused (another device, an old kernel) it falls back to a plain copy; a full disk is reported."""
    import errno
    import os

    from pipelines import safety

    source = tmp_path / "w.duckdb"
    data = os.urandom(3 * 1024 * 1024 + 17)
    source.write_bytes(data)
    first = tmp_path / "copy1.duckdb"
    safety.copy_file(source, first)
    assert first.read_bytes() == data
    with open(source, "r+b") as fh:
        fh.write(b"changed")
    assert first.read_bytes() == data

    def refused(*_args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", refused)
    second = tmp_path / "copy2.duckdb"
    safety.copy_file(source, second)
    assert second.read_bytes() == source.read_bytes()

    def full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    with pytest.raises(OSError) as caught:
        safety.copy_file(source, tmp_path / "copy3.duckdb")
    assert safety.is_disk_full(caught.value)
