"""Ingest an extract drop into DuckDB: find files, read them as text, type and validate in SQL,
quarantine bad rows with reasons, and record every file in a ledger (`ingest_files`).

Loads are incremental: only files not loaded before are read; a file whose bytes were already loaded
(re-delivered, or copied under another name) is recorded and skipped, so it never counts twice. The
raw_* tables keep every delivered version (the latest delivery of a key wins in staging). A file with
a file-level problem (missing column, unreadable, empty) is rejected with a message naming the file
and column, the others load; row-level problems never stop the load: a row with a problem in a
billing-critical column (or a malformed CSV record) goes to `quarantine`, a bad value in any other
column is a `field_warnings` row and the row loads with that column empty. Reasons and messages name
file, row and column; values of id, name and date columns stay in the quarantine record only.
All writes of one load happen in one transaction.
"""

from __future__ import annotations

import hashlib
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from pipelines import ledgers
from pipelines.ingest import fhir, native_child, native_csv
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.extract_format import ACCEPTED_VALUES, LOWER_CASE, TABLES, Column, Table
from pipelines.ingest.limits import ReaderLimits, reader_limits
from pipelines.ingest.profiles import load_profile
from pipelines.ingest.readers import discover, iter_parts, outside_link
from pipelines.safety import OperationalError
from pipelines.warehouse.database import table_columns, transaction, typed_columns

META_COLUMNS = ("source_file", "source_row", "delivery_seq")

SQL_TYPES = {
    "id": "varchar",
    "text": "varchar",
    "date": "date",
    "timestamp": "timestamp",
    "int": "integer",
    "decimal": "double",
    "bool": "boolean",
    "month": "date",
    "time": "time",
}

FORMAT_HINT = {
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "a date or date-time (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS])",
    "int": "a whole number",
    "decimal": "a number",
    "bool": "true/false",
    "month": "a month (YYYY-MM)",
    "time": "a time (HH:MM)",
}

# Types whose unreadable value is quoted in the quarantine reason (cut to 40 characters). Values of
# id, name and date-like columns are never quoted in a reason: they stay in the quarantine record.
ECHO_TYPES = {"int", "decimal", "bool"}
RECORD_FIELD_CAP = 200  # characters of each field kept in a quarantine record

# An ISO date, optionally with a time of day ('T' or a space; seconds and fractions optional) and a
# trailing Z or UTC offset: group 1 is the date, group 2 the time. The date and time are taken as
# written (the offset is not applied: the service date is the local day the source system shows).
ISO_DATETIME = (
    r"^([0-9]{4}-[0-9]{1,2}-[0-9]{1,2})"
    r"(?:[T ]([0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?) ?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$"
)


@dataclass
class IngestResult:
    files: int = 0
    rows_read: dict[str, int] = field(default_factory=dict)
    rows_loaded: dict[str, int] = field(default_factory=dict)
    rows_quarantined: dict[str, int] = field(default_factory=dict)
    field_warnings: dict[str, int] = field(default_factory=dict)  # unreadable optional values of loaded rows
    file_errors: list[str] = field(default_factory=list)  # files skipped for a file-level problem
    files_loaded: int = 0
    files_skipped: int = 0  # already loaded before, or a copy of a loaded file
    rows_in_warehouse: dict[str, int] = field(default_factory=dict)  # raw rows of every delivery so far


def _iso_part(v: str, group: int) -> str:
    return f"nullif(regexp_extract({v}, '{ISO_DATETIME}', {group}), '')"


def _value(col: Column) -> str:
    """The delivered text of a column as typing and checks read it: trimmed, an empty value NULL.
    _load_table computes it once per column, as v_<column>."""
    return f"nullif(trim({col.name}), '')"


