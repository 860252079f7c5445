"""Output assets: CSV exports and the static dashboard site."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from dashboards.site import PNG_DIR, SITE_MARTS, render_site, write_leadership_pngs
from pipelines.defs.resources import RunPaths
from pipelines.exports import write_exports

MARTS = [
    "fct_claims",
    "fct_unpriced_claim_lines",
    "fct_claim_changes",
    "fct_near_threshold",
    "fct_revenue_gap",
    "fct_minutes_reconciliation",
    "fct_claim_evidence",
    "fct_rule_set_what_if",
    "fct_modifier_advisories",
    "fct_month_completeness",
    "quarantine",
]


@dg.asset(deps=MARTS, group_name="outputs", kinds={"csv"})
def exports(warehouse: DuckDBResource, paths: RunPaths) -> dg.MaterializeResult:
    """claims.csv, near_threshold.csv, revenue_gap.csv, quarantine.csv, claim_evidence/<YYYY-MM>.csv
    and the others of pipelines/exports.py; only files whose content changed are written (manifest.csv)."""
    with warehouse.get_connection() as conn:
        counts = write_exports(conn, paths.out)
    return dg.MaterializeResult(metadata={name: rows for name, rows in counts.items()})


# the drill-down pages (explain/) read the evidence trail as `bhi explain` does
DRILLDOWN_TABLES = ["fct_patient_months", "fct_claim_evidence", "int_time_entries_classified"]


@dg.asset(deps=[*SITE_MARTS, *DRILLDOWN_TABLES], group_name="outputs", kinds={"plotly", "html"})
def dashboards(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: RunPaths
) -> dg.MaterializeResult:
    """Static offline dashboard site under <out>/dashboards/ (index, worklist, outreach plan,
    revenue gap, ROI, compliance, the explain/ drill-down pages) and the leadership figures as PNG for email under
    <out>/dashboards/email/ (kaleido + a Chromium browser; skipped with a warning when missing)."""
    site_dir = paths.out / "dashboards"
    with warehouse.get_connection() as conn:
        index = render_site(conn, site_dir)
        try:
            pngs = write_leadership_pngs(conn, site_dir / PNG_DIR)
            png_note = ", ".join(p.name for p in pngs)
        except RuntimeError as exc:
            context.log.warning(f"leadership PNGs not written: {exc}")
            png_note = f"not written: {exc}"
    return dg.MaterializeResult(
        metadata={"index": dg.MetadataValue.path(str(index)), "leadership_png": png_note}
    )
