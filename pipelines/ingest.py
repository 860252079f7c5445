"""Ingest an extract drop into DuckDB: find files, read them as text, type and validate in SQL,
quarantine bad rows with reasons, and record every file in a ledger.

File-level problems (missing required table or column, unreadable file) raise ExtractError before
anything is written; row-level problems never stop the load: the row goes to `quarantine`.
All raw_* tables, the quarantine and the ledger are replaced in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines.errors import ExtractError
from pipelines.readers import discover, read_text
from pipelines.extract_format import ACCEPTED_VALUES, LOWER_CASE, TABLES, Column, Table

META_COLUMNS = ("source_file", "source_row", "delivery_seq")

SQL_TYPES = {
    "id": "varchar",
    "text": "varchar",
    "date": "date",
    "int": "integer",
    "decimal": "double",
    "bool": "boolean",
    "month": "date",
    "time": "time",
}

FORMAT_HINT = {
    "date": "a date (YYYY-MM-DD)",
    "int": "a whole number",
    "decimal": "a number",
    "bool": "true/false",
    "month": "a month (YYYY-MM)",
    "time": "a time (HH:MM)",
}


@dataclass
class IngestResult:
    files: int = 0
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_loaded: dict[str, int] = field(default_factory=dict)
    rows_quarantined: dict[str, int] = field(default_factory=dict)


def _typed(col: Column) -> str:
    """SQL expression turning the text column into its type (NULL when it cannot)."""
    v = f"nullif(trim({col.name}), '')"
    if col.name in LOWER_CASE:
        v = f"lower({v})"
    return {
        "id": v,
        "text": v,
        "date": f"try_strptime({v}, '%Y-%m-%d')::date",
        "int": f"case when regexp_full_match({v}, '[+-]?[0-9]+(\\.0+)?') then try_cast({v} as double)::integer end",
        "decimal": f"try_cast({v} as double)",
        "bool": f"case when lower({v}) in ('true','t','yes','y','1') then true "
        f"when lower({v}) in ('false','f','no','n','0') then false end",
        "month": f"try_strptime({v} || '-01', '%Y-%m-%d')::date",
        "time": f"try_cast({v} as time)",
    }[col.type]


def _problems(spec: Table) -> list[tuple[str, str]]:
    """(column, SQL expression giving a reason text or NULL) for every row-level check."""
    checks: list[tuple[str, str]] = []
    for col in spec.columns:
        raw = f"nullif(trim({col.name}), '')"
        if col.required:
            checks.append((col.name, f"case when {raw} is null then 'missing required value' end"))
        if col.type in FORMAT_HINT:
            checks.append(
                (
                    col.name,
                    f"case when {raw} is not null and t_{col.name} is null "
                    f"then 'cannot read ''' || left({raw}, 40) || ''' as {FORMAT_HINT[col.type]}' end",
                )
            )
        ref = ACCEPTED_VALUES.get((spec.name, col.name))
        if ref:
            ref_table, ref_col = ref
            checks.append(
                (
                    col.name,
                    f"case when t_{col.name} is not null and t_{col.name} not in "
                    f"(select {ref_col} from {ref_table}) then 'unknown value ''' || t_{col.name} || '''' end",
                )
            )
    if spec.name == "time_entries":
        checks.append(("minutes", "case when t_minutes <= 0 then 'minutes must be greater than 0' end"))
    if spec.name == "enrollments":
        checks.append(
            (
                "payer_id",
                "case when t_payer_id is not null and t_payer_id not in "
                "(select payer_id from ref_payers union all select payer_id from raw_payers) "
                "then 'unknown payer ''' || t_payer_id || ''' (not in reference or payers extract)' end",
            )
        )
    if spec.key:  # _first_row comes from the duplicate-key join in _load_table
        checks.append(
            (
                spec.key[0],
                f"case when source_row > _first_row then 'duplicate {'/'.join(spec.key)} "
                f"within the file (first at row ' || _first_row || ')' end",
            )
        )
    return checks


def _load_table(conn: duckdb.DuckDBPyConnection, spec: Table) -> tuple[int, int]:
    """Type and validate one table's landed text; write raw_<table> and quarantine rows."""
    typed_cols = ", ".join(f"{_typed(c)} as t_{c.name}" for c in spec.columns)
    checks = _problems(spec)
    # each check is evaluated once (p0, p1 ...), then named and joined
    problems = ", ".join(f"{expr} as _p{i}" for i, (_, expr) in enumerate(checks))
    reasons = ", ".join(f"'{col}: ' || _p{i}" for i, (col, _) in enumerate(checks))
    columns = ", ".join(f"case when _p{i} is not null then '{col}' end" for i, (col, _) in enumerate(checks))
    key = ", ".join(["source_file", *(f"t_{k}" for k in spec.key)])
    # a key delivered twice in one file: a group-by and a join (cheaper than windows over every row)
    duplicates = (
        f"select {key}, min(source_row) as _first_row from typed group by all having count(*) > 1"
        if spec.key
        else "select null as source_file, null::bigint as _first_row where false"
    )
    conn.execute(
        f"""
        create or replace temp table _checked as
        with typed as (select *, {typed_cols} from _landing_{spec.name}),
        duplicates as ({duplicates}),
        keyed as (select * from typed left join duplicates using ({key if spec.key else "source_file"})),
        checked as (select *, {problems} from keyed)
        select * exclude (_first_row, {", ".join(f"_p{i}" for i in range(len(checks)))}),
               concat_ws('; ', {reasons}) as _reason, concat_ws(',', {columns}) as _columns
        from checked
        """
    )
    out_cols = ", ".join(f"t_{c.name}::{SQL_TYPES[c.type]} as {c.name}" for c in spec.columns)
    conn.execute(
        f"create or replace table raw_{spec.name} as "
        f"select {out_cols}, source_file, source_row, delivery_seq from _checked where _reason = ''"
    )
    raw_struct = ", ".join(f"'{c.name}': {c.name}" for c in spec.columns)
    conn.execute(
        f"""
        insert into quarantine
        select '{spec.name}', source_file, source_row, _columns, _reason, to_json({{{raw_struct}}})::varchar
        from _checked where _reason <> ''
        """
    )
    loaded, quarantined = conn.sql(
        "select count(*) filter (where _reason = ''), count(*) filter (where _reason <> '') from _checked"
    ).fetchall()[0]
    conn.execute("drop table _checked")
    return loaded, quarantined