def _typed(col: Column, v: str | None = None) -> str:
    """SQL expression turning the text column (or its value `v`) into its type (NULL when it cannot,
    also when a number does not fit its type: a conversion never fails the load). Each regular
    expression appears once, so that DuckDB evaluates it only for the values that need it."""
    v = v or _value(col)
    if col.name in LOWER_CASE:
        v = f"lower({v})"
    day = f"try_strptime(regexp_extract({v}, '{ISO_DATETIME}', 1), '%Y-%m-%d')::date"  # no date part: ''"
    # the time of day of a date-time (none: midnight); NULL when it is not a real time, and so the
    # date-time is not readable
    clock = f"try_cast(coalesce({_iso_part(v, 2)}, '00:00') as time)"
    return {
        "id": v,
        "text": v,
        # a date column takes the date part of a date-time (what EHR reports export); a plain date
        # is read first without the regular expression (the common case, twice as fast)
        "date": f"coalesce(try_strptime({v}, '%Y-%m-%d')::date, case when {clock} is not null then {day} end)",
        "timestamp": f"coalesce(try_strptime({v}, '%Y-%m-%d')::timestamp, {day} + {clock})",
        # try_cast twice: a value too large for an integer is unreadable, not a failed load
        "int": f"case when regexp_full_match({v}, '[+-]?[0-9]+(\\.0+)?') then try_cast(try_cast({v} as double) as integer) end",
        "decimal": f"case when isfinite(try_cast({v} as double)) then try_cast({v} as double) end",
        "bool": f"case when lower({v}) in ('true','t','yes','y','1') then true "
        f"when lower({v}) in ('false','f','no','n','0') then false end",
        "month": f"try_strptime({v} || '-01', '%Y-%m-%d')::date",
        "time": f"try_cast({v} as time)",
    }[col.type]


def _unreadable(col: Column, raw: str) -> str:
    """SQL text of the reason for a value of `col` that cannot be read; the value is quoted only for
    numbers and booleans (ECHO_TYPES), never for ids, names or dates."""
    hint = FORMAT_HINT[col.type]
    if col.type in ECHO_TYPES:
        return "'cannot read ''' || left(" + raw + ", 40) || ''' as " + hint + "'"
    return "'cannot read the value as " + hint + "'"


# the settings the checks read, as one row joined to every row (a scalar subquery in a comparison
# would be planned as a nested-loop join)
SETTINGS = "(select (select value::integer from ref_settings where setting = 'max_minutes_per_entry') as _max_minutes)"


def _problems(spec: Table) -> list[tuple[str, str, bool]]:
    """(column, SQL expression giving a reason text or NULL, critical) for every row-level check. A
    critical problem quarantines the row; any other is a field warning (the row loads with that
    column empty)."""
    checks: list[tuple[str, str, bool]] = []
    for col in spec.columns:
        raw = f"v_{col.name}"  # the trimmed value, computed once (_value)
        if col.required:
            checks.append((col.name, f"case when {raw} is null then 'missing required value' end", True))
        if col.type in FORMAT_HINT:
            checks.append(
                (
                    col.name,
                    f"case when {raw} is not null and t_{col.name} is null then {_unreadable(col, raw)} end",
                    col.critical,
                )
            )
        ref = ACCEPTED_VALUES.get((spec.name, col.name))
        if ref:
            ref_table, ref_col = ref
            checks.append(
                (
                    col.name,
                    f"case when t_{col.name} is not null and t_{col.name} not in "
                    f"(select {ref_col} from {ref_table}) then 'unknown value ''' || left(t_{col.name}, 40) || '''' end",
                    col.critical,
                )
            )
    if spec.name == "time_entries":
        checks.append(("minutes", "case when t_minutes <= 0 then 'minutes must be greater than 0' end", True))
        # an implausibly long entry (setting max_minutes_per_entry, column _max_minutes of SETTINGS)
        # is a typo until someone confirms it
        checks.append(
            (
                "minutes",
                "case when t_minutes > _max_minutes then 'minutes ' || t_minutes || ' over the maximum of ' || _max_minutes"
                " || ' per entry (setting max_minutes_per_entry)' end",
                True,
            )
        )
    if spec.name == "enrollments":
        checks.append(
            (
                "payer_id",
                "case when t_payer_id is not null and t_payer_id not in "
                "(select payer_id from ref_payers union all select payer_id from raw_payers) "
                "then 'unknown payer (not in reference or payers extract)' end",
                True,
            )
        )
    if spec.key:  # _first_file / _first_row come from the duplicate-key join in _load_table
        checks.append(
            (
                spec.key[0],
                # one delivery is one file, or every sheet of one workbook (they share its delivery_seq)
                f"case when (source_file, source_row) > (_first_file, _first_row) then 'duplicate {'/'.join(spec.key)} "
                f"' || case when source_file = _first_file then 'within the file (first at row ' || _first_row || ')'"
                f" else 'within the delivery (first in ' || _first_file || ' at row ' || _first_row || ')' end end",
                True,
            )
        )
    return checks


