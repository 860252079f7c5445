"""Dashboards: figure builders and the static site, on a tiny hand-written warehouse.

The warehouse is a temporary DuckDB *file* holding hand-written rows for the marts the pipeline
builds upstream of the dashboards (rpt_run_summary, fct_near_threshold, fct_revenue_gap,
fct_program_roi, fct_patient_months) and the few source tables the dashboard marts read, with the
column types of the real tables; the dashboard marts themselves (rpt_worklist_pace,
fct_outreach_*, fct_revenue_gap_*, fct_program_roi_*, fct_compliance_*, rpt_dashboard_headlines)
are then built from their SQL files, so every number a page shows is checked through the SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dashboards import figures, marts, pngs, site, theme
from dashboards import render as page_render
from pipelines.warehouse.models import MODELS, in_dependency_order, materialize

D = dt.date
EVIL = "<script>alert(1)</script>"
EVIL_PATIENT = f"PAT-EVIL{EVIL}"
PAGES = ("index.html", "worklist.html", "outreach.html", "revenue_gap.html", "payments.html", "roi.html",
         "outcomes.html", "compliance.html")
# Charts per page (the browser test waits for each to be drawn).
CHARTS = {"index.html": 1, "worklist.html": 1, "outreach.html": 2, "revenue_gap.html": 1,
          "roi.html": 1, "outcomes.html": 1, "payments.html": 1, "compliance.html": 3}
# fct_outcome_episodes is hand-built here (its SQL reads the billing engine's tables)
# the remittance marts too (theirs read the 835 tables): the page's totals are built from rpt_collection_rate
HAND_BUILT = {"fct_outcome_episodes", "fct_outcome_measures", "fct_remittance_denials", "fct_denial_worklist", "fct_remittance_aging",
              "fct_revenue_gap_post_submission", "fct_claim_scrub_findings", "fct_remittance_payments",
              "fct_remittance_provider_adjustments", "fct_remittance_unmatched"}
DASHBOARD_MARTS = set(site.SITE_MARTS) - {"rpt_run_summary"} - HAND_BUILT | {"fct_care_manager_capacity",
                                                                 "rpt_program_roi_break_even"}

# --------------------------------------------------------------------------- fixture builders

DDL = {
    "rpt_run_summary": """
        as_of date, open_month date, entries_ingested bigint, rows_quarantined bigint,
        minutes_ingested bigint, minutes_counted bigint, minutes_excluded bigint,
        claim_lines bigint, expected_revenue double, revenue_left_on_table double""",
    "fct_near_threshold": """
        facility_id varchar, patient_id varchar, payer_id varchar, program varchar,
        care_manager_id varchar, countable_minutes integer, current_codes varchar,
        current_amount double, next_code varchar, next_threshold_minutes integer,
        minutes_needed integer, days_left integer, dollars_gained double, blockers varchar,
        month_type varchar default 'subsequent', enrollment_id varchar default 'E',
        service_month date default '2026-10-01'""",
    "fct_revenue_gap": """
        facility_id varchar, patient_id varchar, payer_id varchar, program varchar,
        service_month date, reason varchar, minutes integer, dollars double""",
    "fct_program_roi": """
        facility_id varchar, service_month date, month_status varchar, expected_revenue double,
        claim_lines bigint, patients_billed bigint, patient_months_enrolled bigint,
        care_manager_cost double, other_cost double, total_cost double, net double,
        cumulative_net double, roi_pct double, is_incomplete boolean default false,
        incomplete_reasons varchar default null, revenue_left_on_table double default 0,
        cost_share_of_month double default 1""",
    "fct_patient_months": """
        patient_id varchar, program varchar, service_month date, month_status varchar,
        blocked_reason varchar, logged_minutes integer, countable_minutes integer,
        consentable_minutes integer, current_amount double, if_consented_amount double""",
    "int_time_entries_classified": """
        staff_id varchar, role varchar, service_date date, documented_at date, minutes integer,
        version_rank bigint default 1, exclusion_reason varchar default null, patient_id varchar default null,
        program varchar default 'cocm', service_month date default '2026-10-01', enrollment_id varchar default 'E',
        counted_minutes integer default null, overlap_reason varchar default null""",
    "stg_patients": "patient_id varchar, last_name varchar, first_name varchar, birth_date date",
    "stg_payers": "payer_id varchar, name varchar, effective_from date",
    "fct_claim_payments": """
        service_month date, payer_id varchar, expected_amount double, paid decimal(14,2),
        patient_responsibility decimal(14,2), contract_variance decimal(14,2), payment_status varchar""",
    "quarantine": """
        table_name varchar, source_file varchar, source_row bigint, columns varchar,
        reason varchar, record varchar""",
    "stg_staff": """
        staff_id varchar, role varchar, facility_id varchar, name varchar, annual_cost double,
        fte double""",
    "rpt_collection_rate": """
        payer_id varchar, service_month date, claim_lines bigint, answered_lines bigint, denied_lines bigint,
        charge decimal(14,2), expected_amount decimal(14,2), paid decimal(14,2), patient_responsibility decimal(14,2),
        denied_expected_amount decimal(14,2), underpaid_amount decimal(14,2), unanswered_expected_amount decimal(14,2),
        answered_collected decimal(14,2), answered_expected_amount decimal(14,2), collection_rate double""",
    "fct_remittance_denials": """
        payer_id varchar, service_month date, group_code varchar, group_description varchar, reason_code varchar,
        reason_description varchar, kind varchar, claim_lines bigint, amount decimal(14,2), rarc_codes varchar,
        rarc_descriptions varchar""",
    "fct_denial_worklist": """
        claim_line_id varchar, claim_id varchar, patient_id varchar, payer_id varchar, service_month date,
        code varchar, expected_amount double, rarc_codes varchar, carc_codes varchar, reasons varchar,
        actions varchar, payer_claim_control_number varchar default null, rarc_descriptions varchar default null,
        correctable boolean default true, days_since_denial integer default 30, patient_name varchar default null""",
    "fct_remittance_payments": """
        payer_identifier varchar, trace_number varchar, payer_id varchar, payer_name varchar, payment_date date,
        payment_amount decimal(14,2), claims bigint, claims_paid decimal(14,2), provider_adjustment_amount decimal(14,2),
        difference decimal(14,2), unmatched_paid decimal(14,2), balanced boolean""",
    "fct_remittance_provider_adjustments": """
        payer_identifier varchar, trace_number varchar, adjustment_index integer, payer_id varchar, payer_name varchar,
        payment_date date, provider_id varchar, fiscal_period_date date, reason_code varchar,
        reason_description varchar, reference_id varchar, amount decimal(12,2)""",
    "fct_remittance_unmatched": """
        payer_identifier varchar, trace_number varchar, claim_index integer, line_index integer, claim_id varchar,
        payer_id varchar, payer_claim_control_number varchar, code varchar, service_date date, charge decimal(12,2),
        paid decimal(12,2), unmatched boolean, unbalanced boolean, reason varchar""",
    "fct_remittance_aging": """
        claim_id varchar, patient_id varchar, payer_id varchar, service_month date, codes varchar,
        charge decimal(14,2), expected_amount decimal(14,2), payment_status varchar, first_submitted_on date,
        days_without_answer integer, past_aging_limit boolean""",
    "fct_revenue_gap_post_submission": """
        payer_id varchar, service_month date, reason varchar, claim_lines bigint, amount decimal(14,2)""",
    # the claim scrub (its SQL reads fct_claims and the NCCI reference tables): the compliance page's last table
    "fct_claim_scrub_findings": """
        claim_line_id varchar, edit varchar, other_code varchar, patient_id varchar, payer_id varchar,
        program varchar, service_month date, date_of_service date, billing_provider_id varchar, code varchar,
        units integer, modifiers varchar, detail varchar""",
    "rpt_outcomes_monthly": """
        service_month date, program varchar, facility_id varchar, care_manager_id varchar,
        active_patients bigint, without_baseline bigint, follow_up_in_month bigint,
        follow_up_last_4_weeks bigint, early_judged bigint, early_responses bigint,
        baseline_before_data bigint default 0""",
    "fct_outcome_episodes": """
        patient_id varchar, program varchar, episode_number integer, facility_id varchar,
        care_manager_id varchar, instrument varchar, baseline_date date, baseline_score double,
        latest_date date, latest_score double, latest_reduction double, last_review_date date,
        has_baseline boolean, days_in_program integer, not_improving_without_review boolean,
        discharge_reason varchar, early_response varchar, started_before_data boolean default false""",
    "fct_outcome_measures": """
        patient_id varchar, measure varchar, facility_id varchar, care_manager_id varchar, index_month date,
        window_closed boolean, result varchar, in_denominator boolean, met boolean""",
    "ref_outcome_measures": """
        measure varchar, display_order integer, name varchar, level varchar, published boolean,
        definition varchar, source varchar, version varchar""",
    "ref_settings": "setting varchar, value varchar, description varchar",
    # run health: this load's rejected files, live entries and the other dated sources
    "ingest_errors": "source_file varchar, path varchar, table_name varchar, error varchar",
    "stg_time_entries": "staff_id varchar, service_date date, version_rank bigint default 1",
    "stg_encounters": "provider_id varchar, encounter_date date, patient_id varchar",
    "stg_psych_reviews": "consultant_id varchar, review_date date, patient_id varchar",
    "stg_assessments": "patient_id varchar, assessment_date date",
    "stg_enrollments": "patient_id varchar, facility_id varchar",
    "field_warnings": """
        table_name varchar, source_file varchar, source_row bigint, column_name varchar, reason varchar,
        delivery_seq bigint""",
    "fct_unpriced_claim_lines": "claim_line_id varchar, payer_id varchar, code varchar, service_month date, units integer, reason varchar",
    "run_parameters": "as_of date",
}

SUMMARY = [(D(2026, 10, 20), D(2026, 10, 1), 1234, 7, 56789, 50000, 6000, 321, 45678.9, 9876.5)]

NEAR = [
    # facility, patient, payer, program, cm, minutes, current, amount, next, next_at,
    # needed, days_left, gained, blockers
    ("FAC-A", "PAT-0001", "MCR", "cocm", "CM-1", 62, "", 0.0, "99492", 70, 8, 11, 160.0, ""),
    ("FAC-A", EVIL_PATIENT, "MCR", "cocm", f"CM-{EVIL}", 40, "99493", 130.0, "99494", 60, 20,
     11, 65.0, "missing consent"),
    ("FAC-A", "PAT-0003", "COM", "bhi", None, 12, "", 0.0, "99484", 20, 8, 11, 45.5,
     "missing consent; no psychiatric review yet"),
    ("FAC-B", "PAT-0004", "MCD", "cocm", "CM-2", 95, "99492 + 99494 x1", 230.0, None, None,
     None, 11, None, ""),
    ("FAC-B", "PAT-0005", "MCD", "cocm", "CM-2", 50, "99493", 140.0, "99494", 60, 10, 11, 66.0,
     ""),
]

GAP = [
    ("FAC-A", "PAT-0001", "MCR", "cocm", D(2026, 8, 1), "near_miss", 65, 150.0),
    ("FAC-A", "PAT-0001", "MCR", "cocm", D(2026, 8, 1), "missing_psych_review", 70, 80.0),
    ("FAC-A", EVIL_PATIENT, "MCR", "cocm", D(2026, 8, 1), "missing_consent", 30, 120.25),
    ("FAC-B", "PAT-0004", "MCD", "bhi", D(2026, 9, 1), "time_before_consent", 15, 40.0),
    ("FAC-B", "PAT-0005", "MCD", "cocm", D(2026, 9, 1), "near_miss", 55, 150.0),
    ("FAC-B", "PAT-0005", "MCD", "cocm", D(2026, 9, 1), "over_add_on_cap", 45, 60.0),
]

ROI = [
    # facility, month, status, revenue, lines, billed, enrolled, cm cost, other, total,
    # net, cum net, roi%
    ("FAC-A", D(2026, 8, 1), "closed", 5000.0, 40, 30, 35, 4000.0, 500.0, 4500.0, 500.0,
     500.0, 11.1),
    ("FAC-A", D(2026, 9, 1), "closed", 5200.0, 42, 31, 36, 4000.0, 500.0, 4500.0, 700.0,
     1200.0, 15.6, True, "rejected file time_entries_2026-09.csv"),
    ("FAC-A", D(2026, 10, 1), "open", 2000.0, 15, 12, 36, 4000.0, 500.0, 4500.0, -2500.0,
     -1300.0, -55.6),
    ("FAC-B", D(2026, 9, 1), "closed", 3000.0, 25, 20, 24, 3500.0, 300.0, 3800.0, -800.0,
     -800.0, -21.1, True, "rejected file time_entries_2026-09.csv"),
    ("FAC-B", D(2026, 10, 1), "open", 1000.0, 8, 6, 24, 3500.0, 300.0, 3800.0, -2800.0,
     -3600.0, None),
]

PATIENT_MONTHS = [
    # patient, program, month, status, blocked_reason, logged, countable, consentable, amount,
    # if consented
    ("PAT-0001", "cocm", D(2026, 8, 1), "closed", "missing_psych_review", 70, 70, 70, 80.0, 80.0),
    ("PAT-0002", "cocm", D(2026, 8, 1), "closed", "missing_consent", 30, 0, 30, 0.0, 120.25),
    ("PAT-0006", "bhi", D(2026, 9, 1), "closed", "missing_consent_and_psych_review", 25, 0, 25,
     0.0, 53.05),
    ("PAT-0007", "cocm", D(2026, 9, 1), "closed", None, 60, 60, 60, 133.59, 133.59),
    ("PAT-0003", "bhi", D(2026, 10, 1), "open", "missing_consent", 12, 0, 12, 0.0, 0.0),
]

ENTRIES = [
    # staff, role, service date, documented at, minutes
    ("CM-1", "care_manager", D(2026, 9, 28), D(2026, 10, 5), 20),  # 7 days: on time
    ("CM-1", "care_manager", D(2026, 9, 29), D(2026, 10, 7), 15),  # 8 days: late
    ("CM-1", "care_manager", D(2026, 10, 6), D(2026, 10, 6), 30),
    ("CM-2", "care_manager", D(2026, 10, 7), D(2026, 10, 19), 25),  # 12 days: late
    ("PC-1", "psychiatric_consultant", D(2026, 10, 8), None, 10),  # undated
    # the open month of the patient blocked by consent: 106 minutes logged, none counted
    ("CM-1", "care_manager", D(2026, 10, 3), D(2026, 10, 3), 54, 1, "no_consent_on_file", EVIL_PATIENT, "cocm",
     D(2026, 10, 1), "E", 0),
    ("CM-1", "care_manager", D(2026, 10, 4), D(2026, 10, 4), 52, 1, "before_consent", EVIL_PATIENT, "cocm",
     D(2026, 10, 1), "E", 0),
]
# names: two patients share one (the pages add the date of birth); a payer without a name shows its id
PATIENTS = [
    ("PAT-0001", "DOE", "JANE", D(1960, 1, 24)),
    ("PAT-0005", "DOE", "JANE", D(1971, 3, 2)),
    ("PAT-0003", "ROE", "RICHARD", D(1985, 5, 5)),
    (EVIL_PATIENT, "EVIL<B>", "EVE", D(1990, 1, 1)),
    ("PAT-0004", "POE", "ED", D(1950, 2, 2)),
    ("PAT-STUCK", "STUCK", "SAM", D(1970, 7, 7)),
]
PAYERS = [("MCR", "Medicare Part B", D(2017, 1, 1)), ("MCD", "Old Medicaid name", D(2017, 1, 1)),
          ("MCD", "State Medicaid", D(2025, 1, 1)), ("medicare", "Medicare Part B", D(2017, 1, 1))]
CLAIM_PAYMENTS = [
    (D(2026, 8, 1), "medicare", 820.0, 640, 160, -20, "underpaid"),
    (D(2026, 8, 1), "medicare", 100.0, 0, 0, 0, "denied"),
    (D(2026, 8, 1), "medicare", 80.0, 0, 0, 0, "no answer"),
    (D(2026, 9, 1), "acme", 500.0, 400, 100, 0, "paid"),
]

QUARANTINE = [
    ("time_entries", "te.csv", 5, "minutes", "minutes: cannot read 'abc' as a whole number", "{}"),
    ("time_entries", "te.csv", 9, "minutes", "minutes: cannot read 'abc' as a whole number", "{}"),
    ("enrollments", "en.csv", 2, "payer_id", "payer_id: unknown payer", "{}"),
]

STAFF = [
    ("CM-1", "care_manager", "FAC-A", "Care Manager 1", 72000.0, 1.0),
    ("CM-2", "care_manager", "FAC-B", "Care Manager 2", 72000.0, 0.5),
    ("PC-1", "psychiatric_consultant", "FAC-A", "Consultant", 280000.0, 0.1),
]

# Outcomes: CM-1 in September (6 of 10 followed up, 2 of 4 responded at 10-14 weeks, 1 of 2 remitted)
# and October; one episode of PAT-STUCK flagged "not improving, no review since week 10"
OUTCOMES_MONTHLY = [
    (D(2026, 9, 1), "cocm", "FAC-A", "CM-1", 10, 1, 5, 6, 4, 2),
    (D(2026, 10, 1), "cocm", "FAC-A", "CM-1", 12, 0, 3, 9, 0, 0),
]
OUTCOME_EPISODES = [
    ("PAT-STUCK", "cocm", 1, "FAC-A", "CM-1", "phq9", D(2026, 6, 2), 20.0, D(2026, 9, 1), 18.0, 0.1, None,
     True, 140, True),
    ("PAT-FINE", "cocm", 1, "FAC-A", "CM-1", "phq9", D(2026, 6, 2), 20.0, D(2026, 9, 1), 8.0, 0.6,
     D(2026, 8, 1), True, 140, False),
    ("PAT-NOBASE", "cocm", 1, "FAC-A", "CM-1", None, None, None, None, None, None, None, False, 30, False),
    ("PAT-DONE", "cocm", 1, "FAC-A", "CM-1", "phq9", D(2026, 3, 2), 20.0, D(2026, 9, 1), 4.0, 0.8,
     D(2026, 8, 1), True, 190, False, "goals_met", "response"),
]
# the published measures per patient: DRR-E remission 1 of 2 (one met, one judged in an open window,
# one pending, one without an index), CMS159 all pending; a GAD-7 analogue
OUTCOME_MEASURES = [
    ("PAT-DONE", "drre_remission", "FAC-A", "CM-1", D(2026, 3, 1), True, "met", True, True),
    ("PAT-FINE", "drre_remission", "FAC-A", "CM-1", D(2026, 6, 1), False, "not_met", True, False),
    ("PAT-STUCK", "drre_remission", "FAC-A", "CM-1", D(2026, 6, 1), False, "pending", False, False),
    ("PAT-NOBASE", "drre_remission", "FAC-A", "CM-1", None, None, "not_in_denominator", False, False),
    ("PAT-DONE", "cms159_remission_12m", "FAC-A", "CM-1", D(2026, 3, 1), False, "pending", False, False),
]
MEASURES = [
    ("cms159_remission_12m", 1, "Depression remission at 12 months", "patient", True,
     "index PHQ-9 above 9; PHQ-9 below 5 at 12 months +/- 60 days", "CMS159v14", "CMS159v14"),
    ("drre_remission", 2, "Depression remission (4-8 months)", "patient", True,
     "index PHQ-9 above 9; PHQ-9 below 5 120-240 days after", "HEDIS DRR-E", "HEDIS DRR-E"),
    ("gad7_remission_4_8m", 3, "Anxiety remission (4-8 months)", "patient", False,
     "index GAD-7 above 9; GAD-7 below 5 120-240 days after", "analogue of DRR-E", "project"),
]

SETTINGS = [
    ("care_manager_hours_per_day", "8", ""),
    ("care_manager_cocm_share", "0.5", ""),
    ("late_documentation_days", "7", ""),
    ("stale_extract_days", "3", ""),
    ("incomplete_month_gap_business_days", "5", ""),
    ("incomplete_month_volume_share", "0.5", ""),
    ("incomplete_month_daily_flow_share", "0.8", ""),
]

# A rejected September time-entries file and entries that stop on 2026-10-05 (15 days before the
# as-of date 2026-10-20: a stale extract); every page's run-health banner must say both.
REJECTED = [("time_entries_2026-09.csv", "/drop/time_entries_2026-09.csv", "time_entries",
             "missing column minutes")]
LIVE_ENTRIES = [("CM-1", D(2026, 8, d)) for d in range(3, 29)] + [("CM-2", D(2026, 10, 5))]

ROWS = {
    "fct_claim_scrub_findings": [
        ("P-1-202609-cocm-99494", "ncci_mue", "", "P-1", "bcbs_mi", "cocm", D(2026, 9, 1), D(2026, 9, 30), "BP1",
         "99494", 3, "", "NCCI MUE 99494: 3 unit(s) on the date of service, more than the MUE value 2")],
    "ingest_errors": REJECTED,
    "stg_time_entries": LIVE_ENTRIES,
    "rpt_run_summary": SUMMARY,
    "fct_near_threshold": NEAR,
    "fct_revenue_gap": GAP,
    "fct_program_roi": ROI,
    "fct_patient_months": PATIENT_MONTHS,
    "int_time_entries_classified": ENTRIES,
    "stg_patients": PATIENTS,
    "stg_payers": PAYERS,
    "fct_claim_payments": CLAIM_PAYMENTS,
    "quarantine": QUARANTINE,
    "stg_staff": STAFF,
    "field_warnings": [("time_entries", "time_entries_2026-08.csv", 7, "documented_at",
                        "documented_at: cannot read the value as a date-time", 3)],
    "rpt_outcomes_monthly": OUTCOMES_MONTHLY,
    "rpt_collection_rate": [
        # answered_collected is what the payer paid on answered lines (patient responsibility is not collected)
        ("medicare", D(2026, 8, 1), 10, 9, 1, 1500, 1000, 640, 160, 100, 20, 80, 640, 900, 0.7111),
        ("acme", D(2026, 9, 1), 5, 5, 0, 700, 500, 400, 100, 0, 0, 0, 400, 500, 0.8),
    ],
    "fct_remittance_denials": [
        ("medicare", D(2026, 8, 1), "CO", "Contractual obligation", "50", "Not medically necessary", "denial", 1,
         100, "N362", "Missing documentation"),
    ],
    "fct_denial_worklist": [
        ("L1", "C1", "PAT-DENIED", "medicare", D(2026, 8, 1), "99493", 100.0, "N362", "CO-50",
         "Not medically necessary", "Add documentation and resend"),
    ],
    "fct_remittance_payments": [  # $90 paid where claims 100 - PLB 20 = 80: $10 off
        ("1MCR01", "TR1", "medicare", "MEDICARE PART B", D(2026, 9, 20), 90, 2, 100, 20, 10, 12.34, False),
    ],
    "fct_remittance_provider_adjustments": [
        ("1MCR01", "TR1", 1, "medicare", "MEDICARE PART B", D(2026, 9, 20), "1234567893", D(2026, 12, 31), "WO",
         "Overpayment recovery", "REF-WO-1", 20),
    ],
    "fct_remittance_unmatched": [
        ("1MCR01", "TR1", 1, 1, "OTHERCLAIM", "medicare", "ICN-OTHER", "99484", D(2026, 8, 31), 80, 12.34, True, False,
         "pays no claim line we sent"),
    ],
    "fct_remittance_aging": [
        ("C2", "PAT-WAITING", "medicare", D(2026, 8, 1), "99484", 80, 57.45, "no answer", D(2026, 9, 2), 48, True),
    ],
    "fct_revenue_gap_post_submission": [("medicare", D(2026, 8, 1), "denied", 1, 100)],
    "fct_outcome_episodes": OUTCOME_EPISODES,
    "fct_outcome_measures": OUTCOME_MEASURES,
}
# Present even in an "empty" warehouse: the run's parameters, the settings and the measure definitions.
ALWAYS = {"run_parameters": [(D(2026, 10, 20),)], "ref_settings": SETTINGS, "ref_outcome_measures": MEASURES}


def _create(conn: duckdb.DuckDBPyConnection, rows: dict[str, list[tuple]]) -> None:
    for table, columns in DDL.items():
        conn.execute(f"create or replace table {table} ({columns})")
        data = rows.get(table, ALWAYS.get(table, []))
        columns_in_order = [c[0] for c in conn.sql(f"describe {table}").fetchall()]
        for width in sorted({len(r) for r in data}):  # rows may leave trailing defaults out
            names = columns_in_order[:width]
            marks = ", ".join("?" * width)
            conn.executemany(f"insert into {table} ({', '.join(names)}) values ({marks})",
                             [r for r in data if len(r) == width])


def build_dashboard_marts(conn: duckdb.DuckDBPyConnection) -> None:
    """Build the dashboard marts from their SQL files over the tables already in `conn`."""
    for model in in_dependency_order(MODELS):
        if model.name in DASHBOARD_MARTS:
            materialize(conn, model)


def build_warehouse(path: Path, rows: dict[str, list[tuple]] | None = None, *, setup=None) -> Path:
    """Create the upstream tables (exact types), insert `rows`, run `setup(conn)` if given, then
    build the dashboard marts through their SQL."""
    rows = ROWS if rows is None else rows
    conn = duckdb.connect(str(path))
    try:
        _create(conn, rows)
        if setup is not None:
            setup(conn)
        build_dashboard_marts(conn)
    finally:
        conn.close()
    return path


def render(db_path: Path, out_dir: Path, **kwargs) -> Path:
    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        return site.render_site(conn, out_dir, **kwargs)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("wh") / "w.duckdb")


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("wh0") / "w.duckdb", {})


def read_mart(db_path: Path, table: str) -> pl.DataFrame:
    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        return conn.sql(f"select * from {table}").pl()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def built_site(warehouse: Path, tmp_path_factory) -> Path:
    index = render(warehouse, tmp_path_factory.mktemp("dash") / "site")
    return index.parent


def page(site_dir: Path, name: str) -> str:
    return (site_dir / name).read_text(encoding="utf-8")


def tbody_rows(html_text: str, table_id: str) -> list[str]:
    m = re.search(rf'<table id="{table_id}"[^>]*>.*?<tbody>(.*?)</tbody>', html_text, re.S)
    assert m, f"table {table_id} not found"
    return re.findall(r"<tr[ >].*?</tr>", m.group(1), re.S)


# --------------------------------------------------------------------------- the site


def test_render_site_writes_pages_and_one_plotly_js(built_site: Path):
    assert (built_site / "index.html").is_file()
    for name in (*PAGES, "plotly.min.js"):
        assert (built_site / name).stat().st_size > 0, name
    assert sorted(p.name for p in built_site.iterdir()) == sorted((*PAGES, "plotly.min.js"))
    assert "plotly" in (built_site / "plotly.min.js").read_text(encoding="utf-8")[:2000].lower()


@pytest.mark.parametrize("name", PAGES)
def test_pages_load_plotly_locally_and_nothing_remote(built_site: Path, name: str):
    text = page(built_site, name)
    assert '<script src="plotly.min.js"></script>' in text
    assert "cdn" not in text.lower()
    srcs = re.findall(r"<script[^>]*\bsrc\s*=\s*[\"']?([^\"' >]+)", text, re.I)
    assert srcs == ["plotly.min.js"]
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//",
                         text, re.I)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_links_every_page(built_site: Path, name: str):
    text = page(built_site, name)
    for other in PAGES:
        assert f'href="{other}"' in text, (name, other)


def test_index_shows_headline_numbers_and_links(built_site: Path):
    text = page(built_site, "index.html")
    for expected in ("2026-10-20", "2026-10", "1,234", "321", "$45,679", "$9,877"):
        assert expected in text
    links = re.search(r'<div class="links">(.*?)</div>\s*<footer>', text, re.S).group(1)
    for link in PAGES[1:]:
        assert f'href="{link}"' in links
    # one headline number per page, all from rpt_dashboard_headlines
    assert "$337" in links  # worklist: 160 + 65 + 45.5 + 66 = 336.5 still reachable
    assert "$226" in links  # outreach: 160 + 66 in plan (both fit)
    assert "$9,877" in links  # revenue gap
    # ROI: net over the closed months with complete data (August 500; September is incomplete)
    assert "$500" in links
    assert "3 blocked months" in links  # compliance: closed months blocked by a gate
    assert "2 entries documented late" in links
    assert "3 rows quarantined" in links


def test_patient_id_is_escaped_on_every_page(built_site: Path):
    worklist = page(built_site, "worklist.html")
    assert "EVIL&lt;B&gt;, EVE" in worklist  # the name, escaped
    assert 'data-cm="CM-&lt;script&gt;alert(1)&lt;/script&gt;"' in worklist
    for name in PAGES:
        assert EVIL not in page(built_site, name) and "EVIL<B>" not in page(built_site, name), name
    assert "EVIL&lt;B&gt;, EVE" in page(built_site, "revenue_gap.html")


@pytest.mark.parametrize("name", ["roi.html", "compliance.html", "index.html", "outcomes.html"])
def test_leadership_pages_have_no_patient_identifiers(built_site: Path, name: str):
    text = page(built_site, name)
    patient_ids = ({r[1] for r in NEAR} | {r[1] for r in GAP} | {r[0] for r in PATIENT_MONTHS}
                   | {r[0] for r in OUTCOME_EPISODES})
    for pid in patient_ids:
        assert pid not in text
        assert pid.split("<")[0] not in text  # also not the escaped form
    assert "PAT-" not in text


def test_worklist_lists_every_patient_by_state_then_dollars_with_names(built_site: Path):
    text = page(built_site, "worklist.html")
    assert 'id="filter"' in text and "table.filterable" in text
    rows = tbody_rows(text, "worklist")
    assert len(rows) == len(NEAR)  # every enrolled patient-program, none folded away
    assert "worklist-folded" not in text
    # blocked first (most dollars first: 65 evil, 45.5), then on pace (160, 66), then the highest code
    names = ["EVIL&lt;B&gt;, EVE", "ROE, RICHARD", "DOE, JANE (born 1960-01-24)", "DOE, JANE (born 1971-03-02)",
             "POE, ED"]
    assert [next(n for n in names if n in r) for r in rows] == names
    assert "blocked by consent" in rows[0] and "blocked by consent, psychiatric review" in rows[1]
    # the blocked patient's logged minutes and why they do not count
    assert "106 logged, 106 excluded: 54 no consent on file; 52 before consent" in rows[0]
    assert "at the highest code" in rows[4]
    assert "Care Manager 1 (CM-1)" in rows[2]  # names from the staff extract
    assert "Medicare Part B" in rows[2] and "State Medicaid" in rows[3]  # payers.csv names, latest
    assert ">COM<" in rows[1]  # a payer without a name shows its id
    assert "All 5 patient-programs enrolled this month" in text
    assert "../near_threshold.csv" in text
    assert "Unassigned" in text  # null care manager
    # as of Oct 20: 20 of 31 days elapsed; 62 min -> 96 projected >= 70: on pace
    assert "on pace (96 of 70)" in rows[2]
    assert "on pace (78 of 60)" in rows[3]
    assert "behind pace (19 of 20)" in rows[1]
    cards = re.search(r'<div class="card-grid">(.*?)</div>\s*<div class="figure">', text, re.S).group(1)
    assert "$337" in cards  # 160 + 65 + 45.5 + 66 = 336.5, half up
    assert "Behind pace" in cards


def near_rows(n: int) -> list[tuple]:
    return [
        ("FAC-A", f"PAT-{i:06d}", "MCR", "cocm", f"CM-{i % 7}", 30, "", 0.0, "99492", 70,
         40, 11, float(i), "")
        for i in range(1, n + 1)
    ]


def test_worklist_caps_at_500_rows(tmp_path: Path):
    db = build_warehouse(tmp_path / "w.duckdb", {**ROWS, "fct_near_threshold": near_rows(600)})
    render(db, tmp_path / "site")
    text = page(tmp_path / "site", "worklist.html")
    rows = tbody_rows(text, "worklist")
    assert len(rows) == 500
    assert "The first 500 of 600 patient-programs" in text
    assert 'href="../near_threshold.csv"' in text
    assert "PAT-000600" in rows[0]  # most dollars first
    assert "PAT-000101" in rows[-1]
    assert "PAT-000100<" not in text  # below the cut


def test_100000_patients_and_3000_care_managers_do_not_make_huge_pages(tmp_path: Path):
    def many(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute(
            """
            insert into fct_near_threshold (facility_id, patient_id, payer_id, program,
                care_manager_id, countable_minutes, current_codes, current_amount, next_code,
                next_threshold_minutes, minutes_needed, days_left, dollars_gained, blockers,
                enrollment_id)
            select 'FAC-' || (i % 5), 'PAT-' || lpad(i::varchar, 6, '0'), 'MCR', 'cocm',
                'CM-' || (i % 3000), 10 + i % 50, '', 0.0, '99493', 60, 50 - i % 50, 11,
                round(57 + (i % 97), 2), case when i % 9 = 0 then 'missing consent' else '' end,
                'E' || i
            from range(100000) as t(i)
            """
        )
        conn.execute(
            """
            insert into stg_staff select 'CM-' || i, 'care_manager', 'FAC-' || (i % 5), '', 70000, 1
            from range(3000) as t(i)
            """
        )

    db = build_warehouse(tmp_path / "w.duckdb", {**ROWS, "fct_near_threshold": []}, setup=many)
    render(db, tmp_path / "site")
    worklist = page(tmp_path / "site", "worklist.html")
    assert "The first 500 of 100,000 patient-programs" in worklist
    assert len(tbody_rows(worklist, "worklist")) == 500
    for name in PAGES:
        size = (tmp_path / "site" / name).stat().st_size
        assert size < 2_500_000, (name, size)
    outreach = page(tmp_path / "site", "outreach.html")
    assert "Showing the first" in outreach and "fct_outreach_plan" in outreach
    # thousands of care managers: the top 100 in the table, 20 plans, the rest in outreach_plan.csv
    assert re.search(r"Showing the 100 care managers with the most dollars in the plan, of 3,00\d\.", outreach)
    assert len(tbody_rows(outreach, "outreach-summary")) == 100
    assert len(re.findall(r'<table[^>]* id="plan-\d+"', outreach)) == 20 and "../outreach_plan.csv" in outreach
    assert re.search(r"\(top 30 of 3,00\d\)", page(tmp_path / "site", "worklist.html"))


def test_every_page_is_the_same_whatever_the_row_order_of_the_tables_it_reads(tmp_path: Path):
    # ties in a page's sort (two payers with the same post-submission gap in one month; one patient's
    # two episodes with the same care manager and baseline date; two enrollments of one patient and
    # program in the open month; one patient-month's gap under two payers) must not leave the order
    # to the rows
    rows = {
        **ROWS,
        "fct_near_threshold": [*NEAR,
                               ("FAC-A", "PAT-TWIN", "MCR", "cocm", "CM-1", 30, "", 0.0, "99492", 70, 40, 11, 55.0, "",
                                "subsequent", "E-TWIN-1"),
                               ("FAC-A", "PAT-TWIN", "MCR", "cocm", "CM-1", 30, "", 0.0, "99492", 70, 40, 11, 55.0,
                                "missing consent", "subsequent", "E-TWIN-2")],
        "fct_revenue_gap": [*GAP,
                            ("FAC-A", "PAT-TWIN", "MCR", "cocm", D(2026, 8, 1), "near_miss", 10, 50.0),
                            ("FAC-A", "PAT-TWIN", "ACME", "cocm", D(2026, 8, 1), "missing_consent", 10, 50.0)],
        "fct_revenue_gap_post_submission": [("medicare", D(2026, 8, 1), "denied", 1, 100),
                                            ("acme", D(2026, 8, 1), "denied", 1, 100),
                                            ("acme", D(2026, 8, 1), "no_answer", 1, 100)],
        "fct_outcome_episodes": [*OUTCOME_EPISODES,
                                 ("PAT-STUCK", "bhi", 1, "FAC-A", "CM-1", "gad7", D(2026, 6, 2), 15.0, D(2026, 9, 1),
                                  14.0, 0.07, None, True, 140, True)],
    }
    pages = []
    for name, order in (("as-built", rows), ("reversed", {t: r[::-1] for t, r in rows.items()})):
        render(build_warehouse(tmp_path / f"{name}.duckdb", order), tmp_path / name)
        pages.append({page_name: page(tmp_path / name, page_name) for page_name in PAGES})
    assert pages[0] == pages[1]
    assert len(tbody_rows(pages[0]["payments.html"], "post-submission-gap")) == 3


def test_long_payment_and_late_documentation_tables_show_the_first_rows_and_say_of_how_many(tmp_path: Path):
    # a warehouse before any 835 can hold millions of claims without an answer: the page reads only
    # the rows it shows (the 10M bench read 1.9M rows into memory here) and says how many there are
    def many(conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute("""insert into fct_remittance_aging select 'C' || i, 'PAT-' || lpad(i::varchar, 4, '0'),
            'medicare', date '2026-08-01', '99484', 80, 57.45, 'no answer', date '2026-09-02', 30 + i, true
            from range(250) as t(i)""")
        conn.execute("""insert into fct_denial_worklist (claim_line_id, claim_id, patient_id, payer_id, service_month,
            code, expected_amount, rarc_codes, carc_codes, reasons, actions) select 'L' || i, 'C' || i, 'PAT-D' || i, 'medicare',
            date '2026-08-01', '99493', 100.0 + i, 'N362', 'CO-50', 'Not medically necessary', 'Resend'
            from range(130) as t(i)""")
        conn.execute("""insert into fct_remittance_denials select 'medicare', date '2026-08-01', 'CO', 'Contractual',
            (i + 1)::varchar, 'Reason ' || i, 'denial', 1, 10 + i, '', '' from range(120) as t(i)""")
        # 70 care managers, each with one entry documented 20 days late: 70 staff-weeks
        conn.execute("""insert into int_time_entries_classified (staff_id, role, service_date, documented_at, minutes)
            select 'CM-L' || i, 'care_manager', date '2026-09-01', date '2026-09-21', 10 + i from range(70) as t(i)""")

    db = build_warehouse(tmp_path / "w.duckdb", ROWS, setup=many)
    render(db, tmp_path / "site")
    payments = page(tmp_path / "site", "payments.html")
    aging = tbody_rows(payments, "payments-aging")
    assert len(aging) == 100 and "Showing 100 of 251, longest without an answer first." in payments
    assert "PAT-0249" in aging[0] and ">279<" in aging[0]  # 30 + 249 days: the longest first
    assert len(tbody_rows(payments, "denial-worklist")) == 100 and "Showing 100 of 131 denied lines" in payments
    assert "PAT-D129" in tbody_rows(payments, "denial-worklist")[0]
    assert len(tbody_rows(payments, "denial-reasons")) == 100 and "Showing 100 of 121, most dollars first." in payments
    compliance = page(tmp_path / "site", "compliance.html")
    late = tbody_rows(compliance, "late-documentation")
    assert len(late) == 50 and "Staff-weeks with late entries: showing 50 of 72" in compliance
    assert "CM-L69" in late[0]  # 79 late minutes, the most


def test_heatmap_shows_the_30_staff_with_the_most_late_minutes():
    lag = pl.DataFrame({
        "staff_id": [f"S{i:04d}" for i in range(5000)],
        "week_start": [dt.date(2026, 5, 4)] * 5000,
        "iso_week": ["2026-W19"] * 5000,
        "late_minutes": list(range(5000)),
        "late_entries": [1] * 5000,
        "minutes": [10_000] * 5000,
        "entries": [2] * 5000,
        "staff_late_rank": list(range(5000, 0, -1)),
    })
    fig = figures.documentation_lag_heatmap(lag)
    assert len(fig.data[0].y) == 30 and "S4999" in fig.data[0].y and "S4969" not in fig.data[0].y
    assert fig.layout.title.text.endswith("(top 30 of 5,000)")


def test_outreach_page_plan_per_care_manager(built_site: Path):
    text = page(built_site, "outreach.html")
    summary = tbody_rows(text, "outreach-summary")
    # CM-1 (PAT-0001) and CM-2 (PAT-0005) have candidates; the evil CM's patient is blocked
    assert len(summary) == 2
    assert "CM-1" in summary[0] and "1,920 min" in summary[0] and "$160" in summary[0]
    assert "CM-2" in summary[1] and "960 min" in summary[1] and "$66" in summary[1]
    plan1 = tbody_rows(text, "plan-1")
    assert len(plan1) == 1 and "DOE, JANE (born 1960-01-24)" in plan1[0] and "yes" in plan1[0]
    assert "Medicare Part B" in plan1[0]  # payers.csv name, not the id
    assert "$20.00" in plan1[0]  # 160 / 8 per minute
    cards = re.search(r'<div class="card-grid">(.*?)</div>\s*<div class="figure">', text, re.S).group(1)
    assert "$226" in cards  # expected revenue gained if followed
    assert "8 business days left" in text
    assert "PAT-0003" not in text  # blocked: not a candidate


def test_compliance_page_tables(built_site: Path):
    text = page(built_site, "compliance.html")
    blocked = tbody_rows(text, "blocked-months")
    assert len(blocked) == 4  # (Oct bhi), (Sep bhi both), (Aug cocm consent), (Aug cocm review)
    assert "2026-10" in blocked[0] and "open" in blocked[0]
    late = tbody_rows(text, "late-documentation")
    assert len(late) == 2
    assert "CM-2" in late[0] and "25 min" in late[0] and "12 days" in late[0]
    assert "CM-1" in late[1] and "15 min" in late[1] and "2026-W40" in late[1]
    quarantine = tbody_rows(text, "quarantine")
    assert len(quarantine) == 2
    assert "time_entries" in quarantine[0] and ">2<" in quarantine[0]
    assert "more than 7 days" in text
    assert "2 of 7" in text  # entries documented late
    scrub = tbody_rows(text, "claim-scrub")
    assert len(scrub) == 1 and "ncci_mue" in scrub[0] and "more than the MUE value 2" in scrub[0]


def test_revenue_gap_page_tables(built_site: Path):
    text = page(built_site, "revenue_gap.html")
    by_reason = tbody_rows(text, "by-reason")
    assert len(by_reason) == 5 + 1  # five reasons + total
    assert "$600" in by_reason[-1]  # 150+80+120.25+40+150+60 = 600.25
    top = tbody_rows(text, "top-patient-months")
    assert len(top) == 4  # patient-months, not reason rows
    assert "DOE, JANE (born 1960-01-24)" in top[0] and "$230" in top[0]  # 150 + 80 beats 210 and 120.25
    assert "Medicare Part B" in top[0]
    assert "Near miss (short of a threshold) $150 (65 min); No psychiatric review $80" in top[0]
    assert "Showing top 4 of 4 patient-months" in text


def test_revenue_gap_table_limited_to_50(tmp_path: Path):
    gap = [
        ("FAC-A", f"PAT-{i:04d}", "MCR", "cocm", D(2026, 9, 1), "near_miss", 10, float(i))
        for i in range(1, 71)
    ]
    db = build_warehouse(tmp_path / "w.duckdb", {**ROWS, "fct_revenue_gap": gap})
    render(db, tmp_path / "site")
    text = page(tmp_path / "site", "revenue_gap.html")
    assert len(tbody_rows(text, "top-patient-months")) == 50
    assert "Showing top 50 of 70 patient-months" in text


def test_roi_page_facility_table(built_site: Path):
    text = page(built_site, "roi.html")
    rows = tbody_rows(text, "facility-roi")
    assert len(rows) == 3  # FAC-A, FAC-B, total
    # September is incomplete (a rejected file): only August counts in the closed totals
    assert "FAC-A" in rows[0] and "$5,000" in rows[0] and "$500" in rows[0]
    assert "FAC-B" in rows[1] and ">0<" in rows[1]  # no complete closed month
    assert "All facilities" in rows[2] and "$5,000" in rows[2] and "11.1%" in rows[2]
    cards = re.search(r'<div class="card-grid">(.*?)</div>\s*<p', text, re.S).group(1)
    assert "$5,000" in cards and "$500" in cards and "11.1%" in cards
    assert "1 incomplete left out" in cards
    monthly = tbody_rows(text, "monthly-roi")  # the open month, its projection, September, August
    assert 'class="projected"' in monthly[1] and "projected month end" in monthly[1]
    assert 'class="incomplete"' in monthly[2] and "2026-09" in monthly[2]
    assert "incomplete data: rejected file time_entries_2026-09.csv" in monthly[2]


def test_empty_marts_render_no_rows_pages(empty_warehouse: Path, tmp_path: Path):
    index = render(empty_warehouse, tmp_path / "site")
    assert index == tmp_path / "site" / "index.html"
    assert "No pipeline run summary yet" in page(index.parent, "index.html")
    for name in ("worklist.html", "outreach.html", "revenue_gap.html", "roi.html"):
        assert "No rows" in page(index.parent, name), name
    compliance = page(index.parent, "compliance.html")
    assert "No time documented late" in compliance


def test_only_open_month_roi_has_no_closed_table(tmp_path: Path):
    db = build_warehouse(
        tmp_path / "w.duckdb", {**ROWS, "fct_program_roi": [r for r in ROI if r[2] == "open"]}
    )
    render(db, tmp_path / "site")
    assert "No closed months yet" in page(tmp_path / "site", "roi.html")


def test_render_site_is_repeatable(warehouse: Path, tmp_path: Path):
    render(warehouse, tmp_path / "a")
    render(warehouse, tmp_path / "b")
    render(warehouse, tmp_path / "b")  # overwrite in place
    for name in PAGES:
        assert page(tmp_path / "a", name) == page(tmp_path / "b", name)
    assert not list((tmp_path / "b").glob(".*.tmp"))


def test_pages_do_no_arithmetic_on_mart_values():
    """Pages format, filter, sort and cut; sums and totals live in the SQL marts."""
    for module in (site, marts, page_render, pngs, figures):
        source = Path(module.__file__).read_text(encoding="utf-8")
        for pattern in (r"\.sum\(", r"\.cum_sum\(", r"group_by\(", r"\.agg\(", r"\.mean\(",
                        r"with_row_index", r"\bsum\(", r"\bavg\("):
            assert not re.search(pattern, source), (module.__name__, pattern)
    templates = sorted(page_render.TEMPLATE_DIR.glob("*.j2"))
    assert templates
    for path in templates:
        source = path.read_text(encoding="utf-8")
        for pattern in (r"\|\s*sum\b", r"\|\s*round\b", r"\bsum\(", r"loop\.index\s*[-+*/]"):
            assert not re.search(pattern, source), (path.name, pattern)


def test_pages_are_autoescaped_templates_with_the_theme_css():
    """Every page template escapes what it prints (a value cannot inject markup) and the inlined
    stylesheet uses the theme's colours (the figures draw with the same ones)."""
    env = page_render.environment()
    page = env.from_string("{{ v }}|{{ n }}")
    assert all(env.autoescape(name) for name in env.list_templates())
    evil = env.get_template("explain.html.j2").render(
        text=EVIL, patient_id=EVIL_PATIENT, patient_label=EVIL_PATIENT, service_month=D(2026, 10, 1), as_of=None,
        health="")
    assert EVIL not in evil and "&lt;script&gt;alert(1)&lt;/script&gt;" in evil
    assert page.render(v="a\"b'c", n=None) == "a&quot;b&#x27;c|"
    css = (page_render.STATIC_DIR / "site.css").read_text(encoding="utf-8")
    for colour in (theme.INK, theme.MUTED, theme.GRID, theme.POSITIVE, theme.NEGATIVE, theme.PALETTE[0],
                   theme.PALETTE[1], theme.FONT_STACK):
        assert colour.lower() in css.lower(), colour