def _land(
    conn: duckdb.DuckDBPyConnection, spec: Table, files: list[Path], seq: dict[Path, int], profile=None
) -> list[str]:
    """Read every file of a table as text into the temp table _landing_<table>, one file at a time
    (so memory holds one file, not the drop). Returns file-level errors; nothing is written to the
    warehouse itself."""
    cols = ", ".join(f"{c.name} varchar" for c in spec.columns)
    conn.execute(
        f"create or replace temp table _landing_{spec.name} ({cols}, source_file varchar, source_row bigint,"
        " delivery_seq bigint)"
    )
    errors = []
    for path in files:
        try:
            df, first_row = read_text(path, spec.name, profile)
        except ExtractError as exc:
            errors.append(str(exc))
            continue
        missing = [c for c in spec.required_columns if c not in df.columns]
        if missing:
            errors.append(
                f"{path}: missing required column(s) {', '.join(missing)} for table {spec.name}; "
                f"columns found: {', '.join(df.columns) or '(none)'}"
            )
            continue
        df = df.select(  # noqa: F841  (read by DuckDB's replacement scan)
            [pl.col(c.name) if c.name in df.columns else pl.lit(None, pl.String).alias(c.name) for c in spec.columns]
        ).with_columns(
            pl.lit(path.name).alias("source_file"),
            (pl.int_range(pl.len(), dtype=pl.Int64) + first_row).alias("source_row"),
            pl.lit(seq[path], pl.Int64).alias("delivery_seq"),
        )
        conn.execute(f"insert into _landing_{spec.name} select * from df")
        del df
    return errors


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Payers load first: enrollments are checked against them.
LOAD_ORDER = ["payers", *[t for t in TABLES if t != "payers"]]


def load_drop(
    conn: duckdb.DuckDBPyConnection, drop_dir: Path, profile: str | None = None, full_refresh: bool = False
) -> IngestResult:
    """Load a whole drop folder. Raises ExtractError (nothing written) on any file-level problem."""
    drop_dir = Path(drop_dir)
    found = discover(drop_dir, profile)
    all_files = sorted((p for files in found.values() for p in files), key=lambda p: p.name)
    seq = {p: i + 1 for i, p in enumerate(all_files)}
    # Read and check every file (into temp tables) before touching the warehouse.
    errors = [e for table in LOAD_ORDER for e in _land(conn, TABLES[table], found[table], seq, profile)]
    if errors:
        _drop_landing(conn)
        raise ExtractError("\n".join(errors))

    result = IngestResult(files=len(all_files))
    conn.begin()
    try:
        conn.execute(
            "create or replace table quarantine (table_name varchar, source_file varchar, source_row bigint,"
            " columns varchar, reason varchar, record varchar)"
        )
        for table in LOAD_ORDER:
            loaded, quarantined = _load_table(conn, TABLES[table])
            result.rows_read[table] = loaded + quarantined
            result.rows_loaded[table] = loaded
            result.rows_quarantined[table] = quarantined
        rows_per_file = conn.sql(  # noqa: F841  (read by DuckDB's replacement scan)
            " union all ".join(
                f"select source_file, count(*)::bigint as rows_read from _landing_{t} group by all" for t in TABLES
            )
        ).pl()
        ledger = pl.DataFrame(  # noqa: F841  (read by DuckDB's replacement scan)
            {
                "source_file": [p.name for p in all_files],
                "table_name": [next(t for t, fs in found.items() if p in fs) for p in all_files],
                "delivery_seq": [seq[p] for p in all_files],
                "sha256": [_sha256(p) for p in all_files],
                "bytes": [p.stat().st_size for p in all_files],
            },
            schema_overrides={"delivery_seq": pl.Int64, "bytes": pl.Int64},
        ).join(rows_per_file, on="source_file", how="left")
        conn.execute(
            """
            create or replace table ingest_files as
            select l.source_file, l.table_name, l.delivery_seq, l.sha256, l.bytes,
                   coalesce(l.rows_read, 0) as rows_read,
                   coalesce(l.rows_read, 0) - coalesce(q.n, 0) as rows_loaded,
                   coalesce(q.n, 0) as rows_quarantined,
                   current_timestamp as loaded_at
            from ledger l
            left join (select source_file, count(*) as n from quarantine group by all) q using (source_file)
            order by l.delivery_seq
            """
        )
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    finally:
        _drop_landing(conn)
    return result


def _drop_landing(conn: duckdb.DuckDBPyConnection) -> None:
    for table in TABLES:
        conn.execute(f"drop table if exists _landing_{table}")


def write_run_parameters(conn: duckdb.DuckDBPyConnection, as_of) -> None:
    """The run's as-of date: months before its month are closed, its month is open."""
    conn.execute(
        "create or replace table run_parameters as select ?::date as as_of, current_timestamp as run_started_at",
        [str(as_of)],
    )
