"""Source profiles: a YAML file per source system that maps its extract onto the canonical format.

A profile says which files hold which table (name patterns), how to read them (CSV encoding and
delimiter, XLSX sheet), how its columns are named (source column -> canonical column), how its code
values translate (role "BHCM" -> care_manager), how its dates and times are written, how minutes are
given (a number, a duration H:MM:SS, or start/end date-times) and which tables are delivered as full
refreshes. The schema is documented in docs/source-profiles.md; `load_profile` checks every key and
reports the profile file and the bad key.

Mappings are applied by `apply_profile` as polars expressions on the text columns (no row loops).
A value a mapping cannot convert is passed on unchanged, so the SQL checks of the ingest quarantine
the row with a reason naming the original text.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from pipelines.ingest.errors import ExtractError
from pipelines.ingest.extract_format import TABLES

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = REPO_ROOT / "profiles"
DROP_PROFILE_FILE = "bhi-profile.yaml"

DELIMITERS = {",", ";", "\t", "|"}
# date-time formats tried for minutes.start / minutes.end when the profile gives none
ISO_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class CsvOptions:
    encoding: str = "auto"  # auto | a Python codec name (utf-8, cp1252, latin-1, utf-16 ...)
    delimiter: str = "auto"  # auto | , | ; | \t | |


@dataclass(frozen=True)
class MinutesSpec:
    duration: bool = False  # the minutes column may hold H:MM or H:MM:SS
    start: str | None = None  # source column with the start date-time
    end: str | None = None  # source column with the end date-time
    formats: tuple[str, ...] = ISO_DATETIME_FORMATS


@dataclass(frozen=True)
class TableProfile:
    files: tuple[str, ...] = ()  # glob patterns (case-insensitive); empty: canonical `<table>*` naming
    csv: CsvOptions | None = None  # None: the profile's csv options
    sheet: str | None = None  # None: the profile's sheet; "*": every sheet; otherwise a sheet name
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source (normalised) -> canonical(s)
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # canonical column -> {lower(source): canonical}
    formats: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical column -> formats
    defaults: dict[str, str] = field(default_factory=dict)  # canonical column -> value when empty/absent
    minutes: MinutesSpec | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path | None = None
    description: str = ""
    csv: CsvOptions = CsvOptions()
    sheet: str | None = None
    formats: dict[str, tuple[str, ...]] = field(default_factory=dict)  # column type (date, time, month) -> formats
    tables: dict[str, TableProfile] = field(default_factory=dict)
    full_refresh_tables: frozenset[str] = frozenset()

    def table(self, name: str) -> TableProfile:
        return self.tables.get(name) or TableProfile()

    def csv_options(self, table: str) -> CsvOptions:
        return self.table(table).csv or self.csv

    def sheet_for(self, table: str) -> str | None:
        t = self.table(table)
        return t.sheet if t.sheet is not None else self.sheet


CANONICAL = Profile(name="canonical")


def normalise_header(name: str) -> str:
    """Header as matched: BOM and surrounding spaces removed, lower-case, runs of spaces -> '_'."""
    return re.sub(r"\s+", "_", str(name).strip().lstrip("\ufeff").strip().lower())


# ---------------------------------------------------------------------------------------------------
# Loading and validation


class _Checker:
    """Walks the parsed YAML; every error names the profile file and the dotted key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str) -> ExtractError:
        return ExtractError(f"profile {self.path}: {key}: {problem}")

    def mapping(self, value: Any, key: str, allowed: set[str] | None = None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a mapping, got {type(value).__name__}")
        for k in value:
            if not isinstance(k, str):
                raise self.fail(f"{key}.{k}", "keys must be text (quote Y/N/yes/no/on/off and numbers in YAML)")
            if allowed is not None and k not in allowed:
                raise self.fail(f"{key}.{k}", f"unknown key (allowed: {', '.join(sorted(allowed))})")
        return value

    def text(self, value: Any, key: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(key, f"must be text, got {value!r} (quote it in YAML)")
        return str(value)

    def texts(self, value: Any, key: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.fail(key, "must not be empty")
        return tuple(self.text(v, f"{key}[{i}]") for i, v in enumerate(items))

    def formats(self, value: Any, key: str) -> tuple[str, ...]:
        out = self.texts(value, key)
        for i, fmt in enumerate(out):
            if "%" not in fmt:
                raise self.fail(f"{key}[{i}]", f"'{fmt}' is not a strftime format (e.g. '%m/%d/%Y')")
            bad = [d for d in re.findall(r"%[-_0^#]?[.:]?(.)", fmt) if d not in _DIRECTIVES]
            if bad:
                raise self.fail(f"{key}[{i}]", f"'{fmt}' has an unknown directive %{bad[0]}")
        return out

    def bool(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def table_name(self, name: str, key: str) -> str:
        if name not in TABLES:
            raise self.fail(key, f"unknown table '{name}' (tables: {', '.join(TABLES)})")
        return name

    def column(self, table: str, name: Any, key: str) -> str:
        name = self.text(name, key)
        if name not in {c.name for c in TABLES[table].columns}:
            raise self.fail(key, f"'{name}' is not a column of {table} "
                                 f"(columns: {', '.join(c.name for c in TABLES[table].columns)})")
        return name

    def csv(self, value: Any, key: str) -> CsvOptions | None:
        if value is None:
            return None
        value = self.mapping(value, key, {"encoding", "delimiter"})
        encoding = self.text(value.get("encoding", "auto"), f"{key}.encoding")
        if encoding != "auto":
            try:
                codecs.lookup(encoding)
            except LookupError as exc:
                raise self.fail(f"{key}.encoding", f"unknown encoding '{encoding}'") from exc
        delimiter = self.text(value.get("delimiter", "auto"), f"{key}.delimiter")
        if delimiter != "auto" and delimiter not in DELIMITERS:
            raise self.fail(f"{key}.delimiter", f"{delimiter!r} is not auto or one of , ; | and a tab (\"\\t\")")
        return CsvOptions(encoding, delimiter)

    def sheet(self, value: Any, key: str) -> str | None:
        return None if value is None else self.text(value, key)


_DIRECTIVES = set("aAbBcCdDeFgGhHIjklmMnpPrRsStTuUvVwWxXyYzZf%")
_TOP_KEYS = {"name", "description", "csv", "sheet", "formats", "full_refresh", "tables"}
_TABLE_KEYS = {"files", "csv", "sheet", "columns", "values", "formats", "defaults", "minutes", "full_refresh"}
_FORMAT_TYPES = {"date", "timestamp", "time", "month"}


def _table_profile(c: _Checker, table: str, raw: Any, key: str) -> tuple[TableProfile, bool]:
    raw = c.mapping(raw, key, _TABLE_KEYS)
    files = c.texts(raw["files"], f"{key}.files") if "files" in raw else ()
    columns: dict[str, tuple[str, ...]] = {}
    for source, target in c.mapping(raw.get("columns"), f"{key}.columns").items():
        targets = c.texts(target, f"{key}.columns.{source}")
        columns[normalise_header(source)] = tuple(
            c.column(table, t, f"{key}.columns.{source}") for t in targets
        )
    values: dict[str, dict[str, str]] = {}
    for column, mapping in c.mapping(raw.get("values"), f"{key}.values").items():
        c.column(table, column, f"{key}.values.{column}")
        mapping = c.mapping(mapping, f"{key}.values.{column}")
        values[column] = {
            k.strip().lower(): c.text(v, f"{key}.values.{column}.{k}") for k, v in mapping.items()
        }
    formats: dict[str, tuple[str, ...]] = {}
    for column, fmts in c.mapping(raw.get("formats"), f"{key}.formats").items():
        c.column(table, column, f"{key}.formats.{column}")
        typ = next(col.type for col in TABLES[table].columns if col.name == column)
        if typ not in _FORMAT_TYPES:
            raise c.fail(f"{key}.formats.{column}", f"formats apply to date, timestamp, time and month columns, not {typ}")
        formats[column] = c.formats(fmts, f"{key}.formats.{column}")
    defaults = {
        c.column(table, column, f"{key}.defaults.{column}"): c.text(v, f"{key}.defaults.{column}")
        for column, v in c.mapping(raw.get("defaults"), f"{key}.defaults").items()
    }
    minutes = None
    if raw.get("minutes") is not None:
        if table != "time_entries":
            raise c.fail(f"{key}.minutes", "only time_entries has minutes")
        m = c.mapping(raw["minutes"], f"{key}.minutes", {"duration", "start", "end", "format"})
        start = normalise_header(c.text(m["start"], f"{key}.minutes.start")) if "start" in m else None
        end = normalise_header(c.text(m["end"], f"{key}.minutes.end")) if "end" in m else None
        if (start is None) != (end is None):
            raise c.fail(f"{key}.minutes", "give both start and end (source columns with date-times)")
        if "format" in m and start is None:
            raise c.fail(f"{key}.minutes.format", "only used with start and end")
        minutes = MinutesSpec(
            duration=c.bool(m.get("duration", False), f"{key}.minutes.duration"),
            start=start,
            end=end,
            formats=c.formats(m["format"], f"{key}.minutes.format") if "format" in m else ISO_DATETIME_FORMATS,
        )
        if not minutes.duration and start is None:
            raise c.fail(f"{key}.minutes", "give duration: true and/or start and end")
    full_refresh = c.bool(raw.get("full_refresh", False), f"{key}.full_refresh")
    return (
        TableProfile(
            files=files,
            csv=c.csv(raw.get("csv"), f"{key}.csv"),
            sheet=c.sheet(raw.get("sheet"), f"{key}.sheet"),
            columns=columns,
            values=values,
            formats=formats,
            defaults=defaults,
            minutes=minutes,
        ),
        full_refresh,
    )


def parse_profile(raw: Any, path: Path) -> Profile:
    """Check a parsed YAML document and build the Profile (ExtractError naming file and key)."""
    c = _Checker(path)
    if raw is None:
        raise c.fail("(top level)", "the file is empty")
    raw = c.mapping(raw, "(top level)", _TOP_KEYS)
    formats = {}
    for typ, fmts in c.mapping(raw.get("formats"), "formats", _FORMAT_TYPES).items():
        formats[typ] = c.formats(fmts, f"formats.{typ}")
    tables: dict[str, TableProfile] = {}
    full_refresh: set[str] = set()
    for name, spec in c.mapping(raw.get("tables"), "tables").items():
        c.table_name(name, f"tables.{name}")
        tables[name], refresh = _table_profile(c, name, spec, f"tables.{name}")
        if refresh:
            full_refresh.add(name)
    listed = raw.get("full_refresh") or []
    if not isinstance(listed, list):
        raise c.fail("full_refresh", "must be a list of table names")
    for i, name in enumerate(listed):
        full_refresh.add(c.table_name(c.text(name, f"full_refresh[{i}]"), f"full_refresh[{i}]"))
    return Profile(
        name=c.text(raw.get("name", path.stem), "name"),
        path=path,
        description=c.text(raw.get("description", ""), "description"),
        csv=c.csv(raw.get("csv"), "csv") or CsvOptions(),
        sheet=c.sheet(raw.get("sheet"), "sheet"),
        formats=formats,
        tables=tables,
        full_refresh_tables=frozenset(full_refresh),
    )


def read_profile_file(path: Path) -> Profile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExtractError(f"profile {path}: cannot read file ({exc})") from exc
    except yaml.YAMLError as exc:
        raise ExtractError(f"profile {path}: not valid YAML ({exc})") from exc
    return parse_profile(raw, path)


def available_profiles(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in profiles_dir.glob("*.yaml")) if profiles_dir.is_dir() else []


def load_profile(
    profile: str | Path | Profile | None, drop_dir: Path | None = None, profiles_dir: Path = PROFILES_DIR
) -> Profile | None:
    """Resolve the profile of a load: the `profile` argument (a name in profiles/ or a path to a YAML
    file), else `bhi-profile.yaml` in the drop folder, else None (the canonical format)."""
    if isinstance(profile, Profile):
        return profile
    if profile is not None and str(profile).strip():
        text = str(profile).strip()
        as_path = Path(text).expanduser()
        if as_path.suffix.lower() in (".yaml", ".yml") or "/" in text or "\\" in text:
            if not as_path.is_file():
                raise ExtractError(f"profile {as_path}: no such file")
            return read_profile_file(as_path)
        named = profiles_dir / f"{text}.yaml"
        if not named.is_file():
            known = ", ".join(available_profiles(profiles_dir)) or "(none)"
            raise ExtractError(f"unknown profile '{text}': no file {named} (profiles available: {known})")
        return read_profile_file(named)
    if drop_dir is not None and (Path(drop_dir) / DROP_PROFILE_FILE).is_file():
        return read_profile_file(Path(drop_dir) / DROP_PROFILE_FILE)
    return None


# ---------------------------------------------------------------------------------------------------
# Applying a profile to one file's columns


def _blank(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | (expr.str.strip_chars() == "")


def _parse_datetime(expr: pl.Expr, formats: tuple[str, ...]) -> pl.Expr:
    text = expr.str.strip_chars()
    return pl.coalesce([text.str.strptime(pl.Datetime("us"), f, strict=False) for f in formats])


def _reformat(expr: pl.Expr, formats: tuple[str, ...], kind: str) -> pl.Expr:
    """Parse with the formats (tried in order) and write the canonical text of `kind` (date, time,
    month); values no format reads are kept as they were."""
    text = expr.str.strip_chars()
    if kind == "time":
        parsed = [text.str.strptime(pl.Time, f, strict=False).dt.strftime("%H:%M") for f in formats]
    else:
        out = {"date": "%Y-%m-%d", "month": "%Y-%m", "timestamp": "%Y-%m-%d %H:%M:%S"}[kind]
        parsed = [text.str.strptime(pl.Datetime("us"), f, strict=False).dt.strftime(out) for f in formats]
    return pl.coalesce(parsed).fill_null(expr)


_DURATION = r"^\s*(\d+):([0-5]?\d)(?::([0-5]?\d(?:\.\d+)?))?\s*$"


def _duration_minutes(expr: pl.Expr) -> pl.Expr:
    """'1:05:30' -> '65', '0:25' -> '25' (hours:minutes[:seconds]; seconds dropped); others kept."""
    hours = expr.str.extract(_DURATION, 1).cast(pl.Int64, strict=False)
    mins = expr.str.extract(_DURATION, 2).cast(pl.Int64, strict=False)
    return (hours * 60 + mins).cast(pl.String).fill_null(expr)


def known_columns(table: str, profile: Profile | None) -> set[str]:
    """Header names a file of `table` may hold that mean something: the canonical columns of every
    table, and the source columns the profile maps or reads minutes from."""
    known = {c.name for spec in TABLES.values() for c in spec.columns}
    if profile is not None:
        tp = profile.table(table)
        known |= set(tp.columns)
        if tp.minutes:
            known |= {c for c in (tp.minutes.start, tp.minutes.end) if c}
    return known


def describe_columns(columns: list[str], table: str, profile: Profile | None) -> str:
    """The header names found, for a message: only names that are known column names are shown
    (a file without a header row has data in its first row, which must not be echoed)."""
    known = known_columns(table, profile)
    shown = [c for c in columns if c in known]
    others = len(columns) - len(shown)
    if not columns:
        return "(none)"
    if not shown:
        return f"none of the {others} header name(s) is a known column (is the header row missing?)"
    return ", ".join(shown) + (f" and {others} other column(s)" if others else "")


def select_columns(df: pl.DataFrame, table: str, profile: Profile | None) -> pl.DataFrame:
    """Rename source columns to canonical ones (a source column may feed several); keep the columns
    that minutes.start/end read as `__start`/`__end`. Native dtypes are kept."""
    tp = profile.table(table) if profile else TableProfile()
    sources: dict[str, str] = {}  # canonical -> source column
    for source, targets in tp.columns.items():
        if source in df.columns:
            for t in targets:
                sources.setdefault(t, source)
    exprs = []
    for col in TABLES[table].columns:
        src = sources.get(col.name) or (col.name if col.name in df.columns else None)
        if src is not None:
            exprs.append(pl.col(src).alias(col.name))
    m = tp.minutes
    if m and m.start:
        for helper, src in (("__start", m.start), ("__end", m.end)):
            if src not in df.columns:
                raise ExtractError(
                    f"missing column {src} (minutes.{helper.strip('_')} of profile {profile.name}); "
                    f"columns found: {describe_columns(list(df.columns), table, profile)}"
                )
            exprs.append(pl.col(src).alias(helper))
    return df.select(exprs)


def apply_profile(df: pl.DataFrame, table: str, profile: Profile | None) -> pl.DataFrame:
    """Text transforms on canonical String columns: defaults, value maps, date/time formats, minutes."""
    spec = TABLES[table]
    types = {c.name: c.type for c in spec.columns}
    if profile is None:
        return df
    tp = profile.table(table)
    # defaults: a column the file lacks, or an empty value
    for column, value in tp.defaults.items():
        if column in df.columns:
            df = df.with_columns(pl.when(_blank(pl.col(column))).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))
        else:
            df = df.with_columns(pl.lit(value, pl.String).alias(column))
    exprs = []
    for column in df.columns:
        if column.startswith("__"):
            continue
        e = pl.col(column)
        mapping = tp.values.get(column)
        if mapping:
            e = e.str.strip_chars().str.to_lowercase().replace_strict(
                list(mapping), list(mapping.values()), default=e, return_dtype=pl.String
            )
        typ = types.get(column, "")
        # a timestamp column (documented_at) is read with the timestamp formats, else the date formats
        fmts = tp.formats.get(column) or profile.formats.get(typ) or (
            profile.formats.get("date") if typ == "timestamp" else None
        )
        if fmts:
            e = _reformat(e, fmts, types[column])
        if column == "minutes" and tp.minutes and tp.minutes.duration:
            e = _duration_minutes(e)
        exprs.append(e.alias(column))
    df = df.with_columns(exprs)
    m = tp.minutes
    if m and m.start:
        formats = tuple(dict.fromkeys(m.formats + ISO_DATETIME_FORMATS))  # native date-times arrive as ISO
        start = _parse_datetime(pl.col("__start"), formats)
        end = _parse_datetime(pl.col("__end"), formats)
        # both unreadable: pass the original texts on, so the quarantine shows what was delivered
        derived = {
            "minutes": ((end - start).dt.total_seconds() // 60)
            .cast(pl.Int64)
            .cast(pl.String)
            .fill_null(pl.col("__start").cast(pl.String) + " - " + pl.col("__end").cast(pl.String)),
            "service_date": start.dt.strftime("%Y-%m-%d").fill_null(pl.col("__start").cast(pl.String)),
            "start_time": start.dt.strftime("%H:%M"),
            "end_time": end.dt.strftime("%H:%M"),
        }
        fills = []
        for column, value in derived.items():
            current = pl.col(column) if column in df.columns else pl.lit(None, pl.String)
            fills.append(pl.when(_blank(current)).then(value).otherwise(current).alias(column))
        df = df.with_columns(fills).drop("__start", "__end")
    return df
