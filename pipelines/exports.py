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
    "rule_set_what_if.csv": """
        select facility_id, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month,
               countable_minutes, rule_set, codes, amount, what_if_rule_set, what_if_codes, what_if_amount, difference
        from fct_rule_set_what_if order by service_month, facility_id, patient_id, program""",
    "modifier_advisories.csv": """
        select encounter_id, patient_id, payer_id, encounter_date, cpt_code, modifier, advice
        from fct_modifier_advisories order by encounter_date, encounter_id""",
}


# The evidence trail (fct_claim_evidence): one file per service month, claim_evidence/<YYYY-MM>.csv,
# sorted to read a patient-month top-down. At 10M entries it is ~30M rows (3.7 GB), so a run rewrites
# only the months whose rows changed: manifest.csv keeps each month's row count and checksum.
EVIDENCE_DIR = "claim_evidence"
EVIDENCE_MANIFEST = "manifest.csv"
EVIDENCE_QUERY = """
    select patient_id, strftime(service_month, '%Y-%m') as service_month, program, section, item, status,
           minutes, detail, sort_order
    from fct_claim_evidence"""
EVIDENCE_ORDER = "order by patient_id, program, sort_order, item"


def evidence_month_query(month: str) -> str:
    """One service month's evidence (YYYY-MM), sorted."""
    return f"select * from ({EVIDENCE_QUERY}) where service_month = '{month}' {EVIDENCE_ORDER}"


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


def write_evidence(conn: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, int]:
    """claim_evidence/<YYYY-MM>.csv for every service month whose rows changed since the files were
    written (or whose file is missing); files of months that no longer exist are removed. Returns
    evidence rows, months and months rewritten."""
    folder = out_dir / EVIDENCE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    # a checksum per month, independent of row order; identical rows do not cancel out (a sum, not xor)
    current = conn.sql(
        """
        select strftime(service_month, '%Y-%m') as month, count(*) as rows,
               sum(hash(patient_id, program, section, item, status, minutes, detail, sort_order))::varchar as checksum
        from fct_claim_evidence group by all order by month
        """
    ).fetchall()
    manifest = folder / EVIDENCE_MANIFEST
    previous = set()
    if manifest.exists():
        previous = set(
            conn.execute(
                "select month, rows, checksum from read_csv(?, header = true,"
                " columns = {'month': 'varchar', 'rows': 'bigint', 'checksum': 'varchar'})",
                [manifest.as_posix()],
            ).fetchall()
        )
    rewritten = 0
    for month, rows, checksum in current:
        target = folder / f"{month}.csv"
        if (month, rows, checksum) in previous and target.exists():
            continue
        write_csv(conn, evidence_month_query(month), target)
        rewritten += 1
    months = {month for month, _, _ in current}
    for stale in folder.glob("*.csv"):
        if stale.name != EVIDENCE_MANIFEST and stale.stem not in months:
            stale.unlink()
    tmp = manifest.with_suffix(".csv.tmp")
    tmp.write_text("month,rows,checksum\n" + "".join(f"{m},{r},{c}\n" for m, r, c in current))
    tmp.replace(manifest)
    return {
        "claim_evidence rows": sum(r for _, r, _ in current),
        "claim_evidence months": len(current),
        "claim_evidence months rewritten": rewritten,
    }


def write_exports(conn: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, int]:
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {name: write_csv(conn, query, out_dir / name) for name, query in EXPORTS.items()}
    return counts | write_evidence(conn, out_dir)
