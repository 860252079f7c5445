"""`bhi run`'s look at the drop before Dagster starts: a drop that cannot load into a new warehouse
(no warehouse yet, or --full-refresh) fails in one line within a second or two, naming each file
whose header lacks a required column (and the header name that looks like it) and the required
tables without a file, and nothing is written: no warehouse, no out folder content.

Only that case is decided here. With a warehouse that already holds the required tables, a file
with a bad header is rejected by the run itself (named with its column) while the other files load,
as docs/operations.md "What can go wrong" says. Headers are read from the first line of a CSV and
from a Parquet file's schema (never the rows); workbooks and FHIR files are left to the run. No
Dagster import: this module is on the fast path of the command line."""

from __future__ import annotations

import csv
from pathlib import Path

HEADER_BYTES = 1 << 16  # bytes read from the start of a CSV file for its header line


def first_load_problem(extracts: Path, warehouse: Path, profile: str | None, full_refresh: bool) -> str | None:
    """Why the drop cannot load into a new warehouse, in one line; None when it can, when the
    warehouse exists (and no full refresh is asked for), or when this cannot tell (the run decides)."""
    if warehouse.exists() and not full_refresh:
        return None
    from pipelines.ingest.errors import ExtractError
    from pipelines.ingest.extract_format import TABLES
    from pipelines.ingest.profiles import load_profile
    from pipelines.ingest.readers import discover

    try:
        source = load_profile(profile, extracts)
        discover(extracts, source, frozenset())
        return None  # every required table has a file: the run reads them and names any bad one
    except ExtractError as exc:
        missing = str(exc)
    except Exception:  # a bad profile and the like: the run says what is wrong, as it always did
        return None
    found = discover(extracts, source, frozenset(TABLES))  # the files per table, no table required
    headers = [p for table, paths in found.items() for path in paths if (p := header_problem(path, table, source))]
    return "; ".join([*headers, missing]) + ". Nothing was written"


def header_problem(path: Path, table: str, profile) -> str | None:
    """What a CSV or Parquet file's header lacks for `table` (readers' own check on a frame with
    the header's names and no rows), or None."""
    import polars as pl

    from pipelines.ingest import readers
    from pipelines.ingest.errors import ExtractError

    suffix = path.suffix.lower()
    if readers.outside_link(path):  # refused unread by the run: not read here either
        return None
    try:
        if suffix == ".parquet":
            names = list(pl.read_parquet_schema(path))
        elif suffix in (".csv", ".tsv", ".txt"):
            names = _csv_header(path, table, profile)
        else:
            return None
        if names is None:
            return None
        empty = pl.DataFrame({n: [] for n in readers._unique(names)}, schema={n: pl.String for n in readers._unique(names)})
        readers._canonical(readers._headers(empty, str(path), table, profile), table, profile, str(path), 2)
    except ExtractError as exc:
        return str(exc)
    except Exception:  # unreadable here: the run reads the file and says why
        return None
    return None


def _csv_header(path: Path, table: str, profile) -> list[str] | None:
    from pipelines.ingest import readers

    options = profile.csv_options(table) if profile else None
    with path.open("rb") as fh:
        head = fh.read(HEADER_BYTES)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: left to the run's reader
        return None
    line = head.split(b"\n", 1)[0]
    text = readers.decode(line, options.encoding if options else "auto", path).rstrip("\r")
    if not text.strip():
        return None
    delimiter = readers.sniff_delimiter(text, options.delimiter if options else "auto")
    return next(csv.reader([text], delimiter=delimiter))
