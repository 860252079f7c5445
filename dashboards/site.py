"""Static dashboard site: marts in an open DuckDB connection -> eight HTML pages, the drill-down pages
and plotly.min.js, written into a folder.

`render_site` reads each page's data from the marts (dashboards/marts.py: SQL only; every number
shown is a value a mart holds), fills its Jinja2 template (dashboards/render.py,
dashboards/templates/) and writes the files; `write_leadership_pngs` (dashboards/pngs.py) exports
the leadership figures as PNG. The site needs no network: figures use the one shared
`plotly.min.js` written next to the pages, so it works from file://; the CSS and scripts are inlined
in each page.

No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import plotly.offline

from dashboards import figures, marts
from dashboards.marts import SITE_MARTS
from dashboards.pngs import PNG_DIR, png_subtitle, write_leadership_pngs
from dashboards.render import (
    COMPLIANCE_PAGE,
    DRILLDOWN_DIR,
    INDEX_PAGE,
    OUTCOMES_PAGE,
    OUTREACH_PAGE,
    PAYMENTS_PAGE,
    PLOTLY_JS,
    REVENUE_GAP_PAGE,
    ROI_PAGE,
    WORKLIST_PAGE,
    figure_html,
    render,
    run_health_banner,
)
from dashboards.theme import fmt_month

__all__ = ["PAGES", "PNG_DIR", "SITE_MARTS", "drilldown_href", "png_subtitle", "render_site",
           "write_leadership_pngs"]

PAGES = (INDEX_PAGE, WORKLIST_PAGE, OUTREACH_PAGE, REVENUE_GAP_PAGE, PAYMENTS_PAGE, ROI_PAGE, OUTCOMES_PAGE,
         COMPLIANCE_PAGE)
PAYMENTS_TABLE_LIMIT = 100  # rows of the denial worklist, reasons and aging tables (all are in the warehouse)
WORKLIST_LIMIT = 500
GAP_TABLE_LIMIT = 50
OUTREACH_LIMIT = 60  # plan rows shown per care manager
OUTREACH_CARE_MANAGERS = 100  # rows of the by-care-manager table
OUTREACH_PLANS = 20  # care managers whose plan is listed on the page (all are in outreach_plan.csv)
LATE_TABLE_LIMIT = 50
# Drill-down pages (`bhi explain` for one patient-month) under the site folder, only for the
# patient-months the worklist and revenue-gap pages list, at most this many (worklist order first)
DRILLDOWN_LIMIT = 150


def drilldown_href(patient_id: Any, service_month: dt.date | None) -> str:
    """The drill-down page of a patient-month: a hash of patient and month for a file name (no
    patient identifier in a file name, any character in an id is safe)."""
    key = hashlib.sha256(f"{patient_id}\x1f{fmt_month(service_month)}".encode()).hexdigest()[:20]
    return f"{DRILLDOWN_DIR}/{key}.html"


def _write_text(path: Path, text: str) -> None:
    """Write next to the target and rename, so a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_drilldown_pages(conn: duckdb.DuckDBPyConnection, out: Path,
                          pairs: Sequence[tuple[Any, dt.date]], common: dict[str, Any]) -> set[tuple[Any, dt.date]]:
    """Write a drill-down page for each (patient_id, service_month) in `pairs` (already bounded);
    remove the pages of patient-months no longer listed; return the pairs written (a warehouse
    without the evidence tables gets none)."""
    folder = out / DRILLDOWN_DIR
    texts = marts.drilldown_texts(conn, [(patient_id, fmt_month(month)) for patient_id, month in pairs])
    written: set[tuple[Any, dt.date]] = set()
    if texts is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for patient_id, month in pairs:
        text = (texts or {}).get((patient_id, fmt_month(month)))
        if text is None:
            continue
        _write_text(out / drilldown_href(patient_id, month),
                    render("explain.html.j2", text=text, patient_id=patient_id, service_month=month, **common))
        written.add((patient_id, month))
    if folder.exists():
        keep = {Path(drilldown_href(*p)).name for p in written}
        for old in folder.glob("*.html"):
            if old.name not in keep:
                old.unlink()
    return written


