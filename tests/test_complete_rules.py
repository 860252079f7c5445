"""Issue 3 rules at their boundaries: double counting, billed encounters, the initiating visit,
99492 once a year, measurement-based care, double-billing risk, collections, what-if, modifier
advisories, and `bhi explain`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import Drop
from pipelines.cli import main
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR
from test_exclusions_and_gates import claims, month, reasons


def counted(conn, patient: str) -> int:
    return conn.sql(
        f"select sum(counted_minutes)::int from int_time_entries_classified where patient_id = '{patient}'"
    ).fetchall()[0][0]


def test_overlapping_entries_of_one_staff_member_count_once(drop: Drop, build):
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 30, start="10:00", end="10:30")
    drop.log("P1", "2026-01-05", 30, start="10:15", end="10:45")  # 15 min overlap
    drop.log("P1", "2026-01-05", 10, start="10:45", end="10:55")  # touching, no overlap
    drop.enroll("P2")
    drop.log("P2", "2026-01-05", 20, start="10:50", end="11:10")  # same staff, other patient: 5 min overlap
    drop.review("P1", "2026-01-20")
    conn = build(drop)
    assert counted(conn, "P1") == 30 + 15 + 10
    assert counted(conn, "P2") == 15
    rows = dict(conn.sql(
        "select reason, minutes::int from fct_minutes_reconciliation where status = 'excluded'"
    ).fetchall())
    assert rows == {"overlapping_time_same_staff": 20}
    assert claims(conn, "P1") == [("2026-01", "99492", 1)]  # 55 countable, not 70


@pytest.mark.parametrize("payer, counted_minutes", [("bcbs_mi", 30 + 5), ("medicare", 30)])
def test_joint_case_review_logged_by_two_people_counts_once(drop: Drop, build, payer, counted_minutes):
    drop.enroll("P1", payer=payer)
    drop.log("P1", "2026-01-05", 20, start="09:00", end="09:20")
    drop.log("P1", "2026-01-06", 10, activity="case_review", start="14:00", end="14:10")
    drop.log("P1", "2026-01-06", 15, staff="PC1", activity="case_review", start="14:00", end="14:15")
    conn = build(drop)
    # BCBS MI counts the consultant: the joint 10 minutes once, plus the consultant's own 5
    assert counted(conn, "P1") == counted_minutes
    if payer == "bcbs_mi":
        assert reasons(conn, "P1") == {"counted": 45}  # whole-entry status: both count, in part
        overlap = conn.sql("select overlap_reason, overlap_minutes::int from int_time_entries_classified "
                           "where overlap_minutes > 0").fetchall()
        assert overlap == [("same_meeting_logged_twice", 10)]


def test_time_linked_to_a_separately_billed_encounter_is_excluded(drop: Drop, build):
    drop.enroll("P1")
    visit = drop.encounter("P1", "2026-01-07", "90834", provider="TH1")
    drop.log("P1", "2026-01-05", 30)
    drop.log("P1", "2026-01-07", 45, activity="follow_up", encounter_id=visit)
    drop.review("P1", "2026-01-20")
    conn = build(drop)
    assert reasons(conn, "P1") == {"counted": 30, "linked_to_billed_encounter": 45}
    assert claims(conn, "P1") == [("2026-01", "G2214", 1)]


@pytest.mark.parametrize(
    "visit_day, billed",
    [("2025-01-01", True), ("2024-12-31", False), ("2026-01-31", True), (None, False)],
    ids=["12-months-before", "a-day-too-early", "in-the-first-month", "none"],
)
def test_initiating_visit_within_12_months_before_the_episode(drop: Drop, build, visit_day, billed):
    drop.enroll("P1", initiating_visit=visit_day)
    drop.month("P1", "2026-01", 40)
    conn = build(drop)
    assert claims(conn, "P1") == ([("2026-01", "99492", 1)] if billed else [])
    if not billed:
        assert month(conn, "P1", "2026-01", "blocked_reason") == "missing_initiating_visit"


def test_initiating_visit_must_be_by_the_billing_practitioner(drop: Drop, build):
    drop.enroll("P1", initiating_visit=None)
    drop.encounter("P1", "2026-01-01", "99214", provider="SOMEONE_ELSE")
    drop.month("P1", "2026-01", 40)
    assert claims(build(drop), "P1") == []


def test_99492_once_per_calendar_year_where_the_payer_says_so(drop: Drop, build):
    for patient, payer in (("P1", "bcbs_mi"), ("P2", "medicare")):
        drop.enroll(patient, payer=payer)
        drop.month(patient, "2026-01", 40)
        drop.month(patient, "2026-08", 40)  # after a 6-month break: a new episode
    conn = build(drop, as_of="2026-09-10")
    assert claims(conn, "P1") == [("2026-01", "99492", 1), ("2026-08", "99493", 1)]
    assert claims(conn, "P2") == [("2026-01", "99492", 1), ("2026-08", "99492", 1)]
    assert month(conn, "P1", "2026-08", "episode_number") == 2


def _reference_copy(tmp_path: Path) -> Path:
    ref = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    return ref


@pytest.mark.parametrize(
    "assessed_on, ok", [(None, False), ("2026-01-02", True), ("2025-12-20", False)],
    ids=["no-scale", "scale-in-initial-month", "scale-before-the-episode"],
)
def test_measurement_based_care_is_a_warning_unless_the_payer_makes_it_a_gate(drop: Drop, build, tmp_path,
                                                                               assessed_on, ok):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    if assessed_on:
        drop.assess("P1", assessed_on)
    conn = build(drop)
    assert month(conn, "P1", "2026-01", "measurement_ok") is ok
    assert claims(conn, "P1") == [("2026-01", "99492", 1)]  # a warning by default
    assert month(conn, "P1", "2026-01", "warnings") == ("" if ok else "no validated rating scale")
    ref = _reference_copy(tmp_path)
    text = (ref / "payers.csv").read_text().replace("month_end,,false,0.05,0.20", "month_end,,true,0.05,0.20", 1)
    (ref / "payers.csv").write_text(text)
    gated = build(drop, reference_dir=ref)
    assert claims(gated, "P1") == ([("2026-01", "99492", 1)] if ok else [])


def test_monitoring_scale_must_be_recent(drop: Drop, build):
    drop.enroll("P1")
    drop.assess("P1", "2026-01-03")
    drop.month("P1", "2026-01", 40)
    drop.month("P1", "2026-02", 40)  # last scale 2026-01-03: more than 30 days before Feb 28
    drop.month("P1", "2026-03", 40)
    drop.assess("P1", "2026-03-02")  # within 30 days of Mar 31
    conn = build(drop, as_of="2026-04-05")
    assert [month(conn, "P1", m, "measurement_ok") for m in ("2026-01", "2026-02", "2026-03")] == [True, False, True]


def test_outside_psychotherapy_without_documented_non_duplication_is_flagged(drop: Drop, build):
    drop.enroll("P1")
    drop.enroll("P2", non_duplicative="true")
    for p in ("P1", "P2"):
        drop.month(p, "2026-01", 40)
        drop.encounter(p, "2026-01-12", "90837", provider="OUTSIDE_THERAPIST")
    drop.enroll("P3")
    drop.month("P3", "2026-01", 40)
    drop.encounter("P3", "2026-01-12", "90837", provider="TH1")  # the program's own therapist
    conn = build(drop)
    flags = conn.sql("select patient_id, double_billing_risk from fct_patient_months "
                     "where service_month = '2026-01-01' order by 1").fetchall()
    assert flags == [("P1", True), ("P2", False), ("P3", False)]
    assert claims(conn, "P1") == [("2026-01", "99492", 1)]  # a flag for review, not a gate


def test_expected_collection_applies_denial_rate_and_coinsurance(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    row = build(drop).sql("select expected_amount, expected_collection, payer_share, patient_share from fct_claims").fetchall()
    # Medicare example: 5 % expected denials, 20 % coinsurance; the 2026 example rate
    assert row == [(160.32, 152.30, 121.84, 30.46)]


def test_what_if_the_other_time_reading(drop: Drop, build):
    drop.enroll("P1")  # Medicare midpoint: 68 min bills 99492; full time would bill G2214
    drop.month("P1", "2026-01", 68)
    drop.enroll("P2", payer="acme_commercial")  # full time: 55 min subsequent G2214; midpoint 99493
    drop.month("P2", "2026-01", 40)
    drop.month("P2", "2026-02", 55)
    conn = build(drop, as_of="2026-03-02")
    rows = conn.sql("select patient_id, strftime(service_month, '%Y-%m'), codes, what_if_codes, difference "
                    "from fct_rule_set_what_if where countable_minutes > 0 order by 1, 2").fetchall()
    assert rows == [
        ("P1", "2026-01", "99492", "G2214", round(60.79 - 160.32, 2)),  # 2026 example rates
        ("P2", "2026-01", "G2214", "99492", round(160.32 - 60.79, 2)),
        ("P2", "2026-02", "G2214", "99493", round(144.96 - 60.79, 2)),
    ]


def test_modifier_25_advisory_on_an_em_the_day_cocm_starts(drop: Drop, build):
    drop.enroll("P1", payer="acme_commercial", initiating_visit="2025-12-15")
    drop.encounter("P1", "2026-01-02", "99214")  # same day as the first care-management entry
    drop.month("P1", "2026-01", 75)
    drop.enroll("P2", initiating_visit="2025-12-15")  # Medicare: no such modifier row
    drop.encounter("P2", "2026-01-02", "99214")
    drop.month("P2", "2026-01", 75)
    conn = build(drop)
    rows = conn.sql("select patient_id, cpt_code, modifier, encounter_date::varchar from fct_modifier_advisories").fetchall()
    assert rows == [("P1", "99214", "25", "2026-01-02")]


def test_bhi_explain_prints_the_evidence(drop: Drop, tmp_path, capsys):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    crisis = drop.log("P1", "2026-01-20", 12, activity="crisis")
    folder = drop.write()
    out = tmp_path / "out"
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-02-10", "--allow-stale"]) == 0
    capsys.readouterr()
    assert main(["explain", "--warehouse", str(out / "warehouse.duckdb"), "--patient", "P1", "--month", "2026-01"]) == 0
    text = capsys.readouterr().out
    assert "closed initial month, 40 countable of 52 logged minutes" in text
    assert "99492 earned with 40 countable min (cms_midpoint initial 99492 base: from 36 min; 1 unit(s))" in text
    assert "bills: 99492 = $160.32" in text  # the 2026 example rate
    assert f"12 min excluded: separately billed service 12 min (entries {crisis})" in text
    assert "gate psychiatric review: pass" in text
    assert main(["explain", "--warehouse", str(out / "warehouse.duckdb"), "--patient", "P9", "--month", "2026-01"]) == 1
    assert "no enrolled patient-month for patient P9 in 2026-01" in capsys.readouterr().err
    # the month's evidence file, written on demand from the warehouse
    assert main(["evidence", "--out", str(out), "--month", "2026-01", "--to", str(tmp_path / "evidence.csv")]) == 0
    evidence = (tmp_path / "evidence.csv").read_text()
    assert "initiating_visit" in evidence and crisis in evidence


@pytest.mark.parametrize("diagnosis, billed", [("F32.1", True), ("f41.1", True), ("E11.9", False), ("", False)])
def test_a_behavioral_health_diagnosis_is_required(drop: Drop, build, diagnosis, billed):
    drop.enroll("P1")
    drop.enrollments[-1]["diagnosis_code"] = diagnosis
    drop.month("P1", "2026-01", 40)
    conn = build(drop)
    assert claims(conn, "P1") == ([("2026-01", "99492", 1)] if billed else [])
    if not billed:
        assert month(conn, "P1", "2026-01", "blocked_reason") == "missing_bh_diagnosis"