def _load_table(conn: duckdb.DuckDBPyConnection, spec: Table) -> tuple[int, int, int]:
    """Type and validate one table's landed text; write raw_<table>, quarantine rows and field
    warnings. Returns (rows loaded, rows quarantined, field warnings).

    One pass types and checks every landed row into _checked, which keeps what the writes need: the
    typed values (a column with a field warning already empty), the field warnings, and for a
    quarantined row only its reasons and its delivered values; raw_<table> is then a copy."""
    columns_of = {c.name: c for c in spec.columns}
    values = ", ".join(f"{_value(c)} as v_{c.name}" for c in spec.columns)
    typed_cols = ", ".join(f"{_typed(c, f'v_{c.name}')} as t_{c.name}" for c in spec.columns)
    checks = _problems(spec)
    # each check is evaluated once (p0, p1 ...), then named and joined
    problems = ", ".join(f"{expr} as _p{i}" for i, (_, expr, _) in enumerate(checks))
    reasons = ", ".join(f"'{col}: ' || _p{i}" for i, (col, _, _) in enumerate(checks))
    columns = ", ".join(f"case when _p{i} is not null then '{col}' end" for i, (col, _, _) in enumerate(checks))
    critical = " or ".join(f"_p{i} is not null" for i, (_, _, c) in enumerate(checks) if c) or "false"
    warnings = [(i, col) for i, (col, _, c) in enumerate(checks) if not c]
    # a key delivered twice in one delivery (a file, or the sheets of one workbook: one delivery_seq,
    # so both would be live versions of one entry): found by a group-by on a hash of delivery and key,
    # then checked on the key itself for the few rows whose hash is not unique (grouping a million
    # text keys is slower), and joined to the rows; the first in (file label, row) order is kept
    key = ", ".join(["delivery_seq", *(f"t_{k}" for k in spec.key)])
    duplicates = (
        f"""keys as (select delivery_seq, source_file, source_row,
                            {', '.join(f'{_typed(columns_of[k])} as t_{k}' for k in spec.key)}
                     from _landing_{spec.name} where _malformed is null),
        repeated as (select hash({key}) as _hash from keys group by all having count(*) > 1),
        duplicates as (select {key}, min((source_file, source_row)) as _first from keys
                       where hash({key}) in (select _hash from repeated) group by all having count(*) > 1)"""
        if spec.key
        else "duplicates as (select null::bigint as delivery_seq, null::struct(f varchar, r bigint) as _first where false)"
    )
    # a column with a field warning is loaded empty for that row
    out_cols = ", ".join(
        (
            f"case when {' or '.join(f'_p{i} is not null' for i, col in warnings if col == c.name)} then null"
            f" else t_{c.name} end::{SQL_TYPES[c.type]} as {c.name}"
        )
        if any(col == c.name for _, col in warnings)
        else f"t_{c.name}::{SQL_TYPES[c.type]} as {c.name}"
        for c in spec.columns
    )
    # the record keeps the delivered values (each cut to RECORD_FIELD_CAP characters)
    raw_struct = ", ".join(f"'{c.name}': left({c.name}, {RECORD_FIELD_CAP})" for c in spec.columns)
    conn.execute(
        f"""
        create or replace temp table _checked as
        with {duplicates},
        trimmed as (select *, {values} from _landing_{spec.name}),
        typed as (select *, {typed_cols} from trimmed),
        keyed as (select * exclude (_first), _first[1] as _first_file, _first[2] as _first_row
                  from typed left join duplicates using ({key if spec.key else "delivery_seq"})),
        checked as (select *, {problems} from keyed, {SETTINGS} as settings),
        judged as (select *, _malformed is not null or {critical} as _quarantined from checked)
        select {out_cols}, source_file, source_row, delivery_seq, _quarantined{"".join(f", _p{i}" for i, _ in warnings)},
               -- a malformed row (CSV record that does not split into the header's fields) has one reason
               case when not _quarantined then null when _malformed is not null then _malformed
                    else concat_ws('; ', {reasons}) end as _reason,
               case when not _quarantined then null when _malformed is not null then ''
                    else concat_ws(',', {columns}) end as _columns,
               case when not _quarantined then null when _malformed is not null then to_json({{'line': _line}})::varchar
                    else to_json({{{raw_struct}}})::varchar end as _record
        from judged
        """
    )
    names = ", ".join(c.name for c in spec.columns)
    conn.execute(
        f"insert into raw_{spec.name} select {names}, source_file, source_row, delivery_seq from _checked"
        " where not _quarantined"
    )
    conn.execute(
        f"insert into quarantine select '{spec.name}', source_file, source_row, _columns, _reason, _record, delivery_seq"
        " from _checked where _quarantined"
    )
    if warnings:
        conn.execute(
            "insert into field_warnings "
            + " union all ".join(
                f"select '{spec.name}', source_file, source_row, '{col}', _p{i}, delivery_seq"
                f" from _checked where not _quarantined and _p{i} is not null"
                for i, col in warnings
            )
        )
    loaded, quarantined = conn.sql(
        "select count(*) filter (where not _quarantined), count(*) filter (where _quarantined) from _checked"
    ).fetchall()[0]
    warned = conn.sql(
        f"select count(*) from field_warnings where table_name = '{spec.name}'"
        " and delivery_seq in (select distinct delivery_seq from _landing_" + spec.name + ")"
    ).fetchall()[0][0]
    conn.execute("drop table _checked")
    return loaded, quarantined, warned


