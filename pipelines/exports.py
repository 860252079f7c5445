"""CSV exports a billing system or an analyst can load. Text cells that a spreadsheet would read as a
formula (=, +, -, @ first) are prefixed with a quote. Each file is written then renamed into place."""

from pathlib import Path

import duckdb

EXPORTS: dict[str, str] = {
    "claims.csv": """
        select facility_id, patient_id, payer_id, strftime(service_month, '%Y-%m') as service_month, code,
               units, modifiers, date_of_service, unit_amount, expected_amount, expected_collection,
               payer_share, patient_share, program, rule_set, month_type,
               countable_minutes, billing_provider_id, claim_line_id
        from fct_claims order by service_month, facility_id, patient_id, program, code""",
    "near_threshold.csv": """
        select facility_id, patient_id, payer_id, program, care_manager_id, month_type, countable_minutes,
               current_codes, current_amount, next_code, next_threshold_minutes, minutes_needed, days_left,
               dollars_gained, blockers, warnings
        from fct_near_threshold order by dollars_gained desc nulls last, minutes_needed, patient_id""",
    "outreach_plan.csv": """
        select care_manager_id, rank, patient_id, payer_id, program, countable_minutes, next_code,
               next_threshold_minutes, minutes_needed, dollars_gained, dollars_per_minute, cumulative_minutes,
               in_plan
        from fct_outreach_plan order by care_manager_id nulls last, rank""",
    "revenue_gap.csv": """
        select facility_id, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month,
               reason, minutes, dollars, countable_minutes, current_codes, care_manager_id
        from fct_revenue_gap order by service_month, dollars desc, patient_id""",
    "claims_changes.csv": """
        select change, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month, code,
               units_before, units_after, amount_before, amount_after, amount_difference, date_of_service_before,
               date_of_service_after, modifiers_before, modifiers_after, entries_delivered_this_run, claim_line_id
        from fct_claim_changes order by service_month, patient_id, program, code""",
    "quarantine.csv": """
        select table_name, source_file, source_row, columns, reason, record
        from quarantine order by delivery_seq, source_row""",
    "minutes_reconciliation.csv": "select * from fct_minutes_reconciliation",
    # every patient-month's evidence, in warehouse order: sorting 30M rows (10M entries) costs more
    # than writing them; the month-end files (month_end/claim_evidence_<YYYY-MM>.csv) are sorted
    "claim_evidence.csv": """
        select patient_id, strftime(service_month, '%Y-%m') as service_month, program, section, item, status,
               minutes, detail, sort_order
        from fct_claim_evidence""",
    "rule_set_what_if.csv": """
        select facility_id, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month,
               countable_minutes, rule_set, codes, amount, what_if_rule_set, what_if_codes, what_if_amount, difference
        from fct_rule_set_what_if order by service_month, facility_id, patient_id, program""",
    "modifier_advisories.csv": """
        select encounter_id, patient_id, payer_id, encounter_date, cpt_code, modifier, advice
        from fct_modifier_advisories order by encounter_date, encounter_id""",
}


def _neutralised(conn: duckdb.DuckDBPyConnection, query: str) -> str:
    """Wrap a query so every text column is safe to open in a spreadsheet."""
    cols = conn.sql(f"describe {query}").fetchall()
    exprs = [
        f"case when regexp_matches({name}, '^[=+\\-@]') then '''' || {name} else {name} end as {name}"
        if ctype == "VARCHAR"
        else name
        for name, ctype, *_ in cols
    ]
    return f"select {', '.join(exprs)} from ({query})"


def write_csv(conn: duckdb.DuckDBPyConnection, query: str, target: Path) -> int:
    """Write one query as CSV (formula cells neutralised), then rename it into place; return rows."""
    tmp = target.with_suffix(".csv.tmp")
    # COPY answers with the number of rows it wrote: the query runs once
    rows = conn.execute(f"copy ({_neutralised(conn, query)}) to '{tmp.as_posix()}' (header, delimiter ',')").fetchall()
    tmp.replace(target)
    return rows[0][0]


def write_exports(conn: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, int]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return {name: write_csv(conn, query, out_dir / name) for name, query in EXPORTS.items()}
