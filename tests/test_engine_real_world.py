"""The billing engine on real-world data (issue 11 items 3, 4, 5, 6, 9): a stray date, episodes that
belong to the patient and program, overlaps that never depend on entry ids, the date of service and
discharge, and the consultant's documented case review. Each rule at its edge, in both time readings
where the reading matters (medicare: CPT midpoint; acme_commercial: full time)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from conftest import Drop, write_csv
from pipelines.outputs.explain import explain
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR
from test_exclusions_and_gates import claims, month

# 65 countable minutes: initial 99492 / subsequent 99493 under the midpoint reading; initial G2214 /
# subsequent 99493 under the full-time reading (70 / 60): the month type shows in the code either way
READINGS = {"medicare": ("99492", "99493"), "acme_commercial": ("G2214", "99493")}


def counted(conn, entry_id: str) -> int:
    return conn.sql(
        f"select counted_minutes::int from int_time_entries_classified where entry_id = '{entry_id}'"
    ).fetchall()[0][0]


def reference_with(tmp_path: Path, file: str, edit) -> Path:
    """A copy of the shipped reference data with one file's rows edited (a rules-as-data change)."""
    ref = tmp_path / "reference"
    if not ref.exists():
        shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    with (ref / file).open() as fh:
        rows = list(csv.DictReader(fh))
    rows = [edit(dict(r)) for r in rows]
    with (ref / file).open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return ref


# --- item 3: one stray date must not change other patients' codes --------------------------------

def _busy_facility(drop: Drop, payer: str) -> None:
    """P1 enrolled before the extracts begin (2026-01), 65 minutes in January; 35 other patients with
    60 minutes (3 entries) in each of January and February: 108+ entries a month."""
    drop.enroll("P1", payer=payer, enrolled_on="2025-06-01", consent_on="2025-06-01")
    drop.month("P1", "2026-01", 65)
    for i in range(35):
        drop.enroll(f"Q{i:02d}", payer=payer, enrolled_on="2026-01-01")
        drop.month(f"Q{i:02d}", "2026-01", 60)
        drop.month(f"Q{i:02d}", "2026-02", 60)


@pytest.mark.parametrize("payer", READINGS)
@pytest.mark.parametrize("stray_day", ["1900-01-01", "2025-01-15"], ids=["1900-default", "a-year-early"])
def test_a_stray_entry_dated_far_before_the_data_does_not_change_other_patients_codes(
    drop: Drop, build, payer, stray_day
):
    _busy_facility(drop, payer)
    stray = drop.log("Q00", stray_day, 20)
    conn = build(drop, as_of="2026-03-05")
    # P1 was enrolled before the covered period: January is a subsequent month, as without the stray
    assert month(conn, "P1", "2026-01", "month_type") == "subsequent"
    assert claims(conn, "P1") == [("2026-01", READINGS[payer][1], 1)]
    assert conn.sql("select covered_from::varchar, covered_from_origin from int_covered_periods").fetchall() == [
        ("2026-01-01", "derived from the data")]
    # the stray entry is excluded with its reason, counted in the reconciliation and the run summary
    assert conn.sql(
        f"select exclusion_reason from int_time_entries_classified where entry_id = '{stray}'"
    ).fetchall() == [("before_covered_period",)]
    assert conn.sql(
        "select minutes::int from fct_minutes_reconciliation where reason = 'before_covered_period'"
    ).fetchall() == [(20,)]
    assert conn.sql("select covered_period, minutes_before_covered_period::int from rpt_run_summary").fetchall() == [
        ("covered from 2026-01 (F1)", 20)]


@pytest.mark.parametrize("share, covered_from", [("0.1", "2025-12-01"), ("0.11", "2026-01-01")],
                         ids=["at-the-share", "just-below"])