# --------------------------------------------------------------------------- figures


def test_revenue_gap_figure_stacks_to_input_dollars(warehouse: Path):
    fig = figures.revenue_gap_by_month_and_reason(read_mart(warehouse, "rpt_revenue_gap_monthly"))
    assert fig.layout.barmode == "stack"
    assert len(fig.data) == 5  # one trace per reason
    assert all(t.type == "bar" for t in fig.data)
    assert sum(sum(t.y) for t in fig.data) == pytest.approx(sum(r[7] for r in GAP))
    assert list(fig.data[0].x) == ["2026-08", "2026-09"]
    per_month = [sum(t.y[i] for t in fig.data) for i in range(2)]
    assert per_month == pytest.approx([350.25, 250.0])
    # biggest reason first (bottom of the stack), human labels
    assert fig.data[0].name == figures.REASON_LABELS["near_miss"]
    assert "month and reason" in fig.layout.title.text


def test_revenue_gap_figure_unknown_reason_and_null_dollars(tmp_path: Path):
    gap = [("F", "P", "X", "cocm", D(2026, 9, 1), "brand_new_reason", 5, None),
           ("F", "P", "X", "cocm", D(2026, 9, 1), "near_miss", 5, 12.0)]
    db = build_warehouse(tmp_path / "w.duckdb", {**ROWS, "fct_revenue_gap": gap})
    fig = figures.revenue_gap_by_month_and_reason(read_mart(db, "rpt_revenue_gap_monthly"))
    assert {t.name for t in fig.data} == {"brand_new_reason", figures.REASON_LABELS["near_miss"]}
    assert sum(sum(t.y) for t in fig.data) == pytest.approx(12.0)