def render_site(
    conn: duckdb.DuckDBPyConnection,
    out_dir: str | os.PathLike[str],
    *,
    worklist_limit: int = WORKLIST_LIMIT,
    gap_table_limit: int = GAP_TABLE_LIMIT,
    outreach_limit: int = OUTREACH_LIMIT,
    drilldown_limit: int = DRILLDOWN_LIMIT,
) -> Path:
    """Read the marts (SITE_MARTS) from `conn` and write the static site into `out_dir`; return
    index.html.

    Writes the eight pages (PAGES), one shared plotly.min.js and the drill-down pages (explain/, the
    `bhi explain` account of at most `drilldown_limit` patient-months listed on the worklist and
    revenue-gap pages; never linked from a leadership page). Long tables are cut in SQL (the
    worklist, the outreach plan and the top patient-months), so the page size does not grow
    with the number of patients. Only reads, so a read-only connection is enough.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    health = marts.health(conn)
    incomplete = health["incomplete"]
    banner = run_health_banner(health)
    common = {"as_of": health["as_of"], "health": banner}

    _write_text(out / PLOTLY_JS, plotly.offline.get_plotlyjs())
    pairs = marts.drilldown_pairs(conn, worklist_limit, gap_table_limit, drilldown_limit)
    linked = {(p, m): drilldown_href(p, m) for p, m in write_drilldown_pages(conn, out, pairs, common)}

    data = marts.worklist(conn, worklist_limit)
    data["figure"] = figure_html(figures.dollars_at_stake_by_care_manager(data["care_managers"]),
                                 "fig-care-manager")
    _write_text(out / WORKLIST_PAGE, render("worklist.html.j2", **data, **common, linked=linked))

    data = marts.payments(conn, PAYMENTS_TABLE_LIMIT)
    data["figure"] = figure_html(figures.payments_by_month(data["summary"]), "fig-payments")
    _write_text(out / PAYMENTS_PAGE, render("payments.html.j2", **data, **common))

    data = marts.outcomes(conn)
    data["figure"] = figure_html(figures.outcomes_trend(data["summary"]), "fig-outcomes")
    _write_text(out / OUTCOMES_PAGE, render("outcomes.html.j2", **data, **common))

    data = marts.outreach(conn, outreach_limit, OUTREACH_CARE_MANAGERS, OUTREACH_PLANS)
    data["dollars_figure"] = figure_html(figures.outreach_dollars_by_care_manager(data["summary"]),
                                         "fig-outreach-dollars")
    data["minutes_figure"] = figure_html(figures.outreach_minutes_by_care_manager(data["summary"]),
                                         "fig-outreach-minutes")
    _write_text(out / OUTREACH_PAGE, render("outreach.html.j2", **data, **common, linked=linked))

    data = marts.revenue_gap(conn, gap_table_limit)
    data["figure"] = figure_html(figures.revenue_gap_by_month_and_reason(data["monthly"], incomplete),
                                 "fig-revenue-gap")
    _write_text(out / REVENUE_GAP_PAGE, render("revenue_gap.html.j2", **data, **common, linked=linked,
                                               incomplete=incomplete))

    data = marts.roi(conn)
    data["figure"] = figure_html(figures.program_roi_by_month(data["monthly"]), "fig-roi")
    _write_text(out / ROI_PAGE, render("roi.html.j2", **data, **common))

    data = marts.compliance(conn, LATE_TABLE_LIMIT)
    data["blocked_figure"] = figure_html(figures.blocked_months_by_month(data["blocked"], incomplete),
                                         "fig-blocked")
    data["lag_figure"] = figure_html(figures.documentation_lag_heatmap(data["lag"]), "fig-doc-lag")
    data["quarantine_figure"] = figure_html(figures.quarantine_by_reason(data["quarantine"]), "fig-quarantine")
    _write_text(out / COMPLIANCE_PAGE, render("compliance.html.j2", **data, **common, incomplete=incomplete))

    data = marts.index(conn)
    data["trend_figure"] = figure_html(figures.revenue_trend(data["monthly"]), "fig-trend")
    _write_text(out / INDEX_PAGE, render("index.html.j2", **data, health=banner))
    return out / INDEX_PAGE
