"""Which minutes count (billing-rules.md section 2), the CoCM gates (section 4) and episodes (section 3)."""

from __future__ import annotations

import shutil

import pytest

from conftest import Drop


def reasons(conn, patient: str) -> dict[str, int]:
    """minutes per status/reason for a patient."""
    rows = conn.sql(
        f"select coalesce(exclusion_reason, 'counted'), sum(minutes)::int from int_time_entries_classified "
        f"where patient_id = '{patient}' group by all"
    ).fetchall()
    return dict(rows)


def month(conn, patient: str, service_month: str, column: str):
    return conn.sql(
        f"select {column} from fct_patient_months where patient_id = '{patient}' "
        f"and service_month = date '{service_month}-01'"
    ).fetchall()[0][0]


def gaps(conn, patient: str) -> list[tuple]:
    return conn.sql(
        f"select strftime(service_month, '%Y-%m'), reason, minutes, dollars from fct_revenue_gap "
        f"where patient_id = '{patient}' order by all"
    ).fetchall()


def claims(conn, patient: str) -> list[tuple]:
    return conn.sql(
        f"select strftime(service_month, '%Y-%m'), code, units from fct_claims where patient_id = '{patient}' order by all"
    ).fetchall()


def test_time_before_consent_does_not_count(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2026-01-01", consent_on="2026-01-10")
    drop.log("P1", "2026-01-05", 20)  # before consent
    drop.log("P1", "2026-01-09", 5)  # the day before consent: still before
    drop.log("P1", "2026-01-10", 30)  # the consent day counts
    drop.review("P1", "2026-01-20")
    conn = build(drop)
    assert reasons(conn, "P1") == {"before_consent": 25, "counted": 30}
    assert claims(conn, "P1") == [("2026-01", "G2214", 1)]
    # 55 minutes would have billed 99492 instead of G2214
    assert gaps(conn, "P1") == [("2026-01", "time_before_consent", 25, round(160.32 - 60.79, 2))]  # 2026 rates


def test_missing_consent_blocks_the_month(drop: Drop, build):
    drop.enroll("P1", consent_on=None)
    drop.month("P1", "2026-01", 50)
    conn = build(drop)
    assert reasons(conn, "P1") == {"no_consent_on_file": 50}
    assert claims(conn, "P1") == []
    assert month(conn, "P1", "2026-01", "blocked_reason") == "missing_consent"
    assert gaps(conn, "P1") == [("2026-01", "missing_consent", 50, 160.32)]  # 2026 example rate


def test_consent_after_month_end_blocks_that_month_only(drop: Drop, build):
    drop.enroll("P1", consent_on="2026-02-03")
    drop.month("P1", "2026-01", 50)
    drop.month("P1", "2026-02", 40, review=True)  # logged from the 2nd: 20 min before consent
    conn = build(drop)
    assert month(conn, "P1", "2026-01", "blocked_reason") == "missing_consent"
    assert month(conn, "P1", "2026-02", "month_type") == "subsequent"  # January consumed the initial month
    assert claims(conn, "P1") == [("2026-02", "G2214", 1)]  # 20 countable minutes


def test_missing_psychiatric_review_blocks_cocm(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 60, review=False)
    drop.month("P1", "2026-02", 60, review=True)
    conn = build(drop)
    assert month(conn, "P1", "2026-01", "blocked_reason") == "missing_psych_review"
    assert claims(conn, "P1") == [("2026-02", "99493", 1)]
    assert gaps(conn, "P1") == [("2026-01", "missing_psych_review", 60, 160.32)]  # 2026 example rate


def test_psych_review_is_not_required_for_general_bhi(drop: Drop, build):
    drop.enroll("P1", program="bhi")
    drop.month("P1", "2026-01", 25, review=False)
    assert claims(build(drop), "P1") == [("2026-01", "99484", 1)]


@pytest.mark.parametrize(
    "activity, staff, reason",
    [
        ("psychotherapy", "TH1", "separately_billed_service"),
        ("crisis", "CM1", "separately_billed_service"),
        ("psychiatric_evaluation", "PC1", "separately_billed_service"),
        ("clerical", "CM1", "clerical_time"),
    ],
)
def test_separately_billed_and_clerical_time_never_counts(drop: Drop, build, activity, staff, reason):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 30)
    drop.log("P1", "2026-01-20", 45, staff=staff, activity=activity)
    conn = build(drop)
    assert reasons(conn, "P1") == {"counted": 30, reason: 45}
    assert claims(conn, "P1") == [("2026-01", "G2214", 1)]