def test_care_manager_figure_shows_reachable_dollars(warehouse: Path):
    fig = figures.dollars_at_stake_by_care_manager(read_mart(warehouse, "rpt_outreach_summary"))
    assert len(fig.data) == 1
    bar = fig.data[0]
    got = dict(zip(bar.y, bar.x))
    # names from the staff extract, the id alone when the roster has no such care manager
    assert got == {"Care Manager 1 (CM-1)": 160.0, f"CM-{EVIL}": 65.0, figures.UNASSIGNED: 45.5,
                   "Care Manager 2 (CM-2)": 66.0}
    assert list(bar.y)[-1] == "Care Manager 1 (CM-1)"  # largest at the top of a horizontal bar chart


def test_roi_figure_sums_facilities_and_accumulates_net(warehouse: Path):
    fig = figures.program_roi_by_month(read_mart(warehouse, "rpt_money_by_month"))
    assert [t.type for t in fig.data] == ["bar"] * 7 + ["scatter"] * 3
    revenue, submitted, paid, patient, denied, outstanding, cost, net, cum, projected = fig.data
    assert list(revenue.x) == ["2026-08", "2026-09 (incomplete data)", "2026-10 (month to date)"]
    # an incomplete month is a gap (nothing drawn, never $0), with its reason written over it
    assert list(revenue.y) == pytest.approx([5000.0, None, 3000.0])
    assert list(cost.y) == pytest.approx([4500.0, None, 8300.0])
    # August's remittances (CLAIM_PAYMENTS): sent 1,000, paid 640, patient 160, denied 100, no answer 80;
    # the open month has nothing sent yet
    assert list(submitted.y) == pytest.approx([1000.0, None, None])
    assert list(paid.y) == pytest.approx([640.0, None, None])
    assert list(patient.y) == pytest.approx([160.0, None, None])
    assert list(denied.y) == pytest.approx([100.0, None, None]) and list(outstanding.y) == pytest.approx([80.0, None, None])
    assert list(net.y) == [500.0, None, -5300.0]
    assert list(cum.y) == pytest.approx([500.0, None, -4800.0])
    # the open month's projection, marked as such: 3,000 and 8,300 to date at a cost share of 1 (fixture)
    assert "Projected" in projected.name and list(projected.y) == pytest.approx([None, None, -5300.0])
    assert any("rejected file" in a.text for a in fig.layout.annotations)


