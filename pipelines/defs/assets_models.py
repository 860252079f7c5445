"""The SQL models as Dagster assets: one asset per file under sql/ (pipelines/warehouse/models.py loads
them), all built by one multi-asset step (`sql_models`) on one connection."""

import hashlib
import time

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.warehouse.models import MODELS, REPO_ROOT, SqlModel, in_dependency_order, materialize


def _spec(model: SqlModel) -> dg.AssetSpec:
    return dg.AssetSpec(
        model.name,
        deps=[*model.upstream, *(["run_scope"] if model.incremental else [])],
        group_name=model.layer,
        kinds={"duckdb", "sql"},
        description=model.header.get("purpose", ""),
        code_version=hashlib.sha256(model.sql.encode()).hexdigest()[:12],
        metadata={"grain": model.header.get("grain", ""), "sql_file": str(model.path.relative_to(REPO_ROOT))},
    )


# Every SQL model is its own asset (lineage, metadata, a subset can be materialized from the UI), but
# they run in one step on one DuckDB connection, the way dagster-dbt runs a dbt project: at 10M
# entries a step per model spent more time opening and checkpointing the warehouse than in SQL.
@dg.multi_asset(name="sql_models", specs=[_spec(m) for m in MODELS], can_subset=True)
def sql_models(context: dg.AssetExecutionContext, warehouse: DuckDBResource):
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    with warehouse.get_connection() as conn:
        # one checkpoint when the step ends instead of one every 16 MB of log: a nightly run deletes
        # and inserts rows in every big table, and each checkpoint rewrote them again
        conn.execute("set checkpoint_threshold = '1GB'")
        for model in in_dependency_order(MODELS):
            if model.name not in selected:
                continue
            started = time.perf_counter()
            rows = materialize(conn, model)
            seconds = round(time.perf_counter() - started, 3)
            yield dg.MaterializeResult(asset_key=model.name, metadata={"rows": rows, "seconds": seconds})
