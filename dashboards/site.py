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
import hmac
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

__all__ = ["PAGES", "PNG_DIR", "SITE_MARTS", "drilldown_href", "drilldown_key", "png_subtitle", "render_site",
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
# The secret the drill-down page names are keyed with, in a file beside the warehouse (owner-only);
# a warehouse that is not a file (or a folder that cannot be written) gets a fresh key per render.
DRILLDOWN_KEY_SUFFIX = ".page-key"
DRILLDOWN_KEY_BYTES = 32


def drilldown_key(conn: duckdb.DuckDBPyConnection) -> bytes:
    """The per-warehouse secret of the drill-down page names: read from <warehouse>.page-key, created
    (32 random bytes, mode 0600) the first time. Without it nobody can tell from a page's name which
    patient-month it explains, even knowing every patient id and month (the names used to be an
    unsalted hash of id and month: all reversed by trying ids and months)."""
    found = conn.sql("select path from duckdb_databases() where database_name = current_database()").fetchall()
    path = Path(found[0][0]) if found and found[0][0] else None
    if path is None or not path.is_file():
        return os.urandom(DRILLDOWN_KEY_BYTES)
    key_file = path.with_name(path.name + DRILLDOWN_KEY_SUFFIX)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = key_file.read_bytes()
        if len(key) >= DRILLDOWN_KEY_BYTES:
            return key
        return hashlib.sha256(key).digest() if key else os.urandom(DRILLDOWN_KEY_BYTES)
    except OSError:  # a read-only folder: names change with each render, never guessable
        return os.urandom(DRILLDOWN_KEY_BYTES)
    key = os.urandom(DRILLDOWN_KEY_BYTES)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def drilldown_href(patient_id: Any, service_month: dt.date | None, key: bytes) -> str:
    """The drill-down page of a patient-month: an HMAC-SHA256 of patient and month keyed with the
    warehouse's secret (drilldown_key) for a file name, so no patient identifier is in a file name
    and the name cannot be computed from the id and month alone."""
    digest = hmac.new(key, f"{patient_id}\x1f{fmt_month(service_month)}".encode(), hashlib.sha256)
    return f"{DRILLDOWN_DIR}/{digest.hexdigest()[:32]}.html"


def _write_text(path: Path, text: str) -> None:
    """Write next to the target and rename, so a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_drilldown_pages(conn: duckdb.DuckDBPyConnection, out: Path, pairs: Sequence[tuple[Any, dt.date]],
                          common: dict[str, Any], key: bytes) -> set[tuple[Any, dt.date]]:
    """Write a drill-down page for each (patient_id, service_month) in `pairs` (already bounded);
    remove the pages of patient-months no longer listed; return the pairs written (a warehouse
    without the evidence tables gets none)."""
    folder = out / DRILLDOWN_DIR
    texts = marts.drilldown_texts(conn, [(patient_id, fmt_month(month)) for patient_id, month in pairs])
    labels = marts.patient_labels(conn, [patient_id for patient_id, _ in pairs])
    written: set[tuple[Any, dt.date]] = set()
    if texts is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for patient_id, month in pairs:
        text = (texts or {}).get((patient_id, fmt_month(month)))
        if text is None:
            continue
        _write_text(out / drilldown_href(patient_id, month, key),
                    render("explain.html.j2", text=text, patient_id=patient_id, service_month=month,
                           patient_label=labels.get(patient_id) or patient_id, **common))
        written.add((patient_id, month))
    if folder.exists():
        keep = {Path(drilldown_href(*p, key)).name for p in written}
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
) -> Path:
    """Read the marts (SITE_MARTS) from `conn` and write the static site into `out_dir`; return
    index.html.

    Writes the eight pages (PAGES), one shared plotly.min.js and the drill-down pages (explain/, the
    `bhi explain` account of every patient-month the worklist, outreach and revenue-gap pages list,
    named by a keyed hash (drilldown_key); never linked from a leadership page). Long tables are cut in SQL (the
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
    pairs = marts.drilldown_pairs(conn, worklist_limit, gap_table_limit, outreach_limit)
    key = drilldown_key(conn)
    linked = {(p, m): drilldown_href(p, m, key) for p, m in write_drilldown_pages(conn, out, pairs, common, key)}

    data = marts.worklist(conn, worklist_limit)
    data["figure"] = figure_html(figures.dollars_at_stake_by_care_manager(data["care_managers"]),
                                 "fig-care-manager")
    _write_text(out / WORKLIST_PAGE, render("worklist.html.j2", **data, **common, linked=linked,
                                            limit=worklist_limit))

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
                                               incomplete=incomplete, limit=gap_table_limit))

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