def test_outreach_figures(warehouse: Path):
    summary = read_mart(warehouse, "rpt_outreach_summary")
    dollars = figures.outreach_dollars_by_care_manager(summary)
    assert [t.name.split(" (")[0] for t in dollars.data] == ["In the plan", "Left out"]
    assert dict(zip(dollars.data[0].y, dollars.data[0].x)) == {"Care Manager 1 (CM-1)": 160.0,
                                                               "Care Manager 2 (CM-2)": 66.0}
    assert list(dollars.data[1].x) == [0.0, 0.0]
    minutes = figures.outreach_minutes_by_care_manager(summary)
    assert dict(zip(minutes.data[0].y, minutes.data[0].x)) == {"Care Manager 1 (CM-1)": 1920,
                                                               "Care Manager 2 (CM-2)": 960}
    assert dict(zip(minutes.data[1].y, minutes.data[1].x)) == {"Care Manager 1 (CM-1)": 8,
                                                               "Care Manager 2 (CM-2)": 10}


def test_compliance_figures(warehouse: Path):
    blocked = figures.blocked_months_by_month(read_mart(warehouse, "fct_compliance_blocked_months"))
    assert blocked.layout.barmode == "stack"
    assert sum(sum(t.y) for t in blocked.data) == 4  # patient-months blocked, all months
    heat = figures.documentation_lag_heatmap(
        read_mart(warehouse, "fct_compliance_documentation_lag"))
    assert heat.data[0].type == "heatmap"
    assert list(heat.data[0].x) == ["2026-W40", "2026-W41"]
    cells = {(y, x): heat.data[0].z[i][j] for i, y in enumerate(heat.data[0].y)
             for j, x in enumerate(heat.data[0].x)}
    assert cells[("CM-1", "2026-W40")] == 15 and cells[("CM-1", "2026-W41")] == 0
    assert cells[("CM-2", "2026-W40")] is None and cells[("CM-2", "2026-W41")] == 25
    quarantine = figures.quarantine_by_reason(read_mart(warehouse, "fct_compliance_quarantine"))
    assert sorted(quarantine.data[0].x) == [1, 2]


