"""Find the files of an extract drop and read each one as text: every column a string, headers
normalised, with the row number of the first record (so quarantine can name file and row)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from pipelines.errors import ExtractError
from pipelines.extract_format import TABLES

SUFFIXES = (".csv", ".parquet", ".xlsx")


def discover(drop_dir: Path, profile=None) -> dict[str, list[Path]]:
    """Files named `<table>*.csv|parquet|xlsx`, per table, in delivery order (sorted by name)."""
    if not drop_dir.is_dir():
        raise ExtractError(f"extract folder {drop_dir} does not exist or is not a folder")
    names = sorted(TABLES, key=len, reverse=True)  # longest table name first
    found: dict[str, list[Path]] = {t: [] for t in TABLES}
    for path in sorted(p for p in drop_dir.iterdir() if p.is_file()):
        if path.suffix.lower() not in SUFFIXES:
            continue
        stem = path.name.lower()
        table = next((t for t in names if stem.startswith(t)), None)
        if table:
            found[table].append(path)
    missing = [t for t, spec in TABLES.items() if spec.required and not found[t]]
    if missing:
        present = ", ".join(sorted(p.name for p in drop_dir.iterdir() if p.is_file())) or "(empty)"
        raise ExtractError(
            f"{drop_dir}: no file for required table(s) {', '.join(missing)} "
            f"(expected <table>*.csv|parquet|xlsx); files found: {present}"
        )
    return found


def _normalise_header(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip().lstrip("\ufeff").lower())


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    """Every column as text; dates as ISO, integral floats (Excel numbers) without '.0'."""
    out = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if dtype == pl.Date or isinstance(dtype, pl.Datetime):
            out.append(col.dt.strftime("%Y-%m-%d").alias(name))
        elif dtype.is_float():
            integral = (col.round(0) == col).fill_null(True).all()
            out.append(pl.when(integral).then(col.cast(pl.Int64)).otherwise(col).cast(pl.String).alias(name))
        else:
            out.append(col.cast(pl.String).alias(name))
    return df.select(out)


def read_text(path: Path, table: str, profile=None) -> tuple[pl.DataFrame, int]:
    """Read one file with every column as text; return it and the row number of its first record."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            df, first_row = pl.read_csv(path, infer_schema=False), 2
        elif suffix == ".parquet":
            df, first_row = _as_text(pl.read_parquet(path)), 1
        else:
            df, first_row = _as_text(pl.read_excel(path, sheet_id=1)), 2
    except Exception as exc:  # any parser error is a file-level error that names the file
        raise ExtractError(f"{path}: cannot read file ({type(exc).__name__}: {exc})") from exc
    return df.rename({c: _normalise_header(c) for c in df.columns}), first_row
