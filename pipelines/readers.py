"""Find the files of an extract drop and read each one as canonical text.

`discover` assigns the files of a drop folder to tables (canonical `<table>*` names, a source
profile's name patterns, or FHIR Bulk Data `<Resource>.ndjson` names). `read_parts` reads one file
into one or more `Part`s (an XLSX read with a sheet pattern gives one part per sheet): every column a
string with its canonical name, values converted to canonical text where the profile says how
(ISO dates, HH:MM times, whole minutes, canonical codes), and the row number of every record so the
quarantine can name file, sheet and row. What cannot be converted is passed on as delivered; the SQL
checks of the ingest quarantine the row with a reason. A CSV record that does not split into the
header's fields is set aside as a malformed row (`Part.malformed`), the rest of the file is read.
File-level problems raise ExtractError naming the file (and sheet) and the column, never quoting the
file's content; a symbolic link leading outside the drop is refused unread.

Encodings (CSV): a UTF-8 or UTF-16 byte-order mark decides; otherwise UTF-8 if the bytes are valid
UTF-8, else Windows-1252, else Latin-1 -- unless the profile sets `csv.encoding`. Delimiters: `,`
`;` tab or `|`, found by csv.Sniffer on the first lines and checked against the header, unless the
profile sets `csv.delimiter`.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import io
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines import fhir
from pipelines.errors import ExtractError
from pipelines.extract_format import TABLES
from pipelines.profiles import Profile, apply_profile, describe_columns, normalise_header, select_columns

SUFFIXES = (".csv", ".parquet", ".xlsx")  # canonical `<table>*` naming
PROFILE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".xlsx")  # files a profile pattern may name
SNIFF_LINES = 50


@dataclass
class Part:
    """One readable unit of a file: the whole file, or one sheet of a workbook."""

    label: str  # recorded as source_file: the file name, or `file.xlsx[Sheet]` for one of several sheets
    data: pl.DataFrame  # canonical columns as String, plus source_row (Int64)
    malformed: pl.DataFrame | None = None  # CSV records that could not be split: source_row, reason, line


# ---------------------------------------------------------------------------------------------------
# Discovery


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns)


def discover(
    drop_dir: Path, profile: Profile | None = None, loaded_before: set[str] | frozenset[str] = frozenset()
) -> dict[str, list[Path]]:
    """Files per table, in delivery order (sorted by name).

    A file is FHIR NDJSON when named `<Resource>[_N].ndjson` (Encounter, Observation, EpisodeOfCare);
    else it belongs to the table whose profile `files` patterns it matches; else, for tables without
    patterns, to the table its name starts with (`.csv`, `.parquet`, `.xlsx`; longest name first)."""
    drop_dir = Path(drop_dir)
    if not drop_dir.is_dir():
        raise ExtractError(f"extract folder {drop_dir} does not exist or is not a folder")
    patterns = {t: tp.files for t, tp in (profile.tables.items() if profile else []) if tp.files}
    names = sorted((t for t in TABLES if t not in patterns), key=len, reverse=True)  # longest first
    found: dict[str, list[Path]] = {t: [] for t in TABLES}
    for path in sorted(p for p in drop_dir.iterdir() if p.is_file()):
        resource = fhir.resource_of(path.name)
        if resource is not None:
            table = fhir.TABLE_OF_RESOURCE.get(resource)
            if table:
                found[table].append(path)
            continue  # context resources (Coverage, Consent, Condition, Patient) are read with their table
        suffix = path.suffix.lower()
        by_pattern = [t for t, pats in patterns.items() if suffix in PROFILE_SUFFIXES and _matches(path.name, pats)]
        if len(by_pattern) > 1:
            raise ExtractError(
                f"{path}: matches the file patterns of several tables ({', '.join(by_pattern)}) "
                f"in profile {profile.path or profile.name}; make the patterns distinct"
            )
        if by_pattern:
            found[by_pattern[0]].append(path)
            continue
        if suffix not in SUFFIXES:
            continue
        stem = path.name.lower()
        table = next((t for t in names if stem.startswith(t)), None)
        if table:
            found[table].append(path)
    # a required table needs a file, unless an earlier load already brought one (incremental drops)
    missing = [t for t, spec in TABLES.items() if spec.required and not found[t] and t not in loaded_before]
    if missing:
        present = ", ".join(sorted(p.name for p in drop_dir.iterdir() if p.is_file())) or "(empty)"
        expected = "; ".join(
            f"{t}: {' or '.join(patterns[t])}" for t in missing if t in patterns
        )
        raise ExtractError(
            f"{drop_dir}: no file for required table(s) {', '.join(missing)} "
            f"(expected <table>*.csv|parquet|xlsx{'; profile patterns ' + expected if expected else ''}); "
            f"files found: {present}"
        )
    return found


# ---------------------------------------------------------------------------------------------------
# Native columns -> canonical text


def _is_integral(col: pl.Expr) -> pl.Expr:
    return (col.round(0) == col).fill_null(True).all()


def to_text(df: pl.DataFrame, table: str) -> pl.DataFrame:
    """Every column as text, by the canonical type of the column it now feeds:
    dates `YYYY-MM-DD` (a month column `YYYY-MM`), times `HH:MM` (an Excel time cell is a date-time
    on 1899-12-31), durations in whole minutes, integral floats without `.0`, booleans true/false.
    A date-time in any other column (e.g. a start timestamp) keeps its time: `YYYY-MM-DD HH:MM:SS`."""
    types = {c.name: c.type for c in TABLES[table].columns}
    out = []
    for name, dtype in df.schema.items():
        col, typ = pl.col(name), types.get(name, "text")
        if dtype == pl.String:
            e = col
        elif dtype == pl.Date or isinstance(dtype, pl.Datetime):
            fmt = {"time": "%H:%M", "month": "%Y-%m", "date": "%Y-%m-%d"}.get(typ)
            if fmt is None and dtype == pl.Date:
                fmt = "%Y-%m-%d"
            e = col.dt.strftime(fmt) if fmt else col.dt.strftime("%Y-%m-%d %H:%M:%S")
        elif dtype == pl.Time:
            e = col.dt.strftime("%H:%M" if typ == "time" else "%H:%M:%S")
        elif isinstance(dtype, pl.Duration):
            e = (col.dt.total_seconds() // 60).cast(pl.Int64).cast(pl.String)
        elif dtype.is_float():
            e = pl.when(_is_integral(col)).then(col.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(
                col.cast(pl.String)
            )
        else:
            e = col.cast(pl.String)
        out.append(e.cast(pl.String).alias(name))
    return df.select(out)


def _excel_text(df: pl.DataFrame, table: str) -> pl.DataFrame:
    """A sheet read as text (its columns mix cell types) shows date cells as `2026-05-04 00:00:00` and
    time/duration cells as date-times on 1899-12-31: turn those into canonical text by column type."""
    types = {c.name: c.type for c in TABLES[table].columns}
    out = []
    for name in df.columns:
        col, typ = pl.col(name), types.get(name)
        if typ == "date":
            out.append(pl.coalesce(col.str.extract(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", 1), col).alias(name))
        elif typ == "time":
            out.append(pl.coalesce(col.str.extract(r"^1899-12-3[01] (\d{2}:\d{2}):\d{2}$", 1), col).alias(name))
        elif typ == "int":
            hm = r"^1899-12-3[01] (\d{2}):(\d{2}):\d{2}$"
            minutes = col.str.extract(hm, 1).cast(pl.Int64) * 60 + col.str.extract(hm, 2).cast(pl.Int64)
            out.append(pl.coalesce(minutes.cast(pl.String), col).alias(name))
    return df.with_columns(out) if out else df


def _canonical(
    df: pl.DataFrame, table: str, profile: Profile | None, where: str, first_row: int, excel_text: bool = False,
    rows: list[int] | None = None,
) -> pl.DataFrame:
    """Native frame with normalised headers -> canonical text columns plus source_row (first_row,
    first_row + 1 ..., or the given row numbers); checks that every required column is there (an
    ExtractError naming `where`; the header names are listed only when they are known column names)."""
    found = list(df.columns)
    n = df.height
    try:
        df = select_columns(df, table, profile)
    except ExtractError as exc:
        raise ExtractError(f"{where}: {exc}") from None
    df = to_text(df, table)
    if excel_text:
        df = _excel_text(df, table)
    df = apply_profile(df, table, profile)
    missing = [c for c in TABLES[table].required_columns if c not in df.columns]
    if missing:
        mapped = f" (after the column mapping of profile {profile.name})" if profile else ""
        raise ExtractError(
            f"{where}: missing required column(s) {', '.join(missing)} for table {table}{mapped}; "
            f"columns found: {describe_columns(found, table, profile)}"
        )
    if rows is not None:
        return df.with_columns(pl.Series("source_row", rows, dtype=pl.Int64))
    return df.with_columns((pl.int_range(n, dtype=pl.Int64) + first_row).alias("source_row"))


def _headers(df: pl.DataFrame) -> pl.DataFrame:
    return df.rename({c: normalise_header(c) for c in df.columns})


# ---------------------------------------------------------------------------------------------------
# CSV


def decode(raw: bytes, encoding: str, path: Path) -> str:
    """Bytes -> text. `auto`: BOM (UTF-8, UTF-16), else UTF-8, else Windows-1252, else Latin-1."""
    return _decode(raw, encoding, path)[0]


def _decode(raw: bytes, encoding: str, path: Path) -> tuple[str, str]:
    """(text, the encoding that read it)."""
    if encoding == "auto":
        if raw.startswith(codecs.BOM_UTF8):
            candidates = ["utf-8-sig"]
        elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            candidates = ["utf-16"]
        else:
            candidates = ["utf-8", "cp1252", "latin-1"]
    else:
        candidates = [encoding]
    for i, enc in enumerate(candidates):
        try:
            return raw.decode(enc).lstrip("\ufeff"), enc
        except UnicodeDecodeError as exc:
            if i == len(candidates) - 1:
                raise ExtractError(
                    f"{path}: cannot read file as {enc} (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); "
                    "set csv.encoding in the source profile"
                ) from None
    raise AssertionError("unreachable")


def sniff_delimiter(text: str, configured: str = "auto") -> str:
    """The configured delimiter, or the one csv.Sniffer finds on the first lines (one of , ; tab |)
    that also splits the header; failing that, the candidate most frequent in the header."""
    if configured != "auto":
        return configured
    lines = text[: 1 << 16].splitlines()  # the first lines are enough (and a big file stays cheap)
    header = lines[0] if lines else ""
    try:
        found = csv.Sniffer().sniff("\n".join(lines[:SNIFF_LINES]), delimiters=",;\t|").delimiter
    except csv.Error:
        found = None
    if found and found in header:
        return found
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, table: str, profile: Profile | None) -> list[Part]:
    options = profile.csv_options(table) if profile else None
    raw = path.read_bytes()
    text, encoding = _decode(raw, options.encoding if options else "auto", path)
    if not text.strip():
        raise ExtractError(f"{path}: empty file (expected a header row)")
    delimiter = sniff_delimiter(text, options.delimiter if options else "auto")
    # UTF-8 without a byte-order mark (the common case) goes to polars as delivered; any other
    # encoding is handed over re-encoded as UTF-8
    data = raw if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else text.encode("utf-8")
    df = None
    # a well-formed file has an even number of quote characters; an odd number is an unterminated
    # quote, which polars would read as one field running to the next quote (or the end of the file)
    if text.count('"') % 2 == 0:
        try:
            df = pl.read_csv(io.BytesIO(data), separator=delimiter, infer_schema=False, quote_char='"')
        except Exception:  # a malformed record (extra field, bad quote): read record by record below
            df = None
    if df is not None:
        return [Part(path.name, _canonical(_headers(df), table, profile, str(path), 2))]
    df, rows, malformed = _read_csv_records(text, delimiter, path)
    return [Part(path.name, _canonical(_headers(df), table, profile, str(path), 2, rows=rows), malformed)]


def _lines(text: str) -> list[str]:
    """Physical lines with their line ends (only \\n ends a line; \\r\\n keeps its \\r)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _read_csv_records(text: str, delimiter: str, path: Path) -> tuple[pl.DataFrame, list[int], pl.DataFrame]:
    """The slow path for a file polars cannot read: parse record by record, and set aside every
    record that does not split into the header's fields (more fields than the header, a quote that
    is not closed, a quoted field that swallows the following lines). A set-aside record is one row
    (its number as the fast path would give it); parsing starts again on the line after its first.
    Returns (the readable records as text columns, their row numbers, the malformed records as
    source_row / reason / line). A record with fewer fields than the header is padded (as polars does)."""
    lines = _lines(text)
    try:
        header = next(csv.reader([lines[0]], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration):
        raise ExtractError(f"{path}: cannot read the header row as CSV") from None
    width = len(header)
    good: list[list[str | None]] = []
    good_rows: list[int] = []
    bad: list[tuple[int, str, str]] = []
    pos = [1]  # next line to hand to the csv reader

    def feed():
        while pos[0] < len(lines):
            pos[0] += 1
            yield lines[pos[0] - 1]

    def restart():
        return csv.reader(feed(), delimiter=delimiter, strict=True)

    reader = restart()
    row = 1  # the header
    while pos[0] < len(lines):
        start = pos[0]
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error:
            fields = None
        row += 1
        spans = pos[0] - start
        if fields is None or len(fields) > width or (spans > 1 and len(fields) != width):
            reason = (
                "malformed row: a quote is not closed, or a quoted field is malformed"
                if fields is None or spans > 1
                else f"malformed row: {len(fields)} fields where the header has {width}"
            )
            bad.append((row, reason, lines[start].rstrip("\r\n")[:200]))
            pos[0] = start + 1
            reader = restart()
            continue
        good.append(fields + [None] * (width - len(fields)) if len(fields) < width else fields)
        good_rows.append(row)
    names = _unique(header)
    df = pl.DataFrame(good, schema={n: pl.String for n in names}, orient="row") if good else pl.DataFrame(
        schema={n: pl.String for n in names}
    )
    malformed = pl.DataFrame(
        bad, schema={"source_row": pl.Int64, "reason": pl.String, "line": pl.String}, orient="row"
    )
    return df, good_rows, malformed


def _unique(names: list[str]) -> list[str]:
    """Header names made unique as polars does (a repeated name gets `_duplicated_<n>`)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            out.append(f"{name}_duplicated_{seen[name]}")
            seen[name] += 1
        else:
            seen[name] = 0
            out.append(name)
    return out


# ---------------------------------------------------------------------------------------------------
# XLSX


def _read_xlsx(path: Path, table: str, profile: Profile | None) -> list[Part]:
    import fastexcel

    try:
        sheets = fastexcel.read_excel(path).sheet_names
    except Exception as exc:
        raise ExtractError(f"{path}: cannot read file ({type(exc).__name__})") from None
    wanted = profile.sheet_for(table) if profile else None
    if wanted is None:
        chosen, several = sheets[:1], False
    elif any(ch in wanted for ch in "*?["):
        chosen, several = [s for s in sheets if fnmatch.fnmatchcase(s.lower(), wanted.lower())], True
    else:
        chosen = [s for s in sheets if s == wanted] or [s for s in sheets if s.lower() == wanted.lower()]
        several = False
    if not chosen:
        raise ExtractError(
            f"{path}: no sheet {'matching ' if several else ''}'{wanted}' for table {table}; "
            f"sheets found: {', '.join(sheets) or '(none)'}"
        )
    parts = []
    for sheet in chosen:
        where = f"{path}[{sheet}]"
        as_text = False
        try:
            try:
                df = pl.read_excel(path, sheet_name=sheet, raise_if_empty=False, infer_schema_length=None)
            except fastexcel.UnsupportedColumnTypeCombinationError:
                # a column mixes cell types (durations and numbers, dates and text): read it all as text
                df = pl.read_excel(path, sheet_name=sheet, raise_if_empty=False, infer_schema_length=0)
                as_text = True
        except Exception as exc:
            raise ExtractError(f"{where}: cannot read sheet ({type(exc).__name__})") from None
        if df.width == 0:
            if several:
                continue  # an empty sheet among several (a blank tab) holds no records
            raise ExtractError(f"{where}: empty sheet (expected a header row)")
        label = f"{path.name}[{sheet}]" if several else path.name
        parts.append(Part(label, _canonical(_headers(df), table, profile, where, 2, excel_text=as_text)))
    return parts


# ---------------------------------------------------------------------------------------------------
# Entry point


def outside_link(path: Path) -> bool:
    """True for a symbolic link (or a path through one) that leads outside the folder holding it:
    such a file is refused and never read (not even to fingerprint it)."""
    try:
        target = path.resolve(strict=False)
        return path.is_symlink() and not target.is_relative_to(path.parent.resolve(strict=False))
    except (OSError, RuntimeError):  # a loop of links
        return True


def read_parts(
    path: Path, table: str, profile: Profile | None = None, instruments: dict[str, str] | None = None
) -> list[Part]:
    """Read one file of `table` as canonical text parts. `instruments` maps LOINC codes to
    assessment instruments for FHIR Observations (default: data/reference/instruments.csv)."""
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ExtractError(f"{path}: cannot read file ({type(exc).__name__})") from None
    if outside_link(path):
        raise ExtractError(f"{path}: refused: a symbolic link to a file outside the extract folder")
    if size == 0:
        raise ExtractError(f"{path}: empty file (0 bytes)")
    if suffix == ".ndjson":
        df = fhir.read_resource_file(path, table, instruments)
        rows = df.get_column("source_row")
        return [Part(path.name, apply_profile(df.drop("source_row"), table, profile).with_columns(rows))]
    if suffix == ".xlsx":
        return _read_xlsx(path, table, profile)
    if suffix == ".parquet":
        try:
            df = pl.read_parquet(path)
        except Exception as exc:
            raise ExtractError(f"{path}: cannot read file ({type(exc).__name__})") from None
        return [Part(path.name, _canonical(_headers(df), table, profile, str(path), 1))]
    return _read_csv(path, table, profile)