@pytest.mark.parametrize(
    ("builder", "table"),
    [
        (figures.revenue_gap_by_month_and_reason, "rpt_revenue_gap_monthly"),
        (figures.dollars_at_stake_by_care_manager, "rpt_outreach_summary"),
        (figures.program_roi_by_month, "rpt_money_by_month"),
        (figures.outreach_dollars_by_care_manager, "rpt_outreach_summary"),
        (figures.outreach_minutes_by_care_manager, "rpt_outreach_summary"),
        (figures.blocked_months_by_month, "fct_compliance_blocked_months"),
        (figures.documentation_lag_heatmap, "fct_compliance_documentation_lag"),
        (figures.quarantine_by_reason, "fct_compliance_quarantine"),
    ],
)
def test_figures_accept_empty_frames(builder, table, empty_warehouse: Path):
    fig = builder(read_mart(empty_warehouse, table))
    assert len(fig.data) == 0
    assert fig.layout.annotations and fig.layout.title.text


def test_care_manager_figure_with_nothing_reachable(tmp_path: Path):
    rows = [r for r in NEAR if r[12] is None]
    db = build_warehouse(tmp_path / "w.duckdb", {**ROWS, "fct_near_threshold": rows})
    fig = figures.dollars_at_stake_by_care_manager(read_mart(db, "rpt_outreach_summary"))
    assert len(fig.data) == 0


