"""Plain CSV files read by DuckDB's own CSV reader, straight into the landing table.

The reader of `readers.py` (polars in batches, the csv module record by record) defines what a CSV
file means: every value text, an empty field null (a quoted empty field ""), a record with fewer
fields than the header padded with nulls, a record with more fields (or a quote that does not
close) set aside as a malformed row, rows numbered by record from 2. DuckDB's `read_csv` reads the
same files several times faster and without handing every value through Arrow, but it differs on
files that are not well-formed: it skips blank lines, splits lines at a lone carriage return, drops
empty fields after the last column, and takes spaces around a quoted field or a quote inside an
unquoted field its own way. So a file goes to DuckDB only when its reading cannot differ:

- its encoding is UTF-8 (with or without a byte-order mark); any other encoding found by the scan
  (Windows-1252, Latin-1, UTF-16, a profile's) is decoded and written to a private UTF-8 copy first;
- no profile mapping of its table changes values (value maps, formats, defaults, minutes): renamed
  columns are fine, the rest is done by `profiles.apply_profile` on the other path;
- the scan found no blank line, no lone carriage return and an even number of quote characters;
- its line ends are all LF or all CR LF, as the header's (DuckDB takes every line end to be the
  header's; inside a quoted field either may appear);
- a file holding quote characters is well-formed record by record (`_grammar`, one batch of records
  at a time: every quoted field starts at a field start and ends at a field end, no record with more
  fields than the header);
- a file without quote characters has no record with more fields than the header: DuckDB reads one
  column more than the header, with empty fields as '' (`nullstr` is a line feed, which no field of
  such a file can hold), and the load stops as soon as that extra column holds anything.

Anything else (and any error of DuckDB's reader) is read by `readers.iter_parts` as before, with the
same result. File-level problems (encoding, empty file, missing required columns) raise the same
ExtractError as `iter_parts` would.
"""

from __future__ import annotations

import codecs
import io
import itertools
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.ingest import readers
from pipelines.ingest.limits import ReaderLimits, default_limits
from pipelines.ingest.profiles import Profile, maps_values, normalise_header

UTF8 = ("utf-8", "utf-8-sig")  # codecs' names of the encodings DuckDB reads as delivered


@dataclass(frozen=True)
class NativeCsv:
    """How DuckDB reads one CSV file of a table."""

    path: Path  # the delivered file
    label: str  # recorded as source_file
    encoding: str  # what the scan found: UTF-8 is read as delivered, anything else from a UTF-8 copy
    delimiter: str
    width: int  # fields of the header record
    sources: dict[str, int]  # canonical column -> field index (columns the file lacks are null)
    quoted: bool  # the file holds quote characters


def plan(path: Path, table: str, profile: Profile | None = None, limits: ReaderLimits | None = None) -> NativeCsv | None:
    """The way DuckDB reads this CSV file, or None when the file must be read by `iter_parts`
    (not a plain CSV file, a profile that maps values, a file that is not well-formed). Raises
    ExtractError for what `iter_parts` would reject (an encoding error, missing required columns)."""
    if path.suffix.lower() in (".parquet", ".xlsx", ".ndjson") or maps_values(profile, table):
        return None
    try:
        if path.stat().st_size == 0 or readers.outside_link(path):
            return None  # iter_parts says why
    except OSError:
        return None
    options = profile.csv_options(table) if profile else None
    limits = limits or default_limits()
    scan = readers._scan_csv(path, options.encoding if options else "auto", limits)
    if scan.blank or not scan.even_quotes or scan.odd_lines:
        return None
    delimiter = readers.sniff_delimiter(scan.head, options.delimiter if options else "auto")
    chunks = readers._record_chunks(
        readers._utf8_blocks(path, scan.encoding), readers.BATCH_BYTES, path, limits.csv_max_record_bytes
    )
    header = next(chunks)
    if b"\n" in header.rstrip(b"\r\n"):
        return None  # a header record over several lines
    eol = b"\r\n" if header.endswith(b"\r\n") else b"\n"  # DuckDB takes every line end to be the header's
    if not scan.quotes and scan.carriage_returns and scan.bare_line_feeds:
        return None  # line ends of both kinds
    try:
        names = pl.read_csv(io.BytesIO(header), separator=delimiter, infer_schema=False, quote_char='"').columns
    except Exception:  # noqa: BLE001  (the record reader says what is wrong with the header)
        return None
    unquoted = readers.header_names(header, delimiter)  # polars keeps the "" of a quoted name
    if unquoted is None or len(unquoted) != len(names):
        return None
    names = unquoted
    if readers.repeated_names(names):
        return None  # two columns with one name: the record reader rejects the file, naming it
    normalised = [normalise_header(n) for n in names]
    # the columns the file feeds, found as iter_parts finds them: a one-row frame of field indexes
    frame = pl.DataFrame({n: [str(i)] for i, n in enumerate(normalised)}, schema={n: pl.String for n in normalised})
    mapped = readers._canonical(frame, table, profile, str(path), 2).drop("source_row").row(0, named=True)
    if scan.quotes and not _well_formed(header, chunks, delimiter, len(names), eol):
        return None
    return NativeCsv(
        path, path.name, scan.encoding, delimiter, len(names), {c: int(i) for c, i in mapped.items()}, scan.quotes > 0
    )


