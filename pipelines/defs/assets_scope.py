"""The incremental build: `run_scope` decides, after ingest, whether this run rebuilds every model or
only the patients and entries the new deliveries change (pipelines/warehouse/scope.py); `build_state` records
what a finished build covered, for the next run."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.defs.resources import RunPaths
from pipelines.ingest.extract_format import RAW_TABLES
from pipelines.warehouse.models import MODELS, code_version
from pipelines.warehouse.scope import compute_scope, record_build

INCREMENTAL_MODELS = [m.name for m in MODELS if m.incremental]


@dg.asset(group_name="ingest", kinds={"duckdb"}, deps=["run_parameters", "ingest_files", *RAW_TABLES])
def run_scope(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: RunPaths) -> dg.MaterializeResult:
    """Full or incremental build, and the patients and time entries an incremental build redoes."""
    with warehouse.get_connection() as conn:
        scope = compute_scope(conn, code_version(paths.reference), INCREMENTAL_MODELS)
    context.log.info(
        f"{scope.mode} build: {scope.reason}"
        + (f" ({scope.patients} patients, {scope.entries} entry versions)" if scope.mode == "incremental" else "")
    )
    return dg.MaterializeResult(
        metadata={"mode": scope.mode, "reason": scope.reason, "patients": scope.patients, "entries": scope.entries}
    )


@dg.asset(group_name="marts", kinds={"duckdb"}, deps=[m.name for m in MODELS])
def build_state(warehouse: DuckDBResource, paths: RunPaths) -> dg.MaterializeResult:
    """Written when every model is built: the deliveries and as-of date the next run starts from."""
    with warehouse.get_connection() as conn:
        record_build(conn, code_version(paths.reference))
        (seq, as_of), = conn.sql("select last_delivery_seq, as_of from build_state").fetchall()
    return dg.MaterializeResult(metadata={"last_delivery_seq": seq, "as_of": str(as_of)})