def _land(
    conn: duckdb.DuckDBPyConnection, spec: Table, files: list[Path], seq: dict[Path, int], profile=None,
    limits: ReaderLimits | None = None,
) -> list[str]:
    """Read every file of a table as canonical text into the temp table _landing_<table>. A plain,
    well-formed CSV file is read by DuckDB's own reader straight into it (native_csv: the same rows
    as the batched reader, several times faster); any other file by `iter_parts`, one batch of a file
    at a time (so memory holds one batch, not the file). DuckDB keeps the landed rows and spills
    them under its memory_limit. A workbook read with a sheet pattern lands one part per sheet,
    recorded as `file.xlsx[Sheet]`. Returns file-level errors (each starts with the file's path);
    nothing is written to the warehouse itself."""
    cols = ", ".join(f"{c.name} varchar" for c in spec.columns)
    conn.execute(
        f"create or replace temp table _landing_{spec.name} ({cols}, source_file varchar, source_row bigint,"
        " delivery_seq bigint, _malformed varchar, _line varchar)"
    )
    # FHIR Observations are matched to instruments through the seeded reference (rules as data)
    instruments = _instruments(conn) if spec.name == "assessments" else None
    errors = []
    natives: list[native_csv.NativeCsv] = []
    rejected: set[Path] = set()  # files the plan found unreadable (an encoding error): not read again
    for path in files:
        try:
            native = native_csv.plan(path, spec.name, profile, limits)
        except ExtractError as exc:
            errors.append(str(exc))
            rejected.add(path)
            continue
        if native is not None:
            natives.append(native)
    # the plain CSV files in one statement; should DuckDB refuse one, file by file
    if natives and not _land_native(conn, spec, natives, seq):
        natives = [n for n in natives if _land_native(conn, spec, [n], seq)]
    done = {n.path for n in natives}
    for path in files:
        if path in done or path in rejected:
            continue
        try:
            for part in iter_parts(path, spec.name, profile, instruments, limits=limits):
                _land_part(conn, spec, part, seq[path])
        except ExtractError as exc:
            # a problem found after some batches of the file landed: none of the file lands
            conn.execute(f"delete from _landing_{spec.name} where delivery_seq = ?", [seq[path]])
            errors.append(str(exc))
    return errors


def _land_native(
    conn: duckdb.DuckDBPyConnection, spec: Table, natives: list[native_csv.NativeCsv], seq: dict[Path, int]
) -> bool:
    """Land plain CSV files with DuckDB's reader in one statement (native_csv). False when DuckDB
    cannot read one of them as iter_parts would (a malformed record): nothing of them landed."""
    with ExitStack() as stack:
        paths = [str(stack.enter_context(native_csv.readable_path(n))) for n in natives]
        selects = [
            "select "
            + ", ".join(native_csv.field_sql(n, c.name) for c in spec.columns)
            + f", ? as source_file, row_number() over () + 1 as source_row, {int(seq[n.path])} as delivery_seq,"
            " null as _malformed, null as _line"
            f" from {native_csv.read_csv_sql(n)} where {native_csv.overflow_sql(n)}"
            for n in natives
        ]
        params = [v for n, path in zip(natives, paths) for v in (n.label, path)]
        try:
            conn.execute(f"insert into _landing_{spec.name} " + " union all ".join(f"({q})" for q in selects), params)
        except duckdb.InvalidInputException:  # a malformed record (strict mode, overflow_sql): the batched reader
            return False  # reads the file; anything else (memory, disk, an option DuckDB no longer knows) is raised
    return True