def test_covered_period_starts_at_the_first_month_with_the_settings_share_of_the_busiest(
    drop: Drop, build, tmp_path, share, covered_from
):
    # December: 1 entry; January (the busiest month): 10 entries. 1 >= 0.1 x 10 is covered, 1 < 1.1 is not
    drop.enroll("P1", enrolled_on="2025-12-01", consent_on="2025-12-01")
    drop.log("P1", "2025-12-10", 10)
    drop.month("P1", "2026-01", 200)
    ref = reference_with(tmp_path, "settings.csv", lambda r: {
        **r, "value": share if r["setting"] == "covered_period_min_share_of_busiest_month" else r["value"]})
    conn = build(drop, as_of="2026-02-05", reference_dir=ref)
    assert conn.sql("select covered_from::varchar from int_covered_periods").fetchall() == [(covered_from,)]
    excluded = conn.sql(
        "select count(*) from int_time_entries_classified where exclusion_reason = 'before_covered_period'"
    ).fetchall()[0][0]
    assert excluded == (0 if covered_from.startswith("2025") else 1)


def test_a_facilities_covered_from_overrides_the_derived_period(drop: Drop, build):
    _busy_facility(drop, "medicare")
    drop.facility("F1", "physician_office")
    drop.facilities[-1]["covered_from"] = "2026-02-01"
    conn = build(drop, as_of="2026-03-05")
    assert conn.sql("select covered_from::varchar, covered_from_origin from int_covered_periods").fetchall() == [
        ("2026-02-01", "facilities extract")]
    # January is before the stated period: its entries are excluded, P1 has no months before February
    assert claims(conn, "P1") == []
    assert conn.sql(
        "select min(service_month)::varchar from int_patient_months where patient_id = 'P1'"
    ).fetchall() == [("2026-02-01",)]


# --- item 4: episodes belong to the patient and program ---------------------------------------------

@pytest.mark.parametrize("new_payer", ["nc_medicaid", "acme_commercial"], ids=["midpoint", "full-time"])
def test_a_payer_change_delivered_as_a_new_enrollment_row_continues_the_episode(drop: Drop, build, new_payer):
    drop.enroll("P1", payer="medicare", enrolled_on="2026-01-01")
    drop.month("P1", "2026-01", 65)
    # the EHR opens a new enrollment row for the new coverage; the old one is never discharged
    drop.enroll("P1", payer=new_payer, enrolled_on="2026-02-01", initiating_visit=None)
    drop.month("P1", "2026-02", 65)
    conn = build(drop, as_of="2026-03-05")
    assert claims(conn, "P1") == [("2026-01", "99492", 1), ("2026-02", "99493", 1)]
    # the payer of each month is the coverage in force on its date of service
    assert conn.sql(
        "select strftime(service_month, '%Y-%m'), payer_id from fct_claims order by 1"
    ).fetchall() == [("2026-01", "medicare"), ("2026-02", new_payer)]
    assert month(conn, "P1", "2026-02", "episode_number") == 1


@pytest.mark.parametrize("payer", READINGS)
def test_a_re_enrollment_within_the_break_without_a_discharge_continues_the_episode(drop: Drop, build, payer):
    drop.enroll("P1", payer=payer, enrolled_on="2026-01-01")
    drop.month("P1", "2026-01", 65)
    # a data migration re-creates the enrollment in April (no discharge): 2 months without service
    drop.enroll("P1", payer=payer, enrolled_on="2026-04-01", initiating_visit=None)
    drop.month("P1", "2026-04", 65)
    conn = build(drop, as_of="2026-05-05")
    assert claims(conn, "P1") == [("2026-01", READINGS[payer][0], 1), ("2026-04", READINGS[payer][1], 1)]


@pytest.mark.parametrize("payer", READINGS)
@pytest.mark.parametrize("discharged_on, second", [("2026-01-31", "initial"), ("2026-02-01", "subsequent")],
                         ids=["discharged-before-the-month", "discharged-in-the-month"])
