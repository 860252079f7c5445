"""Source profiles: a YAML file per source system that maps its extract onto the canonical format.

A profile says which files hold which table (name patterns), how to read them (CSV encoding and
delimiter, XLSX sheet), how its columns are named (source column -> canonical column), how its code
values translate (role "BHCM" -> care_manager), how its dates and times are written, how minutes are
given (a number, a duration H:MM:SS, or start/end date-times) and which tables are delivered as full
refreshes. The schema is documented in docs/source-profiles.md. It is declared below as pydantic
models (unknown keys forbidden); `load_profile` reports every problem on one line naming the profile
file and the dotted key.

Mappings are applied by `apply_profile` as polars expressions on the text columns (no row loops).
A value a mapping cannot convert is passed on unchanged, so the SQL checks of the ingest quarantine
the row with a reason naming the original text.
"""

from __future__ import annotations

import codecs
import difflib
import re
from functools import partial
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import polars as pl
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from pipelines.ingest.errors import ExtractError
from pipelines.ingest.extract_format import TABLES

REPO_ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = REPO_ROOT / "profiles"
DROP_PROFILE_FILE = "bhi-profile.yaml"

DELIMITERS = {",", ";", "\t", "|"}
# date-time formats tried for minutes.start / minutes.end when the profile gives none
ISO_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")
FORMAT_TYPES = ("date", "timestamp", "time", "month")  # column types a format applies to
_DIRECTIVES = set("aAbBcCdDeFgGhHIjklmMnpPrRsStTuUvVwWxXyYzZf%")


def normalise_header(name: str) -> str:
    """Header as matched: BOM and surrounding spaces removed, a name still in CSV quotes unquoted
    (`"entry""id"` -> `entry"id`: an export quoted twice, or a profile key copied from the file as
    written), lower-case, runs of spaces -> '_'."""
    text = str(name).strip().lstrip("\ufeff").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1].replace('""', ""):
        text = text[1:-1].replace('""', '"').strip()
    return re.sub(r"\s+", "_", text.lower())


# ---------------------------------------------------------------------------------------------------
# The schema: value types and their checks (a ValueError's text becomes the problem in the message)