def _land_part(conn: duckdb.DuckDBPyConnection, spec: Table, part, delivery_seq: int) -> None:
    """Insert one part (a batch of a file) into _landing_<table>."""
    # handed to DuckDB as Arrow: three times faster than its scan of a polars frame
    landed = part.data.select(  # noqa: F841  (read by DuckDB's replacement scan)
        *(
            pl.col(c.name) if c.name in part.data.columns else pl.lit(None, pl.String).alias(c.name)
            for c in spec.columns
        ),
        pl.lit(part.label).alias("source_file"),
        pl.col("source_row").cast(pl.Int64),
        pl.lit(delivery_seq, pl.Int64).alias("delivery_seq"),
        pl.lit(None, pl.String).alias("_malformed"),
        pl.lit(None, pl.String).alias("_line"),
    ).to_arrow()
    conn.execute(f"insert into _landing_{spec.name} select * from landed")
    del landed
    if part.malformed is not None and part.malformed.height:
        # records that do not split into the header's fields: quarantined with their line
        bad = part.malformed.select(  # noqa: F841  (read by DuckDB's replacement scan)
            pl.col("source_row").cast(pl.Int64), pl.col("reason"), pl.col("line")
        ).to_arrow()
        conn.execute(
            f"insert into _landing_{spec.name} by name select source_row, ? as source_file,"
            " ?::bigint as delivery_seq, reason as _malformed, line as _line from bad",
            [part.label, delivery_seq],
        )


def _instruments(conn: duckdb.DuckDBPyConnection) -> dict[str, str] | None:
    """{loinc: instrument} from ref_instruments (None when it is not seeded: readers use the file)."""
    try:
        rows = conn.sql(
            "select trim(loinc), instrument from ref_instruments where nullif(trim(loinc), '') is not null"
        ).fetchall()
    except duckdb.Error:
        return None
    return {str(loinc): instrument for loinc, instrument in rows}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Payers load first: enrollments are checked against them.
LOAD_ORDER = ["payers", *[t for t in TABLES if t != "payers"]]

LEDGER_COLUMNS = (
    "source_file varchar, path varchar, table_name varchar, delivery_seq bigint, sha256 varchar, bytes bigint,"
    " status varchar, detail varchar, rows_read bigint, rows_loaded bigint, rows_quarantined bigint,"
    " loaded_at timestamp"
)
QUARANTINE_COLUMNS = (
    "table_name varchar, source_file varchar, source_row bigint, columns varchar, reason varchar, record varchar,"
    " delivery_seq bigint"
)
# a value of a column billing does not need that could not be read: the row loaded, the column empty
FIELD_WARNING_COLUMNS = (
    "table_name varchar, source_file varchar, source_row bigint, column_name varchar, reason varchar,"
    " delivery_seq bigint"
)


def _names(columns_sql: str) -> list[str]:
    return [c.split()[0] for c in columns_sql.split(", ")]


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str] | None:
    return table_columns(conn, table) or None


def _typed_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]] | None:
    return typed_columns(conn, table) or None


def _layout_changed(conn: duckdb.DuckDBPyConnection) -> bool:
    """True when the warehouse was written by another layout of the ledger, quarantine or raw tables
    (an older version of bhi: other columns, or another type such as documented_at as a date): the
    load then starts again from the whole drop."""
    expected = {
        "ingest_files": _names(LEDGER_COLUMNS),
        "quarantine": _names(QUARANTINE_COLUMNS),
        "field_warnings": _names(FIELD_WARNING_COLUMNS),
    }
    if any(_columns(conn, table) not in (None, cols) for table, cols in expected.items()):
        return True
    # field_warnings is missing from a warehouse written before it existed
    if _columns(conn, "ingest_files") and not _columns(conn, "field_warnings"):
        return True
    raw = {
        f"raw_{t}": [(c.name, SQL_TYPES[c.type]) for c in spec.columns]
        + [("source_file", "varchar"), ("source_row", "bigint"), ("delivery_seq", "bigint")]
        for t, spec in TABLES.items()
    }
    return any(_typed_columns(conn, table) not in (None, cols) for table, cols in raw.items())


def _reset(conn: duckdb.DuckDBPyConnection) -> None:
    """Forget every delivery: the load reads the whole drop again (`bhi run --full-refresh`), and
    the models are rebuilt in full (no build_state to be incremental from)."""
    for table in ["ingest_files", "quarantine", "field_warnings", "build_state", *(f"raw_{t}" for t in TABLES)]:
        conn.execute(f"drop table if exists {table}")


def create_ingest_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """The ledger, quarantine, field warnings and every raw_* table, where missing."""
    conn.execute(f"create table if not exists ingest_files ({LEDGER_COLUMNS})")
    conn.execute(f"create table if not exists quarantine ({QUARANTINE_COLUMNS})")
    conn.execute(f"create table if not exists field_warnings ({FIELD_WARNING_COLUMNS})")
    for t, spec in TABLES.items():
        cols = ", ".join(f"{c.name} {SQL_TYPES[c.type]}" for c in spec.columns)
        conn.execute(
            f"create table if not exists raw_{t} ({cols}, source_file varchar, source_row bigint, delivery_seq bigint)"
        )