def test_a_documented_discharge_ends_the_episode_before_the_next_month(
    drop: Drop, build, payer, discharged_on, second
):
    # goals met: discharged; re-enrolled in February. A discharge before February began ends the
    # episode (February is initial again); a discharge on February 1 leaves February in the episode
    drop.enroll("P1", payer=payer, enrolled_on="2026-01-01", discharged_on=discharged_on)
    drop.month("P1", "2026-01", 65)
    drop.enroll("P1", payer=payer, enrolled_on="2026-02-10", consent_on="2026-02-10")
    drop.log("P1", "2026-02-12", 20)
    drop.log("P1", "2026-02-13", 20)
    drop.log("P1", "2026-02-14", 25)
    drop.review("P1", "2026-02-15")
    conn = build(drop, as_of="2026-03-05")
    assert month(conn, "P1", "2026-02", "month_type") == second
    expected = READINGS[payer][0] if second == "initial" else READINGS[payer][1]
    assert claims(conn, "P1") == [("2026-01", READINGS[payer][0], 1), ("2026-02", expected, 1)]


# --- item 5: overlap never depends on entry ids ------------------------------------------------------

@pytest.mark.parametrize("psychotherapy_first", [True, False], ids=["psychotherapy-logged-first", "follow-up-first"])
def test_a_countable_minute_overlapping_psychotherapy_never_counts_whatever_the_ids(
    drop: Drop, build, psychotherapy_first
):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    if psychotherapy_first:
        drop.log("P1", "2026-01-20", 30, activity="psychotherapy", start="10:00", end="10:30")
    follow_up = drop.log("P1", "2026-01-20", 30, start="10:00", end="10:30")
    partly = drop.log("P1", "2026-01-21", 30, start="09:50", end="10:20")  # 10 min before the session
    if not psychotherapy_first:
        drop.log("P1", "2026-01-20", 30, activity="psychotherapy", start="10:00", end="10:30")
    drop.log("P1", "2026-01-21", 30, activity="crisis", start="10:00", end="10:30")
    conn = build(drop)
    assert counted(conn, follow_up) == 0
    assert counted(conn, partly) == 10
    assert month(conn, "P1", "2026-01", "countable_minutes") == 50
    assert dict(conn.sql(
        "select reason, minutes::int from fct_minutes_reconciliation where reason like 'overlaps%'"
    ).fetchall()) == {"overlaps_non_countable_activity": 50}


@pytest.mark.parametrize("p2_logged_first", [True, False], ids=["P2-logged-first", "P1-logged-first"])
def test_a_shared_minute_of_one_care_manager_goes_by_content_not_by_entry_id(drop: Drop, build, p2_logged_first):
    drop.enroll("P1")
    drop.enroll("P2")
    order = [("P2", "10:00", "10:20"), ("P1", "10:00", "10:20")]
    ids = {}
    for patient, start, end in (order if p2_logged_first else order[::-1]):
        ids[patient] = drop.log(patient, "2026-01-05", 20, start=start, end=end)
    # same start and length: the lower patient_id keeps the shared minutes (20 minutes, not 40)
    early = drop.log("P2", "2026-01-06", 30, start="09:00", end="09:30")  # starts first: keeps its minutes
    late = drop.log("P1", "2026-01-06", 30, start="09:10", end="09:40")
    conn = build(drop)
    assert (counted(conn, ids["P1"]), counted(conn, ids["P2"])) == (20, 0)
    assert (counted(conn, early), counted(conn, late)) == (30, 10)


@pytest.mark.parametrize("first", ["CM1", "CM2"])
def test_a_tie_for_the_most_care_manager_minutes_goes_to_the_lowest_staff_id(drop: Drop, build, first):
    """The worklist and revenue gap name the care manager with the most minutes in the patient-month;
    two with the same minutes give the lowest staff_id, whoever logged first (not row order)."""
    drop.add_staff("CM2", "care_manager")
    drop.enroll("P1")
    second = "CM2" if first == "CM1" else "CM1"
    drop.log("P1", "2026-03-02", 15, staff=first)
    drop.log("P1", "2026-03-03", 15, staff=second)
    conn = build(drop, "2026-03-20")
    assert conn.sql("select care_manager_id from int_patient_month_minutes").fetchall() == [("CM1",)]
    assert conn.sql("select care_manager_id from fct_near_threshold").fetchall() == [("CM1",)]