# --------------------------------------------------------------------------- PNG for email


def test_leadership_pngs_with_kaleido(warehouse: Path, tmp_path: Path):
    pytest.importorskip("kaleido")
    if not shutil.which("chromium") and not os.environ.get("BROWSER_PATH"):
        pytest.skip("kaleido needs a Chromium browser (Debian's chromium or BROWSER_PATH)")
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        paths = site.write_leadership_pngs(conn, tmp_path / "email").paths
    finally:
        conn.close()
    assert [p.name for p in paths] == [f"{stem}.png" for stem, _, _ in figures.LEADERSHIP_FIGURES]
    for path in paths:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", path
        width = int.from_bytes(data[16:20], "big")
        assert width == 2200, path  # 1100 px at scale 2
        assert len(data) > 20_000, path  # a drawn chart, not an empty canvas
    assert not list((tmp_path / "email").glob(".*"))
    _keep_artifacts(paths, "png")


PNG_NAMES = [f"{stem}.png" for stem, _, _ in figures.LEADERSHIP_FIGURES]


def test_a_leadership_png_is_rendered_only_when_what_it_shows_changed(warehouse: Path, tmp_path: Path, monkeypatch):
    """digests.json keeps a digest per PNG of the figure as drawn, its caption without the as-of
    date; an unchanged figure is kept (the same file), so its caption keeps the date it was computed on."""
    import plotly.io as pio

    rendered: list[str] = []

    def fake_write_images(figs, paths, **kwargs):  # kaleido's part is test_leadership_pngs_with_kaleido's
        for fig, path in zip(figs, paths):
            Path(path).write_text(fig.layout.title.subtitle.text)
            rendered.append(Path(path).name.split(".")[1] + ".png")

    monkeypatch.setattr(pio, "write_images", fake_write_images)
    db = tmp_path / "w.duckdb"
    shutil.copy(warehouse, db)
    conn = duckdb.connect(str(db))

    def write(folder: str, previous: str | None) -> pngs.LeadershipPngs:
        rendered.clear()
        return pngs.write_leadership_pngs(conn, tmp_path / folder, previous=previous and tmp_path / previous)

    def digests(folder: str) -> dict[str, str]:
        return {n: d["as_of"] for n, d in json.loads((tmp_path / folder / pngs.DIGESTS).read_text()).items()}

    first = write("a", None)
    assert first.rendered == rendered == PNG_NAMES and first.kept == {}
    assert (tmp_path / "a" / PNG_NAMES[0]).read_text().startswith("Data as of 2026-10-20 · ")
    # the same numbers: nothing rendered, every PNG the same file
    kept = write("b", "a")
    assert rendered == [] and kept.rendered == [] and kept.kept == dict.fromkeys(PNG_NAMES, "2026-10-20")
    assert kept.note() == "kept, figure unchanged: " + ", ".join(f"{n} (as of 2026-10-20)" for n in PNG_NAMES)
    for name in PNG_NAMES:
        assert (tmp_path / "b" / name).stat().st_ino == (tmp_path / "a" / name).stat().st_ino
    # the next day, same numbers: kept, the caption still says the day they were computed on
    conn.execute("update fct_run_health set as_of = date '2026-10-21'")
    assert write("c", "b").kept == dict.fromkeys(PNG_NAMES, "2026-10-20") and rendered == []
    # one figure's numbers change: that PNG alone is rendered, dated the day it was computed on
    conn.execute("update rpt_revenue_gap_monthly set dollars = dollars + 100")
    changed = write("d", "c")
    assert rendered == changed.rendered == ["revenue_gap_by_month.png"]
    assert changed.note().startswith("rendered revenue_gap_by_month.png; kept, figure unchanged: ")
    assert (tmp_path / "d" / "revenue_gap_by_month.png").read_text().startswith("Data as of 2026-10-21 · ")
    assert (tmp_path / "d" / PNG_NAMES[0]).stat().st_ino == (tmp_path / "a" / PNG_NAMES[0]).stat().st_ino
    assert digests("d") == {**dict.fromkeys(PNG_NAMES, "2026-10-20"), "revenue_gap_by_month.png": "2026-10-21"}
    # a new month (the run that closes the previous one): every PNG again
    conn.execute("update fct_run_health set as_of = date '2026-11-01'")
    assert write("e", "d").rendered == PNG_NAMES
    # a failed export writes nothing, not even the PNGs it would have kept
    conn.execute("update rpt_revenue_gap_monthly set dollars = dollars + 100")
    monkeypatch.setattr(pio, "write_images", lambda *a, **k: (_ for _ in ()).throw(ValueError("no browser")))
    with pytest.raises(RuntimeError, match="PNG export failed: no browser"):
        write("f", "e")
    assert list((tmp_path / "f").iterdir()) == []
    conn.close()


