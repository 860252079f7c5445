"""Issue 3's last rules at their boundaries (billing-rules.md section 1): FQHC/RHC G0512/G0511 under
the full-time reading until 2025-12-31 and the generic CoCM/99484 rows from 2026-01-01, driven by
code_thresholds.csv rows with a facility_type; and G0323 (General BHI by a clinical psychologist,
social worker, counselor or MFT: at least 20 minutes of their own time), a program of its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import Drop
from pipelines.cli import main
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR
from test_exclusions_and_gates import claims, month, reasons

G0512_TEST_RATE = "medicare,G0512,2018-01-01,2025-12-31,80.00,contracted,TEST RATE loaded by the user\n"


def fqhc_patient(drop: Drop, patient: str = "P1", *, facility_type: str = "fqhc", program: str = "cocm",
                 enrolled_on: str = "2025-11-01") -> None:
    """A Medicare patient of facility FQ1, listed in the facilities extract with `facility_type`."""
    if not any(f["facility_id"] == "FQ1" for f in drop.facilities):
        drop.facility("FQ1", facility_type)
    drop.enroll(patient, program=program, enrolled_on=enrolled_on, consent_on=enrolled_on, facility="FQ1")


def reference_with(tmp_path: Path, fee_rows: str = "") -> Path:
    ref = tmp_path / "reference"
    if not ref.exists():
        shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    if fee_rows:
        with (ref / "fee_schedule.csv").open("a") as fh:
            fh.write(fee_rows)
    return ref


# --- FQHC / RHC before 2026: G0512 / G0511, full-time reading ---------------------------------------

@pytest.mark.parametrize("facility_type", ["fqhc", "rhc"])
@pytest.mark.parametrize("minutes, expected", [(69, []), (70, [("2025-11", "G0512", 1)]),
                                               (130, [("2025-11", "G0512", 1)])],
                         ids=["69-nothing", "70-G0512", "130-no-add-on"])
def test_fqhc_rhc_initial_month_2025_bills_g0512_from_70_minutes(drop: Drop, build, facility_type, minutes, expected):
    fqhc_patient(drop, facility_type=facility_type)
    drop.month("P1", "2025-11", minutes)
    conn = build(drop, as_of="2025-12-10")
    # 69 minutes would be 99492 (midpoint) or G2214 anywhere else; at an FQHC/RHC it is nothing
    assert claims(conn, "P1") == expected
    assert month(conn, "P1", "2025-11", "facility_type") == facility_type


@pytest.mark.parametrize("minutes, expected", [(59, []), (60, [("2025-11", "G0512", 1)])])
def test_fqhc_subsequent_month_2025_bills_g0512_from_60_minutes(drop: Drop, build, tmp_path, minutes, expected):
    fqhc_patient(drop, enrolled_on="2025-10-01")
    drop.month("P1", "2025-10", 70)
    drop.month("P1", "2025-11", minutes)
    conn = build(drop, as_of="2025-12-10")
    assert month(conn, "P1", "2025-11", "month_type") == "subsequent"
    assert [c for c in claims(conn, "P1") if c[0] == "2025-11"] == expected


@pytest.mark.parametrize("minutes, expected", [(19, []), (20, [("2025-11", "G0511", 1)])])
def test_fqhc_general_bhi_2025_bills_g0511_from_20_minutes(drop: Drop, build, minutes, expected):
    fqhc_patient(drop, program="bhi")
    drop.month("P1", "2025-11", minutes, review=False)
    assert claims(build(drop, as_of="2025-12-10"), "P1") == expected


def test_fqhc_from_2026_bills_cocm_and_99484_with_the_midpoint_rule(drop: Drop, build):
    fqhc_patient(drop, "P1", enrolled_on="2026-01-01")
    drop.month("P1", "2026-01", 36)
    fqhc_patient(drop, "P2", program="bhi", enrolled_on="2026-01-01")
    drop.month("P2", "2026-01", 20, review=False)
    conn = build(drop, as_of="2026-02-10")
    assert claims(conn, "P1") == [("2026-01", "99492", 1)]
    assert claims(conn, "P2") == [("2026-01", "99484", 1)]
    assert conn.sql("select expected_amount from fct_claims where patient_id = 'P1'").fetchall() == [(160.32,)]  # 2026 row


def test_physician_office_2025_is_unaffected(drop: Drop, build):
    drop.facility("FQ1", "fqhc")  # another facility of the drop is an FQHC
    drop.enroll("P1", enrolled_on="2025-11-01", consent_on="2025-11-01")  # F1: not listed -> physician_office
    drop.month("P1", "2025-11", 36)
    drop.facility("F2", "physician_office")
    drop.enroll("P2", enrolled_on="2025-11-01", consent_on="2025-11-01", facility="F2")
    drop.month("P2", "2025-11", 36)
    conn = build(drop, as_of="2025-12-10")
    for patient in ("P1", "P2"):
        assert claims(conn, patient) == [("2025-11", "99492", 1)]
        assert month(conn, patient, "2025-11", "facility_type") == "physician_office"


def test_a_drop_without_a_facilities_file_uses_the_default_facility_type(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2025-11-01", consent_on="2025-11-01")
    drop.month("P1", "2025-11", 36)
    conn = build(drop, as_of="2025-12-10")
    assert month(conn, "P1", "2025-11", "facility_type") == "physician_office"
    assert claims(conn, "P1") == [("2025-11", "99492", 1)]


def test_fqhc_rows_apply_only_to_the_medicare_rule_set(drop: Drop, build):
    fqhc_patient(drop)
    drop.month("P1", "2025-11", 70)
    drop.enroll("P2", payer="acme_commercial", enrolled_on="2025-11-01", consent_on="2025-11-01", facility="FQ1")
    drop.month("P2", "2025-11", 70)
    conn = build(drop, as_of="2025-12-10")
    assert claims(conn, "P1") == [("2025-11", "G0512", 1)]
    assert claims(conn, "P2") == [("2025-11", "99492", 1)]  # full_time has no FQHC rows


# --- no shipped rate for G0512 / G0511 ---------------------------------------------------------------

def test_g0512_is_priced_from_a_fee_row_the_user_supplies(drop: Drop, build, tmp_path):
    fqhc_patient(drop)
    drop.month("P1", "2025-11", 70)
    conn = build(drop, as_of="2025-12-10", reference_dir=reference_with(tmp_path, G0512_TEST_RATE))
    rows = conn.sql("select code, unit_amount, expected_amount, expected_collection from fct_claims").fetchall()
    assert rows == [("G0512", 80.0, 80.0, 76.0)]  # 5 % expected denials
    assert conn.sql("select count(*) from fct_unpriced_claim_lines").fetchall() == [(0,)]
    assert month(conn, "P1", "2025-11", "warnings") == "no validated rating scale"


def test_g0512_without_a_fee_row_is_reported_unpriced(drop: Drop, build):
    fqhc_patient(drop)
    drop.month("P1", "2025-11", 70)
    conn = build(drop, as_of="2025-12-10")
    # the claim line exists with no amount, marked unpriced; fct_unpriced_claim_lines has one row per line
    assert conn.sql("select code, expected_amount, price_status from fct_claims").fetchall() == [
        ("G0512", None, "unpriced")]
    rows = conn.sql("select payer_id, code, strftime(service_month, '%Y-%m'), units, reason, message "
                    "from fct_unpriced_claim_lines").fetchall()
    assert rows == [("medicare", "G0512", "2025-11", 1, "no_fee_row_in_force",
                     "no fee_schedule.csv row for payer medicare (or *), code G0512, in force on 2025-11-30; "
                     "load the rate for that year")]
    assert "no fee_schedule.csv rate for G0512 (payer medicare, 2025-11)" in month(conn, "P1", "2025-11", "warnings")


def test_bhi_run_writes_the_exports_and_names_the_missing_g0512_rate(drop: Drop, tmp_path, capsys):
    fqhc_patient(drop)
    drop.month("P1", "2025-11", 70)
    out = tmp_path / "out"
    assert main(["run", "--extracts", str(drop.write()), "--out", str(out), "--as-of", "2025-12-10"]) == 1
    err = capsys.readouterr().err
    assert "  medicare G0512 2025-11: 1 line(s) unpriced, no fee_schedule.csv row in force" in err
    # an unpriced line no longer stops the exports (issue 11 item 8): it is marked in claims.csv and
    # listed in unpriced_claim_lines.csv (tests/test_fees_and_unpriced.py)
    assert (out / "claims.csv").exists() and (out / "unpriced_claim_lines.csv").exists()


def test_unpriced_g0511_and_g0512_in_one_month_still_bill_only_one_program(drop: Drop, build):
    fqhc_patient(drop)
    drop.month("P1", "2025-11", 70)
    drop.enroll("P1", program="bhi", enrolled_on="2025-11-01", consent_on="2025-11-01", facility="FQ1")
    drop.month("P1", "2025-11", 20, review=False, program="bhi")
    conn = build(drop, as_of="2025-12-10")
    # never G0512 and G0511 in one month, priced or not; neither priced: the program sorting first (bhi)
    assert claims(conn, "P1") == [("2025-11", "G0511", 1)]
    rows = conn.sql("select program, current_codes, blocked_reason from fct_patient_months "
                    "where service_month = '2025-11-01' order by program").fetchall()
    assert rows == [("bhi", "G0511", None), ("cocm", "G0512", "billed_under_other_program")]


# --- worklist, revenue gap, what-if and explain for FQHC months --------------------------------------

@pytest.mark.parametrize("earlier, minutes, target", [(None, 50, 70), (70, 40, 60)], ids=["initial", "subsequent"])
def test_fqhc_worklist_targets_g0512_at_70_and_60(drop: Drop, build, tmp_path, earlier, minutes, target):
    fqhc_patient(drop, enrolled_on="2025-10-01" if earlier else "2025-11-01")
    if earlier:
        drop.month("P1", "2025-10", earlier)
    drop.month("P1", "2025-11", minutes)
    ref = reference_with(tmp_path, G0512_TEST_RATE)
    for reference_dir, dollars in ((DEFAULT_REFERENCE_DIR, 0.0), (ref, 80.0)):
        conn = build(drop, as_of="2025-11-20", reference_dir=reference_dir)
        rows = conn.sql("select next_code, next_threshold_minutes, minutes_needed, dollars_gained "
                        "from fct_near_threshold").fetchall()
        assert rows == [("G0512", target, target - minutes, dollars)]


def test_fqhc_near_miss_and_what_if(drop: Drop, build, tmp_path):
    fqhc_patient(drop)
    drop.month("P1", "2025-11", 65)
    conn = build(drop, as_of="2025-12-10", reference_dir=reference_with(tmp_path, G0512_TEST_RATE))
    gap = conn.sql("select reason, minutes, dollars from fct_revenue_gap where patient_id = 'P1'").fetchall()
    assert gap == [("near_miss", 5, 80.0)]
    what_if = conn.sql("select codes, amount, what_if_rule_set, what_if_codes, what_if_amount "
                       "from fct_rule_set_what_if").fetchall()
    # full_time has no FQHC rows: the what-if prices the generic full-time reading (G2214 at 30-69)
    assert what_if == [("", 0.0, "full_time", "G2214", 57.0)]


def test_bhi_explain_names_g0512_for_an_fqhc_month(drop: Drop, build, tmp_path, capsys):
    fqhc_patient(drop)
    drop.month("P1", "2025-11", 72)
    conn = build(drop, as_of="2025-12-10", every_model=True)  # bhi explain reads the file
    warehouse = conn.sql("select path from duckdb_databases() where database_name = current_database()").fetchall()[0][0]
    conn.close()
    capsys.readouterr()
    assert main(["explain", "--warehouse", warehouse, "--patient", "P1", "--month", "2025-11"]) == 0
    text = capsys.readouterr().out
    assert "G0512 earned with 72 countable min (cms_midpoint initial G0512 base: from 70 min; 1 unit(s))" in text
    assert "no fee_schedule.csv rate for G0512" in text


# --- G0323: the clinician's own time -----------------------------------------------------------------

def clinician_patient(drop: Drop, patient: str = "P1", *, enrolled_on: str = "2026-01-01") -> None:
    """A G0323 enrollment whose billing provider is clinician BH1 (a clinical social worker, say)."""
    if not any(s["staff_id"] == "BH1" for s in drop.staff):
        drop.add_staff("BH1", "bh_clinician")
        drop.add_staff("BH2", "bh_clinician")
    drop.enroll(patient, program="bhi_clinician", enrolled_on=enrolled_on, consent_on=enrolled_on,
                billing_provider="BH1", initiating_visit=None)


@pytest.mark.parametrize("minutes, expected", [(19, []), (20, [("2026-01", "G0323", 1)])])
def test_g0323_from_20_minutes_of_the_clinicians_own_time(drop: Drop, build, minutes, expected):
    clinician_patient(drop)
    drop.month("P1", "2026-01", minutes, review=False, staff="BH1", program="bhi_clinician")
    conn = build(drop, as_of="2026-02-10")
    assert claims(conn, "P1") == expected
    if expected:
        assert conn.sql("select expected_amount from fct_claims").fetchall() == [(57.45,)]  # 2026 example rate


def test_g0323_does_not_count_care_manager_staff_or_another_clinicians_minutes(drop: Drop, build):
    clinician_patient(drop)
    drop.log("P1", "2026-01-05", 15, staff="BH1", program="bhi_clinician")
    drop.log("P1", "2026-01-06", 10, staff="CM1", program="bhi_clinician")
    drop.log("P1", "2026-01-07", 10, staff="CS1", program="bhi_clinician")
    drop.log("P1", "2026-01-08", 10, staff="BH2", program="bhi_clinician")  # not the billing clinician
    conn = build(drop, as_of="2026-02-10")
    assert reasons(conn, "P1") == {"counted": 15, "non_counting_role": 20, "not_billing_providers_own_time": 10}
    assert claims(conn, "P1") == []  # 15 own minutes: 5 short of G0323


def test_g0323_starts_in_2024(drop: Drop, build):
    clinician_patient(drop, enrolled_on="2023-12-01")
    drop.month("P1", "2023-12", 30, review=False, staff="BH1", program="bhi_clinician")
    drop.month("P1", "2024-01", 30, review=False, staff="BH1", program="bhi_clinician")
    assert claims(build(drop, as_of="2024-02-10"), "P1") == [("2024-01", "G0323", 1)]


def test_fqhc_g0323_services_bill_g0511_before_2026(drop: Drop, build):
    drop.facility("FQ1", "fqhc")
    drop.add_staff("BH1", "bh_clinician")
    drop.enroll("P1", program="bhi_clinician", enrolled_on="2025-11-01", consent_on="2025-11-01",
                billing_provider="BH1", initiating_visit=None, facility="FQ1")
    drop.month("P1", "2025-11", 20, review=False, staff="BH1", program="bhi_clinician")
    drop.month("P1", "2026-01", 20, review=False, staff="BH1", program="bhi_clinician")
    conn = build(drop, as_of="2026-02-10")
    assert claims(conn, "P1") == [("2025-11", "G0511", 1), ("2026-01", "G0323", 1)]


def test_g0323_and_cocm_in_the_same_month_the_higher_paying_bills(drop: Drop, build):
    drop.enroll("P1")  # CoCM, care manager minutes
    drop.month("P1", "2026-01", 40, program="cocm")  # 99492 $160.32
    clinician_patient(drop, "P1")
    drop.month("P1", "2026-01", 25, review=False, staff="BH1", program="bhi_clinician")  # G0323 $57.45
    conn = build(drop, as_of="2026-02-10")
    assert claims(conn, "P1") == [("2026-01", "99492", 1)]
    blocked = conn.sql("select program, current_codes, blocked_reason from fct_patient_months "
                       "where patient_id = 'P1' and service_month = '2026-01-01' order by program").fetchall()
    assert blocked == [("bhi_clinician", "G0323", "billed_under_other_program"), ("cocm", "99492", None)]


def test_g0323_and_99484_in_the_same_month_never_both(drop: Drop, build):
    drop.enroll("P1", program="bhi")
    drop.month("P1", "2026-01", 20, review=False, staff="CS1", program="bhi")  # 99484 $57.45
    clinician_patient(drop, "P1")
    drop.month("P1", "2026-01", 20, review=False, staff="BH1", program="bhi_clinician")  # G0323 $57.45
    conn = build(drop, as_of="2026-02-10")
    # equal example rates: the program code that sorts first (bhi) bills
    assert claims(conn, "P1") == [("2026-01", "99484", 1)]
    blocked = conn.sql("select program, current_codes, blocked_reason from fct_patient_months "
                       "where patient_id = 'P1' and service_month = '2026-01-01' order by program").fetchall()
    assert blocked == [("bhi", "99484", None), ("bhi_clinician", "G0323", "billed_under_other_program")]