def test_entries_crossing_midnight_are_checked_for_overlap(drop: Drop, build):
    drop.enroll("P1")
    drop.enroll("P2")
    night = drop.log("P1", "2026-01-05", 60, start="23:30", end="00:30")
    next_day = drop.log("P2", "2026-01-06", 20, start="00:00", end="00:20")  # inside P1's call
    drop.log("P1", "2026-01-07", 15, activity="crisis", start="00:00", end="00:15")
    late_call = drop.log("P2", "2026-01-06", 60, start="23:30", end="00:30")  # over the crisis session
    conn = build(drop)
    assert counted(conn, night) == 60
    assert counted(conn, next_day) == 0
    assert counted(conn, late_call) == 45


def test_bhi_explain_shows_clock_times_and_the_entries_an_overlap_collided_with(drop: Drop, build, tmp_path):
    drop.enroll("P1")
    drop.enroll("P2")
    drop.month("P1", "2026-01", 40)
    therapy = drop.log("P1", "2026-01-20", 30, activity="psychotherapy", start="10:00", end="10:30")
    follow_up = drop.log("P1", "2026-01-20", 30, start="10:00", end="10:30")
    # the same 20 minutes logged for P2 and P1: the lower patient_id (P1) keeps them
    other = drop.log("P2", "2026-01-21", 20, start="09:00", end="09:20")
    mine = drop.log("P1", "2026-01-21", 20, start="09:00", end="09:20")
    conn = build(drop, every_model=True)  # read by `bhi explain`
    conn.close()
    text = explain(tmp_path / "w0.duckdb", "P1", "2026-01")
    assert (f"overlap: {follow_up} 2026-01-20 10:00-10:30 follow_up by CM1: 30 min overlaps non countable "
            f"activity, collided with {therapy} (psychotherapy by CM1 10:00-10:30)") in text
    assert counted_line(text, mine) is None  # P1 keeps the shared minutes: no overlap line
    text2 = explain(tmp_path / "w0.duckdb", "P2", "2026-01")
    # another patient's entry is named by its id only
    assert f"overlap: {other} 2026-01-21 09:00-09:20 follow_up by CM1: 20 min overlapping time same staff, " \
           f"collided with entry {mine} of another patient" in text2


def counted_line(text: str, entry_id: str) -> str | None:
    return next((line for line in text.splitlines() if line.strip().startswith(f"overlap: {entry_id} ")), None)


# --- item 6: the date of service is never after the discharge ---------------------------------------

@pytest.mark.parametrize("discharged_on, date_of_service", [("2026-01-20", "2026-01-20"), ("2026-01-31", "2026-01-31"),
                                                            ("2026-02-01", "2026-01-31")],
                         ids=["discharged-mid-month", "discharged-on-the-last-day", "discharged-next-month"])
def test_date_of_service_is_never_after_the_discharge(drop: Drop, build, discharged_on, date_of_service):
    drop.enroll("P1", discharged_on=discharged_on)
    drop.month("P1", "2026-01", 40)
    conn = build(drop, as_of="2026-03-05")
    assert conn.sql("select date_of_service::varchar from fct_claims").fetchall() == [(date_of_service,)]


def test_threshold_met_date_of_service_stays_before_the_discharge(drop: Drop, build, tmp_path):
    ref = reference_with(tmp_path, "payers.csv", lambda r: {
        **r, "date_of_service_policy": "threshold_met" if r["payer_id"] == "medicare" else r["date_of_service_policy"]})
    drop.enroll("P1", discharged_on="2026-01-20")
    drop.month("P1", "2026-01", 40)  # 20 min on 01-02 and 01-03: the 36-minute floor on 01-03
    conn = build(drop, as_of="2026-03-05", reference_dir=ref)
    assert conn.sql("select date_of_service::varchar from fct_claims").fetchall() == [("2026-01-03",)]