@pytest.mark.parametrize("payer, counted", [("medicare", False), ("bcbs_mi", True)])
def test_consultant_minutes_count_only_where_the_payer_counts_them(drop: Drop, build, payer, counted):
    drop.enroll("P1", payer=payer)
    drop.month("P1", "2026-01", 30)
    drop.log("P1", "2026-01-21", 10, staff="PC1", activity="case_review")
    conn = build(drop)
    if counted:
        assert reasons(conn, "P1") == {"counted": 40}
        assert claims(conn, "P1") == [("2026-01", "99492", 1)]
    else:
        assert reasons(conn, "P1") == {"counted": 30, "consultant_time_not_counted_by_payer": 10}
        assert claims(conn, "P1") == [("2026-01", "G2214", 1)]


def test_clinical_staff_time_counts_for_bhi_but_not_cocm(drop: Drop, build):
    drop.enroll("P1")
    drop.enroll("P2", program="bhi")
    drop.month("P1", "2026-01", 40, staff="CS1")
    drop.month("P2", "2026-01", 20, staff="CS1", review=False)
    conn = build(drop)
    assert reasons(conn, "P1") == {"non_counting_role": 40}
    assert reasons(conn, "P2") == {"counted": 20}


def test_entries_outside_enrollment_or_after_as_of_are_excluded_with_the_reason(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2026-01-10", consent_on="2026-01-10", discharged_on="2026-05-31")
    drop.log("P1", "2026-01-05", 15)  # before enrolment
    drop.log("P1", "2026-06-02", 15)  # after discharge
    drop.log("P9", "2026-01-12", 15)  # patient never enrolled
    drop.enroll("P2")
    drop.log("P2", "2026-06-20", 15)  # after the as-of date
    drop.log("P2", "2026-01-20", 15, staff="NOBODY")  # unknown staff member
    conn = build(drop, as_of="2026-06-15")
    assert reasons(conn, "P1") == {"service_before_enrollment": 15, "no_active_enrollment": 15}
    assert reasons(conn, "P9") == {"patient_not_enrolled": 15}
    assert reasons(conn, "P2") == {"after_as_of_date": 15, "unknown_staff": 15}


def test_six_empty_months_end_an_episode(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    drop.month("P1", "2026-08", 40)  # Feb-Jul empty: six months -> new episode, initial again
    drop.enroll("P2")
    drop.month("P2", "2026-01", 40)
    drop.month("P2", "2026-07", 40)  # Feb-Jun empty: five months -> same episode
    conn = build(drop, as_of="2026-09-05")
    assert month(conn, "P1", "2026-08", "month_type") == "initial"
    assert month(conn, "P1", "2026-08", "episode_number") == 2
    assert claims(conn, "P1") == [("2026-01", "99492", 1), ("2026-08", "99492", 1)]
    assert month(conn, "P2", "2026-07", "month_type") == "subsequent"
    assert claims(conn, "P2") == [("2026-01", "99492", 1), ("2026-07", "99493", 1)]


def test_a_month_with_minutes_but_no_code_still_consumes_the_initial_month(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 10)  # nothing billable
    drop.month("P1", "2026-02", 40)
    conn = build(drop)
    assert month(conn, "P1", "2026-02", "month_type") == "subsequent"
    assert claims(conn, "P1") == [("2026-02", "99493", 1)]


def test_redelivered_file_never_double_counts(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    folder = drop.write()
    shutil.copy(folder / "time_entries.csv", folder / "time_entries_redelivered.csv")
    # the same bytes again: recorded in the ledger as a duplicate, never loaded twice
    conn = build(drop)
    assert reasons(conn, "P1") == {"counted": 40}
    assert claims(conn, "P1") == [("2026-01", "99492", 1)]
    assert conn.sql("select status from ingest_files where source_file = 'time_entries_redelivered.csv'").fetchall() == [
        ("duplicate",)
    ]
    # re-exported with one more column (other bytes, same entries): the later delivery wins, once
    data = (folder / "time_entries.csv").read_text().splitlines()
    (folder / "time_entries_redelivered.csv").write_text(
        "\n".join([data[0] + ",deleted", *(line + ",false" for line in data[1:])]) + "\n"
    )
    conn = build(drop)
    assert reasons(conn, "P1") == {"counted": 40, "superseded_by_later_delivery": 40}
    assert claims(conn, "P1") == [("2026-01", "99492", 1)]
    live = conn.sql("select distinct source_file from int_time_entries_classified where is_counted").fetchall()
    assert live == [("time_entries_redelivered.csv",)]


def test_every_minute_is_counted_excluded_or_quarantined(drop: Drop, build):
    drop.enroll("P1", consent_on="2026-01-03")
    drop.month("P1", "2026-01", 70)  # 20 min on the 2nd (before consent), 50 from the 3rd
    drop.log("P1", "2026-01-20", 30, activity="clerical")
    drop.log("P1", "2026-01-21", "0")  # quarantined: minutes must be > 0
    drop.log("P1", "2026-01-22", "12x")  # quarantined: not a number (no readable minutes)
    drop.log("P1", "2026-01-23", "7", activity="unknown_thing")  # quarantined: unknown activity
    conn = build(drop)
    rows = dict(conn.sql("select status, sum(minutes)::int from fct_minutes_reconciliation group by all").fetchall())
    assert rows == {"counted": 50, "excluded": 20 + 30, "quarantined": 7}
    assert conn.sql("select count(*) from quarantine where table_name = 'time_entries'").fetchall() == [(3,)]
    entries = conn.sql("select sum(entries)::int from fct_minutes_reconciliation").fetchall()[0][0]
    assert entries == len(drop.entries)


def test_enrolled_before_the_extracts_begin_is_never_billed_as_an_initial_month(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2025-09-01", consent_on="2025-09-01")  # history before the extract
    drop.month("P1", "2026-01", 40)
    drop.enroll("P2", enrolled_on="2026-01-01", consent_on="2026-01-01")  # enrolled within coverage
    drop.month("P2", "2026-01", 40)
    conn = build(drop)
    assert claims(conn, "P1") == [("2026-01", "99493", 1)]
    assert claims(conn, "P2") == [("2026-01", "99492", 1)]
    first = conn.sql("select min(service_month)::varchar from fct_patient_months").fetchall()
    assert first == [("2026-01-01",)]  # no empty months before the extract's coverage


def test_re_enrolment_in_the_same_month_never_bills_two_base_codes(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2026-01-01", consent_on="2026-01-01", discharged_on="2026-02-10")
    drop.enroll("P1", enrolled_on="2026-02-20", consent_on="2026-02-20")
    drop.month("P1", "2026-01", 40)
    drop.log("P1", "2026-02-05", 20)  # first stay
    drop.log("P1", "2026-02-21", 20)  # second stay
    drop.review("P1", "2026-02-25")
    conn = build(drop, as_of="2026-03-05")
    # February belongs to the new enrolment and bills once on all 40 minutes; the episode continues
    # (discharged during February, not before it began: billing-rules.md section 3, no second 99492)
    assert claims(conn, "P1") == [("2026-01", "99492", 1), ("2026-02", "99493", 1)]
    assert month(conn, "P1", "2026-02", "countable_minutes") == 40


def test_cocm_and_99484_never_in_the_same_month_the_higher_paying_bills(drop: Drop, build):
    drop.enroll("P1")
    drop.enroll("P1", program="bhi")
    drop.month("P1", "2026-01", 40, program="cocm")  # 99492 $160.32
    drop.month("P1", "2026-01", 25, program="bhi", review=False)  # 99484 $57.45
    conn = build(drop)
    assert claims(conn, "P1") == [("2026-01", "99492", 1)]
    blocked = conn.sql(
        "select program, blocked_reason from fct_patient_months where patient_id = 'P1' "
        "and service_month = date '2026-01-01' order by program"
    ).fetchall()
    assert blocked == [("bhi", "billed_under_other_program"), ("cocm", None)]


def test_missing_consent_and_review_is_one_reason_not_an_overstated_consent_gap(drop: Drop, build):
    drop.enroll("P1", consent_on=None)
    drop.month("P1", "2026-01", 40, review=False)
    assert gaps(build(drop), "P1") == [("2026-01", "missing_consent + missing_psych_review", 40, 160.32)]


def test_six_empty_months_inside_the_data_start_an_episode_even_for_early_enrolments(drop: Drop, build):
    drop.enroll("P0")
    drop.month("P0", "2025-01", 20)  # the extract starts in January 2025
    drop.enroll("P1", enrolled_on="2024-06-01", consent_on="2024-06-01", initiating_visit="2025-09-15")
    drop.month("P1", "2025-10", 40)  # nine empty months in the data before October
    drop.enroll("P2", enrolled_on="2024-06-01", consent_on="2024-06-01")
    drop.month("P2", "2025-03", 40)  # only two months of data before March: history unknown
    conn = build(drop, as_of="2025-11-10")
    assert claims(conn, "P1") == [("2025-10", "99492", 1)]
    assert claims(conn, "P2") == [("2025-03", "99493", 1)]
