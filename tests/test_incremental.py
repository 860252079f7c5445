"""Incremental nightly builds: after each night's deliveries, the scoped rebuild (run_scope: only the
patients and entry versions the new files or the advancing as-of date can change) leaves every
model table exactly as a full rebuild of the same drop would. Runs the real Dagster job."""

from __future__ import annotations

import duckdb
import pytest

from conftest import Drop, build_warehouse, write_csv
from pipelines.run import run_pipeline
from pipelines.warehouse.models import MODELS

INCREMENTAL = [m.name for m in MODELS if m.incremental]
# downstream marts that read the incremental tables in full
MARTS = ["fct_near_threshold", "fct_minutes_reconciliation", "rpt_run_summary"]


def _differences(warehouse, fresh, tables: list[str]) -> dict[str, int]:
    """table -> rows in one warehouse and not in the other (delivery_seq numbers files by arrival,
    which a fresh build of the same folder numbers by name: compared without it), for the tables
    that differ."""
    diffs = {}
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        conn.execute(f"attach '{fresh}' as fresh (read_only)")
        for table in tables:
            cols = [r[0] for r in conn.sql(f"describe {table}").fetchall() if r[0] not in ("delivery_seq", "run_started_at")]
            select = ", ".join(cols)
            diffs[table] = conn.sql(
                f"select count(*) from ((select {select} from main.{table} except all select {select} from fresh.{table})"
                f" union all (select {select} from fresh.{table} except all select {select} from main.{table}))"
            ).fetchall()[0][0]
    return {t: n for t, n in diffs.items() if n}


class Nightly:
    """One warehouse run night after night on a growing drop folder, checked against a fresh build."""

    def __init__(self, drop: Drop, tmp_path):
        self.drop, self.tmp = drop, tmp_path
        self.folder = drop.write()
        self.out = tmp_path / "out"
        self.night = 0

    def run(self, as_of: str, *, expect: str, compare: bool = True) -> dict:
        """One night as of `as_of`; compare=False skips the fresh build (a test's first, full run on a
        new warehouse, when the comparison is not what the test is about: the nights test keeps it)."""
        outcome = run_pipeline(self.folder, self.out, as_of=__import__("datetime").date.fromisoformat(as_of))
        assert outcome.success, outcome.error
        assert outcome.build["mode"] == expect, outcome.build
        self.night += 1
        if not compare:
            return outcome.build
        fresh = self.tmp / f"fresh{self.night}.duckdb"
        build_warehouse(fresh, self.folder, as_of).build(*INCREMENTAL, *MARTS).close()  # and their upstream
        assert _differences(self.out / "warehouse.duckdb", fresh, [*INCREMENTAL, *MARTS]) == {}
        return outcome.build

    def deliver(self, name: str, rows: list[dict]) -> None:
        write_csv(self.folder / name, rows, list(rows[0]))


@pytest.fixture
def nightly(drop: Drop, tmp_path) -> Nightly:
    # CM1 sees P1 and P2 back to back on 2026-02-10; P3 and P4 have plain months
    for patient in ("P1", "P2", "P3", "P4"):
        drop.enroll(patient, enrolled_on="2026-01-05", consent_on="2026-01-05")
        drop.month(patient, "2026-01", 40)
    drop.log("P1", "2026-02-10", 30, start="09:00", end="09:30")
    drop.log("P2", "2026-02-10", 30, start="09:30", end="10:00")
    drop.review("P1", "2026-02-15")
    drop.review("P2", "2026-02-15")
    drop.month("P3", "2026-02", 55)
    drop.month("P4", "2026-02", 31)
    drop.month("P1", "2026-03", 20)
    return Nightly(drop, tmp_path)