# --- item 9: the consultant's documented case review -------------------------------------------------

@pytest.mark.parametrize("payer", READINGS)
def test_the_consultants_case_review_entry_documents_the_review(drop: Drop, build, tmp_path, payer):
    drop.enroll("P1", payer=payer)
    drop.month("P1", "2026-01", 65, review=False)
    review = drop.log("P1", "2026-01-12", 10, staff="PC1", activity="case_review", start="14:00", end="14:10")
    conn = build(drop, every_model=True)  # read by `bhi explain`
    assert month(conn, "P1", "2026-01", "psych_review_ok") is True
    assert claims(conn, "P1") == [("2026-01", READINGS[payer][0], 1)]
    conn.close()
    text = explain(tmp_path / "w0.duckdb", "P1", "2026-01")
    assert (f"gate psychiatric review: pass (1 documented review(s) in the month: 1 consultant case-review "
            f"entry(ies): {review} on 2026-01-12)") in text
    assert "gate consent: pass (consent on 2026-01-01)" in text


@pytest.mark.parametrize("staff, activity", [("CM1", "case_review"), ("PC1", "follow_up")],
                         ids=["care-managers-case-review", "consultants-follow-up"])
def test_only_the_consultants_own_case_review_documents_the_review(drop: Drop, build, staff, activity):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 65, review=False)
    drop.log("P1", "2026-01-12", 10, staff=staff, activity=activity)
    conn = build(drop)
    assert month(conn, "P1", "2026-01", "blocked_reason") == "missing_psych_review"


def test_a_payer_can_refuse_the_case_review_entry_as_documentation(drop: Drop, build, tmp_path):
    ref = reference_with(tmp_path, "payers.csv", lambda r: {
        **r, "consultant_case_review_documents_review": "false" if r["payer_id"] == "medicare" else "true"})
    drop.enroll("P1")
    drop.month("P1", "2026-01", 65, review=False)
    drop.log("P1", "2026-01-12", 10, staff="PC1", activity="case_review")
    conn = build(drop, reference_dir=ref)
    assert month(conn, "P1", "2026-01", "blocked_reason") == "missing_psych_review"
    assert "not accepted as review by the payer" in month(conn, "P1", "2026-01", "psych_review_evidence")


@pytest.mark.parametrize("payer_from, april_payer", [("2026-04-01", "acme_commercial"), ("", "acme_commercial")],
                         ids=["with-payer-from", "without-payer-from"])
def test_a_re_delivered_enrollment_with_a_new_payer_does_not_reprice_earlier_months(
    drop: Drop, build, payer_from, april_payer
):
    drop.enroll("P1", payer="medicare", enrolled_on="2026-01-01")
    for m in ("2026-01", "2026-02", "2026-03", "2026-04"):
        drop.month("P1", m, 65)
    drop.write()
    # the same enrollment delivered again later with the new coverage (and the day it starts)
    again = {**drop.enrollments[0], "payer_id": "acme_commercial", "payer_from": payer_from}
    write_csv(drop.folder / "enrollments_2026-05-02.csv", [again])
    conn = build(drop, as_of="2026-05-05")
    payers = conn.sql(
        "select strftime(service_month, '%Y-%m'), payer_id, code from fct_claims order by 1"
    ).fetchall()
    if payer_from:
        # January-March keep the payer in force then; April is acme's (full time: 65 -> 99493)
        assert payers == [("2026-01", "medicare", "99492"), ("2026-02", "medicare", "99493"),
                          ("2026-03", "medicare", "99493"), ("2026-04", april_payer, "99493")]
    else:
        # no payer_from: a correction of the enrollment's payer from its start (documented)
        assert payers == [("2026-01", april_payer, "G2214"), ("2026-02", april_payer, "99493"),
                          ("2026-03", april_payer, "99493"), ("2026-04", april_payer, "99493")]


