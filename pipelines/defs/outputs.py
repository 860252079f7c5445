"""Output assets: CSV exports and the static dashboard site."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dashboards.site import render_site
from pipelines.defs.resources import RunPaths
from pipelines.exports import write_exports

MARTS = ["fct_claims", "fct_near_threshold", "fct_revenue_gap", "fct_minutes_reconciliation", "quarantine"]


@dg.asset(deps=MARTS, group_name="outputs", kinds={"csv"})
def exports(warehouse: DuckDBResource, paths: RunPaths) -> dg.MaterializeResult:
    """claims.csv, near_threshold.csv, revenue_gap.csv, quarantine.csv, minutes_reconciliation.csv."""
    with warehouse.get_connection() as conn:
        counts = write_exports(conn, paths.out)
    return dg.MaterializeResult(metadata={name: rows for name, rows in counts.items()})


@dg.asset(
    deps=["fct_run_summary", "fct_near_threshold", "fct_revenue_gap", "fct_program_roi"],
    group_name="outputs",
    kinds={"plotly", "html"},
)
def dashboards(warehouse: DuckDBResource, paths: RunPaths) -> dg.MaterializeResult:
    """Static offline dashboard site (index, worklist, revenue gap, ROI) under <out>/dashboards/."""
    with warehouse.get_connection() as conn:
        index = render_site(conn, paths.out / "dashboards")
    return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(str(index))})
