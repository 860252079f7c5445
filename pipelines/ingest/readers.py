"""Find the files of an extract drop and read each one as canonical text.

`discover` assigns the files of a drop folder to tables (canonical `<table>*` names, a source
profile's name patterns, or FHIR Bulk Data `<Resource>.ndjson` names). `iter_parts` reads one file
into `Part`s (an XLSX read with a sheet pattern gives one part per sheet; a CSV or Parquet file is
read in batches of about BATCH_BYTES, a part per batch, so memory holds a batch, not the file;
`read_parts` joins the batches again): every column a
string with its canonical name, values converted to canonical text where the profile says how
(ISO dates, HH:MM times, whole minutes, canonical codes), and the row number of every record so the
quarantine can name file, sheet and row. What cannot be converted is passed on as delivered; the SQL
checks of the ingest quarantine the row with a reason. A CSV record that does not split into the
header's fields is set aside as a malformed row (`Part.malformed`), the rest of the file is read.
File-level problems raise ExtractError naming the file (and sheet) and the column, never quoting the
file's content; a symbolic link leading outside the drop is refused unread. Every reader is bounded
before it allocates (limits.ReaderLimits, settings in data/reference/settings.csv): an XLSX sheet's
span is read from the workbook's parts first (workbook.py) and the sheets are loaded in a child
process under a memory limit (native_child.py); a Parquet file's columns and row groups from its
footer; a CSV file's line and record sizes while it is scanned and cut into batches.

Encodings (CSV): a UTF-8 or UTF-16 byte-order mark decides; otherwise UTF-8 if the bytes are valid
UTF-8, else Windows-1252, else Latin-1 -- unless the profile sets `csv.encoding`. Delimiters: `,`
`;` tab or `|`, found by csv.Sniffer on the first lines and checked against the header, unless the
profile sets `csv.delimiter`. A CSV file is read twice, one block at a time: once to find its
encoding (and whether its quotes are balanced), once to cut it into batches of whole records (a
batch ends at a line end after an even number of quote characters).
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import io
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.ingest import fhir, native_child
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.extract_format import TABLES
from pipelines.ingest.limits import ReaderLimits, default_limits
from pipelines.ingest.profiles import (
    Profile,
    apply_profile,
    describe_columns,
    known_columns,
    lookalikes,
    normalise_header,
    select_columns,
)
from pipelines.ingest.workbook import Workbook

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
        misnamed = fhir.misnamed_table(path.name)
        if misnamed is not None:  # `Encounter_zz.ndjson`: rejected naming it, not ignored
            found[misnamed].append(path)
            continue
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


def to_text(df: pl.DataFrame, table: str, integral: dict[str, bool] | None = None) -> pl.DataFrame:
    """Every column as text, by the canonical type of the column it now feeds:
    dates `YYYY-MM-DD` (a month column `YYYY-MM`), times `HH:MM` (an Excel time cell is a date-time
    on 1899-12-31), durations in whole minutes, integral floats without `.0`, booleans true/false.
    A date-time in any other column (e.g. a start timestamp) keeps its time: `YYYY-MM-DD HH:MM:SS`.
    `integral` says per float column whether the whole file holds whole numbers (a file read in
    batches is judged as a whole); a column not in it is judged on this frame."""
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
            whole = pl.lit(integral[name]) if integral and name in integral else _is_integral(col)
            e = pl.when(whole).then(col.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(
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
    rows: list[int] | None = None, integral: dict[str, bool] | None = None,
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
    df = to_text(df, table, integral)
    if excel_text:
        df = _excel_text(df, table)
    df = apply_profile(df, table, profile)
    missing = [c for c in TABLES[table].required_columns if c not in df.columns]
    if missing:
        mapped = f" (after the column mapping of profile {profile.name})" if profile else ""
        alike = lookalikes(found, missing, table, profile)
        hint = "".join(f"; found {name}, which looks like {column}" for name, column in alike.items())
        raise ExtractError(
            f"{where}: missing required column(s) {', '.join(missing)} for table {table}{mapped}{hint}"
            f"{' (fix the header, or map the name in a source profile)' if alike else ''}; "
            f"columns found: {describe_columns(found, table, profile, missing)}"
        )
    if rows is not None:
        return df.with_columns(pl.Series("source_row", rows, dtype=pl.Int64))
    return df.with_columns((pl.int_range(n, dtype=pl.Int64) + first_row).alias("source_row"))


def repeated_names(columns: list[str]) -> list[str]:
    """The normalised header names (profiles.normalise_header) that two or more columns share:
    `Entry ID` and `entry_id`, or a name repeated as such, which the reader made unique as polars
    does (`minutes_duplicated_0`)."""
    bases = [re.sub(r"_duplicated_\d+$", "", normalise_header(c)) for c in columns]
    # columns without a name (trailing empty header cells of a spreadsheet export) are not repeated names
    return sorted({n for n in bases if n and bases.count(n) > 1})


def _headers(df: pl.DataFrame, where: str, table: str, profile: Profile | None) -> pl.DataFrame:
    """Header names normalised; two columns with one name are an ExtractError naming the file: which
    one holds the values cannot be told."""
    repeated = repeated_names(df.columns)
    if repeated:
        known = [n for n in repeated if n in known_columns(table, profile)]
        # only known column names are shown: a file without a header row has data in its first row
        which = ", ".join(known) if known else "names that are not known columns (is the header row missing?)"
        raise ExtractError(
            f"{where}: two or more columns have the same name once spaces and case are ignored: {which};"
            " rename or remove the extra column"
        )
    return df.rename({c: normalise_header(c) for c in df.columns})


# ---------------------------------------------------------------------------------------------------
# CSV (read in batches: memory holds one batch of records, not the file)

BATCH_BYTES = 4 << 20  # bytes of a CSV or Parquet file per batch (larger batches cost memory, not time)
BLOCK_BYTES = 1 << 20  # bytes read from disk at a time
HEAD_CHARS = 1 << 16  # characters kept from the start of a file (for the delimiter)


def decode(raw: bytes, encoding: str, path: Path) -> str:
    """Bytes -> text. `auto`: BOM (UTF-8, UTF-16), else UTF-8, else Windows-1252, else Latin-1."""
    candidates = _candidates(raw[:4], encoding)
    for i, enc in enumerate(candidates):
        try:
            return raw.decode(enc).lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            if i == len(candidates) - 1:
                raise _encoding_error(path, enc, exc.start, raw[exc.start:exc.start + 1]) from None
    raise AssertionError("unreachable")


def _candidates(head: bytes, encoding: str) -> list[str]:
    if encoding != "auto":
        return [encoding]
    if head.startswith(codecs.BOM_UTF8):
        return ["utf-8-sig"]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ["utf-16"]
    return ["utf-8", "cp1252", "latin-1"]


def _encoding_error(path: Path, enc: str, at: int, byte: bytes) -> ExtractError:
    return ExtractError(
        f"{path}: cannot read file as {enc} (byte {at}: {byte!r}); set csv.encoding in the source profile"
    )


def _blocks(path: Path, size: int | None = None) -> Iterator[bytes]:
    size = size or BLOCK_BYTES
    with path.open("rb") as fh:
        while block := fh.read(size):
            yield block


class _Undecodable(Exception):
    def __init__(self, at: int, byte: bytes):
        super().__init__(at)
        self.at, self.byte = at, byte


@dataclass
class _CsvScan:
    """What one pass over a CSV file finds; of its content only the first characters are kept."""

    encoding: str  # the encoding that reads the whole file
    head: str  # the first HEAD_CHARS characters (the delimiter is found there)
    blank: bool  # nothing but white space
    quotes: int  # quote characters (an odd number: an unterminated quote)
    # a blank line, a carriage return that does not end a line, or a line end before the header:
    # read by the record reader's rules only (DuckDB's reader would skip or split such lines)
    odd_lines: bool
    carriage_returns: bool  # some line ends are CR LF
    bare_line_feeds: bool  # some line ends are LF alone

    @property
    def even_quotes(self) -> bool:
        return self.quotes % 2 == 0


_BLANK_LINE = re.compile("\n[\r\n]")  # a line that is empty, or starts with a carriage return
_LONE_CR = re.compile("\r[^\n]")


def _line_ends(window: str, final: bool) -> tuple[bool, bool, bool]:
    """(a blank line or a lone carriage return, a carriage return, a line feed without one) in
    `window`: the text of a block after the last two characters of the one before, so that what a
    block boundary cuts is seen whole. Cheap for the usual file with LF line ends: the carriage
    return is looked for first."""
    blank = _BLANK_LINE.search(window) is not None
    if "\r" not in window:
        return blank, False, "\n" in window
    lone = _LONE_CR.search(window) is not None or (final and window.endswith("\r"))
    return blank or lone, True, window.count("\n") != window.count("\r\n")


def _decode_pass(path: Path, enc: str, max_line: int | None = None) -> _CsvScan:
    """Decode the whole file block by block (raises _Undecodable with the byte's offset; an
    ExtractError when a line is longer than max_line characters)."""
    decoder = codecs.getincrementaldecoder(enc)(errors="strict")
    head, blank, quotes, offset, tail = "", True, 0, 0, ""
    line = 0  # characters of the line the block ends in
    odd = crs = bare = False
    blocks = _blocks(path)
    while True:
        block = next(blocks, None)
        final = block is None
        pending = len(decoder.getstate()[0])  # bytes of a character cut by the previous block
        try:
            text = decoder.decode(block or b"", final=final)
        except UnicodeDecodeError as exc:
            raise _Undecodable(offset - pending + exc.start, exc.object[exc.start:exc.start + 1]) from None
        if len(head) < HEAD_CHARS:
            head = (head + text).lstrip("\ufeff")[:HEAD_CHARS]
        blank = blank and (not text or text.lstrip("\ufeff").isspace())
        quotes += text.count('"') if '"' in text else 0
        if max_line is not None:
            line = _line_length(path, text, line, max_line)
        window = tail + text
        o, c, b = _line_ends(window, final)
        odd, crs, bare = odd or o, crs or c, bare or b
        tail = window[-2:]
        if final:
            return _CsvScan(enc, head, blank, quotes, odd or head.startswith(("\n", "\r")), crs, bare)
        offset += len(block)


def _line_length(path: Path, text: str, line: int, max_line: int) -> int:
    """The length of the line `text` ends in, given the length `line` of the one it starts in; an
    ExtractError when a line is longer than max_line characters (setting csv_max_line_chars). Lines
    are split only when the block could hold one that long."""
    if line + len(text) > max_line:
        lines = text.split("\n")
        if line + len(lines[0]) > max_line or max(map(len, lines[1:]), default=0) > max_line:
            raise ExtractError(
                f"{path}: a line longer than {max_line:,} characters, over the limit (setting csv_max_line_chars);"
                " not read"
            )
    cut = text.rfind("\n")
    return line + len(text) if cut < 0 else len(text) - cut - 1


def _scan_csv(path: Path, encoding: str, limits: ReaderLimits | None = None) -> _CsvScan:
    """The encoding as `decode` finds it (BOM, else UTF-8, else Windows-1252, else Latin-1, or the
    configured one), each candidate tried over the whole file one block at a time; a line longer
    than the limit (csv_max_line_chars) is an ExtractError."""
    limits = limits or default_limits()
    with path.open("rb") as fh:
        candidates = _candidates(fh.read(4), encoding)
    for i, enc in enumerate(candidates):
        try:
            return _decode_pass(path, enc, limits.csv_max_line_chars)
        except _Undecodable as bad:
            if i == len(candidates) - 1:
                raise _encoding_error(path, enc, bad.at, bad.byte) from None
    raise AssertionError("unreachable")


def _utf8_blocks(path: Path, encoding: str, size: int | None = None) -> Iterator[bytes]:
    """The file as UTF-8 bytes block by block, without a byte-order mark: UTF-8 as delivered, any
    other encoding decoded and re-encoded (polars reads UTF-8)."""
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        yield from _blocks(path, size)
        return
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    first = True
    for block in _with_end(_blocks(path, size)):
        text = decoder.decode(block or b"", final=block is None)
        if first and text:
            text, first = text.lstrip("\ufeff"), False
        if text:
            yield text.encode("utf-8")


def _with_end(blocks: Iterator[bytes]) -> Iterator[bytes | None]:
    yield from blocks
    yield None


def _first_record_end(buf: bytearray) -> int:
    """Index of the line end closing the first record (a line end after an even number of quote
    characters), or -1 when buf holds no complete record yet."""
    pos, quotes = -1, 0
    while (nxt := buf.find(b"\n", pos + 1)) >= 0:
        quotes += buf.count(b'"', pos + 1, nxt)
        if quotes % 2 == 0:
            return nxt
        pos = nxt
    return -1


def _last_record_end(buf: bytearray) -> int:
    """Index of the last line end in buf that closes a record (buf starts at a record), or -1."""
    total, after, end = buf.count(b'"'), 0, len(buf)
    while (cut := buf.rfind(b"\n", 0, end)) >= 0:
        after += buf.count(b'"', cut, end)  # quote characters after this line end
        if (total - after) % 2 == 0:
            return cut
        end = cut
    return -1


def _record_chunks(
    blocks: Iterator[bytes], batch_bytes: int, path: Path | None = None, max_record: int | None = None
) -> Iterator[bytes]:
    """UTF-8 bytes -> the header record, then chunks of whole records of at least batch_bytes (but
    the last). A chunk ends at a line end after an even number of quote characters, so the line
    breaks of a quoted field stay inside their record (for a file with an even number of quotes).
    A record longer than max_record bytes (a quote that closes far on) is an ExtractError naming
    `path` (setting csv_max_record_bytes): memory never holds more than a batch and one record."""
    buf = bytearray()
    header = False
    for block in blocks:
        buf.extend(block)
        if not header:
            cut = _first_record_end(buf)
            if cut < 0:
                _record_limit(buf, path, max_record)
                continue
            yield bytes(buf[: cut + 1])
            del buf[: cut + 1]
            header = True
        if len(buf) >= batch_bytes or (max_record is not None and len(buf) > max_record):
            cut = _last_record_end(buf)
            if cut < 0:
                _record_limit(buf, path, max_record)
            elif len(buf) >= batch_bytes:
                yield bytes(buf[: cut + 1])
                del buf[: cut + 1]
    if buf or not header:
        yield bytes(buf)


def _record_limit(buf: bytearray, path: Path | None, max_record: int | None) -> None:
    """An ExtractError when buf, which holds no record end, is longer than max_record bytes."""
    if max_record is not None and len(buf) > max_record:
        raise ExtractError(
            f"{path}: a record (a quoted field over several lines) longer than {max_record:,} bytes, over the limit"
            " (setting csv_max_record_bytes); not read"
        )


def sniff_delimiter(text: str, configured: str = "auto") -> str:
    """The configured delimiter, or the one csv.Sniffer finds on the first lines (one of , ; tab |)
    that also splits the header; failing that, the candidate most frequent in the header."""
    if configured != "auto":
        return configured
    lines = text[:HEAD_CHARS].splitlines()  # the first lines are enough (and a big file stays cheap)
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


def _iter_csv(
    path: Path, table: str, profile: Profile | None, batch_bytes: int, limits: ReaderLimits | None = None
) -> Iterator[Part]:
    """A CSV file as parts of about batch_bytes each, with row numbers continuing across parts.
    A file with an odd number of quotes (an unterminated quote, which polars would read as one
    field running on to the next quote) is read record by record; so is a batch polars cannot
    read (a record with more fields than the header)."""
    options = profile.csv_options(table) if profile else None
    limits = limits or default_limits()
    scan = _scan_csv(path, options.encoding if options else "auto", limits)
    if scan.blank:
        raise ExtractError(f"{path}: empty file (expected a header row)")
    delimiter = sniff_delimiter(scan.head, options.delimiter if options else "auto")
    blocks = _utf8_blocks(path, scan.encoding, min(BLOCK_BYTES, batch_bytes))

    names: list[str] | None = None  # the header as the csv module reads it (polars keeps "" in a quoted name)

    def canonical(df: pl.DataFrame, first_row: int, rows: list[int] | None = None) -> pl.DataFrame:
        if names is not None and len(names) == df.width:
            df = df.rename(dict(zip(df.columns, names)))
        return _canonical(_headers(df, str(path), table, profile), table, profile, str(path), first_row, rows=rows)

    if not scan.even_quotes:
        reader = _RecordReader(_text_lines(blocks), delimiter, path, batch_bytes)
        for df, rows, malformed in reader:
            yield Part(path.name, canonical(df, 2, rows), malformed)
        return
    chunks = _record_chunks(blocks, batch_bytes, path, limits.csv_max_record_bytes)
    header = next(chunks)
    names = header_names(header, delimiter)
    row = 2  # the first record's row number (the header is row 1)
    records = False
    for chunk in chunks:
        records = True
        try:
            df = pl.read_csv(io.BytesIO(header + chunk), separator=delimiter, infer_schema=False, quote_char='"')
        except Exception:  # a malformed record (extra field, bad quote): this batch record by record
            df = None
        if df is not None:
            yield Part(path.name, canonical(df, row))
            row += df.height
            continue
        text = (header + chunk).decode("utf-8")
        reader = _RecordReader(iter(_lines(text)), delimiter, path, batch_bytes, first_row=row)
        for df, rows, malformed in reader:
            yield Part(path.name, canonical(df, row, rows), malformed)
        row = reader.next_row
    if not records:  # a header without records
        df = pl.read_csv(io.BytesIO(header), separator=delimiter, infer_schema=False, quote_char='"')
        yield Part(path.name, canonical(df, row))


def header_names(header: bytes, delimiter: str) -> list[str] | None:
    """The names of a UTF-8 header record as the csv module reads them (a quoted name unquoted, a
    doubled quote inside it made one: `"entry""id"` -> `entry"id`, as the record reader and DuckDB
    read it; polars keeps the doubled quote), made unique as polars makes them. None when the csv
    module cannot read the record."""
    try:
        fields = next(csv.reader([header.decode("utf-8").rstrip("\r\n")], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration, UnicodeDecodeError):
        return None
    return _unique(fields)


def _lines(text: str) -> list[str]:
    """Physical lines with their line ends (only \\n ends a line; \\r\\n keeps its \\r)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _text_lines(blocks: Iterator[bytes]) -> Iterator[str]:
    """UTF-8 blocks -> physical lines with their line ends, one block in memory at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    rest = ""
    for block in _with_end(blocks):
        text = rest + decoder.decode(block or b"", final=block is None)
        lines = _lines(text)
        if block is not None and lines and not lines[-1].endswith("\n"):
            rest = lines.pop()
        else:
            rest = ""
        yield from lines


class _RecordReader:
    """The slow path for records polars cannot read: parse record by record, and set aside every
    record that does not split into the header's fields (more fields than the header, a quote that
    is not closed, a quoted field that swallows the following lines). A set-aside record is one row
    (its number as the fast path would give it); parsing starts again on the line after its first.
    Iterating yields batches of about batch_bytes: (the readable records as text columns, their row
    numbers, the malformed records as source_row / reason / line). A record with fewer fields than
    the header is padded (as polars does). Only the lines of the record being read are kept (all
    the rest of the file only while a quote that is never closed is being read)."""

    def __init__(self, lines: Iterator[str], delimiter: str, path: Path, batch_bytes: int, first_row: int = 2):
        self.lines, self.delimiter, self.path, self.batch_bytes = lines, delimiter, path, batch_bytes
        self.next_row = first_row  # the row number of the next record

    def __iter__(self) -> Iterator[tuple[pl.DataFrame, list[int], pl.DataFrame]]:
        first = next(self.lines, None)
        try:
            header = next(csv.reader([first or ""], delimiter=self.delimiter, strict=True))
        except (csv.Error, StopIteration):
            raise ExtractError(f"{self.path}: cannot read the header row as CSV") from None
        width, names = len(header), _unique(header)
        replay: deque[str] = deque()  # lines to read again after a set-aside record
        current: list[str] = []  # the lines of the record being read

        def feed() -> Iterator[str]:
            while True:
                line = replay.popleft() if replay else next(self.lines, None)
                if line is None:
                    return
                current.append(line)
                yield line

        good: list[list[str | None]] = []
        good_rows: list[int] = []
        bad: list[tuple[int, str, str]] = []
        size = 0
        reader = csv.reader(feed(), delimiter=self.delimiter, strict=True)
        while True:
            current.clear()
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error:
                fields = None
            if not current:
                break
            row = self.next_row
            self.next_row += 1
            spans = len(current)
            if fields is None or len(fields) > width or (spans > 1 and len(fields) != width):
                reason = (
                    "malformed row: a quote is not closed, or a quoted field is malformed"
                    if fields is None or spans > 1
                    else f"malformed row: {len(fields)} fields where the header has {width}"
                )
                bad.append((row, reason, current[0].rstrip("\r\n")[:200]))
                replay.extendleft(reversed(current[1:]))  # read again from the line after its first
                reader = csv.reader(feed(), delimiter=self.delimiter, strict=True)
                continue
            good.append(fields + [None] * (width - len(fields)) if len(fields) < width else fields)
            good_rows.append(row)
            size += sum(len(line) for line in current)
            if size >= self.batch_bytes:
                yield self._batch(names, good, good_rows, bad)
                good, good_rows, bad, size = [], [], [], 0
        yield self._batch(names, good, good_rows, bad)

    @staticmethod
    def _batch(names, good, good_rows, bad) -> tuple[pl.DataFrame, list[int], pl.DataFrame]:
        schema = {n: pl.String for n in names}
        df = pl.DataFrame(good, schema=schema, orient="row") if good else pl.DataFrame(schema=schema)
        # an empty field is null, as polars reads it (the batch of a file polars reads looks the same)
        df = df.with_columns(pl.when(pl.all() != "").then(pl.all()))
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
# Parquet (read in batches of rows)


def _iter_parquet(
    path: Path, table: str, profile: Profile | None, batch_bytes: int, limits: ReaderLimits | None = None
) -> Iterator[Part]:
    """A Parquet file in batches of about batch_bytes of uncompressed data. Its metadata is checked
    first (_parquet_columns: the column and row-group limits, nested columns). Whether a float column
    holds only whole numbers (written without `.0`) is decided over the whole file first. Columns that
    feed no canonical column are not read."""
    import pyarrow.parquet as pq

    limits = limits or default_limits()
    try:
        file = pq.ParquetFile(path)
        meta = file.metadata
    except Exception as exc:
        raise ExtractError(f"{path}: cannot read file ({type(exc).__name__})") from None
    columns = _parquet_columns(path, file, table, profile, limits)
    try:
        floats = [name for name, dtype in pl.read_parquet_schema(path).items() if dtype.is_float() and name in columns]
        integral = (
            pl.scan_parquet(path).select(_is_integral(pl.col(c)).alias(c) for c in floats).collect().row(0, named=True)
            if floats else {}
        )
        integral = _by_canonical({normalise_header(c): bool(v) for c, v in integral.items()}, file, table, profile)
        uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        rows_per_batch = max(1, int(meta.num_rows * batch_bytes / max(uncompressed, 1)))
        batches = file.iter_batches(batch_size=rows_per_batch, columns=columns)
        first = next(batches, None)
    except Exception as exc:
        raise ExtractError(f"{path}: cannot read file ({type(exc).__name__})") from None
    row = 1
    schema = file.schema_arrow
    empty = pl.from_arrow(schema.empty_table().select(columns)) if first is None else None
    for batch in [first] if first is None else _chain(path, first, batches):
        try:
            df = pl.from_arrow(batch) if batch is not None else empty
        except Exception as exc:
            raise ExtractError(f"{path}: cannot read file ({type(exc).__name__})") from None
        yield Part(path.name, _canonical(_headers(df, str(path), table, profile), table, profile, str(path), row,
                                          integral=integral))
        row += df.height


def _parquet_columns(path: Path, file, table: str, profile: Profile | None, limits: ReaderLimits) -> list[str]:
    """The columns of a Parquet file to read, from its metadata: an ExtractError naming the file when
    it has more columns than parquet_max_columns or a row group larger than parquet_max_row_group_mb
    (a row group is read whole), or when a column with nested values (a list, a struct, a map) feeds a
    canonical column (it has no text to give). Nested columns feeding nothing are left unread."""
    import pyarrow as pa

    meta = file.metadata
    if meta.num_columns > limits.parquet_max_columns:
        raise ExtractError(
            f"{path}: {meta.num_columns:,} columns, over the limit of {limits.parquet_max_columns:,}"
            " (setting parquet_max_columns); not read"
        )
    largest = max((meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)), default=0)
    if largest > limits.parquet_max_row_group_mb << 20:
        raise ExtractError(
            f"{path}: a row group of {largest >> 20:,} MB uncompressed, over the limit of"
            f" {limits.parquet_max_row_group_mb:,} MB (setting parquet_max_row_group_mb); not read"
        )
    schema = file.schema_arrow
    nested = {f.name for f in schema if pa.types.is_nested(f.type)}
    if nested:
        names = list(dict.fromkeys(normalise_header(c) for c in schema.names))
        try:
            sources = set(select_columns(pl.DataFrame({n: [n] for n in names}), table, profile).row(0, named=True).values())
        except ExtractError:
            sources = set()  # reported with the file's name when the first batch is read
        feeding = [c for c in schema.names if c in nested and normalise_header(c) in sources]
        if feeding:
            kinds = ", ".join(f"{normalise_header(c)} ({str(schema.field(c).type).split('<')[0]})" for c in feeding)
            raise ExtractError(
                f"{path}: column(s) {kinds} hold nested values (a list, struct or map), not one value per"
                f" row; write them as text or numbers; not read"
            )
    return [c for c in schema.names if c not in nested]


def _chain(path: Path, first, rest) -> Iterator:
    yield first
    try:
        yield from rest
    except Exception as exc:  # a corrupt row group further on
        raise ExtractError(f"{path}: cannot read file ({type(exc).__name__})") from None


def _by_canonical(flags: dict[str, bool], file, table: str, profile: Profile | None) -> dict[str, bool]:
    """Per-source-column flags keyed by the canonical column each source column feeds (found by
    mapping a one-row frame whose values are its column names)."""
    names = list(dict.fromkeys(normalise_header(c) for c in file.schema_arrow.names))
    try:
        sources = select_columns(pl.DataFrame({n: [n] for n in names}), table, profile).row(0, named=True)
    except ExtractError:  # reported with the file's name when the first batch is read
        return {}
    return {canonical: flags[src] for canonical, src in sources.items() if src in flags}


# ---------------------------------------------------------------------------------------------------
# XLSX


def choose_sheets(sheets: list[str], wanted: str | None) -> tuple[list[str], bool]:
    """The sheets a table is read from (the first; a named one, exact else ignoring case; or every
    sheet matching a pattern) and whether they are several (a pattern)."""
    if wanted is None:
        return sheets[:1], False
    if any(ch in wanted for ch in "*?["):
        return [s for s in sheets if fnmatch.fnmatchcase(s.lower(), wanted.lower())], True
    return [s for s in sheets if s == wanted] or [s for s in sheets if s.lower() == wanted.lower()], False


def _read_xlsx(path: Path, table: str, profile: Profile | None, limits: ReaderLimits) -> list[Part]:
    """The chosen sheets of a workbook. The sheet names and each chosen sheet's span come from the
    workbook's parts first (workbook.Workbook: a sheet over the limits is rejected unread); the
    sheets are then loaded by fastexcel in a child process under a memory limit (native_child), so
    a reader that runs out of memory or crashes rejects this file and the run goes on."""
    book = Workbook(path, limits)
    try:
        sheets = list(book.sheets)
        wanted = profile.sheet_for(table) if profile else None
        chosen, several = choose_sheets(sheets, wanted)
        if not chosen:
            raise ExtractError(
                f"{path}: no sheet {'matching ' if several else ''}'{wanted}' for table {table}; "
                f"sheets found: {', '.join(sheets) or '(none)'}"
            )
        for sheet in chosen:
            book.check(sheet, f"{path}[{sheet}]")
    finally:
        book.close()
    try:
        read = native_child.read_workbook(path, chosen, limits.native_reader_memory_mb)
    except native_child.ChildFailed:
        raise ExtractError(
            f"{path}: the XLSX reader failed (out of memory under the limit of"
            f" {limits.native_reader_memory_mb:,} MB, setting native_reader_memory_mb, or a crash); not read"
        ) from None
    parts = []
    for sheet, df, as_text, error in read:
        where = f"{path}[{sheet}]"
        if error is not None:
            raise ExtractError(f"{where}: cannot read sheet ({error})")
        if df.width == 0:
            if several:
                continue  # an empty sheet among several (a blank tab) holds no records
            raise ExtractError(f"{where}: empty sheet (expected a header row)")
        label = f"{path.name}[{sheet}]" if several else path.name
        parts.append(Part(label, _canonical(_headers(df, where, table, profile), table, profile, where, 2,
                                             excel_text=as_text)))
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
    path: Path, table: str, profile: Profile | None = None, instruments: dict[str, str] | None = None,
    limits: ReaderLimits | None = None,
) -> list[Part]:
    """Read one file of `table` as canonical text parts, each whole (the batches of `iter_parts`
    joined again per part). `instruments` maps LOINC codes to assessment instruments for FHIR
    Observations (default: data/reference/instruments.csv)."""
    joined: dict[str, list[Part]] = {}
    for part in iter_parts(path, table, profile, instruments, limits=limits):
        joined.setdefault(part.label, []).append(part)
    out = []
    for label, batches in joined.items():
        malformed = [b.malformed for b in batches if b.malformed is not None]
        out.append(Part(
            label,
            pl.concat([b.data for b in batches], how="diagonal") if len(batches) > 1 else batches[0].data,
            pl.concat(malformed) if malformed else None,
        ))
    return out


def iter_parts(
    path: Path, table: str, profile: Profile | None = None, instruments: dict[str, str] | None = None,
    batch_bytes: int | None = None, limits: ReaderLimits | None = None,
) -> Iterator[Part]:
    """Read one file of `table` as canonical text parts, a CSV or Parquet file in batches of about
    batch_bytes (several parts with the same label, row numbers continuing), so memory holds one
    batch of a large file. A file-level problem may be raised after some batches were yielded (a
    caller that kept them drops them). batch_bytes defaults to BATCH_BYTES; `limits` (the reader
    limits of the settings) to the shipped ones."""
    batch_bytes = batch_bytes or BATCH_BYTES
    limits = limits or default_limits()
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
        yield Part(path.name, apply_profile(df.drop("source_row"), table, profile).with_columns(rows))
    elif suffix == ".xlsx":
        yield from _read_xlsx(path, table, profile, limits)
    elif suffix == ".parquet":
        yield from _iter_parquet(path, table, profile, batch_bytes, limits)
    else:
        yield from _iter_csv(path, table, profile, batch_bytes, limits)
