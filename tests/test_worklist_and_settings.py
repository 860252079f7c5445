"""The open-month worklist, near misses, and payer settings changed as data (reference rows)."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import Drop, write_csv
from pipelines.defs.checks import PROGRAM_COSTS_NOT_IN_ROI
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR


def worklist(conn, patient: str) -> dict:
    cols = [c[0] for c in conn.sql("describe fct_near_threshold").fetchall()]
    rows = conn.sql(f"select * from fct_near_threshold where patient_id = '{patient}'").fetchall()
    assert len(rows) == 1
    return dict(zip(cols, rows[0]))


def test_worklist_shows_next_code_minutes_needed_days_left_and_dollars(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    drop.month("P1", "2026-02", 28)  # open month, subsequent: 3 minutes short of 99493
    drop.enroll("P2")  # enrolled, nothing logged yet in the open month
    drop.month("P2", "2026-01", 40)
    conn = build(drop, as_of="2026-02-20")
    row = worklist(conn, "P1")
    assert row["countable_minutes"] == 28
    assert row["current_codes"] == "G2214"
    assert row["next_code"] == "99493"
    assert row["next_threshold_minutes"] == 31
    assert row["minutes_needed"] == 3
    assert row["days_left"] == 8  # 2026-02-20 -> 2026-02-28
    assert row["dollars_gained"] == round(144.96 - 60.79, 2)  # 2026 example rates
    assert row["blockers"] == ""
    empty = worklist(conn, "P2")
    assert (empty["countable_minutes"], empty["next_code"], empty["minutes_needed"]) == (0, "G2214", 16)
    assert empty["blockers"] == "no psychiatric review yet"
    # open months never produce claims
    assert conn.sql("select count(*) from fct_claims where service_month = date '2026-02-01'").fetchall() == [(0,)]


def test_worklist_next_add_on_and_cap(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2026-02-01")
    drop.month("P1", "2026-02", 90)  # initial: 99492 + 99494, next unit at 116
    drop.enroll("P2", enrolled_on="2026-02-01")
    drop.month("P2", "2026-02", 120)  # two units: Medicare cap reached, nothing further
    conn = build(drop, as_of="2026-02-20")
    assert (worklist(conn, "P1")["next_code"], worklist(conn, "P1")["minutes_needed"]) == ("99492 + 99494 x2", 26)
    assert worklist(conn, "P2")["next_code"] is None


def test_near_miss_in_a_closed_month_is_revenue_left_on_the_table(drop: Drop, build):
    drop.enroll("P1", payer="acme_commercial")  # full-time reading: 68 of 70 minutes
    drop.month("P1", "2026-01", 68)
    drop.enroll("P2", payer="acme_commercial")  # 59 minutes short by 11: outside the 10-minute window
    drop.month("P2", "2026-01", 40)
    drop.month("P2", "2026-02", 49)
    conn = build(drop, as_of="2026-03-05")
    rows = conn.sql("select patient_id, reason, minutes, dollars from fct_revenue_gap order by all").fetchall()
    assert rows == [("P1", "near_miss", 2, round(160.32 - 60.79, 2))]  # 2026 example rates


def _reference_copy(tmp_path: Path) -> Path:
    ref = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    return ref


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_date_of_service_policy_is_a_payer_setting(drop: Drop, build, tmp_path):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 60)  # 20 min on the 2nd, 3rd, 4th: 36 reached on the 3rd
    assert build(drop).sql("select date_of_service::varchar from fct_claims").fetchall() == [("2026-01-31",)]
    ref = _reference_copy(tmp_path)
    _edit(ref / "payers.csv", "cms_midpoint,false,2,6,month_end", "cms_midpoint,false,2,6,threshold_met")
    conn = build(drop, reference_dir=ref)
    assert conn.sql("select date_of_service::varchar from fct_claims").fetchall() == [("2026-01-03",)]


def test_payer_specific_fee_and_modifier_rows_apply(drop: Drop, build, tmp_path):
    drop.enroll("P1", payer="acme_commercial")
    drop.month("P1", "2026-01", 75)
    ref = _reference_copy(tmp_path)
    with (ref / "fee_schedule.csv").open("a") as fh:
        fh.write("acme_commercial,99492,2026-01-01,,160.00,contracted,contracted rate (test)\n")
        fh.write("acme_commercial,99492,2025-01-01,2025-12-31,150.00,contracted,last year's rate (test)\n")
    with (ref / "modifiers.csv").open("a") as fh:
        fh.write("acme_commercial,99492,HE,always,2026-01-01,,test modifier\n")
    conn = build(drop, reference_dir=ref)
    assert conn.sql("select code, expected_amount, modifiers from fct_claims").fetchall() == [("99492", 160.0, "HE")]


def test_fee_schedule_rows_are_selected_by_service_month(drop: Drop, build, tmp_path):
    drop.enroll("P1", enrolled_on="2025-12-01", consent_on="2025-12-01")
    drop.month("P1", "2025-12", 40)
    drop.month("P1", "2026-01", 40)
    ref = _reference_copy(tmp_path)
    _edit(ref / "fee_schedule.csv", "*,99493,2026-01-01,2026-12-31,144.96", "*,99493,2026-01-01,2026-12-31,140.00")
    conn = build(drop, reference_dir=ref)
    assert conn.sql("select code, unit_amount from fct_claims order by service_month").fetchall() == [
        ("99492", 145.24),
        ("99493", 140.0),
    ]


def test_payers_extract_overrides_the_shipped_rule_set_case_insensitively(drop: Drop, build):
    drop.enroll("P1", payer="MEDICARE")
    drop.month("P1", "2026-01", 68)
    drop.payers = [{"payer_id": "Medicare", "name": "Medicare (full time)", "rule_set": "full_time"}]
    conn = build(drop)
    assert conn.sql("select code from fct_claims").fetchall() == [("G2214",)]
    assert conn.sql("select rule_set, max_add_on_units from stg_payers where payer_id = 'medicare'").fetchall() == [
        ("full_time", 2)  # the cap falls back to the shipped row
    ]


def test_program_roi_costs_and_revenue(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    conn = build(drop, as_of="2026-02-10")
    rows = conn.sql(
        "select strftime(service_month, '%Y-%m'), expected_revenue, care_manager_cost, total_cost, net "
        "from fct_program_roi order by 1"
    ).fetchall()
    # care manager: 72,000 x 1.0 FTE / 12 x the program share 0.5 (care_manager_cocm_share) = 3,000 a
    # month; the open month February prorated to 10 of 28 days elapsed = 1,071.43
    assert rows == [("2026-01", 160.32, 3000.0, 3000.0, round(160.32 - 3000, 2)),
                    ("2026-02", 0.0, 1071.43, 1071.43, -1071.43)]


def test_a_program_cost_in_a_month_without_patients_lands_in_the_roi(drop: Drop, build):
    """A $2,000 training cost in the month before the first patient: its own ROI row (no care-manager
    cost: the roster has no hire dates), and the facility's other cost is every program_costs row of
    the months the ROI covers ($2,600, not the $600 of the months with patients)."""
    drop.enroll("P1", enrolled_on="2026-02-01", consent_on="2026-02-01")
    drop.month("P1", "2026-02", 40)
    folder = drop.write()
    write_csv(folder / "program_costs.csv", [
        {"month": "2026-01", "facility_id": "F1", "category": "training", "amount": "2000.00"},
        {"month": "2026-02", "facility_id": "F1", "category": "registry_software", "amount": "600.00"},
    ])
    conn = build(drop, as_of="2026-03-10")
    rows = conn.sql(
        "select strftime(service_month, '%Y-%m'), month_status, other_cost, care_manager_cost, expected_revenue"
        " from fct_program_roi order by 1"
    ).fetchall()
    assert rows[0] == ("2026-01", "closed", 2000.0, 0.0, 0.0)
    assert [r[:3] for r in rows[1:]] == [("2026-02", "closed", 600.0), ("2026-03", "open", 0.0)]
    facility = conn.sql("select other_cost from rpt_program_roi_facility where facility_id = 'F1'").fetchall()
    assert facility == [(2600.0,)]
    assert conn.sql("select sum(amount) from stg_program_costs").fetchall() == [(2600,)]
    # the asset check that guards it (old code: 1 facility-month, $2,000 missing)
    assert conn.sql(PROGRAM_COSTS_NOT_IN_ROI).fetchall() == [(0, 0)]


def test_fees_are_those_in_force_at_month_end(drop: Drop, build, tmp_path):
    drop.enroll("P1", enrolled_on="2024-02-01", consent_on="2024-02-01")
    drop.month("P1", "2024-02", 40)
    drop.month("P1", "2024-03", 40)
    ref = _reference_copy(tmp_path)
    with (ref / "fee_schedule.csv").open("a") as fh:  # the 2024 conversion factor changed on 03-09
        fh.write("medicare,99493,2024-01-01,2024-03-08,130.00,contracted,test\n")
        fh.write("medicare,99493,2024-03-09,2024-12-31,140.00,contracted,test\n")
    conn = build(drop, as_of="2024-04-02", reference_dir=ref)
    assert conn.sql("select code, unit_amount from fct_claims order by service_month").fetchall() == [
        ("99492", 147.03),  # the shipped derived estimate for 2024-01-01..2024-03-08
        ("99493", 140.0),
    ]
