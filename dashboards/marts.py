"""What each dashboard page shows, read from the marts (sql/marts/): SQL only, one function per page.

Every number on a page is a value held by a mart (mostly rpt_dashboard_headlines for the cards);
these reads only choose the rows (filter, order, the top N by a mart's rank column). Every ORDER BY
ends with the mart's grain, so no page depends on the order rows were written in. Tables come
back as lists of rows (dicts), one-row marts as a `Row` (None for a missing column or an empty
mart), and the frames the figures draw as polars frames. Only reads, so a read-only connection is
enough; a missing mart raises duckdb.CatalogException.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from pipelines.outputs.explain import explain_many

# Marts the site reads.
SITE_MARTS = (
    "rpt_run_summary", "rpt_dashboard_headlines", "rpt_worklist_pace", "rpt_outreach_summary",
    "fct_outreach_plan", "rpt_revenue_gap_monthly", "rpt_revenue_gap_by_reason",
    "rpt_revenue_gap_patient_months", "rpt_revenue_gap_patient_months_ranked", "rpt_program_roi_monthly", "rpt_money_by_month",
    "rpt_program_roi_facility",
    "fct_compliance_blocked_months", "fct_compliance_documentation_lag",
    "fct_compliance_quarantine", "rpt_program_roi_assumptions", "fct_run_health",
    "fct_run_health_sources", "fct_month_completeness", "rpt_outcomes_summary", "fct_outcome_episodes",
    "fct_outcome_discharges", "rpt_payments_summary", "fct_remittance_denials", "fct_denial_worklist",
    "fct_remittance_aging", "fct_revenue_gap_post_submission", "rpt_outcome_measures", "fct_claim_scrub_findings",
    "rpt_remittance_summary", "fct_remittance_payments", "fct_remittance_provider_adjustments", "fct_remittance_unmatched",
    "dim_patient_labels", "dim_payer_names",
)
# the published outcome measures of all patients (rpt_outcome_measures), in the reference's order
PUBLISHED_MEASURES = ("select * from rpt_outcome_measures where grouping_level = 'total' and published"
                      " order by display_order nulls last, measure")
# the names a page shows beside a patient-month row: the patient's (dim_patient_labels) and the payer's
# (dim_payer_names); `{t}` is the alias of the table the row comes from
PATIENT_NAMES = "left join dim_patient_labels as names_p on names_p.patient_id = {t}.patient_id"
NAMES = PATIENT_NAMES + " left join dim_payer_names as names_y on names_y.payer_id = {t}.payer_id"
NAME_COLUMNS = "names_p.patient_label, coalesce(names_y.payer_name, {t}.payer_id) as payer_name"
STAFF_NAMES = ("left join (select staff_id, any_value(name) as staff_name from stg_staff group by all) as names_s"
               " on names_s.staff_id = {t}.{column}")


def with_names(source: str, alias: str = "t") -> str:
    """`select` of every column of `source` (a table) with the patient's label and the payer's name."""
    return (f"select {alias}.*, {NAME_COLUMNS.format(t=alias)} from {source} as {alias} "
            + NAMES.format(t=alias))


# the drill-down pages (explain/) read the evidence trail as `bhi explain` does
DRILLDOWN_TABLES = ("fct_patient_months", "fct_claim_evidence", "int_time_entries_classified")


class Row(dict):
    """One mart row; a column it does not have reads as None (an empty mart gives an empty Row)."""

    def __missing__(self, key: str) -> None:
        return None


def frame(conn: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    return conn.sql(sql).pl()


def rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    return frame(conn, sql).to_dicts()


def one(conn: duckdb.DuckDBPyConnection, sql: str) -> Row:
    found = frame(conn, sql)
    return Row(found.row(0, named=True) if found.height else {})


def count(conn: duckdb.DuckDBPyConnection, source: str) -> int:
    """Rows of `source` ("from <mart> [where ...]")."""
    return conn.sql(f"select count(*) {source}").fetchall()[0][0]


def health(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The as-of date and run-health banner of every page, and the months marked incomplete."""
    return {
        "as_of": one(conn, "select as_of from rpt_run_summary")["as_of"],
        "h": one(conn, "select * from fct_run_health"),
        "sources": rows(conn, "select * from fct_run_health_sources"
                              " order by source_table nulls last, facility_id nulls last"),
        "has_completeness": frame(conn, "select * from fct_month_completeness").height > 0,
        "incomplete_rows": rows(conn, "select * from fct_month_completeness where is_incomplete"
                                      " order by service_month nulls first"),
        "incomplete": frozenset(frame(conn, "select service_month from fct_month_completeness where is_incomplete")
                                .get_column("service_month").to_list()),
    }


