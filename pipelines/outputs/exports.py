"""CSV exports a billing system or an analyst can load. Text cells that a spreadsheet would read as a
formula (=, +, -, @, tab or carriage return first) are prefixed with a quote. Each file is written then renamed into place.

A run writes only the files whose content changed: `manifest.csv` beside them keeps each file's row
count and checksum (the sum of its rows' hashes, so it does not depend on row order and a repeated
row does not cancel out) and the size and modification time it was written with; a file is written
again when its checksum changes, or when it is missing or was changed since (edited by hand).
At 10M entries the evidence trail alone is ~30M rows, and the closed-month files (claims, revenue
gap, what-if) do not change on most nights."""

import hashlib
from pathlib import Path

import duckdb

from pipelines.safety import fault_point

# Money columns are written as decimal(12,2): always two decimals (98.32, not 98.32000000000001 from
# double arithmetic in the warehouse, and 145.20, not 145.2); an unpriced amount is an empty cell.
MONEY = "decimal(12,2)"

EXPORTS: dict[str, str] = {
    "claims.csv": f"""
        select facility_id, patient_id, payer_id, strftime(service_month, '%Y-%m') as service_month, code,
               units, modifiers, date_of_service, unit_amount::{MONEY} as unit_amount,
               expected_amount::{MONEY} as expected_amount, expected_collection::{MONEY} as expected_collection,
               payer_share::{MONEY} as payer_share, patient_share::{MONEY} as patient_share, price_status,
               program, rule_set, month_type, countable_minutes, billing_provider_id, claim_line_id
        from fct_claims order by service_month, facility_id, patient_id, program, code""",
    "unpriced_claim_lines.csv": """
        select payer_id, code, strftime(service_month, '%Y-%m') as service_month, units, reason, message,
               facility_id, patient_id, program, claim_line_id
        from fct_unpriced_claim_lines order by service_month, payer_id, code, claim_line_id""",
    "near_threshold.csv": f"""
        select facility_id, patient_id, payer_id, program, care_manager_id, month_type, countable_minutes,
               current_codes, current_amount::{MONEY} as current_amount, next_code, next_threshold_minutes,
               minutes_needed, days_left, dollars_gained::{MONEY} as dollars_gained, blockers, warnings
        from fct_near_threshold order by dollars_gained desc nulls last, minutes_needed, patient_id""",
    "outreach_plan.csv": f"""
        select care_manager_id, rank, patient_id, payer_id, program, countable_minutes, next_code,
               next_threshold_minutes, minutes_needed, dollars_gained::{MONEY} as dollars_gained, dollars_per_minute,
               cumulative_minutes, in_plan
        from fct_outreach_plan order by care_manager_id nulls last, rank""",
    "revenue_gap.csv": f"""
        select facility_id, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month,
               reason, minutes, dollars::{MONEY} as dollars, countable_minutes, current_codes, care_manager_id
        from fct_revenue_gap order by service_month, dollars desc, patient_id""",
    "claims_changes.csv": f"""
        select change, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month, code,
               units_before, units_after, amount_before::{MONEY} as amount_before,
               amount_after::{MONEY} as amount_after, amount_difference::{MONEY} as amount_difference,
               date_of_service_before, date_of_service_after, modifiers_before, modifiers_after,
               entries_delivered_this_run, claim_line_id
        from fct_claim_changes order by service_month, patient_id, program, code""",
    "quarantine.csv": """
        select table_name, source_file, source_row, columns, left(reason, 2000) as reason, record
        from quarantine order by delivery_seq, source_row""",
    "field_warnings.csv": """
        select table_name, source_file, source_row, column_name, reason
        from field_warnings order by delivery_seq, source_row, column_name""",
    "minutes_reconciliation.csv": "select * from fct_minutes_reconciliation",
    "rule_set_what_if.csv": f"""
        select facility_id, patient_id, payer_id, program, strftime(service_month, '%Y-%m') as service_month,
               countable_minutes, rule_set, codes, amount::{MONEY} as amount, what_if_rule_set, what_if_codes,
               what_if_amount::{MONEY} as what_if_amount, difference::{MONEY} as difference
        from fct_rule_set_what_if order by service_month, facility_id, patient_id, program""",
    # months whose time-entry data is incomplete (a rejected file, a gap, low volume): a report built
    # from claims.csv must not read such a month as a $0 month (fct_month_completeness)
    "month_completeness.csv": """
        select strftime(service_month, '%Y-%m') as service_month, month_status, is_incomplete,
               incomplete_reasons, entries, business_days, business_days_with_entries,
               longest_gap_business_days, rejected_files
        from fct_month_completeness order by service_month""",
    "modifier_advisories.csv": """
        select encounter_id, patient_id, payer_id, encounter_date, cpt_code, modifier, advice
        from fct_modifier_advisories order by encounter_date, encounter_id""",
}