def test_leadership_png_subtitle_carries_as_of_headlines_and_warnings(warehouse: Path):
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        text = pngs.png_subtitle(marts.one(conn, "select * from fct_run_health"),
                                 marts.one(conn, "select * from rpt_dashboard_headlines"))
    finally:
        conn.close()
    assert text == ("Data as of 2026-10-20 · net, closed months $500 (ROI 11.1%) · left on the table "
                    "$600 · STALE EXTRACT · incomplete: 2026-09")


def test_money_axes_put_the_minus_before_the_dollar_sign(warehouse: Path):
    """d3's "$,.0f" draws -50000 as "−$50,000"; a tickprefix "$" drew "$-50,000"."""
    fig = figures.program_roi_by_month(read_mart(warehouse, "rpt_money_by_month"))
    assert fig.layout.yaxis.tickformat == "$,.0f" and fig.layout.yaxis.tickprefix is None
    for builder, table in ((figures.revenue_gap_by_month_and_reason, "rpt_revenue_gap_monthly"),
                           (figures.dollars_at_stake_by_care_manager, "rpt_outreach_summary"),
                           (figures.revenue_trend, "rpt_money_by_month")):
        fig = builder(read_mart(warehouse, table))
        assert "tickprefix" not in fig.layout.to_plotly_json().get("yaxis", {}), builder
        assert all("$%{" not in (t.hovertemplate or "") for t in fig.data), builder


def test_every_reason_gets_its_own_colour():
    reasons = ["missing_psych_review", "missing_initiating_visit", "missing_bh_diagnosis",
               "missing_consent", "near_miss", "x1", "x2", "x3", "x4", "x5"]
    colors = figures.reason_colors(reasons)
    assert len(set(colors.values())) == len(reasons)
    assert colors["missing_psych_review"] == figures.REASON_COLORS["missing_psych_review"]


# --------------------------------------------------------------------------- theme & purity


def test_formatters():
    assert theme.fmt_dollars(1234.4) == "$1,234"
    assert theme.fmt_dollars(-80) == "-$80"
    assert theme.fmt_dollars(-0.2) == "$0"
    assert theme.fmt_dollars(12.5, cents=True) == "$12.50"
    assert theme.fmt_dollars(None) == "—"
    assert theme.fmt_minutes(1234) == "1,234 min"
    assert theme.fmt_minutes(None) == "—"
    assert theme.fmt_pct(12.345) == "12.3%"
    assert theme.fmt_month(D(2026, 3, 1)) == "2026-03"


def test_figures_use_the_theme(warehouse: Path):
    fig = figures.program_roi_by_month(read_mart(warehouse, "rpt_money_by_month"))
    assert fig.layout.template.layout.font.family == theme.FONT_STACK
    assert fig.layout.height


def test_dashboards_package_loads_without_dagster():
    """Every module of the dashboards package imports in a fresh process without loading Dagster
    (the site renders from a warehouse file alone, outside any orchestration)."""
    code = (
        "import importlib, json, pkgutil, sys, dashboards\n"
        "for m in pkgutil.walk_packages(dashboards.__path__, 'dashboards.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout)
    assert {"dashboards.figures", "dashboards.site", "dashboards.theme"} <= set(modules)
    assert [m for m in modules if m.split(".")[0].startswith("dagster")] == []


# --------------------------------------------------------------------------- in a real browser

CHROMIUM = Path("/usr/bin/chromium")


def _keep_artifacts(paths: list[Path], subdir: str) -> None:
    """Copy files to $BHI_ARTIFACTS_DIR/<subdir>/ when that variable is set (CI keeps them)."""
    target = os.environ.get("BHI_ARTIFACTS_DIR")
    if not target:
        return
    folder = Path(target) / subdir
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        shutil.copy2(path, folder / path.name)


VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}

# Per page, in the browser: boxes of chart titles and legends, and anything wider than its box.
_LAYOUT_JS = """
() => {
  const box = e => { const r = e.getBoundingClientRect();
                     return {x: r.left, y: r.top, w: r.width, h: r.height}; };
  const hit = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
  const overlaps = [], spills = [];
  document.querySelectorAll('.figure').forEach((fig, i) => {
    const legends = Array.from(fig.querySelectorAll('.legend')).map(box);
    const titles = Array.from(fig.querySelectorAll('h3.fig-title, .gtitle')).map(box);
    titles.forEach(t => legends.forEach(l => { if (hit(t, l)) overlaps.push('figure ' + i); }));
    const card = fig.getBoundingClientRect();
    fig.querySelectorAll('.main-svg').forEach(svg => {
      const r = svg.getBoundingClientRect();
      if (r.right > card.right + 1 || r.left < card.left - 1) spills.push('chart ' + i);
    });
  });
  document.querySelectorAll('table').forEach(t => {
    let scroller = null;
    for (let e = t.parentElement; e && e !== document.body; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      if (o === 'auto' || o === 'scroll') { scroller = e; break; }
    }
    const inside = t.getBoundingClientRect().right <= document.documentElement.clientWidth + 1;
    if (!scroller && !inside) spills.push('table ' + (t.id || '?') + ' without a scroll box');
    if (scroller && scroller.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
      spills.push('scroll box of ' + (t.id || '?') + ' wider than the page');
  });
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1)
    spills.push('page scrolls sideways: ' + document.documentElement.scrollWidth);
  return {overlaps, spills};
}
"""


@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium (Playwright) for this module's browser tests."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        if os.environ.get("CI"):  # CI installs chromium (scripts/ensure-chromium.sh): never skip there
            pytest.fail("CI must run the browser tests but /usr/bin/chromium is missing")
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.mark.browser
def test_site_in_chromium_at_desktop_and_phone_sizes(built_site: Path, tmp_path: Path, browser):
    """All six pages from file:// with the network off, at 1440x900 and 390x844: no console
    errors; every chart drawn (local plotly.min.js); no chart title box meets its legend; no
    table or chart wider than its box without a scroll box, and the page never scrolls sideways;
    the run-health banner names the rejected file and the stale extract; the ROI page prints its
    cost assumptions; the worklist filters and sorts. One site build for the module; full-page
    screenshots kept under tmp and copied to $BHI_ARTIFACTS_DIR/screenshots/ when set."""
    shots_dir = tmp_path / "screenshots"
    shots_dir.mkdir()
    shots: list[Path] = []
    for size, viewport in VIEWPORTS.items():
        ctx = browser.new_context(offline=True, viewport=viewport)
        pg = ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.on("console", lambda m: errors.append(f"console: {m.text}")
              if m.type == "error" else None)
        pg.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        pg.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
        for name in PAGES:
            pg.goto((built_site / name).as_uri())
            assert pg.evaluate("typeof Plotly") == "object", name
            charts = CHARTS[name]
            assert pg.locator(".figure").count() == charts, name
            pg.wait_for_function(
                f"document.querySelectorAll('.figure .js-plotly-plot').length === {charts} && "
                f"document.querySelectorAll('.figure .js-plotly-plot .main-svg').length >= {charts}"
            )
            drawn = pg.evaluate(
                "Array.from(document.querySelectorAll('.figure .js-plotly-plot'))"
                ".map(d => d.querySelectorAll('.trace .point, .trace .js-line, .hm image,"
                " .annotation').length)"
            )
            assert all(n > 0 for n in drawn), (size, name, drawn)
            layout = pg.evaluate(_LAYOUT_JS)
            assert layout["overlaps"] == [], (size, name, layout)
            assert layout["spills"] == [], (size, name, layout)
            banner = pg.locator("#run-health")
            assert banner.is_visible(), (size, name)
            text = banner.inner_text()
            assert "Stale extract" in text and "2026-10-05" in text, (size, name)
            assert "time_entries_2026-09.csv" in text, (size, name)
            assert "2026-09 is incomplete" in text, (size, name)
            if name == "roi.html":
                assumptions = pg.locator("#roi-assumptions").inner_text()
                assert "Care manager cost" in assumptions and "program share" in assumptions
                assert "Open month" in assumptions and "prorated" in assumptions
            shot = shots_dir / f"{size}-{name.replace('.html', '.png')}"
            pg.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
        if size == "desktop":
            pg.goto((built_site / "worklist.html").as_uri())
            assert pg.locator('[data-count-for="worklist"]').text_content() == "Showing all 5 rows."
            pg.select_option("#cm-filter", "CM-2")
            assert pg.locator("#worklist tbody tr:visible").count() == 2
            pg.select_option("#cm-filter", "")
            pg.fill("#filter", "consent")
            assert pg.locator("#worklist tbody tr:visible").count() == 2
            assert pg.locator('[data-count-for="worklist"]').text_content() == "Showing 2 of 5 rows (filtered)."
            pg.fill("#filter", "behind pace")
            assert pg.locator("#worklist tbody tr:visible").count() == 1
            pg.fill("#filter", "")
            assert pg.locator("#worklist tbody tr:visible").count() == 5
            # the state visible without scrolling sideways at 1440 px
            right = pg.evaluate("document.querySelector('#worklist th:nth-child(2)')"
                                ".getBoundingClientRect().right")
            assert right < 1440
            # sort by dollars gained, smallest first (data-sort holds the number)
            pg.click("#worklist th:nth-child(6)")
            gained = pg.evaluate("Array.from(document.querySelectorAll('#worklist tbody "
                                 "td:nth-child(6)')).map(td => td.dataset.sort).filter(v => v !== '').map(Number)")
            assert gained == sorted(gained) and len(gained) == 4
        assert errors == [], size
        ctx.close()
    assert len(shots) == len(PAGES) * len(VIEWPORTS)
    for shot in shots:
        assert shot.read_bytes()[:4] == b"\x89PNG" and shot.stat().st_size > 10_000, shot
    _keep_artifacts(shots, "screenshots")