def _fingerprint(path: Path) -> str:
    """SHA-256 of the file; for a FHIR EpisodeOfCare file also of the Coverage, Consent and Condition
    files it is read with, so a changed Coverage file re-reads the enrollments."""
    if outside_link(path):  # refused, and never read: fingerprinted by its name
        return hashlib.sha256(f"refused link {path.name}".encode()).hexdigest()
    if fhir.resource_of(path.name) != "EpisodeOfCare":
        return _sha256(path)
    context = sorted(p for p in path.parent.iterdir() if p.is_file() and fhir.resource_of(p.name) in CONTEXT_OF_ENROLLMENTS)
    return hashlib.sha256("".join(_sha256(p) for p in [path, *context]).encode()).hexdigest()


CONTEXT_OF_ENROLLMENTS = ("Coverage", "Consent", "Condition")


def _plan(conn: duckdb.DuckDBPyConnection, found: dict[str, list[Path]], fresh: bool) -> pl.DataFrame:
    """Every file of the drop, in delivery order (by name), with what this load does with it:
    `new` (read it; it gets the next delivery_seq; also a file put back to bytes its name delivered
    before, `reverted`), `unchanged` (the latest delivery of this name had these bytes), or
    `duplicate` (same bytes as another file loaded before or earlier in this drop: a re-delivered
    file is recorded, never counted twice)."""
    files = sorted(((p, t) for t, paths in found.items() for p in paths), key=lambda pt: pt[0].name)
    drop = pl.DataFrame(  # noqa: F841  (read by DuckDB's replacement scan)
        {
            "source_file": [p.name for p, _ in files],
            "path": [str(p) for p, _ in files],
            "table_name": [t for _, t in files],
            "sha256": [_fingerprint(p) for p, _ in files],
            "bytes": [p.lstat().st_size if outside_link(p) else p.stat().st_size for p, _ in files],
        },
        schema={"source_file": pl.String, "path": pl.String, "table_name": pl.String, "sha256": pl.String,
                "bytes": pl.Int64},
    )
    ledger = (
        "(select source_file, table_name, delivery_seq, sha256, status, loaded_at from ingest_files)"
        if _columns(conn, "ingest_files") and not fresh
        else "(select null::varchar as source_file, null::varchar as table_name, null::bigint as delivery_seq,"
        " null::varchar as sha256, null::varchar as status, null::timestamp as loaded_at where false)"
    )
    return conn.sql(
        f"""
        with d as (select *, row_number() over (order by source_file) as _order from drop),
        ledger as {ledger},
        -- a file is the same delivery when the same table already loaded the same bytes
        loaded as (
            select table_name, sha256, arg_min(source_file, delivery_seq) as first_file,
                   list(distinct source_file) as file_names
            from ledger where status = 'loaded' group by all
        ),
        -- a file's identity is its name and content: the content of its latest delivery, and every
        -- content delivered under its name before
        named as (
            select table_name, source_file,
                   arg_max(sha256, (loaded_at, coalesce(delivery_seq, 0))) as latest_sha256,
                   list(distinct sha256) as sha256s
            from ledger where status in ('loaded', 'duplicate') group by all
        ),
        marked as (
            select d.*,
                   case
                       when n.latest_sha256 = d.sha256 then 'unchanged'
                       -- put back to bytes this name delivered before (a correction reverted): a new
                       -- delivery, so its rows are the latest again
                       when list_contains(n.sha256s, d.sha256) then 'new'
                       when l.sha256 is not null then 'duplicate'
                       -- the same bytes twice in one drop: the first file by name loads
                       when row_number() over (partition by d.table_name, d.sha256 order by d._order) > 1
                           then 'duplicate'
                       else 'new'
                   end as action,
                   coalesce(n.latest_sha256 <> d.sha256 and list_contains(n.sha256s, d.sha256), false) as reverted,
                   coalesce(l.first_file, first_value(d.source_file) over (
                       partition by d.table_name, d.sha256 order by d._order)) as duplicate_of
            from d left join loaded as l using (table_name, sha256)
            left join named as n using (table_name, source_file)
        )
        select * exclude (_order),
               case when action = 'new'
                   then (select coalesce(max(delivery_seq), 0) from ledger)
                        + row_number() over (partition by action = 'new' order by _order)
               end as delivery_seq
        from marked order by _order
        """
    ).pl()


MISSING_NAMES_SHOWN = 20  # file names in the one-line message of check_deliveries


