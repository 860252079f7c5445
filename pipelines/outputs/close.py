"""Month-end close: the claim file and its evidence for one closed service month, kept as of the day
it was closed. A billing team submits `month_end/claims_<YYYY-MM>.csv`; the auditor reads
`month_end/claim_evidence_<YYYY-MM>.csv`; `month_end_claims` keeps the lines in the warehouse.

The close also sends the month's claims as X12 837P (`month_end/837p/*.x12`, pipelines/x12/claims_837.py):
originals, then on a later close only replacements (changed claims) and voids (claims no longer
billable), recorded in the warehouse's submission ledger.

The close records (month_end_close) and the submission ledger are also kept outside the warehouse,
append-only, in `<warehouse>.ledger/` (pipelines/ledgers.py), written before the files: a restored
or rebuilt warehouse re-reads them first, so a close after `bhi restore` never sends again what was
sent after the copy.

Closing a month again (a rerun, or after a late entry re-opened it) replaces that month's rows and
files (delete-then-insert), so a backfill over a range of months can run any number of times.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipelines import ledgers
from pipelines.outputs.exports import EXPORTS, evidence_month_query, write_csv
from pipelines.warehouse.database import transaction
from pipelines.x12.claims_837 import Interchange, submit_month

MONTH_END_DIR = "month_end"


def months_between(first: str, last: str) -> list[str]:
    """['2026-05', '2026-06', ...] from YYYY-MM to YYYY-MM inclusive."""
    start, end = dt.date.fromisoformat(f"{first}-01"), dt.date.fromisoformat(f"{last}-01")
    if end < start:
        raise ValueError(f"month range {first}..{last} is empty")
    months = []
    while start <= end:
        months.append(f"{start:%Y-%m}")
        start = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return months


def _add_missing_columns(conn: duckdb.DuckDBPyConnection, table: str, source: str) -> None:
    """Columns `source` gained since `table` was created (e.g. fct_claims.price_status) are added
    to `table` (empty for the rows closed before), so a warehouse closed by an earlier version keeps
    closing months."""
    have = {r[0] for r in conn.sql(f"select column_name from (describe {table})").fetchall()}
    for name, ctype, *_ in conn.sql(f"describe {source}").fetchall():
        if name not in have:
            conn.execute(f'alter table {table} add column "{name}" {ctype}')


def close_months(conn: duckdb.DuckDBPyConnection, out_dir: Path, first: str, last: str) -> list[tuple]:
    """Close every month from `first` to `last` (YYYY-MM): rows in month_end_claims and
    month_end_close, and the two CSV files per month. Returns (month, claim lines, amount, unpriced
    lines): an unpriced line (no fee-schedule rate in force) is closed as it is, marked unpriced in
    the month's claim file and counted in month_end_close.unpriced_lines."""
    months = months_between(first, last)
    as_of = conn.sql("select as_of from run_parameters").fetchall()[0][0]
    open_month = f"{as_of:%Y-%m}"
    if months[-1] >= open_month:
        raise ValueError(
            f"month {months[-1]} is not closed as of {as_of} (the warehouse's last run); close months before"
            f" {open_month}, or run the nightly job with a later --as-of first"
        )
    month_list = ", ".join(f"'{m}-01'::date" for m in months)
    ledgers.restore_into(conn)  # what was sent or closed after a restored copy was taken
    with transaction(conn):
        conn.execute(
            "create table if not exists month_end_claims as"
            " select *, current_timestamp as closed_at, as_of as closed_as_of from fct_claims, run_parameters where false"
        )
        _add_missing_columns(conn, "month_end_claims", "fct_claims")
        conn.execute(f"delete from month_end_claims where service_month in ({month_list})")
        conn.execute(
            "insert into month_end_claims by name select c.*, current_timestamp as closed_at, p.as_of as closed_as_of"
            f" from fct_claims as c cross join run_parameters as p where c.service_month in ({month_list})"
        )
        conn.execute(
            "create table if not exists month_end_close (service_month date, claim_lines bigint,"
            " expected_amount decimal(14,2), expected_collection decimal(14,2), closed_as_of date, closed_at timestamp,"
            " unpriced_lines bigint)"
        )
        conn.execute("alter table month_end_close add column if not exists unpriced_lines bigint")
        conn.execute(f"delete from month_end_close where service_month in ({month_list})")
        conn.execute(
            f"""
            insert into month_end_close by name
            select m.month as service_month, count(c.claim_line_id) as claim_lines,
                   coalesce(sum(c.expected_amount), 0) as expected_amount,
                   coalesce(sum(c.expected_collection), 0) as expected_collection, any_value(p.as_of) as closed_as_of,
                   current_timestamp as closed_at, count(*) filter (where c.price_status = 'unpriced') as unpriced_lines
            from (select unnest([{month_list}]) as month) as m
            cross join run_parameters as p
            left join fct_claims as c on c.service_month = m.month
            group by m.month
            """
        )
        # outside the warehouse too, before the month's files are written
        ledgers.append(conn, ledgers.CLOSES, f"select * from month_end_close where service_month in ({month_list})")
    folder = Path(out_dir) / MONTH_END_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for month in months:
        write_csv(conn, f"select * from ({EXPORTS['claims.csv']}) where service_month = '{month}'",
                  folder / f"claims_{month}.csv")
        write_csv(conn, evidence_month_query(month), folder / f"claim_evidence_{month}.csv")
    return conn.sql(
        f"select strftime(service_month, '%Y-%m'), claim_lines, expected_amount, unpriced_lines from month_end_close"
        f" where service_month in ({month_list}) order by 1"
    ).fetchall()


def send_claims(conn: duckdb.DuckDBPyConnection, out_dir: Path, first: str, last: str) -> list[Interchange]:
    """The 837P interchanges of every month from `first` to `last` (after close_months): what is new,
    changed or no longer billable since the last close of the month."""
    folder = Path(out_dir) / MONTH_END_DIR
    sent: list[Interchange] = []
    when = dt.datetime.now(dt.UTC).replace(tzinfo=None)  # one submission time for the whole close
    for month in months_between(first, last):
        sent += submit_month(conn, folder, month, when)
    return sent