def index(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    return {
        "row": one(conn, "select * from rpt_run_summary"),
        "h": one(conn, "select * from rpt_dashboard_headlines"),
        "monthly": frame(conn, "select * from rpt_money_by_month"),
        "months": rows(conn, "select * from rpt_money_by_month order by service_month desc nulls first"),
        "pay": one(conn, "select * from rpt_payments_summary where grouping_level = 'total'"),
        "o": one(conn, "select * from rpt_outcomes_summary where grouping_level = 'total'"),
        "published": rows(conn, PUBLISHED_MEASURES),
    }


def worklist(conn: duckdb.DuckDBPyConnection, limit: int) -> dict[str, Any]:
    """The first `limit` rows of the open month's worklist by worklist_rank (every enrolled
    patient-program: state first, then dollars), the care managers of the rows and of the patients
    not improving (one filter for every table of the page); the patients not improving."""
    top = f"from rpt_worklist_pace where worklist_rank <= {int(limit)}"
    not_improving = ("select t.*, names_p.patient_label, names_s.staff_name as care_manager_name"
                     " from fct_outcome_episodes as t "
                     + PATIENT_NAMES.format(t="t") + " "
                     + STAFF_NAMES.format(t="t", column="care_manager_id")
                     + " where t.not_improving_without_review")
    return {
        "open_month": one(conn, "select open_month from rpt_run_summary")["open_month"],
        "h": one(conn, "select * from rpt_dashboard_headlines"),
        "care_managers": frame(conn, "select * from rpt_outreach_summary"),
        "total": count(conn, "from rpt_worklist_pace"),
        "rows": rows(conn, f"select * {top} order by worklist_rank"),
        "states": rows(conn, "select state_order, count(*) as patients from rpt_worklist_pace"
                             " group by all order by state_order"),
        "cm_options": rows(conn, f"select distinct care_manager_id, care_manager_name {top}"
                                 " union select care_manager_id, care_manager_name from (" + not_improving + ")"
                                 " order by care_manager_id nulls last"),
        "not_improving": rows(conn, not_improving + " order by t.care_manager_id nulls last, t.baseline_date,"
                                    " t.patient_id, t.program, t.episode_number"),
    }


def outreach(conn: duckdb.DuckDBPyConnection, limit: int, care_managers: int, plans: int) -> dict[str, Any]:
    """The plan's care managers (the first `care_managers` by plan_rank among those with candidates)
    and the plans of the first `plans` of them, `limit` rows each by rank."""
    shown = rows(conn, "select * from rpt_outreach_summary where candidates > 0"
                       f" and plan_rank <= {int(care_managers)} order by plan_rank")
    plan = frame(conn, with_names("fct_outreach_plan") + f" where t.rank <= {int(limit)} order by t.rank")
    return {
        "h": one(conn, "select * from rpt_dashboard_headlines"),
        "summary": frame(conn, "select * from rpt_outreach_summary"),
        "has_plan": plan.height > 0,
        "candidates": count(conn, "from rpt_outreach_summary where candidates > 0"),
        "care_managers": shown,
        "plans": [
            (cm, plan.filter(pl.col("care_manager_id").is_null() if cm["care_manager_id"] is None
                             else pl.col("care_manager_id") == cm["care_manager_id"]).to_dicts())
            for cm in shown[:plans]
        ],
    }


def revenue_gap(conn: duckdb.DuckDBPyConnection, limit: int) -> dict[str, Any]:
    return {
        "h": one(conn, "select * from rpt_dashboard_headlines"),
        "monthly": frame(conn, "select * from rpt_revenue_gap_monthly"),
        "by_reason": rows(conn, "select * from rpt_revenue_gap_by_reason order by reason_order nulls first"),
        "top": rows(conn, with_names("rpt_revenue_gap_patient_months_ranked")
                          + f" where t.dollar_rank <= {int(limit)} order by t.dollar_rank"),
    }


def roi(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    return {
        "h": one(conn, "select * from rpt_dashboard_headlines"),
        "monthly": frame(conn, "select * from rpt_money_by_month"),
        "months": rows(conn, "select * from rpt_money_by_month order by service_month desc nulls first"),
        "facilities": rows(conn, "select * from rpt_program_roi_facility"
                                 " order by is_total nulls last, facility_id nulls last"),
        "assumptions": rows(conn, "select * from rpt_program_roi_assumptions order by sort_order nulls first"),
        "o": one(conn, "select * from rpt_outcomes_summary where grouping_level = 'total'"),
        "published": rows(conn, PUBLISHED_MEASURES),
    }


def payments(conn: duckdb.DuckDBPyConnection, limit: int) -> dict[str, Any]:
    """Totals, by payer, and the first `limit` rows of each worklist, most dollars first, with how many
    rows each has (a warehouse with no 835 yet can hold millions of claims without an answer)."""
    worklist = "from fct_denial_worklist"
    reasons = "from fct_remittance_denials where kind = 'denial'"
    aging = "from fct_remittance_aging where past_aging_limit"
    return {
        "t": one(conn, "select * from rpt_payments_summary where grouping_level = 'total'"),
        "summary": frame(conn, "select * from rpt_payments_summary"),
        "payers": rows(conn, "select * from rpt_payments_summary where grouping_level = 'payer'"
                             " order by payer_id nulls first"),
        "worklist": rows(conn, f"select * {worklist} order by expected_amount desc nulls first,"
                               f" days_since_denial desc nulls first, claim_line_id nulls first limit {int(limit)}"),
        "worklist_count": count(conn, worklist),
        "reasons": rows(conn, f"select * {reasons} order by amount desc nulls first, service_month desc nulls first,"
                              " payer_id nulls first, group_code nulls first, reason_code nulls first"
                              f" limit {int(limit)}"),
        "reasons_count": count(conn, reasons),
        "aging": rows(conn, f"select * {aging} order by days_without_answer desc nulls first, claim_id nulls first"
                            f" limit {int(limit)}"),
        "aging_count": count(conn, aging),
        "r": one(conn, "select * from rpt_remittance_summary"),
        "remits": rows(conn, "select * from fct_remittance_payments order by balanced, payment_date desc nulls first,"
                             f" payer_identifier, trace_number limit {int(limit)}"),
        "remits_count": count(conn, "from fct_remittance_payments"),
        "plb": rows(conn, "select * from fct_remittance_provider_adjustments order by payment_date desc nulls first,"
                          f" payer_identifier, trace_number, adjustment_index limit {int(limit)}"),
        "plb_count": count(conn, "from fct_remittance_provider_adjustments"),
        "unmatched": rows(conn, "select * from fct_remittance_unmatched order by paid desc nulls first, payer_identifier,"
                                f" trace_number, claim_index, line_index limit {int(limit)}"),
        "unmatched_count": count(conn, "from fct_remittance_unmatched"),
        "gap": rows(conn, "select * from fct_revenue_gap_post_submission"
                          " order by service_month desc nulls first, amount desc nulls first, payer_id nulls first,"
                          " reason nulls first"),
    }


def outcomes(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The operational measures per episode (rpt_outcomes_summary) and the published measures per
    patient (rpt_outcome_measures: every group has a row per measure, in display order)."""
    level = "select * from rpt_outcomes_summary where grouping_level = "
    measures = "select * from rpt_outcome_measures where grouping_level = "
    by_measure = " order by group_key nulls last, display_order nulls last, measure"
    return {
        "measures": rows(conn, f"{measures}'total' order by display_order nulls last, measure"),
        "measures_by_facility": rows(conn, f"{measures}'facility'{by_measure}"),
        "measures_by_care_manager": rows(conn, f"{measures}'care_manager'{by_measure}"),
        "measures_by_index_month": rows(conn, f"{measures}'index_month'{by_measure}"),
        "summary": frame(conn, "select * from rpt_outcomes_summary"),
        "total": one(conn, f"{level}'total'"),
        "months": rows(conn, f"{level}'month' order by service_month desc nulls first"),
        "care_managers": rows(conn, f"{level}'care_manager' order by care_manager_id nulls last"),
        "facilities": rows(conn, f"{level}'facility' order by facility_id nulls last"),
        "discharges": rows(conn, "select * from fct_outcome_discharges where not is_total"
                                 " order by episodes desc nulls first, discharge_reason nulls first"),
    }


def compliance(conn: duckdb.DuckDBPyConnection, limit: int) -> dict[str, Any]:
    """The page's figures and tables; of the staff-weeks with late entries, the first `limit` by late
    minutes and how many there are."""
    late = "from fct_compliance_documentation_lag where late_entries > 0"
    return {
        "h": one(conn, "select * from rpt_dashboard_headlines"),
        "blocked": frame(conn, "select * from fct_compliance_blocked_months"),
        "blocked_rows": rows(conn, "select * from fct_compliance_blocked_months order by"
                                   " service_month desc nulls first, program nulls first, blocked_reason nulls first"),
        "lag": frame(conn, "select * from fct_compliance_documentation_lag"),
        "late": rows(conn, "select t.*, names_s.staff_name from fct_compliance_documentation_lag as t "
                           + STAFF_NAMES.format(t="t", column="staff_id")
                           + " where t.late_entries > 0 order by t.late_minutes desc nulls first,"
                           f" t.week_start desc nulls first, t.staff_id nulls first limit {int(limit)}"),
        "late_count": count(conn, late),
        "quarantine": frame(conn, "select * from fct_compliance_quarantine"),
        "quarantine_rows": rows(conn, "select * from fct_compliance_quarantine order by"
                                      " rows_quarantined desc nulls first, table_name nulls first, reason nulls first"),
        # claim lines the scrub holds back from the 837P (every one; scrub_findings.csv has them too)
        "scrub_rows": rows(conn, "select * from fct_claim_scrub_findings order by service_month desc, payer_id,"
                                 " patient_id, code, edit, other_code"),
    }


def drilldown_pairs(conn: duckdb.DuckDBPyConnection, worklist_limit: int, gap_limit: int,
                    outreach_limit: int) -> list[tuple[Any, Any]]:
    """Every patient-month the pages list: the worklist's rows (open month), the outreach plans', the
    open month of the patients not improving, the revenue gap's top rows; each once, in that order."""
    pairs = [
        *frame(conn, "select patient_id, service_month from rpt_worklist_pace"
                     f" where worklist_rank <= {int(worklist_limit)} order by worklist_rank").rows(),
        *frame(conn, "select patient_id, service_month from fct_outreach_plan"
                     f" where rank <= {int(outreach_limit)} order by rank, care_manager_id, patient_id").rows(),
        *frame(conn, "select e.patient_id, r.open_month from fct_outcome_episodes as e, rpt_run_summary as r"
                     " where e.not_improving_without_review order by e.patient_id").rows(),
        *frame(conn, "select patient_id, service_month from rpt_revenue_gap_patient_months_ranked"
                     f" where dollar_rank <= {int(gap_limit)} order by dollar_rank").rows(),
    ]
    return list(dict.fromkeys(pairs))


def patient_labels(conn: duckdb.DuckDBPyConnection, patient_ids: list[Any]) -> dict[Any, str]:
    """The page label (dim_patient_labels) of each patient id."""
    if not patient_ids:
        return {}
    found = conn.sql("select patient_id, patient_label from dim_patient_labels"
                     " where list_contains($ids, patient_id)", params={"ids": list(set(patient_ids))}).fetchall()
    return dict(found)


def drilldown_texts(conn: duckdb.DuckDBPyConnection,
                    pairs: list[tuple[Any, str]]) -> dict[tuple[Any, str], str] | None:
    """The `bhi explain` account of each (patient_id, YYYY-MM) with an enrolled patient-month; None
    when the warehouse has no evidence tables."""
    tables = {r[0] for r in conn.sql("select table_name from duckdb_tables()").fetchall()}
    if not set(DRILLDOWN_TABLES) <= tables:
        return None
    return explain_many(conn, pairs)


def pngs(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What the leadership PNGs' subtitle says and which months they mark incomplete."""
    return {
        "health": one(conn, "select * from fct_run_health"),
        "headlines": one(conn, "select * from rpt_dashboard_headlines"),
        "incomplete": health(conn)["incomplete"],
    }
