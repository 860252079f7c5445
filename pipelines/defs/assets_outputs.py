"""Output assets: CSV exports and the static dashboard site, written into this run's own folder, and
the publication that makes that folder the out folder's content in one swap (pipelines/outputs/publication.py)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dashboards.marts import DRILLDOWN_TABLES  # the drill-down pages read the evidence trail as `bhi explain` does
from dashboards.site import PNG_DIR, SITE_MARTS, render_site, write_leadership_pngs
from pipelines.defs.resources import RunPaths
from pipelines.interrupts import stop_if_interrupted
from pipelines.outputs.exports import EXPORT_TABLES, write_exports
from pipelines.outputs.publication import DASHBOARDS, current_folder, fresh_subfolder, publish, staging_folder
from pipelines.safety import disk_errors, fault_point
from pipelines.warehouse.run_state import snapshot_claims


@dg.asset(deps=EXPORT_TABLES, group_name="outputs", kinds={"csv"})
def exports(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: RunPaths) -> dg.MaterializeResult:
    """claims.csv, near_threshold.csv, revenue_gap.csv, quarantine.csv and the others of
    pipelines/outputs/exports.py, in this run's folder (published by `publication`); only files whose
    content changed are written (manifest.csv), the others are links to the published ones. The
    evidence trail stays in the warehouse (fct_claim_evidence): the close and `bhi evidence` write it."""
    fault_point("exports:before")
    staging = staging_folder(paths.out, context.run.run_id, fresh=(DASHBOARDS,))
    with warehouse.get_connection() as conn, disk_errors(staging, "writing this run's exports (the published outputs are unchanged)"):
        counts = write_exports(conn, staging)
    return dg.MaterializeResult(metadata={name: rows for name, rows in counts.items()})


@dg.asset(deps=[*SITE_MARTS, *DRILLDOWN_TABLES], group_name="outputs", kinds={"plotly", "html"})
def dashboards(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: RunPaths
) -> dg.MaterializeResult:
    """Static offline dashboard site under <out>/dashboards/ (index, worklist, outreach plan,
    revenue gap, ROI, outcomes, compliance, the explain/ drill-down pages) and the leadership figures as PNG for email under
    <out>/dashboards/email/ (kaleido + a Chromium browser; skipped with a warning when missing),
    rendered into this run's folder (published by `publication`). A PNG whose figure is unchanged
    since the published one (dashboards/pngs.py, digests.json) is kept, not rendered again."""
    staging = staging_folder(paths.out, context.run.run_id, fresh=(DASHBOARDS,))
    with warehouse.get_connection() as conn, disk_errors(staging / DASHBOARDS, "writing this run's dashboards (the published outputs are unchanged)"):
        site_dir = fresh_subfolder(staging, DASHBOARDS)
        index = render_site(conn, site_dir)
        if not paths.leadership_pngs:
            png_note = "not written: turned off (BHI_LEADERSHIP_PNGS=off)"
        else:
            published = current_folder(paths.out)
            try:
                pngs = write_leadership_pngs(
                    conn, site_dir / PNG_DIR, previous=published / DASHBOARDS / PNG_DIR if published else None
                )
                png_note = pngs.note()
            except RuntimeError as exc:
                context.log.warning(f"leadership PNGs not written: {exc}")
                png_note = f"not written: {exc}"
    published_index = paths.out / DASHBOARDS / index.relative_to(site_dir)
    return dg.MaterializeResult(
        metadata={"index": dg.MetadataValue.path(str(published_index)), "leadership_png": png_note}
    )


@dg.asset(deps=["exports", "dashboards"], group_name="outputs", kinds={"duckdb"})
def publication(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: RunPaths) -> dg.MaterializeResult:
    """Publish this run's folder (exports, dashboards, the month-end files carried over) as the out
    folder's content in one swap; then its claims become the baseline the next run's
    claims_changes.csv compares with (claims_previous_run) and the run is logged in `publications`.
    A run killed between the two reports its changes again on the next run: never fewer."""
    with warehouse.get_connection() as conn:
        as_of = conn.sql("select any_value(as_of)::varchar from run_parameters").fetchall()[0][0]
        stop_if_interrupted("publishing the outputs")  # never a publication after a Ctrl-C or SIGTERM
        folder = publish(paths.out, context.run.run_id, as_of)
        fault_point("publication:before-baseline")
        lines = snapshot_claims(conn, context.run.run_id)
    return dg.MaterializeResult(metadata={"run_folder": str(folder), "baseline_claim_lines": lines})
