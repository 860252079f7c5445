"""What an XLSX workbook holds, read from its zip parts before any sheet is loaded.

A sheet is loaded by fastexcel (Rust), which allocates the whole rectangle from A1 to the sheet's
last cell at once: a 5 KB workbook with one cell at XFD1048576 asks for 512 GB and aborts the
process. So the sheet names come from `xl/workbook.xml`, and the span of each sheet to be read from
its `<dimension ref>` and the largest row number and column letters of its cells (`r="XFD1048576"`),
scanned block by block; the parts' unpacked size is bounded as it is read (a zip bomb stops at the
limit). Only the zip's own structure is parsed here (by regular expressions over bytes, never an
XML parser with entities); nothing of a cell's content is kept or shown.
"""

from __future__ import annotations

import html
import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.ingest.errors import ExtractError
from pipelines.ingest.limits import ReaderLimits

_SHEET = re.compile(rb"<(?:\w+:)?sheet\b([^>]*)>")
_ATTR_NAME = re.compile(rb'\bname="([^"]*)"')
_ATTR_RID = re.compile(rb'\b\w+:id="([^"]*)"')
_REL = re.compile(rb"<(?:\w+:)?Relationship\b([^>]*)>")
_ATTR_ID = re.compile(rb'\bId="([^"]*)"')
_ATTR_TARGET = re.compile(rb'\bTarget="([^"]*)"')
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\b[^>]*?\bref="([A-Za-z]*)(\d*)(?::([A-Za-z]*)(\d*))?"')
_CELL = re.compile(rb'<(?:\w+:)?c\b[^>]*?\br="([A-Za-z]{1,4})(\d{1,8})"')
_ROW = re.compile(rb'<(?:\w+:)?row\b[^>]*?\br="(\d{1,8})"')
BLOCK = 1 << 20  # bytes unpacked at a time
OVERLAP = 512  # bytes of a block kept for the next (a tag cut by the block boundary is seen whole)


@dataclass(frozen=True)
class Span:
    rows: int  # rows from row 1 to the last
    columns: int  # columns from A to the last

    @property
    def cells(self) -> int:
        return self.rows * self.columns


def column_number(letters: bytes) -> int:
    """b'A' -> 1, b'XFD' -> 16384."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + ch - 64
    return n


def column_letters(n: int) -> str:
    out = ""
    while n > 0:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


class Workbook:
    """The sheets of a workbook (name -> part) and the span of each, within the limits."""

    def __init__(self, path: Path, limits: ReaderLimits):
        self.path, self.limits = path, limits
        self.budget = limits.xlsx_max_uncompressed_mb << 20  # bytes the parts read here may unpack to
        try:
            self.zip = zipfile.ZipFile(path)
            declared = sum(i.file_size for i in self.zip.infolist())
            if declared > self.budget:
                raise self._over(f"its parts unpack to {declared >> 20:,} MB")
            self.sheets = self._sheets()
        except ExtractError:
            raise
        except Exception as exc:  # not a zip, no workbook part, a damaged part
            raise ExtractError(f"{path}: cannot read file ({type(exc).__name__})") from None

    def _over(self, found: str) -> ExtractError:
        return ExtractError(
            f"{self.path}: {found}, over the limit of {self.limits.xlsx_max_uncompressed_mb:,} MB"
            " (setting xlsx_max_uncompressed_mb); not read"
        )

    def _blocks(self, name: str):
        with self.zip.open(name) as fh:
            while block := fh.read(BLOCK):
                self.budget -= len(block)
                if self.budget < 0:
                    raise self._over("its parts unpack to more")
                yield block

    def _part(self, name: str) -> bytes:
        return b"".join(self._blocks(name))

    def _sheets(self) -> dict[str, str]:
        """Sheet name -> zip part, in workbook order."""
        rels = {}
        for attrs in _REL.findall(self._part("xl/_rels/workbook.xml.rels")):
            rid, target = _ATTR_ID.search(attrs), _ATTR_TARGET.search(attrs)
            if rid and target:
                t = html.unescape(target.group(1).decode("utf-8"))
                rels[rid.group(1)] = t.lstrip("/") if t.startswith("/") else posixpath.normpath(posixpath.join("xl", t))
        sheets = {}
        for attrs in _SHEET.findall(self._part("xl/workbook.xml")):
            name, rid = _ATTR_NAME.search(attrs), _ATTR_RID.search(attrs)
            if name:
                sheets[html.unescape(name.group(1).decode("utf-8"))] = rels.get(rid.group(1)) if rid else None
        return sheets

    def span(self, sheet: str) -> Span:
        """Rows and columns from A1 to the sheet's last cell (its dimension or its cells, the larger)."""
        part = self.sheets.get(sheet)
        if part is None or part not in self.zip.namelist():
            return Span(0, 0)  # no worksheet part (a chart sheet): fastexcel says what it is
        rows = cols = 0
        tail = b""
        for block in self._blocks(part):
            text = tail + block
            for m in _DIMENSION.finditer(text):
                for letters, digits in ((m.group(1), m.group(2)), (m.group(3), m.group(4))):
                    if letters:
                        cols = max(cols, column_number(letters))
                    if digits:
                        rows = max(rows, int(digits))
            found = _CELL.findall(text)
            if found:
                cols = max(cols, max(column_number(c) for c in {c for c, _ in found}))
                rows = max(rows, max(int(r) for _, r in found))
            found_rows = _ROW.findall(text)
            if found_rows:
                rows = max(rows, max(int(r) for r in found_rows))
            tail = text[-OVERLAP:]
        return Span(rows, cols)

    def check(self, sheet: str, where: str) -> None:
        """ExtractError naming `where` when the sheet spans more than the limits allow."""
        span = self.span(sheet)
        lim = self.limits
        for found, limit, setting in (
            (span.rows, lim.xlsx_max_rows, "xlsx_max_rows"),
            (span.columns, lim.xlsx_max_columns, "xlsx_max_columns"),
            (span.cells, lim.xlsx_max_cells, "xlsx_max_cells"),
        ):
            if found > limit:
                raise ExtractError(
                    f"{where}: the sheet spans A1:{column_letters(span.columns)}{span.rows}"
                    f" ({span.rows:,} rows x {span.columns:,} columns), over the limit of {limit:,}"
                    f" {setting.removeprefix('xlsx_max_')} (setting {setting}); not read"
                )

    def close(self) -> None:
        self.zip.close()