def test_incremental_nights_equal_a_full_rebuild(nightly: Nightly):
    assert nightly.run("2026-03-10", expect="full")["reason"].startswith("no earlier build")

    # night 1: nothing new: nothing rebuilt
    assert nightly.run("2026-03-11", expect="incremental")["patients"] == 0

    # night 2: a late entry for P2 in closed February overlapping P1's session with the same care
    # manager (09:20-09:40): P1's overlap window is re-read too, P3 and P4 are untouched
    nightly.deliver("time_entries_2026-03-12.csv", [
        {"entry_id": "LATE1", "patient_id": "P2", "staff_id": "CM1", "service_date": "2026-02-10", "minutes": 20,
         "activity": "follow_up", "start_time": "09:20", "end_time": "09:40"},
    ])
    build = nightly.run("2026-03-12", expect="incremental")
    assert build["patients"] == 2  # P1 and P2: one staff-day

    # night 3: P3's February entry corrected (55 -> 75 min) and P4's voided (31 -> 11 min: no code)
    p3 = next(e for e in nightly.drop.entries if e["patient_id"] == "P3" and e["service_date"].startswith("2026-02"))
    p4 = next(e for e in nightly.drop.entries if e["patient_id"] == "P4" and e["service_date"].startswith("2026-02"))
    nightly.deliver("time_entries_2026-03-13.csv", [
        {**p3, "minutes": 40, "deleted": "false"},
        {**p4, "deleted": "true"},
    ])
    assert nightly.run("2026-03-13", expect="incremental")["patients"] == 2

    # night 4: a new patient with an initiating visit, a review and entries; an entry dated in the
    # future (after the as-of date) for P3
    nightly.deliver("enrollments_2026-03-14.csv", [
        {"patient_id": "P5", "program": "cocm", "payer_id": "medicare", "facility_id": "F1",
         "billing_provider_id": "BP1", "enrolled_on": "2026-03-01", "consent_on": "2026-03-01",
         "diagnosis_code": "F41.1"},
    ])
    nightly.deliver("encounters_2026-03-14.csv", [
        {"encounter_id": "V9", "patient_id": "P5", "encounter_date": "2026-03-01", "provider_id": "BP1",
         "cpt_code": "99214"},
    ])
    nightly.deliver("psych_reviews_2026-03-14.csv", [
        {"review_id": "R90", "patient_id": "P5", "review_date": "2026-03-12", "consultant_id": "PC1"},
    ])
    nightly.deliver("time_entries_2026-03-14.csv", [
        {"entry_id": "N1", "patient_id": "P5", "staff_id": "CM1", "service_date": "2026-03-03", "minutes": 40,
         "activity": "assessment"},
        {"entry_id": "F1", "patient_id": "P3", "staff_id": "CM1", "service_date": "2026-03-18", "minutes": 25,
         "activity": "follow_up"},
    ])
    assert nightly.run("2026-03-14", expect="incremental")["patients"] == 2  # P5 and P3

    # night 4b: a review re-delivered under the same review_id for another patient (a correction
    # that moves it): both patients are rebuilt
    moved = next(r for r in nightly.drop.reviews if r["patient_id"] == "P1" and r["review_date"] == "2026-03-15")
    nightly.deliver("psych_reviews_2026-03-15.csv", [{**moved, "patient_id": "P2"}])
    assert nightly.run("2026-03-15", expect="incremental")["patients"] == 2  # P1 and P2

    # night 5: no new file, but the as-of date passes P3's future-dated entry (03-18): it now counts
    assert nightly.run("2026-03-19", expect="incremental")["patients"] == 1

    # a new month closes March for everyone: full
    assert "as-of month changed" in nightly.run("2026-04-01", expect="full")["reason"]

    # a staff roster delivery can change any patient's minutes: full
    nightly.deliver("staff_2026-04-02.csv", [{**s, "name": "renamed"} for s in nightly.drop.staff])
    assert "new delivery of staff" in nightly.run("2026-04-02", expect="full")["reason"]


def test_reference_or_model_change_and_full_refresh_rebuild_everything(nightly: Nightly, tmp_path):
    assert run_pipeline(nightly.folder, nightly.out, as_of=__import__("datetime").date(2026, 3, 10)).success
    ref = tmp_path / "reference"
    import shutil

    from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR

    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    with (ref / "settings.csv").open("a") as fh:
        fh.write("unused_test_setting,1,a changed reference file\n")
    outcome = run_pipeline(nightly.folder, nightly.out, as_of=__import__("datetime").date(2026, 3, 11), reference=ref)
    assert outcome.build["mode"] == "full" and "reference data changed" in outcome.build["reason"]
    outcome = run_pipeline(nightly.folder, nightly.out, as_of=__import__("datetime").date(2026, 3, 11), reference=ref,
                           full_refresh=True)
    assert outcome.build["mode"] == "full" and outcome.build["reason"].startswith("no earlier build")


def test_an_entry_before_the_first_month_of_the_extracts_rebuilds_everything(drop: Drop, tmp_path):
    # P1 was enrolled before the extracts begin (2026-01): int_episodes starts P1's months at the
    # extracts' first month, so an entry of another patient dated earlier changes P1's months too
    # (an incremental build left 8 tables different from a full rebuild before this was handled)
    drop.enroll("P1", enrolled_on="2025-10-01", consent_on="2025-10-01")
    drop.month("P1", "2026-01", 40)
    drop.enroll("P2", enrolled_on="2025-10-01", consent_on="2025-10-01")
    drop.month("P2", "2026-02", 40)
    nightly = Nightly(drop, tmp_path)
    nightly.run("2026-03-10", expect="full", compare=False)
    nightly.deliver("time_entries_2026-03-11.csv", [
        {"entry_id": "OLD1", "patient_id": "P2", "staff_id": "CM1", "service_date": "2025-11-20", "minutes": 20,
         "activity": "follow_up"},
    ])
    # (int_covered_periods: with 4 entries a month, one entry is no stray: the covered period moves)
    assert "covered period of a facility changed (covered from 2026-01 -> 2025-11)" in nightly.run(
        "2026-03-11", expect="full")["reason"]
    # a new entry inside the covered months stays incremental
    nightly.deliver("time_entries_2026-03-12.csv", [
        {"entry_id": "NEW1", "patient_id": "P2", "staff_id": "CM1", "service_date": "2026-03-02", "minutes": 20,
         "activity": "follow_up"},
    ])
    assert nightly.run("2026-03-12", expect="incremental")["patients"] == 1