def test_an_incremental_night_follows_an_overlap_across_midnight(drop: Drop, tmp_path):
    from test_incremental import Nightly

    for patient in ("P1", "P2"):
        drop.enroll(patient, enrolled_on="2026-01-05", consent_on="2026-01-05")
        drop.month(patient, "2026-01", 40)
    early = drop.log("P2", "2026-02-11", 20, start="00:00", end="00:20")
    nightly = Nightly(drop, tmp_path)
    nightly.run("2026-03-10", expect="full", compare=False)
    # a late call of the same care manager for P1 from 23:30 the day before, over P2's entry: the
    # scope takes in the next day's entries of that person (equal to a full rebuild night by night)
    nightly.deliver("time_entries_2026-03-11.csv", [
        {"entry_id": "LATE", "patient_id": "P1", "staff_id": "CM1", "service_date": "2026-02-10", "minutes": 60,
         "activity": "follow_up", "start_time": "23:30", "end_time": "00:30"},
    ])
    assert nightly.run("2026-03-11", expect="incremental")["patients"] == 2
    import duckdb

    with duckdb.connect(str(nightly.out / "warehouse.duckdb"), read_only=True) as conn:
        assert counted(conn, early) == 0



# two rows that tie on the ordering value reach an aggregate in an order set by hashing and threads:
# with one thread, patient P1's enrollments come out cocm first and Q7's bhi first (both row orders
# of the extract are tried too)
SAME_DAY = pytest.mark.parametrize("patient, first", [(p, f) for p in ("P1", "Q7") for f in ("cocm", "bhi")])


@SAME_DAY
def test_a_patients_facility_on_two_same_day_enrollments_is_the_program_last_in_name_order(
    drop: Drop, build, patient, first
):
    """An entry belongs to the facility of its patient's latest enrollment; two enrollments on one day
    (cocm at F1, bhi at F2) give the program last in name order (cocm, the enrollment an entry naming
    no program matches), whatever the patient id or the extract's row order: F1's covered period is
    derived from the entries, F2 has none."""
    second = "bhi" if first == "cocm" else "cocm"
    for program in (first, second):
        drop.enroll(patient, program=program, facility="F1" if program == "cocm" else "F2", initiating_visit=None)
    drop.log(patient, "2026-02-03", 20)
    drop.log(patient, "2026-03-03", 20)
    conn = build(drop, "2026-06-15")
    assert conn.sql(
        "select facility_id, covered_from::varchar, covered_from_origin from int_covered_periods order by 1"
    ).fetchall() == [("F1", "2026-02-01", "derived from the data"), ("F2", "2026-06-01", "no entries yet (open month)")]


@SAME_DAY
def test_the_covered_period_of_an_entry_on_two_same_day_enrollments_is_the_program_last_in_name_order(
    drop: Drop, build, patient, first
):
    """The covered period an entry is checked against is that of the patient's latest enrollment's
    facility; on two enrollments of one day, the program last in name order (cocm at F1, covered from
    January; not bhi at F2, covered from April), whatever the patient id or the extract's row order."""
    drop.facilities += [{"facility_id": "F1", "facility_type": "physician_office", "covered_from": "2026-01-01"},
                        {"facility_id": "F2", "facility_type": "physician_office", "covered_from": "2026-04-01"}]
    second = "bhi" if first == "cocm" else "cocm"
    for program in (first, second):
        drop.enroll(patient, program=program, facility="F1" if program == "cocm" else "F2", initiating_visit=None)
    entry = drop.log(patient, "2026-02-03", 20, program="cocm")
    conn = build(drop, "2026-06-15")
    assert conn.sql(
        f"select exclusion_reason, counted_minutes from int_time_entries_classified where entry_id = '{entry}'"
    ).fetchall() == [(None, 20)]
