"""Ledgers that outlive the warehouse: what cannot be recomputed from the drop is also kept, append
only, in `<warehouse>.ledger/` beside the warehouse file (next to `<warehouse>.copies/`), so a
restored copy or a rebuilt warehouse re-reads it and never forgets a delivery, a submission or a
close:

    <warehouse>.ledger/files/*.parquet             every ingest_files row (file name, table, sha256,
                                                   status, delivery, loaded_at); a 'reset' row per
                                                   --full-refresh
    <warehouse>.ledger/submissions/*.parquet       x12_claim_submissions rows (claims sent, frequency
                                                   code, control number, file name)
    <warehouse>.ledger/submission_lines/*.parquet  x12_claim_submission_lines rows (the lines sent)
    <warehouse>.ledger/closes/*.parquet            month_end_close rows (one per month closed)

Each write is one new Parquet file (written to a temporary name, fsynced, renamed, its folder
fsynced), made before the warehouse transaction commits and before the outputs that depend on it
are written: a crash can leave a ledger row without its warehouse row (harmless: it is re-read),
never the reverse. Nothing here rewrites or deletes a ledger file.

Re-reading (`restore_into`): the submission and close rows the warehouse lacks are inserted again
(the close then sends only what changed since the last submission, with fresh control numbers); the
file rows are compared with the drop by pipelines/ingest/load.py (`missing_deliveries`): a file
the ledger says was loaded, which the warehouse lacks, is loaded again from the drop, or named for
re-delivery when the drop no longer holds it. No Dagster import.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import duckdb

SUFFIX = ".ledger"
FILES, SUBMISSIONS, SUBMISSION_LINES, CLOSES = "files", "submissions", "submission_lines", "closes"


def folder_of(warehouse: Path) -> Path:
    return Path(warehouse).with_name(Path(warehouse).name + SUFFIX)


def warehouse_of(conn: duckdb.DuckDBPyConnection) -> Path | None:
    """The file of the connection's database (None for an in-memory one: no ledger is kept)."""
    (path,), = conn.sql("select path from duckdb_databases() where database_name = current_database()").fetchall()
    return Path(path) if path else None


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append(conn: duckdb.DuckDBPyConnection, kind: str, query: str, params: list | None = None) -> int:
    """Append the rows of `query` to the ledger `kind` of the connection's warehouse as one new
    Parquet file (fsynced before it is renamed into place). Returns the rows written (no file for
    none, nor for an in-memory warehouse)."""
    warehouse = warehouse_of(conn)
    if warehouse is None:
        return 0
    rows = conn.execute(f"select count(*) from ({query})", params or []).fetchall()[0][0]
    if not rows:
        return 0
    target_dir = folder_of(warehouse) / kind
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = target_dir / f"{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = target_dir / f".{target.name}.tmp"
    try:
        conn.execute(f"copy ({query}) to {_quote(tmp)} (format parquet)", params or [])
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(target_dir)
        _fsync(target_dir.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def files_of(warehouse: Path | None, kind: str) -> list[str]:
    if warehouse is None:
        return []
    folder = folder_of(warehouse) / kind
    if not folder.is_dir():
        return []
    return sorted(str(p) for p in folder.iterdir() if p.suffix == ".parquet" and not p.name.startswith("."))


def relation(conn: duckdb.DuckDBPyConnection, kind: str) -> str | None:
    """SQL text of a table expression reading every row of the ledger `kind` (None when it has none)."""
    files = files_of(warehouse_of(conn), kind)
    if not files:
        return None
    return "read_parquet([" + ", ".join(_quote(Path(f)) for f in files) + "], union_by_name = true)"


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in conn.sql(
        "select column_name from duckdb_columns() where table_name = ? and schema_name = 'main'"
        " and database_name = current_database() order by column_index", params=[table]).fetchall()]


def _restore_rows(conn: duckdb.DuckDBPyConnection, kind: str, table: str, key: list[str]) -> int:
    """Insert the ledger rows of `kind` whose key `table` lacks (creating `table` from the ledger
    when the warehouse predates it). Returns the rows inserted."""
    source = relation(conn, kind)
    if source is None:
        return 0
    have = _columns(conn, table)
    if not have:
        conn.execute(f"create table {table} as select * from {source}")
        return conn.sql(f"select count(*) from {table}").fetchall()[0][0]
    ledger_cols = {r[0] for r in conn.sql(f"describe select * from {source}").fetchall()}
    shared = [c for c in have if c in ledger_cols]
    on = " and ".join(f"t.{k} is not distinct from l.{k}" for k in key)
    before = conn.sql(f"select count(*) from {table}").fetchall()[0][0]
    conn.execute(
        f"insert into {table} ({', '.join(shared)})"
        f" select distinct {', '.join('l.' + c for c in shared)} from {source} as l"
        f" where not exists (select 1 from {table} as t where {on})"
    )
    return conn.sql(f"select count(*) from {table}").fetchall()[0][0] - before


def restore_into(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Re-read the submission ledger and the close records into the warehouse (a restored copy, or a
    rebuilt warehouse, lacks what was sent or closed after it): rows it lacks are inserted; a month
    closed later than the warehouse's own close row takes the ledger's row. Idempotent."""
    from pipelines.x12.claims_837 import ensure_ledger

    ensure_ledger(conn)
    restored = {
        SUBMISSIONS: _restore_rows(conn, SUBMISSIONS, "x12_claim_submissions",
                                   ["claim_id", "interchange_control_number", "frequency_code"]),
        SUBMISSION_LINES: _restore_rows(conn, SUBMISSION_LINES, "x12_claim_submission_lines",
                                        ["claim_id", "interchange_control_number", "line_number"]),
    }
    source = relation(conn, CLOSES)
    restored[CLOSES] = 0
    if source is not None:
        latest = f"(select * from {source} qualify row_number() over (partition by service_month order by closed_at desc) = 1)"
        if not _columns(conn, "month_end_close"):
            conn.execute(f"create table month_end_close as select * from {latest}")
            restored[CLOSES] = conn.sql("select count(*) from month_end_close").fetchall()[0][0]
        else:
            newer = (f"select l.* from {latest} as l left join month_end_close as m using (service_month)"
                     " where m.closed_at is null or l.closed_at > m.closed_at")
            restored[CLOSES] = conn.sql(f"select count(*) from ({newer})").fetchall()[0][0]
            if restored[CLOSES]:
                conn.execute(f"create or replace temp table _newer_closes as {newer}")
                conn.execute("delete from month_end_close where service_month in (select service_month from _newer_closes)")
                conn.execute("insert into month_end_close by name select * from _newer_closes")
                conn.execute("drop table _newer_closes")
    return restored


def mirror_files(conn: duckdb.DuckDBPyConnection) -> int:
    """Append to the file ledger outside the warehouse every ingest_files row it does not hold yet
    (this load's rows; on the first run of this version, every row): called inside the load's
    transaction, before it commits. Returns the rows appended."""
    if not _columns(conn, "ingest_files"):
        return 0
    source = relation(conn, FILES)
    key = ["table_name", "source_file", "sha256", "status", "loaded_at"]
    new = "select * from ingest_files"
    if source is not None:
        on = " and ".join(f"o.{k} is not distinct from i.{k}" for k in key)
        new = f"select * from ingest_files as i where not exists (select 1 from {source} as o where {on})"
    return append(conn, FILES, new)
