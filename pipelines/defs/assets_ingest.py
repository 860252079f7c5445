"""Ingest assets: shipped reference data, the run's as-of date, and the extract drop."""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines import ledgers
from pipelines.defs.resources import RunPaths
from pipelines.ingest.extract_format import RAW_TABLES, TABLES
from pipelines.ingest.load import load_drop
from pipelines.warehouse.reference import REFERENCE_TABLES, seed_reference
from pipelines.warehouse.run_state import ensure_claims_baseline, write_run_parameters
from pipelines.x12.remittance_835 import load_remittances


@dg.multi_asset(
    specs=[dg.AssetSpec(t, group_name="reference", kinds={"duckdb"}) for t in REFERENCE_TABLES],
    name="reference_data",
)
def reference_data(warehouse: DuckDBResource, paths: RunPaths):
    """Billing rules as data: data/reference/*.csv seeded as ref_* tables."""
    with warehouse.get_connection() as conn:
        counts = seed_reference(conn, paths.reference)
    for table in REFERENCE_TABLES:
        yield dg.MaterializeResult(asset_key=table, metadata={"rows": counts.get(table, 0)})


class RunParametersConfig(dg.Config):
    as_of: str | None = None  # YYYY-MM-DD; months before its month are closed, its month is open


@dg.asset(group_name="reference", kinds={"duckdb"})
def run_parameters(
    context: dg.AssetExecutionContext, config: RunParametersConfig, warehouse: DuckDBResource
) -> dg.MaterializeResult:
    """The run's as-of date (default: today) and run id."""
    as_of = dt.date.fromisoformat(config.as_of) if config.as_of else dt.date.today()
    with warehouse.get_connection() as conn:
        write_run_parameters(conn, as_of, context.run.run_id)
    return dg.MaterializeResult(metadata={"as_of": as_of.isoformat()})


@dg.asset(group_name="ingest", kinds={"duckdb"})
def claims_previous_run(warehouse: DuckDBResource) -> dg.MaterializeResult:
    """The claims of the last run that published (for fct_claim_changes / claims_changes.csv). The
    `publication` asset writes them when a run publishes; here they are only created on a new
    warehouse, so a run that fails after rebuilding fct_claims cannot move the baseline."""
    with warehouse.get_connection() as conn:
        rows = ensure_claims_baseline(conn)
    return dg.MaterializeResult(metadata={"claim_lines": rows})


class ExtractsConfig(dg.Config):
    profile: str | None = None  # source profile name (profiles/<name>.yaml) or path; default: bhi-profile.yaml in the drop
    full_refresh: bool = False  # forget the ledger and reload every file of the drop


@dg.multi_asset(
    specs=[
        dg.AssetSpec(t, group_name="ingest", kinds={"duckdb"}, deps=[*REFERENCE_TABLES, "run_parameters", "claims_previous_run"])
        for t in [*RAW_TABLES, "quarantine", "field_warnings", "ingest_files", "ingest_errors"]
    ],
    name="extracts",
)
def extracts(context: dg.AssetExecutionContext, config: ExtractsConfig, warehouse: DuckDBResource, paths: RunPaths):
    """Read the extract drop, quarantine bad rows with reasons, record unreadable optional values as
    field warnings, keep a ledger of files. Messages name files, rows and columns, never values."""
    with warehouse.get_connection() as conn:
        result = load_drop(conn, paths.extracts, profile=config.profile, full_refresh=config.full_refresh)
        remits = load_remittances(conn, paths.extracts)  # X12 835 files of the drop (pipelines/x12)
        # the ledgers outside the warehouse (pipelines/ledgers.py): the 835 files' rows, and what a
        # restored copy lacks of what was sent and closed after it
        ledgers.mirror_files(conn)
        ledgers.restore_into(conn)
    if remits["files"]:
        context.log.info(
            f"{remits['files']} 835 remittance files: {remits['loaded']} loaded, {remits['duplicates']} copies,"
            f" {remits['rejected']} rejected"
        )
    for warning in remits.get("warnings", []):  # validator findings on contacts / addresses: loaded
        context.log.warning(f"835 loaded with warnings: {warning}")
    for error in result.file_errors:
        context.log.warning(f"file rejected, the others loaded: {error}")
    context.log.info(
        f"{result.files} files in the drop: {result.files_loaded} loaded, {result.files_skipped} already loaded or"
        f" copies, {len(result.file_errors)} rejected; "
        + ", ".join(
            f"{t} {result.rows_loaded[t]} loaded/{result.rows_quarantined[t]} quarantined"
            f"/{result.field_warnings.get(t, 0)} field warnings"
            for t in TABLES
        )
    )
    for table in TABLES:
        yield dg.MaterializeResult(
            asset_key=f"raw_{table}",
            metadata={
                "rows_read": result.rows_read[table],  # this load (new files only)
                "rows_loaded": result.rows_loaded[table],
                "rows_in_warehouse": result.rows_in_warehouse.get(table, 0),  # every delivery so far
            },
        )
    yield dg.MaterializeResult(asset_key="quarantine", metadata={"rows": sum(result.rows_quarantined.values())})
    yield dg.MaterializeResult(asset_key="field_warnings", metadata={"rows": sum(result.field_warnings.values())})
    yield dg.MaterializeResult(
        asset_key="ingest_files",
        metadata={"files": result.files, "files_loaded": result.files_loaded, "files_skipped": result.files_skipped},
    )
    yield dg.MaterializeResult(asset_key="ingest_errors", metadata={"files_rejected": len(result.file_errors)})