def check_deliveries(
    conn: duckdb.DuckDBPyConnection, drop_dir: Path, plan: pl.DataFrame, fresh: bool,
    full_refresh_tables: frozenset[str] = frozenset(),
) -> None:
    """Raise OperationalError naming the files that must be re-delivered: the ledger outside the
    warehouse says they were loaded (since the last --full-refresh), the warehouse does not hold them
    (a copy from before them was restored, or the warehouse was rebuilt), and the drop no longer has
    their bytes (under any name). A full-refresh table whose newer file is in the drop is not
    expected. Names and a count only: no file content."""
    source = ledgers.relation(conn, ledgers.FILES)
    if source is None:
        return
    inside = (
        "(select table_name, source_file, sha256 from ingest_files where status in ('loaded', 'replaced'))"
        if _columns(conn, "ingest_files") and not fresh
        else "(select null::varchar as table_name, null::varchar as source_file, null::varchar as sha256 where false)"
    )
    drop_files = plan.select("table_name", "sha256")  # noqa: F841 (read by DuckDB)
    candidates = conn.sql(
        f"""
        with outside as (select table_name, source_file, sha256, status, loaded_at from {source}),
        reset as (select coalesce(max(loaded_at), '-infinity'::timestamp) as at from outside where status = 'reset'),
        expected as (
            select distinct o.table_name, o.source_file, o.sha256
            from outside as o, reset as r where o.status = 'loaded' and o.loaded_at >= r.at
            -- a full-refresh table's file replaced by a later one is not expected again
            and not exists (select 1 from outside as x where x.status = 'replaced' and x.table_name = o.table_name
                            and x.source_file = o.source_file and x.sha256 = o.sha256)
        )
        select e.table_name, e.source_file, e.sha256 from expected as e
        where not exists (select 1 from {inside} as i where i.table_name = e.table_name
                          and i.source_file = e.source_file and i.sha256 = e.sha256)
          and not exists (select 1 from drop_files as d where d.sha256 = e.sha256)
        order by e.source_file
        """
    ).fetchall()
    tables_in_drop = set(plan["table_name"].to_list())
    missing = []
    for table, name, sha in candidates:
        if table in full_refresh_tables and table in tables_in_drop:
            continue  # replaced by the newer file of the drop
        path = Path(drop_dir) / name
        if path.is_file() and _sha256(path) == sha:  # e.g. an 835, found by its own reader
            continue
        missing.append(name)
    if missing:
        names = ", ".join(missing[:MISSING_NAMES_SHOWN]) + (
            f" and {len(missing) - MISSING_NAMES_SHOWN} more" if len(missing) > MISSING_NAMES_SHOWN else "")
        raise OperationalError(
            f"{len(missing)} file(s) loaded before are neither in the warehouse (restored or rebuilt from before"
            f" them) nor in the drop {drop_dir}: re-deliver them into the drop and run again (or restore a copy"
            f" that has them, `bhi restore --list`); nothing was loaded. Files: {names}"
        )