def _number_as_text(value: Any) -> Any:
    """YAML reads 15 and 1.5 as numbers: accepted where text is expected (not true/false)."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _strftime(fmt: str) -> str:
    if "%" not in fmt:
        raise ValueError(f"'{fmt}' is not a strftime format (e.g. '%m/%d/%Y')")
    bad = [d for d in re.findall(r"%[-_0^#]?[.:]?(.)", fmt) if d not in _DIRECTIVES]
    if bad:
        raise ValueError(f"'{fmt}' has an unknown directive %{bad[0]}")
    return fmt


def _encoding(name: str) -> str:
    """auto, or a text encoding: a codec that turns bytes into text (not a bytes-to-bytes or
    text-to-text codec such as zlib_codec, base64_codec or rot13, which cannot read a CSV file)."""
    if name != "auto":
        try:
            codecs.lookup(name)
        except LookupError as exc:
            raise ValueError(f"unknown encoding '{name}'") from exc
        try:
            b"".decode(name)
            "".encode(name)
        except LookupError:
            raise ValueError(f"'{name}' is not a text encoding (e.g. utf-8, cp1252, latin-1, utf-16)") from None
    return name


def _delimiter(value: str) -> str:
    if value != "auto" and value not in DELIMITERS:
        raise ValueError(f"{value!r} is not auto or one of , ; | and a tab (\"\\t\")")
    return value


def _table_name(name: str) -> str:
    if name not in TABLES:
        raise ValueError(f"unknown table '{name}' (tables: {', '.join(TABLES)})")
    return name


def _format_type(name: str) -> str:
    if name not in FORMAT_TYPES:
        raise ValueError(f"unknown key (allowed: {', '.join(sorted(FORMAT_TYPES))})")
    return name


def _column_of(table: str, name: str, formatted: bool = False) -> str:
    """A canonical column of `table`; with `formatted`, one of a type a format applies to."""
    types = {c.name: c.type for c in TABLES[table].columns}
    if name not in types:
        raise ValueError(f"'{name}' is not a column of {table} (columns: {', '.join(types)})")
    if formatted and types[name] not in FORMAT_TYPES:
        raise ValueError(f"formats apply to date, timestamp, time and month columns, not {types[name]}")
    return name


T = TypeVar("T")
Text = Annotated[str, BeforeValidator(_number_as_text)]
Header = Annotated[str, AfterValidator(normalise_header)]  # a source column name, as matched
OneOrMore = Annotated[tuple[T, ...], BeforeValidator(lambda v: v if isinstance(v, list) else [v]), Field(min_length=1)]
OrEmpty = Annotated[T, BeforeValidator(lambda v: {} if v is None else v)]  # `key:` with nothing: empty
Formats = OneOrMore[Annotated[Text, AfterValidator(_strftime)]]
TableName = Annotated[Text, AfterValidator(_table_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvOptions(_Strict):
    encoding: Annotated[Text, AfterValidator(_encoding)] = "auto"  # auto | a Python codec name
    delimiter: Annotated[Text, AfterValidator(_delimiter)] = "auto"  # auto | , | ; | \t | |


class MinutesSpec(_Strict):
    duration: StrictBool = False  # the minutes column may hold H:MM or H:MM:SS
    start: Annotated[Text, AfterValidator(normalise_header)] | None = None  # source column: start date-time
    end: Annotated[Text, AfterValidator(normalise_header)] | None = None  # source column: end date-time
    format: Formats = ISO_DATETIME_FORMATS  # formats of start and end

    @model_validator(mode="after")
    def _start_end_or_duration(self) -> MinutesSpec:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end (source columns with date-times)")
        if "format" in self.model_fields_set and self.start is None:
            raise ValueError("format is only used with start and end")
        if not self.duration and self.start is None:
            raise ValueError("give duration: true and/or start and end")
        return self


class TableProfile(_Strict):
    """How one table is delivered. `_table_model` narrows the column names to those of the table."""

    table: ClassVar[str] = ""
    files: OneOrMore[Text] = ()  # glob patterns (case-insensitive); empty: canonical `<table>*` naming
    csv: CsvOptions | None = None  # None: the profile's csv options
    sheet: Text | None = None  # None: the profile's sheet; a name or a glob pattern of sheets
    columns: OrEmpty[dict[Header, OneOrMore[str]]] = {}  # source (normalised) -> canonical(s)
    values: OrEmpty[dict[str, OrEmpty[dict[str, Text]]]] = {}  # canonical column -> {lower(source): canonical}
    formats: OrEmpty[dict[str, Formats]] = {}  # canonical column -> formats
    defaults: OrEmpty[dict[str, Text]] = {}  # canonical column -> value when empty/absent
    minutes: MinutesSpec | None = None
    full_refresh: StrictBool = False  # same as listing the table in the profile's full_refresh

    @field_validator("values")
    @classmethod
    def _match_values_ignoring_case(cls, values: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        return {column: {k.strip().lower(): v for k, v in m.items()} for column, m in values.items()}

    @field_validator("minutes")
    @classmethod
    def _minutes_of_time_entries(cls, minutes: MinutesSpec | None) -> MinutesSpec | None:
        if minutes is not None and cls.table != "time_entries":
            raise ValueError("only time_entries has minutes")
        return minutes


def _table_model(table: str) -> type[TableProfile]:
    column = Annotated[str, AfterValidator(partial(_column_of, table))]
    formatted = Annotated[str, AfterValidator(partial(_column_of, table, formatted=True))]
    model = create_model(
        f"TableProfile_{table}",
        __base__=TableProfile,
        columns=(OrEmpty[dict[Header, OneOrMore[column]]], {}),
        values=(OrEmpty[dict[column, OrEmpty[dict[str, Text]]]], {}),
        formats=(OrEmpty[dict[formatted, Formats]], {}),
        defaults=(OrEmpty[dict[column, Text]], {}),
    )
    model.table = table
    return model


class _TablesBase(_Strict):
    def items(self) -> list[tuple[str, TableProfile]]:
        """The tables the profile describes, by name."""
        return [(name, spec) for name, spec in self if spec is not None]


Tables = create_model("Tables", __base__=_TablesBase, **{t: (_table_model(t) | None, None) for t in TABLES})


class Profile(_Strict):
    name: Text = ""  # parse_profile: default the file name without .yaml
    description: Text = ""
    csv: OrEmpty[CsvOptions] = CsvOptions()
    sheet: Text | None = None
    formats: OrEmpty[dict[Annotated[str, AfterValidator(_format_type)], Formats]] = {}  # column type -> formats
    full_refresh: Annotated[tuple[TableName, ...], BeforeValidator(lambda v: v or [])] = ()
    tables: OrEmpty[Tables] = Tables()
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def full_refresh_tables(self) -> frozenset[str]:
        return frozenset(self.full_refresh) | {name for name, spec in self.tables.items() if spec.full_refresh}

    def table(self, name: str) -> TableProfile:
        return dict(self.tables.items()).get(name) or TableProfile()

    def csv_options(self, table: str) -> CsvOptions:
        return self.table(table).csv or self.csv

    def sheet_for(self, table: str) -> str | None:
        t = self.table(table)
        return t.sheet if t.sheet is not None else self.sheet


CANONICAL = Profile(name="canonical")


# ---------------------------------------------------------------------------------------------------
# Loading: pydantic's errors as one line naming the profile file and the dotted key

_KEYS_AS_TEXT = "keys must be text (quote Y/N/yes/no/on/off and numbers in YAML)"


def _key_path(error: dict) -> str:
    """('tables', 'staff', 'files', 0) -> 'tables.staff.files[0]'; a bad mapping key is shown as written."""
    loc, parts = error["loc"], []
    for i, part in enumerate(loc):
        is_key = loc[i + 1 : i + 2] == ("[key]",) or (error["type"] == "invalid_key" and i == len(loc) - 1)
        if part == "[key]":
            continue
        if is_key:
            part = error["input"]  # pydantic stores the key true as 1
        parts.append(f"[{part}]" if isinstance(part, int) and not is_key else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def _unknown_key(loc: tuple) -> str:
    *parent, key = loc
    if parent == ["tables"]:
        return f"unknown table '{key}' (tables: {', '.join(TABLES)})"
    model = Profile if not parent else {"csv": CsvOptions, "minutes": MinutesSpec}.get(parent[-1], TableProfile)
    return f"unknown key (allowed: {', '.join(sorted(model.model_fields))})"


def _problem(error: dict) -> str:
    kind, value = error["type"], error["input"]
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "extra_forbidden":
        return _unknown_key(error["loc"])
    if kind == "invalid_key" or (kind == "string_type" and error["loc"][-1:] == ("[key]",)):
        return _KEYS_AS_TEXT
    if kind == "string_type":
        return f"must be text, got {value!r} (quote it in YAML)"
    if kind == "bool_type":
        return f"must be true or false, got {value!r}"
    if kind in ("dict_type", "model_type"):
        return f"must be a mapping, got {type(value).__name__}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {type(value).__name__}"
    if kind == "too_short":
        return "must not be empty"
    return error["msg"]


def parse_profile(raw: Any, path: Path) -> Profile:
    """Check a parsed YAML document and build the Profile (ExtractError naming file and key)."""
    if raw is None:
        raise ExtractError(f"profile {path}: (top level): the file is empty")
    if isinstance(raw, dict):
        raw = {"name": path.stem} | raw
    try:
        profile = Profile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_key_path(e)}: {_problem(e)}" for e in exc.errors())
        raise ExtractError(f"profile {path}: {problems}") from None
    profile._path = path
    return profile


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (`*name`, also in `<<: *name` merges): a few hundred bytes
    of nested aliases expand to billions of nodes. A profile writes each mapping out."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _AliasRefused(f"line {mark.line + 1}: YAML aliases (*name) are not allowed in a profile;"
                                " write the value out")
        return super().compose_node(parent, index)


class _AliasRefused(Exception):
    pass


def read_profile_file(path: Path, max_bytes: int | None = None) -> Profile:
    """Read and check a profile file: at most max_bytes (setting profile_max_bytes), YAML without
    aliases; every problem an ExtractError of one line naming the file."""
    if max_bytes is None:
        from pipelines.ingest.limits import default_limits

        max_bytes = default_limits().profile_max_bytes
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ExtractError(f"profile {path}: cannot read file ({exc})") from exc
    if len(data) > max_bytes:
        raise ExtractError(
            f"profile {path}: larger than {max_bytes:,} bytes, over the limit (setting profile_max_bytes); not read"
        )
    try:
        raw = yaml.load(data.decode("utf-8"), Loader=_NoAliasLoader)  # noqa: S506  (a SafeLoader)
    except UnicodeDecodeError as exc:
        raise ExtractError(f"profile {path}: not UTF-8 text (byte {exc.start})") from None
    except _AliasRefused as exc:
        raise ExtractError(f"profile {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ExtractError(f"profile {path}: not valid YAML ({' '.join(str(exc).split())})") from None
    return parse_profile(raw, path)


def available_profiles(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    return sorted(p.stem for p in profiles_dir.glob("*.yaml")) if profiles_dir.is_dir() else []


def load_profile(
    profile: str | Path | Profile | None, drop_dir: Path | None = None, profiles_dir: Path = PROFILES_DIR,
    max_bytes: int | None = None,
) -> Profile | None:
    """Resolve the profile of a load: the `profile` argument (a name in profiles/ or a path to a YAML
    file), else `bhi-profile.yaml` in the drop folder, else None (the canonical format). A file over
    max_bytes (default: the setting profile_max_bytes) is refused."""
    if isinstance(profile, Profile):
        return profile
    if profile is not None and str(profile).strip():
        text = str(profile).strip()
        as_path = Path(text).expanduser()
        if as_path.suffix.lower() in (".yaml", ".yml") or "/" in text or "\\" in text:
            if not as_path.is_file():
                raise ExtractError(f"profile {as_path}: no such file")
            return read_profile_file(as_path, max_bytes)
        named = profiles_dir / f"{text}.yaml"
        if not named.is_file():
            known = ", ".join(available_profiles(profiles_dir)) or "(none)"
            raise ExtractError(f"unknown profile '{text}': no file {named} (profiles available: {known})")
        return read_profile_file(named, max_bytes)
    if drop_dir is not None and (Path(drop_dir) / DROP_PROFILE_FILE).is_file():
        return read_profile_file(Path(drop_dir) / DROP_PROFILE_FILE, max_bytes)
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


LOOKALIKE_CUTOFF = 0.8  # difflib ratio from which an unknown header name is taken for a misspelt column


def lookalikes(columns: list[str], missing: list[str], table: str, profile: Profile | None) -> dict[str, str]:
    """{header name found: the missing column it looks like} for header names that are not known
    columns but close to a missing one (`minuets` for `minutes`, `patientid` for `patient_id`). Such a
    name is shown in messages: it is a misspelt header, not a value of the file."""
    unknown = [c for c in columns if c not in known_columns(table, profile)]
    found: dict[str, str] = {}
    for column in missing:
        close = difflib.get_close_matches(column, [u for u in unknown if u not in found], n=1, cutoff=LOOKALIKE_CUTOFF)
        if close:
            found[close[0]] = column
    return found


def describe_columns(columns: list[str], table: str, profile: Profile | None, missing: list[str] = ()) -> str:
    """The header names found, for a message: only names that are known column names, or that look
    like one of the `missing` columns, are shown (a file without a header row has data in its first
    row, which must not be echoed)."""
    known = known_columns(table, profile) | set(lookalikes(columns, list(missing), table, profile))
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


def _column_formats(profile: Profile, tp, column: str, typ: str):
    """The formats a column is read with: its own, else its type's; a timestamp column (documented_at)
    without timestamp formats is read with the date formats."""
    return tp.formats.get(column) or profile.formats.get(typ) or (
        profile.formats.get("date") if typ == "timestamp" else None
    )


def maps_values(profile: Profile | None, table: str) -> bool:
    """Does apply_profile change values of `table` (defaults, value maps, formats, minutes)? A table it
    leaves as delivered can be landed by DuckDB's reader (native_csv.plan)."""
    if profile is None:
        return False
    tp = profile.table(table)
    formats = any(_column_formats(profile, tp, c.name, c.type) for c in TABLES[table].columns)
    return bool(tp.values or tp.defaults or tp.minutes or formats)


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
        fmts = _column_formats(profile, tp, column, typ)
        if fmts:
            e = _reformat(e, fmts, types[column])
        if column == "minutes" and tp.minutes and tp.minutes.duration:
            e = _duration_minutes(e)
        exprs.append(e.alias(column))
    df = df.with_columns(exprs)
    m = tp.minutes
    if m and m.start:
        formats = tuple(dict.fromkeys(m.format + ISO_DATETIME_FORMATS))  # native date-times arrive as ISO
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
