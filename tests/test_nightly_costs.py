"""The nightly run's fixed costs cut without changing what it builds: fct_x12_claim_lines (the 837P
elements of every closed-month claim line) is rebuilt only for the run's scope. A new patients file
puts its patients in the scope; a new providers or facility_billing file changes claim lines of
every patient of that provider, so it forces a full build. After each night the incremental tables
equal a fresh full build of the same folder. Runs the real Dagster job."""

from __future__ import annotations

import duckdb
import pytest

from conftest import Drop
from test_incremental import INCREMENTAL, Nightly

X12_TABLES = ["fct_claims", "fct_x12_claim_lines", "fct_x12_claims_held"]

def _patient(patient_id: str, last_name: str) -> dict:
    return {"patient_id": patient_id, "member_id": f"M{patient_id}", "last_name": last_name, "first_name": "Ann",
            "birth_date": "1960-02-03", "sex": "F", "address_line": "1 Main St", "city": "Durham", "state": "NC",
            "postal_code": "27701"}


def _provider(last_name: str) -> dict:
    return {"provider_id": "BP1", "npi": "1234567893", "taxonomy_code": "207Q00000X", "last_name": last_name,
            "first_name": "Lee"}


@pytest.fixture
def nightly(drop: Drop, tmp_path) -> Nightly:
    for patient in ("P1", "P2", "P3"):
        drop.enroll(patient, enrolled_on="2026-01-05", consent_on="2026-01-05")
        drop.month(patient, "2026-01", 40)
        drop.month(patient, "2026-02", 25)
    nightly = Nightly(drop, tmp_path)
    nightly.deliver("patients.csv", [_patient(p, "Smith") for p in ("P1", "P2", "P3")])
    nightly.deliver("providers.csv", [_provider("Jones")])
    return nightly


def _claim_lines(out, patient_id: str) -> list[tuple]:
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(
            "select patient_last_name, rendering_last_name from fct_x12_claim_lines where patient_id = ?"
            " order by claim_line_id", [patient_id]
        ).fetchall()


def test_x12_claim_lines_follow_patients_and_providers_night_by_night(nightly: Nightly):
    """Each night is checked against a fresh full build of the same folder (every incremental table,
    the X12 ones among them: Nightly.run)."""
    assert set(X12_TABLES) <= set(INCREMENTAL)
    out = nightly.out
    nightly.run("2026-03-10", expect="full", compare=False)
    assert _claim_lines(out, "P2") and {r[0] for r in _claim_lines(out, "P2")} == {"SMITH"}

    # a corrected surname for P2: only P2 is rebuilt, and its claim lines carry the new name
    nightly.deliver("patients_2026-03-11.csv", [_patient("P2", "Brown")])
    assert nightly.run("2026-03-11", expect="incremental")["patients"] == 1
    assert {r[0] for r in _claim_lines(out, "P2")} == {"BROWN"}
    assert {r[0] for r in _claim_lines(out, "P1")} == {"SMITH"}

    # a renamed rendering provider reaches every patient's claim lines: full build
    nightly.deliver("providers_2026-03-12.csv", [_provider("Green")])
    assert "new delivery of providers" in nightly.run("2026-03-12", expect="full")["reason"]
    assert {r[1] for p in ("P1", "P2", "P3") for r in _claim_lines(out, p)} == {"GREEN"}

    # nothing new: nothing rebuilt, the claim lines stay
    assert nightly.run("2026-03-13", expect="incremental")["patients"] == 0
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
