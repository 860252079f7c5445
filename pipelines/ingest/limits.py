"""Reader limits: how large a delivered file (and a source profile) may be before it is read.

Every reader checks what it can from a file's metadata before it allocates (an XLSX sheet's span, a
Parquet file's columns and row-group sizes, a CSV file's line lengths found by the scan that finds its
encoding); a file over a limit is rejected naming the file, the limit and its setting, and the other
files load. The limits are settings (data/reference/settings.csv, seeded as ref_settings); a setting
missing from a warehouse's reference data takes the shipped value. Documented in docs/operations.md
("Reader limits").
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb

SHIPPED_SETTINGS = Path(__file__).resolve().parents[2] / "data" / "reference" / "settings.csv"


@dataclass(frozen=True)
class ReaderLimits:
    xlsx_max_rows: int
    xlsx_max_columns: int
    xlsx_max_cells: int
    xlsx_max_uncompressed_mb: int
    native_reader_memory_mb: int
    parquet_max_columns: int
    parquet_max_row_group_mb: int
    csv_max_line_chars: int
    csv_max_record_bytes: int
    profile_max_bytes: int

    @classmethod
    def from_settings(cls, values: dict[str, str]) -> ReaderLimits:
        """From setting -> value text; a setting not given takes the shipped value."""
        shipped = _shipped()
        out = {}
        for f in dataclasses.fields(cls):
            text = values.get(f.name)
            try:
                out[f.name] = int(str(text).strip()) if text is not None else shipped[f.name]
            except ValueError:
                raise ValueError(f"setting {f.name} must be a whole number, got {text!r}") from None
        return cls(**out)


@cache
def _shipped() -> dict[str, int]:
    with SHIPPED_SETTINGS.open(newline="") as fh:
        rows = {r["setting"]: r["value"] for r in csv.DictReader(fh)}
    return {f.name: int(rows[f.name]) for f in dataclasses.fields(ReaderLimits)}


@cache
def default_limits() -> ReaderLimits:
    """The shipped limits (data/reference/settings.csv)."""
    return ReaderLimits(**_shipped())


def reader_limits(conn: duckdb.DuckDBPyConnection) -> ReaderLimits:
    """The limits of the seeded ref_settings (the shipped ones where a setting is missing, or when
    the reference data is not seeded)."""
    names = [f.name for f in dataclasses.fields(ReaderLimits)]
    try:
        rows = conn.execute("select setting, value from ref_settings where list_contains(?::varchar[], setting)", [names]).fetchall()
    except duckdb.Error:
        return default_limits()
    return ReaderLimits.from_settings({str(k): str(v) for k, v in rows})
