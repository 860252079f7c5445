"""Asset checks for the invariants a compliance officer relies on. Blocking: exports and dashboards
are not written from a warehouse that breaks one."""

import dagster as dg
from dagster_duckdb import DuckDBResource


def _rows(warehouse: DuckDBResource, sql: str) -> list[tuple]:
    with warehouse.get_connection() as conn:
        return conn.sql(sql).fetchall()


@dg.asset_check(asset="fct_minutes_reconciliation", blocking=True)
def every_minute_accounted_for(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    """Rows read = rows loaded + quarantined; minutes loaded = minutes counted + excluded."""
    (read, loaded, quarantined, raw_minutes, classified_minutes), = _rows(
        warehouse,
        """
        select
            (select coalesce(sum(rows_read), 0) from ingest_files where table_name = 'time_entries' and status = 'loaded'),
            (select count(*) from raw_time_entries),
            (select count(*) from quarantine where table_name = 'time_entries'),
            (select coalesce(sum(minutes), 0) from raw_time_entries),
            (select coalesce(sum(minutes), 0) from fct_minutes_reconciliation where status <> 'quarantined')
        """,
    )
    ok = read == loaded + quarantined and raw_minutes == classified_minutes
    return dg.AssetCheckResult(
        passed=bool(ok),
        metadata={
            "rows_read": read,
            "rows_loaded": loaded,
            "rows_quarantined": quarantined,
            "minutes_loaded": int(raw_minutes),
            "minutes_counted_or_excluded": int(classified_minutes),
        },
    )


@dg.asset_check(asset="fct_claims", blocking=True)
def no_forbidden_code_combinations(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    """No patient-month bills two base codes (e.g. 99492 + 99493, 99493 + G2214) or CoCM + 99484."""
    bad = _rows(
        warehouse,
        """
        select count(*) from (
            select c.patient_id, c.service_month
            from fct_claims as c
            -- the APCM add-ons (G0568-G0570) are the one code of an APCM month: base codes here too
            inner join (
                select distinct code, kind from ref_code_thresholds
                union select distinct apcm_code, 'base' from ref_apcm_add_ons where apcm_code is not null
            ) as r using (code)
            where r.kind = 'base'
            group by all
            having count(*) > 1
        )
        """,
    )[0][0]
    return dg.AssetCheckResult(passed=bad == 0, metadata={"patient_months_with_two_base_codes": bad})


@dg.asset_check(asset="fct_claims", blocking=True)
def claim_lines_unique_with_units(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    """claim_line_id unique and every line has units > 0: a warehouse that breaks this writes no
    exports. An unpriced line does not block (see claim_lines_priced)."""
    (dupes, zero_units), = _rows(
        warehouse,
        """
        select
            (select count(*) - count(distinct claim_line_id) from fct_claims),
            (select count(*) from fct_claims where units <= 0)
        """,
    )
    problems = [f"{dupes} duplicate claim_line_id(s)"] if dupes else []
    problems += [f"{zero_units} line(s) with units <= 0"] if zero_units else []
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) or None,
        metadata={"duplicate_claim_line_ids": dupes, "zero_unit_lines": zero_units},
    )


UNPRICED_LIST_CAP = 20  # payer/code/month lines named (check description, `bhi run`), then "... and N more"


def unpriced_summary(rows: list[tuple], cap: int) -> list[str]:
    """One line per (payer, code, month, lines, reason) row, at most `cap`, then '... and N more'."""
    lines = [
        f"{payer} {code} {month}: {n} line(s) unpriced, "
        + ("the fee row in force has no amount" if reason == "fee_row_without_amount" else "no fee_schedule.csv row in force")
        for payer, code, month, n, reason in rows[:cap]
    ]
    if len(rows) > cap:
        lines.append(f"... and {len(rows) - cap} more payer/code/month combinations")
    return lines


UNPRICED_BY_PAYER_CODE_MONTH = """
    select payer_id, code, strftime(service_month, '%Y-%m') as month, count(*) as lines, min(reason) as reason
    from fct_unpriced_claim_lines
    group by payer_id, code, service_month
    order by month, payer_id, code"""


@dg.asset_check(asset="fct_unpriced_claim_lines", blocking=False)
def claim_lines_priced(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    """Every claim line has a fee-schedule amount. Not blocking: the exports are written with the
    unpriced lines marked (claims.csv price_status, unpriced_claim_lines.csv) and `bhi run` exits
    non-zero naming each payer, code and month to price."""
    rows = _rows(warehouse, UNPRICED_BY_PAYER_CODE_MONTH)
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(unpriced_summary(rows, UNPRICED_LIST_CAP)) or None,
        metadata={"unpriced_lines": sum(r[3] for r in rows), "payer_code_months": len(rows)},
    )


# facility-months whose program_costs rows and ROI other cost differ (the open month is prorated to the
# days elapsed, so it is compared prorated); none when every cost row landed in fct_program_roi
PROGRAM_COSTS_NOT_IN_ROI = """
    with costs as (
        select facility_id, date_trunc('month', cost_month)::date as service_month, sum(amount) as amount
        from stg_program_costs
        group by all
    )
    select count(*), coalesce(sum(c.amount), 0)
    from costs as c
    left join fct_program_roi as r using (facility_id, service_month)
    where r.facility_id is null
       or abs(r.other_cost - round(c.amount * r.cost_share_of_month, 2)) > 0.005
"""


@dg.asset_check(asset="fct_program_roi", blocking=True)
def program_costs_in_roi(warehouse: DuckDBResource) -> dg.AssetCheckResult:
    """Every program_costs row lands in the ROI, whatever its month (a cost in a month without
    patients once disappeared): per facility and month, the ROI's other cost is the sum of the
    rows (the open month prorated like every cost of it)."""
    (months, amount), = _rows(warehouse, PROGRAM_COSTS_NOT_IN_ROI)
    return dg.AssetCheckResult(
        passed=months == 0,
        description=f"{months} facility-month(s) of program costs (${float(amount):,.2f}) not in the ROI" if months else None,
        metadata={"facility_months_missing": months, "amount_missing": float(amount)},
    )


CHECKS = [
    every_minute_accounted_for, no_forbidden_code_combinations, claim_lines_unique_with_units, claim_lines_priced,
    program_costs_in_roi,
]