def load_drop(
    conn: duckdb.DuckDBPyConnection,
    drop_dir: Path,
    profile: str | None = None,
    full_refresh: bool = False,
    full_refresh_tables: frozenset[str] = frozenset(),
) -> IngestResult:
    """Load the files of a drop folder that are new since the last load (all of them on the first
    run or with full_refresh). A file already loaded, or a copy of one, is recorded and skipped. A
    file with a file-level problem is recorded as rejected and reported in `result.file_errors`;
    the other files load. A table in full_refresh_tables is replaced by its newest file(s) instead
    of appended to. Everything is written in one transaction: a failure leaves the previous state."""
    drop_dir = Path(drop_dir)
    limits = reader_limits(conn)  # the reader limits of the settings (docs/operations.md "Reader limits")
    # a name in profiles/, a YAML path, the drop's bhi-profile.yaml, or None
    profile = load_profile(profile, drop_dir, max_bytes=limits.profile_max_bytes)
    if profile is not None:
        full_refresh_tables = frozenset(full_refresh_tables) | profile.full_refresh_tables
    # start again from the whole drop: asked for, or a warehouse written by another layout
    fresh = full_refresh or _layout_changed(conn)
    loaded_before = set() if fresh or not _columns(conn, "ingest_files") else {
        t for (t,) in conn.sql("select distinct table_name from ingest_files where status = 'loaded'").fetchall()
    }
    found = discover(drop_dir, profile, loaded_before)
    plan = _plan(conn, found, fresh)  # noqa: F841 (read by DuckDB below)
    if not full_refresh:
        # a restored or rebuilt warehouse: every file the ledger outside it says was loaded is in
        # the warehouse or in the drop, or the run stops and names what to re-deliver
        check_deliveries(conn, drop_dir, plan, fresh, full_refresh_tables)
    new = plan.filter(pl.col("action") == "new")
    seq = {Path(p): s for p, s in zip(new["path"], new["delivery_seq"])}
    # Read and check the new files (into temp tables) before touching the warehouse.
    errors: list[str] = []
    try:
        for table in LOAD_ORDER:
            errors += _land(conn, TABLES[table], [p for p in found[table] if p in seq], seq, profile, limits)
    finally:
        native_child.stop()  # the child process that read this load's workbooks, if any
    failed = sorted(str(p) for p in seq if any(e.startswith((f"{p}:", f"{p}[")) for e in errors))
    failures = pl.DataFrame(  # noqa: F841  (read by DuckDB's replacement scan)
        {"path": failed, "error": [next(e for e in errors if e.startswith(p)) for p in failed]},
        schema={"path": pl.String, "error": pl.String},
    )
    result = IngestResult(files=plan.height, file_errors=errors)
    try:
        with transaction(conn):
            if fresh:
                _reset(conn)
            create_ingest_tables(conn)
            for table in sorted(full_refresh_tables):
                if not any(p in seq and str(p) not in failed for p in found.get(table, [])):
                    continue
                # a full-refresh table: its new delivery replaces everything delivered before
                conn.execute(f"delete from raw_{table}")
                conn.execute("delete from quarantine where table_name = ?", [table])
                conn.execute("delete from field_warnings where table_name = ?", [table])
                conn.execute(
                    "update ingest_files set status = 'replaced', detail = 'full-refresh table: replaced by a later file'"
                    " where table_name = ? and status = 'loaded'",
                    [table],
                )
            for table in LOAD_ORDER:
                loaded, quarantined, warned = _load_table(conn, TABLES[table])
                result.rows_read[table] = loaded + quarantined
                result.rows_loaded[table] = loaded
                result.rows_quarantined[table] = quarantined
                result.field_warnings[table] = warned
            rows_per_file = conn.sql(  # noqa: F841  (read by DuckDB's replacement scan)
                " union all ".join(
                    f"select delivery_seq, count(*)::bigint as rows_read from _landing_{t} group by all" for t in TABLES
                )
            ).pl()
            # a ledger row for every file of the drop not recorded before (a rejected file is retried
            # on every run until it is fixed or removed, and recorded each time)
            conn.execute(
                """
                insert into ingest_files
                select p.source_file, p.path, p.table_name,
                       case when f.path is null then p.delivery_seq end, p.sha256, p.bytes,
                       case when f.path is not null then 'rejected'
                            when p.action = 'duplicate' then 'duplicate' else 'loaded' end,
                       case when f.path is not null then f.error
                            when p.action = 'duplicate' then 'same content as ' || p.duplicate_of || ': not loaded again'
                            when p.reverted then 'put back to the content of an earlier delivery of this file:'
                                 || ' delivered again, its rows are the latest'
                       end,
                       coalesce(r.rows_read, 0), coalesce(r.rows_read, 0) - coalesce(q.n, 0), coalesce(q.n, 0),
                       current_timestamp
                from plan as p
                left join failures as f using (path)
                left join rows_per_file as r using (delivery_seq)
                left join (
                    select delivery_seq, count(*) as n from quarantine where delivery_seq is not null group by all
                ) as q using (delivery_seq)
                where p.action = 'new'
                   or (p.action = 'duplicate' and not exists (
                       select 1 from ingest_files as i
                       where i.sha256 = p.sha256 and i.source_file = p.source_file and i.status = 'duplicate'))
                """
            )
            # the ledger outside the warehouse, before this load commits (pipelines/ledgers.py)
            if full_refresh:
                ledgers.append(conn, ledgers.FILES, "select 'reset' as status, current_timestamp as loaded_at,"
                               " 'bhi run --full-refresh: the files before are not expected again' as detail")
            ledgers.mirror_files(conn)
            # this load's rejected files, for the run summary (`bhi run` exits non-zero when there are any)
            conn.execute(
                "create or replace table ingest_errors as"
                " select p.source_file, p.path, p.table_name, f.error from plan as p inner join failures as f using (path)"
                " order by p.source_file"
            )
            result.rows_in_warehouse = dict(
                conn.sql(" union all ".join(f"select '{t}', count(*) from raw_{t}" for t in TABLES)).fetchall()
            )
    finally:
        _drop_landing(conn)
    result.files_loaded = new.height - len(failed)
    result.files_skipped = plan.height - new.height
    return result


def _drop_landing(conn: duckdb.DuckDBPyConnection) -> None:
    for table in TABLES:
        conn.execute(f"drop table if exists _landing_{table}")