def _grammar(delimiter: str, width: int, eol: bytes) -> re.Pattern[bytes]:
    """Whole records of at most `width` fields ending in `eol` (but the last), each field unquoted
    (no quote, delimiter or line end) or quoted from its first to its last character (a quote
    inside doubled; anything else, line ends too, as it is)."""
    d = re.escape(delimiter.encode())
    field = rb'(?>"(?>[^"]++|"")*+"|[^"' + d + rb"\r\n]*+)"
    record = rb"(?!" + eol + rb")" + field + rb"(?>" + d + field + rb"){0,%d}+" % (width - 1)
    return re.compile(rb"(?>" + record + eol + rb")*+(?>" + record + rb")?+")


def _well_formed(header: bytes, chunks: Iterator[bytes], delimiter: str, width: int, eol: bytes) -> bool:
    grammar = _grammar(delimiter, width, eol)
    return all(grammar.fullmatch(chunk) is not None for chunk in itertools.chain([header], chunks) if chunk)


@contextmanager
def readable_path(native: NativeCsv) -> Iterator[Path]:
    """The file as DuckDB reads it: as delivered when UTF-8, else a UTF-8 copy in a private
    temporary folder (owner-only), removed afterwards."""
    if codecs.lookup(native.encoding).name in UTF8:
        yield native.path
        return
    folder = Path(tempfile.mkdtemp(prefix="bhi-ingest-"))
    try:
        copy = folder / "extract.csv"
        with copy.open("wb") as out:
            for block in readers._utf8_blocks(native.path, native.encoding):
                out.write(block)
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_csv_sql(native: NativeCsv) -> str:
    """`read_csv(?, ...)` with every setting explicit (nothing sniffed); the file's path is the
    one parameter. Fields are c0, c1, ...; a file without quotes has one more, c<width>, that holds
    something only for a record with more fields than the header."""
    extra = 0 if native.quoted else 1
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(native.width + extra)) + "}"
    delimiter = native.delimiter.replace("'", "''")
    settings = [
        "header = true", "auto_detect = false", f"columns = {columns}", f"delim = '{delimiter}'",
        "quote = '\"'", "escape = '\"'", "strict_mode = true", "null_padding = true", "allow_quoted_nulls = false",
        "encoding = 'utf-8'", "max_line_size = 8388608",
    ]
    if native.quoted:
        settings.append("parallel = false")  # DuckDB pads short records of quoted line breaks only reading serially
    else:
        settings.append("nullstr = '\n'")  # no field of a file without quotes holds a line feed: '' stays ''
    return f"read_csv(?, {', '.join(settings)})"


def field_sql(native: NativeCsv, column: str) -> str:
    """The SQL giving a canonical column's text as iter_parts gives it (an empty field null)."""
    index = native.sources.get(column)
    if index is None:
        return "null::varchar"
    return f"c{index}" if native.quoted else f"nullif(c{index}, '')"


def overflow_sql(native: NativeCsv) -> str:
    """A condition that fails the statement on a record with more fields than the header (a file
    without quotes; the caller then reads the file with iter_parts)."""
    if native.quoted:
        return "true"
    return f"case when c{native.width} is null then true else error('a record with more fields than the header') end"
