"""The dashboard marts (sql/marts/fct_outreach_*, fct_care_manager_capacity, fct_worklist_pace,
fct_compliance_*, fct_dashboard_headlines) on tiny drops built through the real SQL."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from conftest import Drop
from pipelines.reference import DEFAULT_REFERENCE_DIR


def reference_with(tmp_path: Path, **settings: str) -> Path:
    """A copy of the shipped reference folder with some settings.csv values changed."""
    ref = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    path = ref / "settings.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = {r["setting"] for r in rows}
    assert set(settings) <= names, f"unknown settings {set(settings) - names}"
    for r in rows:
        if r["setting"] in settings:
            r["value"] = settings[r["setting"]]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["setting", "value", "description"])
        writer.writeheader()
        writer.writerows(rows)
    return ref


def rows(conn, sql: str) -> list[dict]:
    rel = conn.sql(sql)
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def test_shipped_settings_have_the_dashboard_rows():
    with (DEFAULT_REFERENCE_DIR / "settings.csv").open(newline="") as fh:
        settings = {r["setting"]: r for r in csv.DictReader(fh)}
    assert settings["late_documentation_days"]["value"] == "7"
    assert float(settings["care_manager_hours_per_day"]["value"]) > 0
    assert 0 < float(settings["care_manager_cocm_share"]["value"]) <= 1
    for name in ("late_documentation_days", "care_manager_hours_per_day", "care_manager_cocm_share"):
        assert settings[name]["description"].strip(), name


# --------------------------------------------------------------------------- outreach plan

# as of Friday 2026-06-26: Monday 29 and Tuesday 30 are the business days left (2).
# capacity = fte x 2 days x 1 hour x 60 x 0.25 = fte x 30 minutes.
AS_OF_FRIDAY = "2026-06-26"


def outreach_drop(drop: Drop, fte: str) -> Drop:
    drop.staff[0]["fte"] = fte  # CM1
    for patient, minutes in (("PA", 6), ("PB", 16), ("PC", 6)):
        drop.enroll(patient, enrolled_on="2026-06-01",
                    consent_on=None if patient == "PC" else "2026-06-01")
        drop.month(patient, "2026-06", minutes)
    return drop


@pytest.fixture
def small_capacity(tmp_path: Path) -> Path:
    return reference_with(tmp_path, care_manager_hours_per_day="1", care_manager_cocm_share="0.25")


def test_capacity_is_fte_times_business_days_hours_and_share(drop, build, small_capacity):
    conn = build(outreach_drop(drop, "0.99"), AS_OF_FRIDAY, small_capacity)
    cap = rows(conn, "select * from fct_care_manager_capacity")
    assert len(cap) == 1
    assert cap[0]["care_manager_id"] == "CM1"
    assert cap[0]["business_days_left"] == 2
    assert cap[0]["capacity_minutes"] == 29  # floor(0.99 * 2 * 1 * 60 * 0.25) = floor(29.7)


def test_capacity_uses_the_shipped_settings(drop, build):
    drop.enroll("PA")
    drop.month("PA", "2026-10", 10)
    conn = build(drop, "2026-10-20")  # Tue: Oct 21-23 and 26-30 are left, 8 business days
    cap = rows(conn, "select * from fct_care_manager_capacity")[0]
    assert cap["business_days_left"] == 8
    assert cap["capacity_minutes"] == int(1 * 8 * cap["hours_per_day"] * 60 * cap["cocm_share"])


def test_last_day_of_the_month_leaves_no_capacity(drop, build):
    drop.enroll("PA")
    drop.month("PA", "2026-06", 10)
    conn = build(drop, "2026-06-30")
    assert rows(conn, "select capacity_minutes, business_days_left from fct_care_manager_capacity") == [
        {"capacity_minutes": 0, "business_days_left": 0}
    ]
    assert rows(conn, "select bool_or(in_plan) as any_in from fct_outreach_plan") == [{"any_in": False}]


def test_outreach_plan_ranks_by_dollars_per_minute_and_fills_capacity_exactly(drop, build, small_capacity):
    conn = build(outreach_drop(drop, "1"), AS_OF_FRIDAY, small_capacity)
    plan = rows(conn, "select * from fct_outreach_plan order by rank")
    # PC has no consent: a blocker, so not a candidate
    assert [p["patient_id"] for p in plan] == ["PA", "PB"]
    pa, pb = plan
    # 2026 example rates: G2214 60.79, 99492 160.32
    assert (pa["minutes_needed"], pa["dollars_gained"], pa["next_code"]) == (10, 60.79, "G2214")
    assert (pb["minutes_needed"], pb["dollars_gained"], pb["next_code"]) == (20, 99.53, "99492")
    assert pa["dollars_per_minute"] == pytest.approx(6.079)
    assert pb["dollars_per_minute"] == pytest.approx(4.9765)
    assert [p["rank"] for p in plan] == [1, 2]
    assert [p["cumulative_minutes"] for p in plan] == [10, 30]
    assert {p["capacity_minutes"] for p in plan} == {30}
    # 30 minutes needed of 30 left: the boundary is inclusive
    assert [p["in_plan"] for p in plan] == [True, True]
    for column in ("care_manager_id", "patient_id", "payer_id", "program", "minutes_needed",
                   "dollars_gained", "dollars_per_minute", "rank", "cumulative_minutes",
                   "capacity_minutes", "in_plan"):
        assert column in pa
    assert pa["care_manager_id"] == "CM1" and pa["payer_id"] == "medicare" and pa["program"] == "cocm"


def test_patient_that_would_overrun_the_capacity_left_is_not_in_plan(drop, build, small_capacity):
    conn = build(outreach_drop(drop, "0.99"), AS_OF_FRIDAY, small_capacity)
    plan = rows(conn, "select patient_id, cumulative_minutes, capacity_minutes, in_plan "
                      "from fct_outreach_plan order by rank")
    assert plan == [
        {"patient_id": "PA", "cumulative_minutes": 10, "capacity_minutes": 29, "in_plan": True},
        # 20 minutes needed, 19 left: out
        {"patient_id": "PB", "cumulative_minutes": 30, "capacity_minutes": 29, "in_plan": False},
    ]
    summary = rows(conn, "select * from fct_outreach_summary where care_manager_id = 'CM1'")[0]
    assert summary["candidates"] == 2
    assert summary["planned_patients"] == 1
    assert summary["planned_minutes"] == 10
    assert summary["planned_dollars"] == pytest.approx(60.79)  # 2026 example rates
    assert summary["unplanned_dollars"] == pytest.approx(99.53)
    assert summary["reachable_dollars"] == pytest.approx(60.79 + 99.53 + 60.79)  # PC too, blocked
    head = rows(conn, "select * from fct_dashboard_headlines")[0]
    assert head["outreach_planned_dollars"] == pytest.approx(60.79)
    assert head["outreach_planned_patients"] == 1
    assert head["business_days_left"] == 2


# --------------------------------------------------------------------------- worklist pace


def test_worklist_pace_projects_minutes_to_month_end(drop, build):
    # as of 2026-06-15: 15 of 30 days elapsed, so the projection doubles the minutes so far
    for patient, minutes in (("PA", 20), ("PB", 6)):
        drop.enroll(patient, enrolled_on="2026-06-01", consent_on="2026-06-01")
        drop.month(patient, "2026-06", minutes)
    conn = build(drop, "2026-06-15")
    pace = {r["patient_id"]: r for r in rows(conn, "select * from fct_worklist_pace")}
    pa, pb = pace["PA"], pace["PB"]
    assert (pa["days_in_month"], pa["days_elapsed"], pa["days_left"]) == (30, 15, 15)
    assert pa["projected_minutes"] == 40 and pa["next_threshold_minutes"] == 36
    assert pa["pace_status"] == "on pace"
    assert pb["projected_minutes"] == 12 and pb["next_threshold_minutes"] == 16
    assert pb["pace_status"] == "behind pace"
    assert pb["minutes_per_day_needed"] == pytest.approx(10 / 15, abs=0.05)
    assert sorted(r["worklist_rank"] for r in pace.values()) == [1, 2]
    head = rows(conn, "select * from fct_dashboard_headlines")[0]
    assert head["patient_programs_behind_pace"] == 1 and head["patient_programs_on_pace"] == 1


# --------------------------------------------------------------------------- compliance


def lag_drop(drop: Drop) -> Drop:
    drop.enroll("PA")
    drop.log("PA", "2026-06-01", 10)
    drop.entries[-1]["documented_at"] = "2026-06-08"  # 7 days: on time
    drop.log("PA", "2026-06-02", 12)
    drop.entries[-1]["documented_at"] = "2026-06-10"  # 8 days: late
    drop.log("PA", "2026-06-03", 5)  # no documented_at
    drop.log("PA", "2026-06-04", 7)
    drop.entries[-1]["documented_at"] = "2026-06-04"
    return drop


def test_documentation_lag_boundary_7_days_is_on_time_8_is_late(drop, build):
    conn = build(lag_drop(drop), "2026-06-15")
    lag = rows(conn, "select * from fct_compliance_documentation_lag")
    assert len(lag) == 1
    week = lag[0]
    assert week["staff_id"] == "CM1" and week["role"] == "care_manager"
    assert str(week["week_start"]) == "2026-06-01" and week["iso_week"] == "2026-W23"
    assert week["late_documentation_days"] == 7
    assert (week["entries"], week["minutes"]) == (4, 34)
    assert (week["late_entries"], week["late_minutes"]) == (1, 12)
    assert week["undated_entries"] == 1
    assert week["max_lag_days"] == 8
    assert week["late_minutes_pct"] == pytest.approx(round(100 * 12 / 34, 1))


def test_documentation_lag_threshold_is_a_setting(drop, build, tmp_path):
    ref = reference_with(tmp_path, late_documentation_days="8")
    conn = build(lag_drop(drop), "2026-06-15", ref)
    week = rows(conn, "select * from fct_compliance_documentation_lag")[0]
    assert week["late_documentation_days"] == 8
    assert (week["late_entries"], week["late_minutes"]) == (0, 0)


def test_blocked_months_and_quarantine_counts(drop, build):
    drop.enroll("PA", consent_on=None)  # no consent: every month blocked
    drop.month("PA", "2026-05", 40)
    drop.enroll("PB")
    drop.month("PB", "2026-05", 40, review=False)  # no psychiatric review in May
    drop.log("PB", "2026-05-20", "abc")  # quarantined: unreadable minutes
    drop.log("PB", "2026-05-21", "0")  # quarantined: minutes must be > 0
    conn = build(drop, "2026-06-15")
    blocked = rows(conn, "select * from fct_compliance_blocked_months "
                         "where month_status = 'closed' order by blocked_reason")
    assert [(str(b["service_month"]), b["blocked_reason"], b["patient_months"]) for b in blocked] == [
        ("2026-05-01", "missing_consent", 1),
        ("2026-05-01", "missing_psych_review", 1),
    ]
    consent, review = blocked
    assert consent["minutes_held_back"] == 40 and consent["dollars_held_back"] > 0
    assert review["minutes_held_back"] == 40 and review["dollars_held_back"] > 0
    quarantine = rows(conn, "select * from fct_compliance_quarantine")
    assert sum(q["rows_quarantined"] for q in quarantine) == 2
    assert {q["table_name"] for q in quarantine} == {"time_entries"}
    head = rows(conn, "select * from fct_dashboard_headlines")[0]
    assert head["quarantined_rows"] == 2
    assert head["blocked_months_closed"] == 2
    assert head["blocked_dollars_closed"] == pytest.approx(
        consent["dollars_held_back"] + review["dollars_held_back"]
    )
