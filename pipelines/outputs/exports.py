"""CSV exports a billing system or an analyst can load. Text cells that a spreadsheet would read as a
formula (=, +, -, @, tab or carriage return first) are prefixed with a quote. Each file is written then renamed into place.

A run writes only the files whose content changed: `manifest.csv` beside them keeps each file's row
count and checksum (the sum of its rows' hashes, so it does not depend on row order and a repeated
row does not cancel out) and the size and modification time it was written with; a file is written
again when its checksum changes, or when it is missing or was changed since (edited by hand): the
closed-month files (claims, revenue gap, what-if) do not change on most nights.

The evidence trail (fct_claim_evidence, ~30M rows at 10M entries) stays in the warehouse: a nightly
run writes no file of it. It is written as CSV by the month-end close (month_end/claim_evidence_<YYYY-MM>.csv,
pipelines/outputs/close.py) and on demand by `bhi evidence` (write_evidence_month below), one service
month at a time, in the same columns and order."""

import hashlib
from pathlib import Path

import duckdb

from pipelines.safety import fault_point
from pipelines.warehouse.models import load_exports, strip_comments

# One query per file under sql/exports/ (<name>.sql -> <name>.csv), read like the SQL models: a header
# (purpose, grain, upstream) and the tables it reads. Money columns are cast to decimal(12,2): always two
# decimals (98.32, not 98.32000000000001 from double arithmetic, and 145.20, not 145.2); an unpriced
# amount is an empty cell.
_QUERIES = {q.name: q for q in load_exports()}
EXPORT_TABLES = sorted({table for q in _QUERIES.values() for table in q.upstream})  # the exports asset's deps
EXPORTS: dict[str, str] = {
    f"{name}.csv": strip_comments(q.sql).strip() for name, q in _QUERIES.items() if name != "claim_evidence"
}

# The evidence trail (fct_claim_evidence), one service month at a time: the close's and `bhi evidence`'s file.
EVIDENCE_QUERY = strip_comments(_QUERIES["claim_evidence"].sql).strip()
# the folder of one file per service month a nightly run wrote before the evidence stayed in the
# warehouse: never carried into a new publication (pipelines/outputs/publication.py)
RETIRED_EVIDENCE_DIR = "claim_evidence"
MANIFEST = "manifest.csv"


def evidence_month_query(month: str) -> str:
    """One service month's evidence (YYYY-MM) in reading order: each patient-month top-down (outcome,
    gates, thresholds, entries), the remaining columns breaking ties so the file is the same every time.
    The month is chosen on the table's date column, before the export formats it (a CTE named like the
    table), so DuckDB skips the other months instead of formatting all ~30M rows at 10M entries."""
    return (
        "with fct_claim_evidence as"
        f" (select * from main.fct_claim_evidence where service_month = date '{month}-01')"
        f" select * from ({EVIDENCE_QUERY})"
        " order by patient_id, program, sort_order, item, section, status, minutes, detail"
    )


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
    # COPY answers with the number of rows it wrote: the query runs once. The path is a parameter, never
    # SQL text: an out folder may hold quotes, semicolons, spaces or any letter
    rows = conn.execute(f"copy ({_neutralised(conn, query)}) to ? (header, delimiter ',')", [tmp.as_posix()]).fetchall()
    tmp.replace(target)
    return rows[0][0]


def _checksum(conn: duckdb.DuckDBPyConnection, query: str) -> tuple[int, str]:
    """(rows, checksum) of a query's output. The checksum starts with a digest of the query text, so a
    changed export definition rewrites it."""
    cols = ", ".join(c[0] for c in conn.sql(f"describe {query}").fetchall())
    prefix = hashlib.sha256(query.encode()).hexdigest()[:8]
    return conn.sql(
        f"select count(*), '{prefix}-' || coalesce(sum(hash({cols})), 0)::varchar from ({query})"
    ).fetchall()[0]


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
    manifest.csv. Returns the rows of each file and how many files were written and left unchanged."""
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_manifest(conn, out_dir / MANIFEST)
    # (file, query, rows, checksum) of every file this run's warehouse should give
    files = [(name, query, *_checksum(conn, query)) for name, query in EXPORTS.items()]
    written = 0
    for name, query, rows, checksum in files:
        # written again when the content changed, or the file is missing or was changed by hand
        # (another size or modification time than the run that wrote it recorded)
        if previous.get(name) != [rows, checksum, *(_on_disk(out_dir / name) or (None, None))]:
            write_csv(conn, query, out_dir / name)
            written += 1
            fault_point("exports:after-first-file")
    tmp = out_dir / f"{MANIFEST}.tmp"
    tmp.write_text(
        "file,rows,checksum,bytes,mtime_ns\n"
        + "".join(f"{n},{r},{c},{','.join(map(str, _on_disk(out_dir / n)))}\n" for n, _, r, c in files)
    )
    tmp.replace(out_dir / MANIFEST)
    counts = {name: rows for name, _, rows, _ in files}
    return counts | {"files written": written, "files unchanged": len(files) - written}


class NoEvidence(Exception):
    """The warehouse holds no evidence for the month asked for."""


def write_evidence_month(conn: duckdb.DuckDBPyConnection, month: str, target: Path) -> int:
    """One service month's evidence trail (YYYY-MM) as CSV at `target` (written then renamed into
    place, formula cells neutralised like every export); returns its rows. Raises NoEvidence, and
    writes nothing, when the warehouse has no evidence for the month."""
    (rows,), = conn.execute(
        "select count(*) from fct_claim_evidence where service_month = ?::date", [f"{month}-01"]
    ).fetchall()
    if not rows:
        raise NoEvidence(month)
    return write_csv(conn, evidence_month_query(month), target)