# The evidence trail (fct_claim_evidence): one file per service month, claim_evidence/<YYYY-MM>.csv,
# in warehouse order (sorting ~30M rows at 10M entries costs more than writing them; the month-end
# files are sorted); a nightly run after one more day usually rewrites only the open month's file.
EVIDENCE_DIR = "claim_evidence"
# item (an entry id ...) and detail echo delivered values: each is cut to EXPORT_FIELD_CAP characters
EXPORT_FIELD_CAP = 2000
EVIDENCE_QUERY = f"""
    select patient_id, strftime(service_month, '%Y-%m') as service_month, program, section,
           left(item, {EXPORT_FIELD_CAP}) as item, status, minutes, left(detail, {EXPORT_FIELD_CAP}) as detail,
           sort_order
    from fct_claim_evidence"""
MANIFEST = "manifest.csv"


def evidence_month_query(month: str, ordered: bool = False) -> str:
    """One service month's evidence (YYYY-MM); ordered: to read each patient-month top-down."""
    order = " order by patient_id, program, sort_order, item" if ordered else ""
    return f"select * from ({EVIDENCE_QUERY}) where service_month = '{month}'{order}"


def _neutralised(conn: duckdb.DuckDBPyConnection, query: str) -> str:
    """Wrap a query so every text column is safe to open in a spreadsheet."""
    cols = conn.sql(f"describe {query}").fetchall()
    exprs = [
        f"case when regexp_matches({name}, '^[=+\\-@\\t\\r]') then '''' || {name} else {name} end as {name}"
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


def _checksums(conn: duckdb.DuckDBPyConnection, query: str, by: str | None = None) -> list[tuple]:
    """(part, rows, checksum) of a query's output, one row per value of `by` (else one row). The
    checksum starts with a digest of the query text, so a changed export definition rewrites it."""
    cols = ", ".join(c[0] for c in conn.sql(f"describe {query}").fetchall())
    prefix = hashlib.sha256(query.encode()).hexdigest()[:8]
    group = " group by all order by part" if by else ""  # no group by: one row even for an empty file
    return conn.sql(
        f"select {by or 'null'} as part, count(*), '{prefix}-' || coalesce(sum(hash({cols})), 0)::varchar"
        f" from ({query}){group}"
    ).fetchall()


def _read_manifest(conn: duckdb.DuckDBPyConnection, path: Path) -> dict[str, tuple]:
    """file -> (rows, checksum, bytes, mtime_ns) as written by the last run."""
    if not path.exists():
        return {}
    try:
        # all_varchar: later columns (the run that published it: run_id, as_of, finished_at) are ignored
        rows = conn.execute(
            "select file, rows::bigint, checksum, bytes::bigint, mtime_ns::bigint"
            " from read_csv(?, header = true, all_varchar = true)",
            [path.as_posix()],
        ).fetchall()
    except duckdb.Error:  # unreadable or another layout: every file is written again
        return {}
    return {file: rest for file, *rest in rows}


def _on_disk(path: Path) -> tuple[int, int] | None:
    """(bytes, mtime_ns) of a file, None when it is missing."""
    return (path.stat().st_size, path.stat().st_mtime_ns) if path.exists() else None


def write_exports(conn: duckdb.DuckDBPyConnection, out_dir: Path) -> dict[str, int]:
    """Every export whose content changed since it was written (or whose file is missing), then
    manifest.csv; evidence files of months that no longer have rows are removed. Returns the rows
    of each file (the evidence summed) and how many files were written and left unchanged."""
    (out_dir / EVIDENCE_DIR).mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(conn, out_dir / MANIFEST)
    # (file, query, rows, checksum) of every file this run's warehouse should give
    files = [(name, query, *_checksums(conn, query)[0][1:]) for name, query in EXPORTS.items()]
    files += [
        (f"{EVIDENCE_DIR}/{month}.csv", evidence_month_query(month), rows, checksum)
        for month, rows, checksum in _checksums(conn, EVIDENCE_QUERY, by="service_month")
    ]
    written = 0
    for name, query, rows, checksum in files:
        # written again when the content changed, or the file is missing or was changed by hand
        # (another size or modification time than the run that wrote it recorded)
        if previous.get(name) != [rows, checksum, *(_on_disk(out_dir / name) or (None, None))]:
            write_csv(conn, query, out_dir / name)
            written += 1
            fault_point("exports:after-first-file")
    current = {name for name, *_ in files}
    for stale in (out_dir / EVIDENCE_DIR).glob("*.csv"):
        if f"{EVIDENCE_DIR}/{stale.name}" not in current:
            stale.unlink()
    tmp = out_dir / f"{MANIFEST}.tmp"
    tmp.write_text(
        "file,rows,checksum,bytes,mtime_ns\n"
        + "".join(f"{n},{r},{c},{','.join(map(str, _on_disk(out_dir / n)))}\n" for n, _, r, c in files)
    )
    tmp.replace(out_dir / MANIFEST)
    counts = {name: rows for name, _, rows, _ in files if name in EXPORTS}
    counts["claim_evidence (all months)"] = sum(rows for name, _, rows, _ in files if name not in EXPORTS)
    return counts | {"files written": written, "files unchanged": len(files) - written}
