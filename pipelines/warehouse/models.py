"""The SQL models: one per file under sql/, named after the file, with the header the file declares
(purpose, grain, upstream, incremental). Upstream tables are the known tables the SQL reads (derived
from the SQL itself, so they cannot drift); models are built in dependency order, in full or, for an
incremental model on a nightly run, only for the run's scope. pipelines/defs/assets_models.py makes
each model a Dagster asset."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.ingest.extract_format import RAW_TABLES
from pipelines.warehouse.database import table_columns, transaction
from pipelines.warehouse.reference import REFERENCE_TABLES, REPO_ROOT, ncci_files

SQL_DIR = REPO_ROOT / "sql"
LAYERS = ("staging", "intermediate", "marts")
SOURCE_TABLES = [*REFERENCE_TABLES, *RAW_TABLES, "quarantine", "field_warnings", "ingest_files", "ingest_errors",
                 "run_parameters",
                 "claims_previous_run"]


@dataclass(frozen=True)
class SqlModel:
    name: str
    layer: str
    path: Path
    sql: str
    upstream: tuple[str, ...]
    header: dict[str, str]

    @property
    def incremental(self) -> str | None:
        """`patient`, `entry` or `entry_id` when the header says the model can be rebuilt for a scope
        only (the scope's patients, entry versions, or every version of the scope's entry ids)."""
        value = self.header.get("incremental", "").split(" ")[0]
        return value or None


def strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _header(sql: str) -> dict[str, str]:
    """'-- key: value' lines at the top (continuation lines start with '--   ')."""
    fields: dict[str, str] = {}
    key = None
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        match = re.match(r"--\s*(\w+):\s*(.*)", line)
        if match:
            key = match.group(1)
            fields[key] = match.group(2).strip()
        elif key:
            fields[key] += " " + line.lstrip("- ").strip()
    return fields


def _read_sql(path: Path, known: set[str]) -> SqlModel:
    """A model never reads itself: its own name is not upstream (an export may share a table's name)."""
    sql = path.read_text()
    words = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", strip_comments(sql).lower()))
    upstream = tuple(sorted(words & (known - {path.stem} if path.parent.name in LAYERS else known)))
    return SqlModel(path.stem, path.parent.name, path, sql, upstream, _header(sql))


def load_models(sql_dir: Path = SQL_DIR) -> list[SqlModel]:
    paths = [p for layer in LAYERS for p in sorted((sql_dir / layer).glob("*.sql"))]
    known = set(SOURCE_TABLES) | {p.stem for p in paths}
    return [_read_sql(path, known) for path in paths]


def load_exports(sql_dir: Path = SQL_DIR) -> list[SqlModel]:
    """sql/exports/*.sql: the query of each CSV export (pipelines/outputs/exports.py), read like a
    model: header and the tables it reads (its upstream, so the exports asset's dependencies are
    derived, not listed)."""
    known = set(SOURCE_TABLES) | {p.stem for layer in LAYERS for p in (sql_dir / layer).glob("*.sql")}
    return [_read_sql(path, known) for path in sorted((sql_dir / "exports").glob("*.sql"))]


def _incremental_run(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> bool:
    """Rebuild only the scope: the model allows it, its table exists and this run's scope says so."""
    if not model.incremental or not table_columns(conn, model.name) or not table_columns(conn, "run_scope"):
        return False
    return conn.sql("select mode from run_scope").fetchall()[0][0] == "incremental"


ENTRY_KEY = "entry_id, delivery_seq, source_row"
# the patients a scoped model reads: those of scope_patients, or for the entry model the patients
# of every entry version its overlap windows must see
SCOPE_PATIENTS = {
    "patient": "select patient_id from scope_patients",
    "entry": f"select distinct patient_id from main.stg_time_entries semi join scope_entry_inputs using ({ENTRY_KEY})",
}


def _patient_filter(columns: set[str]) -> str | None:
    """WHERE condition keeping the rows of patients in _scope_patients (None: not patient-grained)."""
    if "patient_id" in columns:
        return "patient_id in (select patient_id from _scope_patients)"
    if "enrollment_id" in columns:
        return (
            "enrollment_id in (select enrollment_id from main.stg_enrollments"
            " where patient_id in (select patient_id from _scope_patients))"
        )
    return None


def _scope_rows(conn: duckdb.DuckDBPyConnection, upstream: str, condition: str) -> str:
    """A temp table of the upstream table's rows for the scope's patients, made by the first model
    that reads it and reused by the others on this connection (at 10M entries each scan of a full
    upstream table costs about a second; most tables feed several models). Upstream tables are
    built before the models that read them, so the copy is never stale within a run."""
    temp = f"_scope_rows_{upstream}"
    if not table_columns(conn, temp, database="temp"):
        conn.execute(
            f"create temp table {temp} as with _scope_patients as ({SCOPE_PATIENTS['patient']})"
            f" select * from main.{upstream} where {condition}"
        )
    return temp


def _materialize_scope(conn: duckdb.DuckDBPyConnection, model: SqlModel, body: str) -> None:
    """Delete the scope's rows and insert them again from the model's SQL, with every patient-
    grained upstream table narrowed to the scope (CTEs named like the tables shadow them). The
    result is the same as a full rebuild because every rule reads only the patient's own rows
    (the entry model: whole staff-days and patient-days, see pipelines/warehouse/scope.py)."""
    kind = model.incremental
    assert body[:4].lower() == "with", f"{model.path.name}: an incremental model must start with WITH"
    if kind == "entry_id":
        # every delivered version of the scope's entry ids: a version's rank reads only its siblings
        ids = "select distinct entry_id from scope_entries"
        shadows = ", ".join(f"{u} as (select * from main.{u} where entry_id in ({ids}))" for u in model.upstream)
        conn.execute(f"delete from {model.name} where entry_id in ({ids})")
        conn.execute(f"insert into {model.name} by name with {shadows}, {body[4:]}")
        return
    shadows = [f"_scope_patients as ({SCOPE_PATIENTS[kind]})"]
    for upstream in model.upstream:
        if kind == "entry" and upstream == "stg_time_entries":
            shadows.append(
                f"{upstream} as (select * from main.{upstream} semi join scope_entry_inputs using ({ENTRY_KEY}))"
            )
            continue
        if kind == "entry" and upstream != "stg_enrollments":
            continue  # the entry model narrows only entries and enrollments
        condition = _patient_filter(set(table_columns(conn, upstream)))
        if condition and kind == "patient":
            temp = _scope_rows(conn, upstream, condition)
            shadows.append(f"{upstream} as not materialized (select * from {temp})")
        elif condition:
            shadows.append(f"{upstream} as (select * from main.{upstream} where {condition})")
    scoped = f"with {', '.join(shadows)}, {body[4:]}"
    if kind == "entry":
        conn.execute(
            f"delete from {model.name} as t using scope_entries as k where t.entry_id = k.entry_id"
            " and t.delivery_seq = k.delivery_seq and t.source_row = k.source_row"
        )
        conn.execute(
            f"insert into {model.name} by name select m.* from ({scoped}) as m"
            f" semi join scope_entries using ({ENTRY_KEY})"
        )
        return
    keep = _patient_filter(set(table_columns(conn, model.name)))
    if keep is None:
        raise ValueError(f"{model.path.name}: an incremental patient model needs patient_id or enrollment_id")
    scope_cte = f"with _scope_patients as ({SCOPE_PATIENTS[kind]}) "
    conn.execute(f"{scope_cte}delete from {model.name} where {keep}")
    conn.execute(f"insert into {model.name} by name {scope_cte}select * from ({scoped}) as m where {keep}")


def materialize(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> int:
    """(Re)build one model's table from its SQL file, in full or (incremental models in an
    incremental run) for this run's scope only; return its row count."""
    body = strip_comments(model.sql).strip().rstrip(";")
    conn.execute(f"drop table if exists temp.main._scope_rows_{model.name}")  # a copy of the old rows
    if _incremental_run(conn, model):
        with transaction(conn):
            _materialize_scope(conn, model, body)
    else:
        conn.execute(f"create or replace table {model.name} as {body}")
    return conn.sql(f"select count(*) from {model.name}").fetchall()[0][0]


def in_dependency_order(models: list[SqlModel]) -> list[SqlModel]:
    by_name = {m.name: m for m in models}
    ordered: list[SqlModel] = []
    seen: set[str] = set()

    def visit(model: SqlModel) -> None:
        if model.name in seen:
            return
        seen.add(model.name)
        for dep in model.upstream:
            if dep in by_name:
                visit(by_name[dep])
        ordered.append(model)

    for model in models:
        visit(model)
    return ordered


MODELS = load_models()


def code_version(reference_dir: Path) -> str:
    """Changes when any SQL model or reference CSV changes: the next run then rebuilds in full."""
    digest = hashlib.sha256()
    for model in MODELS:
        digest.update(model.sql.encode())
    for path in sorted(Path(reference_dir).glob("*.csv")):
        digest.update(path.name.encode() + path.read_bytes())
    for paths in ncci_files(Path(reference_dir)).values():  # the NCCI edits a scrub applies
        for path in paths:
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]
