"""The run state kept in the warehouse between runs: the run parameters (as-of date, run id) and the
claims baseline (`claims_previous_run`, `publications`) that a run's claims_changes.csv compares with."""

from __future__ import annotations

import duckdb

from pipelines.warehouse.database import table_exists, transaction


def write_run_parameters(conn: duckdb.DuckDBPyConnection, as_of, run_id: str | None = None) -> None:
    """The run's as-of date: months before its month are closed, its month is open. `run_id` (the
    Dagster run) says which run wrote them (a later run can tell whether that run published);
    `last_published_at` is when the last run that published did so (files loaded since then are
    this publication's deliveries in claims_changes.csv, even if a failed run loaded them)."""
    published = "null"
    if table_exists(conn, "publications"):
        published = "(select max(published_at) from publications)"
    conn.execute(
        "create or replace table run_parameters as"
        " select ?::date as as_of, current_timestamp as run_started_at, ?::varchar as run_id,"
        f" {published}::timestamp as last_published_at",
        [str(as_of), run_id],
    )


CLAIM_BASELINE_COLUMNS = (
    "claim_line_id varchar, patient_id varchar, payer_id varchar, program varchar, service_month date,"
    " code varchar, units integer, modifiers varchar, date_of_service date, expected_amount decimal(12,2)"
)


def ensure_claims_baseline(conn: duckdb.DuckDBPyConnection) -> int:
    """At the start of a run: the claims of the last run that published (`claims_previous_run`,
    written by snapshot_claims when a run publishes) and the `publications` log, created empty on a
    new warehouse. A run that fails leaves both as they were, so the next run still reports every
    change since the last published claims."""
    conn.execute(f"create table if not exists claims_previous_run ({CLAIM_BASELINE_COLUMNS})")
    conn.execute(
        "create table if not exists publications"
        " (run_id varchar, as_of date, published_at timestamp, claim_lines bigint)"
    )
    return conn.sql("select count(*) from claims_previous_run").fetchall()[0][0]


def snapshot_claims(conn: duckdb.DuckDBPyConnection, run_id: str | None = None) -> int:
    """When a run has published its outputs: its claims become `claims_previous_run`, the baseline
    the next run's fct_claim_changes / claims_changes.csv compares with, and the run is added to
    `publications` (one transaction). Before any model was built it writes an empty baseline."""
    names = ", ".join(c.split()[0] for c in CLAIM_BASELINE_COLUMNS.split(", "))
    ensure_claims_baseline(conn)
    with transaction(conn):
        conn.execute(f"create or replace table claims_previous_run ({CLAIM_BASELINE_COLUMNS})")
        if table_exists(conn, "fct_claims"):
            conn.execute(f"insert into claims_previous_run select {names} from fct_claims")
        conn.execute(
            "insert into publications select ?, "
            + ("(select any_value(as_of) from run_parameters)" if table_exists(conn, "run_parameters") else "null")
            + ", current_timestamp, (select count(*) from claims_previous_run)",
            [run_id],
        )
    return conn.sql("select count(*) from claims_previous_run").fetchall()[0][0]