def test_incomplete_month_is_marked_on_every_month_chart_and_table(built_site: Path):
    """September's time-entries file was rejected (REJECTED): every chart and table by month says
    so instead of drawing September like any other month."""
    for name in ("index.html", "roi.html", "revenue_gap.html", "compliance.html"):
        assert "2026-09 (incomplete data)" in page(built_site, name), name
    gap_rows = tbody_rows(page(built_site, "revenue_gap.html"), "top-patient-months")
    assert any("2026-09 (incomplete data)" in r for r in gap_rows)
    assert all("2026-08 (incomplete" not in r for r in gap_rows)
    blocked = tbody_rows(page(built_site, "compliance.html"), "blocked-months")
    assert any("2026-09 (incomplete data)" in r for r in blocked)


def test_outcomes_page_shows_the_counts_behind_every_rate(built_site: Path):
    text = page(built_site, "outcomes.html")
    # totals over September and October: 15 of 22 patient-months followed up, 2 of 4 responses at
    # 10-14 weeks; 1 of 3 episodes without a baseline; 1 not improving
    for expected in ("68.2% (15 of 22)", "50.0% (2 of 4)", "1 of 4"):
        assert expected in text, expected
    rows = tbody_rows(text, "outcomes-by-month")
    assert len(rows) == 2 and "2026-10" in rows[0] and "75.0% (9 of 12)" in rows[0]
    assert "60.0% (6 of 10)" in rows[1]
    assert "Care Manager 1" in tbody_rows(text, "outcomes-by-care-manager")[0]
    assert 'href="worklist.html#not-improving"' in text


def test_worklist_lists_patients_not_improving_without_review(built_site: Path):
    rows = tbody_rows(page(built_site, "worklist.html"), "not-improving-table")
    assert len(rows) == 1 and "STUCK, SAM" in rows[0] and "none in the episode" in rows[0]


def test_roi_page_shows_outcomes_beside_money(built_site: Path):
    text = page(built_site, "roi.html")
    assert "Depression remission (4-8 months), HEDIS DRR-E (outcomes, per patient)" in text
    assert "50.0% (1 of 2)" in text
    assert "Anxiety remission" not in text  # the project's analogue is not a published measure


def test_outcomes_page_shows_each_published_measure_with_n_of_n_definition_and_source(built_site: Path):
    text = page(built_site, "outcomes.html")
    rows = tbody_rows(text, "outcome-measures")
    assert [r.split("</td>")[0] for r in rows][0].endswith("Depression remission at 12 months")
    # CMS159: every window still open, none judged; DRR-E: 1 met of 2 judged (1 in an open window),
    # 1 pending, 1 without an index score; the GAD-7 row says it is the project's analogue
    assert "—" in rows[0] and "CMS159v14" in rows[0]
    assert "50.0% (1 of 2)" in rows[1] and "120-240 days after" in rows[1] and "HEDIS DRR-E" in rows[1]
    assert "project analogue, no published measure" in rows[2]
    assert "per patient" in text and "per treatment episode" in text
    for table in ("outcome-measures-by-facility", "outcome-measures-by-care-manager"):
        assert "50.0% (1 of 2)" in tbody_rows(text, table)[0], table
    months = tbody_rows(text, "outcome-measures-by-index-month")
    assert [m.split("</td>")[0].rsplit(">", 1)[-1] for m in months] == ["2026-03", "2026-06", "no index"]
    assert "100.0% (1 of 1)" in months[0] and "0.0% (0 of 1)" in months[1]


def test_run_health_banner_counts_field_warnings(built_site: Path):
    for name in PAGES:
        assert "field warnings 1<" in page(built_site, name), name


def test_outcomes_page_lists_discharges_by_reason(built_site: Path):
    rows = tbody_rows(page(built_site, "outcomes.html"), "outcomes-discharges")
    assert len(rows) == 1 and "goals met" in rows[0] and "190" in rows[0]
    assert "100.0% (1 of 1)" in rows[0]  # responded at 10-14 weeks


def test_payments_page_totals_worklists_and_reasons(built_site: Path):
    text = page(built_site, "payments.html")
    # the payers paid 640 + 400 of 900 + 500 expected over answered lines = 74.3% (the patients' 160 + 100 is
    # owed, not collected)
    for expected in ("74.3%", "$1,040", "$260", "Denied (1 lines)", "$100"):
        assert expected in text, expected
    payers = tbody_rows(text, "payments-by-payer")
    assert [("acme" in payers[0]), ("medicare" in payers[1])] == [True, True] and "71.1%" in payers[1]
    worklist = tbody_rows(text, "denial-worklist")
    assert len(worklist) == 1 and "PAT-DENIED" in worklist[0] and "CO-50" in worklist[0]
    assert "PAT-WAITING" in tbody_rows(text, "payments-aging")[0]
    assert "CO-50: Not medically necessary" in tbody_rows(text, "denial-reasons")[0]
    # the 835 side: unmatched dollars and the unbalanced payment on cards and tables, PLB with its reason
    for expected in ("Unmatched remittances (1 lines)", "$12.34", "Payments not balanced (of 1)"):
        assert expected in text, expected
    payment = tbody_rows(text, "remittance-payments")
    assert len(payment) == 1 and "TR1" in payment[0] and "$10.00" in payment[0] and ">NO<" in payment[0]
    plb = tbody_rows(text, "provider-adjustments")
    assert len(plb) == 1 and "WO: Overpayment recovery" in plb[0] and "REF-WO-1" in plb[0]
    unmatched = tbody_rows(text, "remittance-unmatched")
    assert len(unmatched) == 1 and "OTHERCLAIM" in unmatched[0] and "$12.34" in unmatched[0]


@pytest.mark.browser
def test_sample_site_in_chromium(sample_run, tmp_path: Path, browser):
    """The site of the session's `bhi run` of the bundled sample (real pipeline output, where the test
    above uses hand-made marts): every page opens from file:// with the network off, without a script
    error, and draws every chart. Screenshots copied to $BHI_ARTIFACTS_DIR/sample-screenshots/ when set."""
    site_dir = sample_run[0] / "dashboards"
    shots: list[Path] = []
    ctx = browser.new_context(offline=True, viewport=VIEWPORTS["desktop"])
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    for name in PAGES:
        pg.goto((site_dir / name).as_uri())
        charts = CHARTS[name]
        assert pg.locator(".figure").count() == charts, name
        pg.wait_for_function(f"document.querySelectorAll('.figure .js-plotly-plot .main-svg').length >= {charts}")
        shot = tmp_path / f"sample-{name.replace('.html', '.png')}"
        pg.screenshot(path=str(shot), full_page=True)
        shots.append(shot)
    ctx.close()
    assert errors == []
    assert all(shot.read_bytes()[:4] == b"\x89PNG" for shot in shots) and len(shots) == len(PAGES)
    _keep_artifacts(shots, "sample-screenshots")


def test_drilldown_page_names_cannot_be_derived_from_patient_id_and_month(warehouse: Path, tmp_path: Path):
    """A drill-down page's name is an HMAC keyed with a per-warehouse secret (<warehouse>.page-key,
    owner-only), not a hash of patient id and month anyone can recompute: the same patient-month gets
    another name under another warehouse's key, the name is stable across renders of one warehouse,
    and none of the unsalted digests of id + month (the old names) appears."""
    import hashlib

    key_file = warehouse.with_name(warehouse.name + site.DRILLDOWN_KEY_SUFFIX)
    first = render(warehouse, tmp_path / "a").parent
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 32
    again = render(warehouse, tmp_path / "b").parent
    month = D(2026, 10, 1)
    name = site.drilldown_href("PAT-0001", month, key_file.read_bytes())
    assert name == site.drilldown_href("PAT-0001", month, key_file.read_bytes())
    assert name != site.drilldown_href("PAT-0001", month, b"another warehouse's key".ljust(32, b"."))
    assert sorted(p.name for p in (first / "explain").glob("*.html")) == \
        sorted(p.name for p in (again / "explain").glob("*.html"))
    # a guess from id and month alone (the old scheme, any prefix length) names no page
    for pid in {r[1] for r in NEAR} | {r[1] for r in GAP}:
        for m in ("2026-08", "2026-09", "2026-10"):
            guess = hashlib.sha256(f"{pid}\x1f{m}".encode()).hexdigest()
            for text in (page(first, n) for n in PAGES):
                assert guess[:16] not in text, (pid, m)
    # another warehouse (its own key) names the same patient-months differently
    other = build_warehouse(tmp_path / "other.duckdb")
    conn = duckdb.connect(str(other), read_only=True)
    try:
        assert site.drilldown_key(conn) != key_file.read_bytes()
    finally:
        conn.close()
