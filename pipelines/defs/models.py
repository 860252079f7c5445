"""The SQL-file asset factory: one asset per file under sql/, named after the file. Upstream assets
are the known tables the SQL reads (derived from the SQL itself, so they cannot drift)."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pipelines.defs.ingest import RAW_TABLES, REFERENCE_TABLES
from pipelines.reference import REPO_ROOT

SQL_DIR = REPO_ROOT / "sql"
LAYERS = ("staging", "intermediate", "marts")
SOURCE_TABLES = [*REFERENCE_TABLES, *RAW_TABLES, "quarantine", "ingest_files", "ingest_errors", "run_parameters",
                 "claims_previous_run"]


@dataclass(frozen=True)
class SqlModel:
    name: str
    layer: str
    path: Path
    sql: str
    upstream: tuple[str, ...]
    header: dict[str, str]


def _strip_comments(sql: str) -> str:
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


def load_models(sql_dir: Path = SQL_DIR) -> list[SqlModel]:
    paths = [p for layer in LAYERS for p in sorted((sql_dir / layer).glob("*.sql"))]
    names = [p.stem for p in paths]
    known = set(SOURCE_TABLES) | set(names)
    models = []
    for path in paths:
        sql = path.read_text()
        words = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", _strip_comments(sql).lower()))
        upstream = tuple(sorted((words & known) - {path.stem}))
        models.append(SqlModel(path.stem, path.parent.name, path, sql, upstream, _header(sql)))
    return models


def materialize(conn: duckdb.DuckDBPyConnection, model: SqlModel) -> int:
    """(Re)build one model's table from its SQL file; return its row count."""
    body = _strip_comments(model.sql).strip().rstrip(";")
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


def _build(model: SqlModel) -> dg.AssetsDefinition:

    @dg.asset(
        name=model.name,
        deps=list(model.upstream),
        group_name=model.layer,
        kinds={"duckdb", "sql"},
        description=model.header.get("purpose", ""),
        code_version=hashlib.sha256(model.sql.encode()).hexdigest()[:12],
        metadata={"grain": model.header.get("grain", ""), "sql_file": str(model.path.relative_to(REPO_ROOT))},
    )
    def _asset(warehouse: DuckDBResource) -> dg.MaterializeResult:
        with warehouse.get_connection() as conn:
            rows = materialize(conn, model)
        return dg.MaterializeResult(metadata={"rows": rows})

    return _asset


MODELS = load_models()
SQL_ASSETS = [_build(m) for m in MODELS]
