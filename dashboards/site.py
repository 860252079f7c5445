"""Static dashboard site: marts in an open DuckDB connection -> six HTML pages + plotly.min.js.

`render_site(conn, out_dir)` (and `write_leadership_pngs`) are the only functions that touch the
database or the disk. The `*_page` functions are pure (polars frames in, an HTML string out) so
they can be tested without a warehouse. They format, filter, sort and cut the mart rows; they do
not add anything up: every number shown is a value held by a SQL model (sql/marts/), mostly
fct_dashboard_headlines for the cards. Every value that comes from the data goes through `html.escape` (the `_table` and
`_cell` helpers do it; nothing else interpolates data). The site needs no network: figures use
the one shared `plotly.min.js` written next to the pages, so it works from file://.

No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go
import plotly.offline
import polars as pl

from dashboards import figures
from dashboards.theme import (
    FONT_STACK,
    GRID,
    INK,
    MUTED,
    NEGATIVE,
    PALETTE,
    POSITIVE,
    fmt_date,
    fmt_dollars,
    fmt_int,
    fmt_minutes,
    fmt_month,
    fmt_pct,
)
from pipelines.outputs.explain import NotFound, explain_with

PLOTLY_JS = "plotly.min.js"
INDEX_PAGE = "index.html"
WORKLIST_PAGE = "worklist.html"
REVENUE_GAP_PAGE = "revenue_gap.html"
ROI_PAGE = "roi.html"
OUTREACH_PAGE = "outreach.html"
COMPLIANCE_PAGE = "compliance.html"
OUTCOMES_PAGE = "outcomes.html"
PAYMENTS_PAGE = "payments.html"
PAGES = (INDEX_PAGE, WORKLIST_PAGE, OUTREACH_PAGE, REVENUE_GAP_PAGE, PAYMENTS_PAGE, ROI_PAGE, OUTCOMES_PAGE,
         COMPLIANCE_PAGE)
PAYMENTS_TABLE_LIMIT = 100  # rows of the denial worklist and aging tables (all are in the warehouse)
WORKLIST_LIMIT = 500
GAP_TABLE_LIMIT = 50
OUTREACH_LIMIT = 60  # plan rows shown per care manager
OUTREACH_CARE_MANAGERS = 100  # rows of the by-care-manager table
OUTREACH_PLANS = 20  # care managers whose plan is listed on the page (all are in outreach_plan.csv)
OUTREACH_PLAN_CSV = "../outreach_plan.csv"  # written by the exports step into the parent dir
LATE_TABLE_LIMIT = 50
PNG_DIR = "email"  # leadership figures as PNG, under the site folder
# Drill-down pages (`bhi explain` for one patient-month) under the site folder, only for the
# patient-months the worklist and revenue-gap pages list, at most this many (worklist order first)
DRILLDOWN_DIR = "explain"
DRILLDOWN_LIMIT = 150
NEAR_THRESHOLD_CSV = "../near_threshold.csv"  # written by the exports step into the parent dir

PROGRAM_LABELS = figures.PROGRAM_LABELS

_NAV = (
    (INDEX_PAGE, "Overview"),
    (WORKLIST_PAGE, "Worklist (open month)"),
    (OUTREACH_PAGE, "Outreach plan"),
    (REVENUE_GAP_PAGE, "Revenue gap (closed months)"),
    (PAYMENTS_PAGE, "Payments"),
    (ROI_PAGE, "Program ROI"),
    (OUTCOMES_PAGE, "Outcomes"),
    (COMPLIANCE_PAGE, "Compliance"),
)

CSS = f"""
*, *::before, *::after {{ box-sizing: border-box; }}
body {{ margin: 0; font-family: {FONT_STACK}; color: {INK}; background: #f7f8fa;
       line-height: 1.45; font-size: 15px; }}
.container {{ max-width: 1280px; margin: 0 auto; padding: 0 20px 40px; }}
header {{ background: white; border-bottom: 1px solid {GRID}; margin-bottom: 20px; }}
header .container {{ padding-top: 12px; padding-bottom: 12px; display: flex; flex-wrap: wrap;
                     gap: 6px 18px; align-items: baseline; }}
header .brand {{ font-weight: 700; margin-right: 12px; }}
nav a {{ color: {PALETTE[0]}; text-decoration: none; margin-right: 14px; }}
nav a[aria-current="page"] {{ color: {INK}; font-weight: 600; text-decoration: underline; }}
h1 {{ font-size: 1.5rem; margin: 0.2em 0 0.3em; }}
h2 {{ font-size: 1.15rem; margin: 1.6em 0 0.5em; }}
p.lead {{ color: {MUTED}; margin-top: 0; }}
.note {{ color: {MUTED}; font-size: 0.9rem; }}
.empty {{ background: white; border: 1px dashed {GRID}; padding: 18px; color: {MUTED};
          border-radius: 6px; }}
.card-grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr));
              gap: 12px; margin: 12px 0 24px; }}
.card {{ background: white; border: 1px solid {GRID}; border-radius: 8px; padding: 12px 14px; }}
.card .label {{ color: {MUTED}; font-size: 0.85rem; }}
.card .value {{ font-size: 1.45rem; font-weight: 650; margin-top: 2px; }}
.card.alert .value {{ color: {NEGATIVE}; }}
.card.good .value {{ color: {POSITIVE}; }}
.links {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; }}
.links a {{ display: block; background: white; border: 1px solid {GRID}; border-radius: 8px;
            padding: 14px; color: {INK}; text-decoration: none; }}
.links a strong {{ color: {PALETTE[0]}; }}
.figure {{ background: white; border: 1px solid {GRID}; border-radius: 8px; padding: 6px;
           margin: 12px 0 20px; }}
.figure h3.fig-title {{ font-size: 1rem; margin: 6px 8px 0; }}
.figure .js-plotly-plot, .figure .plotly-graph-div {{ max-width: 100%; }}
/* a long or wide table scrolls inside its own box (both scrollbars stay on screen) */
.table-wrap {{ overflow: auto; max-height: 75vh; max-width: 100%; background: white;
               border: 1px solid {GRID}; border-radius: 8px; }}
.health {{ background: white; border: 1px solid {GRID}; border-left: 6px solid {POSITIVE};
           border-radius: 8px; padding: 10px 14px; margin: 0 0 18px; font-size: 0.9rem; }}
.health.alert {{ border-left-color: {NEGATIVE}; background: #fff5ef; }}
.health strong.alert {{ color: {NEGATIVE}; }}
.health ul {{ margin: 4px 0; padding-left: 20px; }}
.health details summary {{ cursor: pointer; color: {PALETTE[0]}; }}
.health .facts {{ display: flex; flex-wrap: wrap; gap: 4px 18px; }}
tr.incomplete td {{ color: {NEGATIVE}; }}
.badge {{ display: inline-block; font-size: 0.75rem; padding: 1px 6px; border-radius: 8px;
          background: #fde0c5; color: {INK}; white-space: nowrap; }}
.actions {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 12px; }}
.actions a {{ display: block; background: white; border: 1px solid {GRID}; border-left: 5px solid {PALETTE[1]};
              border-radius: 8px; padding: 12px 14px; color: {INK}; text-decoration: none; }}
.actions a .headline {{ display: block; font-size: 1.25rem; font-weight: 650; }}
th.sortable {{ cursor: pointer; }}
th.sortable::after {{ content: " ↕"; color: {MUTED}; font-weight: 400; }}
th[aria-sort="ascending"]::after {{ content: " ↑"; }}
th[aria-sort="descending"]::after {{ content: " ↓"; }}
select#cm-filter {{ font: inherit; padding: 5px 8px; border: 1px solid #c5ccd3; border-radius: 6px;
                    margin: 6px 12px 10px 0; max-width: 100%; }}
details.folded {{ margin-top: 14px; }}
details.folded summary {{ cursor: pointer; color: {PALETTE[0]}; }}
@media (max-width: 600px) {{
  .container {{ padding: 0 10px 30px; }}
  .card-grid {{ grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 8px; }}
  .card {{ padding: 8px 10px; }}
  .card .value {{ font-size: 1.15rem; overflow-wrap: anywhere; }}
}}
table {{ border-collapse: collapse; width: 100%; font-size: 0.85rem; }}
th, td {{ padding: 5px 8px; border-bottom: 1px solid {GRID}; text-align: left;
          vertical-align: top; }}
th {{ background: #f0f2f5; position: sticky; top: 0; font-weight: 600; white-space: nowrap; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.blockers {{ min-width: 14em; }}
td.nowrap {{ white-space: nowrap; }}
tr.blocked td.blockers {{ color: {NEGATIVE}; }}
tr.total td {{ font-weight: 650; border-top: 2px solid {GRID}; }}
tr.out td {{ color: {MUTED}; }}
td.behind {{ color: {NEGATIVE}; }}
.links a .headline {{ display: block; font-size: 1.25rem; font-weight: 650; margin: 4px 0; }}
input#filter {{ font: inherit; padding: 6px 10px; width: min(420px, 100%);
                border: 1px solid #c5ccd3;
                border-radius: 6px; margin: 6px 0 10px 0; }}
footer {{ color: {MUTED}; font-size: 0.85rem; margin-top: 30px; }}
"""

_FILTER_JS = """
(function () {
  var input = document.getElementById("filter");
  var select = document.getElementById("cm-filter");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#worklist tbody tr"));
  var count = document.getElementById("filter-count");
  function apply() {
    var terms = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var cm = select ? select.value : "";
    var shown = 0;
    rows.forEach(function (tr) {
      var text = tr.textContent.toLowerCase();
      var ok = terms.every(function (t) { return text.indexOf(t) !== -1; }) &&
               (!cm || tr.getAttribute("data-cm") === cm);
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " rows shown";
  }
  input.addEventListener("input", apply);
  if (select) { select.addEventListener("change", apply); }
  apply();
})();
"""

# Click a column header of a table with class "sortable" to sort by it (again: the other way). Cells
# carry data-sort (a number) when their text is formatted ($1,234, 45 min, 99493 at 60 min ...).
_SORT_JS = """
(function () {
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.classList.add("sortable");
      th.tabIndex = 0;
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        function key(tr) {
          var td = tr.cells[col];
          var v = td ? td.getAttribute("data-sort") : null;
          if (v !== null && v !== "") { return parseFloat(v); }
          return td ? td.textContent.trim().toLowerCase() : "";
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          var c = (typeof x === "number" && typeof y === "number") ? x - y
                  : String(x).localeCompare(String(y));
          return asc ? c : -c;
        });
        rows.forEach(function (tr) { body.appendChild(tr); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
    });
  });
})();
"""


# --------------------------------------------------------------------------- html helpers


def _e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute; None -> ""."""
    return html.escape("" if value is None else str(value), quote=True)


class Sort:
    """A cell's text with the number a sortable table sorts it by (data-sort)."""

    __slots__ = ("text", "key")

    def __init__(self, text: Any, key: float | int | None):
        self.text, self.key = text, key


class Link:
    """A cell's text as a link (the drill-down page of a patient-month)."""

    __slots__ = ("text", "href")

    def __init__(self, text: Any, href: str | None):
        self.text, self.href = text, href


def _cell(value: Any, *, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in ("num" if num else "", cls) if c)
    attr = f' class="{_e(classes)}"' if classes else ""
    if isinstance(value, Link):
        if not value.href:
            return f"<td{attr}>{_e(value.text)}</td>"
        return f'<td{attr}><a href="{_e(value.href)}">{_e(value.text)}</a></td>'
    if isinstance(value, Sort):
        key = "" if value.key is None else value.key
        return f'<td{attr} data-sort="{_e(key)}">{_e(value.text)}</td>'
    return f"<td{attr}>{_e(value)}</td>"


def _table(
    headers: Sequence[tuple[str, bool]],
    rows: Iterable[tuple[Sequence[Any], str]],
    *,
    table_id: str | None = None,
    col_classes: dict[int, str] | None = None,
    sortable: bool = False,
) -> str:
    """headers: (label, is_numeric); rows: (cell values already formatted as text, row class) or
    (values, row class, {attribute: value}); col_classes: extra CSS class per column index;
    sortable: click a header to sort (the page needs _SORT_JS).

    Every header, cell and attribute is escaped here.
    """
    col_classes = col_classes or {}
    numeric = [is_num for _, is_num in headers]
    num_attr = ' class="num"'
    head = "".join(
        f'<th{num_attr if is_num else ""} scope="col">{_e(label)}</th>'
        for label, is_num in headers
    )
    body = []
    for row in rows:
        values, row_cls = row[0], row[1]
        attrs = row[2] if len(row) > 2 else {}
        cells = "".join(
            _cell(v, num=numeric[i] if i < len(numeric) else False, cls=col_classes.get(i, ""))
            for i, v in enumerate(values)
        )
        cls_attr = f' class="{_e(row_cls)}"' if row_cls else ""
        extra = "".join(f' {_e(k)}="{_e(v)}"' for k, v in attrs.items())
        body.append(f"<tr{cls_attr}{extra}>{cells}</tr>")
    id_attr = f' id="{_e(table_id)}"' if table_id else ""
    id_attr += ' class="sortable"' if sortable else ""
    return (
        f'<div class="table-wrap"><table{id_attr}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _empty(message: str) -> str:
    return f'<p class="empty">{_e(message)}</p>'


def _card(label: str, value: str, cls: str = "") -> str:
    cls_attr = f"card {cls}".strip()
    return (
        f'<div class="{_e(cls_attr)}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div></div>'
    )


def _figure_html(fig: go.Figure, div_id: str) -> str:
    """The figure in a card; its title is drawn as an HTML heading above the chart (not inside the
    plot), so a legend that wraps to several rows on a narrow screen can never cover it."""
    title = fig.layout.title.text or ""
    fig = go.Figure(fig)
    fig.update_layout(title=dict(text=None), margin=dict(t=30))
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        default_height=f"{int(fig.layout.height or 440)}px",
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="figure"><h3 class="fig-title">{_e(title)}</h3>{body}</div>'


def _page(
    title: str,
    current: str,
    body: str,
    *,
    as_of: dt.date | None,
    script: str = "",
    phi: bool = False,
    health: str = "",
    prefix: str = "",
) -> str:
    """prefix: the way back to the site folder from a page in a subfolder ("../")."""
    current_attr = ' aria-current="page"'
    nav = "".join(
        f'<a href="{prefix}{href}"{current_attr if href == current else ""}>{_e(label)}</a>'
        for href, label in _NAV
    )
    footer = f"Data as of {_e(fmt_date(as_of))}. " if as_of else ""
    if phi:
        footer += "Contains patient identifiers (PHI): keep within the care and billing team. "
    footer += "Generated by bhi-revenue from the warehouse marts."
    script = script + _SORT_JS if 'class="sortable"' in body else script
    script_html = f"<script>{script}</script>" if script else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · BHI revenue</title>
<style>{CSS}</style>
<script src="{prefix}{PLOTLY_JS}"></script>
</head>
<body>
<header><div class="container"><span class="brand">BHI revenue</span><nav>{nav}</nav></div></header>
<main class="container">
{health}
{body}
<footer>{footer}</footer>
</main>
{script_html}
</body>
</html>
"""


def _month(value: dt.date | None, incomplete: Any = None) -> str:
    """YYYY-MM, with "(incomplete data)" for a month fct_month_completeness marks incomplete."""
    return fmt_month(value) + (f" ({figures.INCOMPLETE})" if incomplete and value in incomplete
                               else "")


def _program(value: str | None) -> str:
    if value is None:
        return ""
    return PROGRAM_LABELS.get(value, value)


def _next_code(code: str | None, at_minutes: int | None) -> str:
    if not code:
        return "—"
    return code if at_minutes is None else f"{code} at {at_minutes} min"


def _summary_row(summary: pl.DataFrame) -> dict[str, Any] | None:
    return summary.row(0, named=True) if summary.height else None




def _one(frame: pl.DataFrame | None) -> dict[str, Any]:
    """First row of a one-row mart as a dict ({} when the mart is empty or missing)."""
    return frame.row(0, named=True) if frame is not None and frame.height else {}


def _cm(value: str | None, name: str | None = None) -> str:
    return figures.care_manager_label(value, name)


# --------------------------------------------------------------------------- run health


def incomplete_months(completeness: pl.DataFrame | None) -> frozenset:
    """The service months fct_month_completeness marks incomplete."""
    if completeness is None or completeness.height == 0 or "is_incomplete" not in completeness.columns:
        return frozenset()
    return frozenset(completeness.filter(pl.col("is_incomplete")).get_column("service_month").to_list())


def run_health_banner(health: pl.DataFrame | None, sources: pl.DataFrame | None = None,
                      completeness: pl.DataFrame | None = None) -> str:
    """The run-health box every page starts with (fct_run_health, fct_run_health_sources,
    fct_month_completeness): loud when the extract is stale, a file was rejected or a month's data
    is incomplete; the as-of date, newest entry, rows quarantined, field warnings and unpriced
    lines always; the newest date per source and facility behind a disclosure."""
    h = _one(health)
    if not h:
        return ('<section class="health alert" id="run-health"><strong class="alert">Run health '
                "unknown: no fct_run_health in this warehouse.</strong></section>")
    alerts = []
    if h.get("is_stale"):
        newest = h.get("newest_entry_date")
        alerts.append(
            "Stale extract: no time entries at all." if newest is None else
            f"Stale extract: the newest time entry is {fmt_date(newest)}, "
            f"{fmt_int(h.get('days_since_newest_entry'))} days before the as-of date "
            f"(more than {fmt_int(h.get('stale_extract_days'))} days, settings.csv "
            "stale_extract_days). Worklist and month-to-date numbers are not today's."
        )
    if h.get("files_rejected"):
        alerts.append(f"{fmt_int(h['files_rejected'])} file(s) rejected by this load and not "
                      f"loaded: {h.get('rejected_file_names') or ''}.")
    months = completeness if completeness is not None else pl.DataFrame()
    if months.height and "is_incomplete" in months.columns:
        for r in months.filter(pl.col("is_incomplete")).sort("service_month").iter_rows(named=True):
            alerts.append(f"{fmt_month(r['service_month'])} is incomplete "
                          f"({r.get('incomplete_reasons') or 'see fct_month_completeness'}): "
                          "its numbers are marked, not shown as a $0 month.")
    elif h.get("incomplete_months"):
        alerts.append(f"Incomplete months: {h.get('incomplete_month_list')}.")
    warnings = h.get("field_warnings")
    facts = [
        f"As of <strong>{_e(fmt_date(h.get('as_of')))}</strong>",
        f"newest time entry {_e(fmt_date(h.get('newest_entry_date')))}",
        f"files rejected {_e(fmt_int(h.get('files_rejected')))}",
        f"rows quarantined {_e(fmt_int(h.get('rows_quarantined')))}",
        f"field warnings {_e(fmt_int(warnings))}",
        f"unpriced claim lines {_e(fmt_int(h.get('unpriced_lines')))}",
        f"incomplete months {_e(h.get('incomplete_month_list') or 'none')}",
    ]
    parts = [f'<section class="health{" alert" if alerts else ""}" id="run-health" '
             'aria-label="Run health">']
    if alerts:
        parts.append("<strong class=\"alert\">Check the data before acting on it:</strong><ul>")
        parts.extend(f'<li class="health-alert">{_e(a)}</li>' for a in alerts)
        parts.append("</ul>")
    parts.append('<div class="facts">' + "".join(f"<span>{f}</span>" for f in facts) + "</div>")
    src = sources if sources is not None else pl.DataFrame()
    if src.height:
        rows = (
            ([r["source_table"], r["facility_id"] or "—", fmt_date(r["newest_date"]),
              fmt_int(r["days_before_as_of"]), "stale" if r["is_stale"] else ""],
             "incomplete" if r["is_stale"] else "")
            for r in src.sort(["source_table", "facility_id"], nulls_last=True).iter_rows(named=True)
        )
        parts.append("<details><summary>Newest service date per source and facility</summary>"
                     + _table([("Source", False), ("Facility", False), ("Newest date", False),
                               ("Days before as-of", True), ("", False)], rows,
                              table_id="health-sources")
                     + "</details>")
    parts.append("</section>")
    return "".join(parts)


# --------------------------------------------------------------------------- drill-down


def drilldown_href(patient_id: Any, service_month: dt.date | None) -> str:
    """The drill-down page of a patient-month: a hash of patient and month for a file name (no
    patient identifier in a file name, any character in an id is safe)."""
    key = hashlib.sha256(f"{patient_id}\x1f{fmt_month(service_month)}".encode()).hexdigest()[:20]
    return f"{DRILLDOWN_DIR}/{key}.html"


def _linked(patient_id: Any, service_month: Any, linked: Any) -> Link:
    key = (patient_id, service_month)
    return Link(patient_id, drilldown_href(*key) if linked and key in linked else None)


def explain_page(text: str, patient_id: str, service_month: dt.date, *,
                 as_of: dt.date | None = None, health: str = "") -> str:
    """One patient-month's `bhi explain` account (gates, entries, thresholds, next code)."""
    body = (
        f"<h1>Patient {_e(patient_id)}, {_e(fmt_month(service_month))}</h1>"
        '<p class="lead">Why this patient-month bills what it bills: minutes counted and excluded, '
        "thresholds, gates, the next code and every time entry (the same account as "
        "<code>bhi explain</code>).</p>"
        f'<p><a href="../{WORKLIST_PAGE}">Back to the worklist</a> · '
        f'<a href="../{REVENUE_GAP_PAGE}">Back to the revenue gap</a></p>'
        f'<div class="table-wrap"><pre id="explain" style="margin: 0; padding: 12px;">{_e(text)}</pre></div>'
    )
    return _page(f"Patient-month {fmt_month(service_month)}", "", body, as_of=as_of, phi=True,
                 health=health, prefix="../")


def write_drilldown_pages(conn: duckdb.DuckDBPyConnection, out: Path,
                          pairs: Sequence[tuple[Any, dt.date]], *, as_of: dt.date | None,
                          health: str) -> set[tuple[Any, dt.date]]:
    """Write a drill-down page for each (patient_id, service_month) in `pairs` (already bounded);
    remove the pages of patient-months no longer listed; return the pairs written (a warehouse
    without the evidence tables gets none)."""
    folder = out / DRILLDOWN_DIR
    tables = {r[0] for r in conn.sql("select table_name from duckdb_tables()").fetchall()}
    written: set[tuple[Any, dt.date]] = set()
    if {"fct_patient_months", "fct_claim_evidence", "int_time_entries_classified"} <= tables:
        folder.mkdir(parents=True, exist_ok=True)
        for patient_id, month in pairs:
            try:
                text = explain_with(conn, patient_id, fmt_month(month))
            except NotFound:
                continue
            _write_text(out / drilldown_href(patient_id, month),
                        explain_page(text, patient_id, month, as_of=as_of, health=health))
            written.add((patient_id, month))
    if folder.exists():
        keep = {Path(drilldown_href(*p)).name for p in written}
        for old in folder.glob("*.html"):
            if old.name not in keep:
                old.unlink()
    return written


# --------------------------------------------------------------------------- pages (pure)


def index_page(summary: pl.DataFrame, headlines: pl.DataFrame | None = None,
               monthly: pl.DataFrame | None = None, *, health: str = "",
               outcomes: pl.DataFrame | None = None, payments: pl.DataFrame | None = None) -> str:
    """Overview: what to do today (top actions, from fct_dashboard_headlines), the trend of revenue,
    revenue left on the table and billing rate by month (fct_program_roi_monthly), the run's
    numbers (fct_run_summary) and a link to every page. No patient identifiers (a leadership page)."""
    row = _summary_row(summary)
    h = _one(headlines)
    parts = ["<h1>Behavioral Health Integration billing</h1>"]
    if row is None:
        parts.append(_empty("No pipeline run summary yet: run the pipeline to fill the marts."))
        as_of = None
    else:
        as_of = row.get("as_of")
        parts.append(
            f'<p class="lead">Data as of {_e(fmt_date(as_of))}; open month '
            f"{_e(fmt_month(row.get('open_month')))} (month to date).</p>"
        )

    def action(href: str, headline: str, text: str) -> str:
        return f'<a href="{href}"><span class="headline">{_e(headline)}</span>{_e(text)}</a>'

    parts.append("<h2>What to do today</h2>")
    parts.append('<div class="actions" id="top-actions">')
    parts.append(action(
        OUTREACH_PAGE, f"Call {fmt_int(h.get('outreach_planned_patients'))} patients",
        f"the outreach plan: {fmt_dollars(h.get('outreach_planned_dollars'))} if each care manager "
        f"reaches the next code in the {fmt_int(h.get('business_days_left'))} business days left.",
    ))
    parts.append(action(
        WORKLIST_PAGE, f"Clear {fmt_int(h.get('patient_programs_blocked'))} blockers",
        "patient-programs held back by missing consent, psychiatric review or an initiating visit "
        f"({fmt_dollars(h.get('blocked_dollars_open'))} month to date).",
    ))
    parts.append(action(
        COMPLIANCE_PAGE, f"Document {fmt_int(h.get('late_entries'))} late entries",
        f"time documented more than {fmt_int(h.get('late_documentation_days'))} days after the "
        f"service date; {fmt_int(h.get('patient_programs_behind_pace'))} patient-programs are "
        "behind pace for their next code.",
    ))
    parts.append("</div>")
    parts.append(_figure_html(figures.revenue_trend(monthly if monthly is not None
                                                    else pl.DataFrame()), "fig-trend"))
    if row is not None:
        parts.append('<div class="card-grid">')
        parts.append(_card("Time entries ingested", fmt_int(row.get("entries_ingested"))))
        quarantined = row.get("rows_quarantined") or 0
        parts.append(
            _card("Rows quarantined", fmt_int(row.get("rows_quarantined")),
                  "alert" if quarantined > 0 else "")
        )
        parts.append(_card("Claim lines", fmt_int(row.get("claim_lines"))))
        parts.append(
            _card("Expected revenue (closed months)", fmt_dollars(row.get("expected_revenue")),
                  "good")
        )
        parts.append(
            _card("Revenue left on the table", fmt_dollars(row.get("revenue_left_on_table")),
                  "alert")
        )
        parts.append("</div>")
        parts.append(
            '<p class="note">Minutes: '
            f"{_e(fmt_minutes(row.get('minutes_ingested')))} ingested, "
            f"{_e(fmt_minutes(row.get('minutes_counted')))} counted, "
            f"{_e(fmt_minutes(row.get('minutes_excluded')))} excluded with a reason.</p>"
        )

    def link(href: str, title: str, headline: str, text: str) -> str:
        return (f'<a href="{href}"><strong>{_e(title)}</strong>'
                f'<span class="headline">{_e(headline)}</span>{_e(text)}</a>')

    parts.append("<h2>Pages</h2>")
    parts.append('<div class="links">')
    parts.append(link(
        WORKLIST_PAGE, "Worklist", fmt_dollars(h.get("dollars_reachable")),
        f"still reachable this month across {fmt_int(h.get('patient_programs_reachable'))} "
        f"patient-programs; {fmt_int(h.get('patient_programs_behind_pace'))} behind pace, "
        f"{fmt_int(h.get('patient_programs_blocked'))} with blockers.",
    ))
    parts.append(link(
        OUTREACH_PAGE, "Outreach plan", fmt_dollars(h.get("outreach_planned_dollars")),
        f"expected if each care manager follows the plan: "
        f"{fmt_int(h.get('outreach_planned_patients'))} patients, "
        f"{fmt_minutes(h.get('outreach_planned_minutes'))} in the "
        f"{fmt_int(h.get('business_days_left'))} business days left.",
    ))
    parts.append(link(
        REVENUE_GAP_PAGE, "Revenue gap",
        fmt_dollars(row.get("revenue_left_on_table") if row else h.get("gap_dollars")),
        f"left on the table in closed months, across {fmt_int(h.get('gap_patient_months'))} "
        "patient-months, by reason.",
    ))
    parts.append(link(
        ROI_PAGE, "Program ROI", fmt_dollars(h.get("roi_closed_net")),
        f"net over the closed months (ROI {fmt_pct(h.get('roi_closed_pct'))}); cumulative net "
        f"including the open month {fmt_dollars(h.get('roi_cumulative_net'))}.",
    ))
    pay = (_one(payments.filter(pl.col("grouping_level") == "total"))
           if payments is not None and payments.height else {})
    rate = pay.get("collection_rate")
    parts.append(link(
        PAYMENTS_PAGE, "Payments", f"{fmt_pct(None if rate is None else float(rate) * 100)} collected",
        f"of the expected amount on answered lines: paid {fmt_dollars(pay.get('paid'))}, denied "
        f"{fmt_dollars(pay.get('denied_expected_amount'))} in {fmt_int(pay.get('denied_lines'))} lines, "
        f"no answer yet {fmt_dollars(pay.get('unanswered_expected_amount'))}.",
    ))
    o = (_one(outcomes.filter(pl.col("grouping_level") == "total"))
         if outcomes is not None and outcomes.height else {})
    parts.append(link(
        OUTCOMES_PAGE, "Outcomes",
        _n_of(o.get("early_responses"), o.get("early_judged"), o.get("early_response_rate")),
        "responded at 10-14 weeks; remission at 6 months "
        f"{_n_of(o.get('six_month_remissions'), o.get('six_month_judged'), o.get('six_month_remission_rate'))}; "
        f"{fmt_int(o.get('not_improving_without_review'))} patients not improving without a psychiatric review.",
    ))
    parts.append(link(
        COMPLIANCE_PAGE, "Compliance", f"{fmt_int(h.get('blocked_months_closed'))} blocked months",
        f"in closed months by missing consent or psychiatric review "
        f"({fmt_dollars(h.get('blocked_dollars_closed'))}); "
        f"{fmt_int(h.get('late_entries'))} entries documented late; "
        f"{fmt_int(h.get('quarantined_rows'))} rows quarantined.",
    ))
    parts.append("</div>")
    return _page("Overview", INDEX_PAGE, "\n".join(parts), as_of=as_of, health=health)


def _pace(r: dict[str, Any]) -> str:
    status = r.get("pace_status")
    if not status or status == "no next code":
        return "—"
    return f"{status} ({fmt_int(r.get('projected_minutes'))} of {fmt_int(r.get('next_threshold_minutes'))})"


def worklist_page(
    worklist: pl.DataFrame,
    headlines: pl.DataFrame | None = None,
    care_managers: pl.DataFrame | None = None,
    *,
    open_month: dt.date | None = None,
    as_of: dt.date | None = None,
    health: str = "",
    linked: Any = None,
    limit: int = WORKLIST_LIMIT,
    not_improving: pl.DataFrame | None = None,
) -> str:
    """Analyst worklist for the open month, and the patients not improving without a psychiatric
    review since week 10 (not_improving: fct_outcome_episodes rows flagged, for the care team).

    worklist: fct_worklist_pace rows (all or only the first `limit` by worklist_rank: the page
    shows the top `limit` by worklist_rank); headlines: fct_dashboard_headlines (cards and the
    total row count); care_managers: fct_outreach_summary (the chart).
    """
    h = _one(headlines)
    total = h.get("patient_programs_enrolled", worklist.height) or 0
    cms = care_managers if care_managers is not None else pl.DataFrame()
    parts = [
        "<h1>Worklist: who is near the next code this month</h1>",
        f'<p class="lead">Open month {_e(fmt_month(open_month))}'
        + (f", as of {_e(fmt_date(as_of))}" if as_of else "")
        + ". Sorted by dollars gained if the next threshold is reached. Pace = minutes so far ÷ "
        "days elapsed × days in the month, against the next threshold.</p>",
    ]
    if total == 0 or worklist.height == 0:
        parts.append(_empty("No rows: no enrolled patients with activity in the open month."))
        parts.append(_figure_html(figures.dollars_at_stake_by_care_manager(cms), "fig-care-manager"))
        parts.append(_not_improving_section(not_improving))
        return _page("Worklist", WORKLIST_PAGE, "\n".join(parts), as_of=as_of, health=health)

    blocked = h.get("patient_programs_blocked") or 0
    behind = h.get("patient_programs_behind_pace") or 0
    parts.append('<div class="card-grid">')
    parts.append(_card("Dollars still reachable", fmt_dollars(h.get("dollars_reachable")), "good"))
    parts.append(_card("Patient-programs with a next code",
                       fmt_int(h.get("patient_programs_reachable"))))
    parts.append(_card("Behind pace for the next code", fmt_int(h.get("patient_programs_behind_pace")),
                       "alert" if behind else ""))
    parts.append(_card("Patient-programs with blockers", fmt_int(h.get("patient_programs_blocked")),
                       "alert" if blocked else ""))
    parts.append(_card("Patient-programs enrolled", fmt_int(total)))
    parts.append("</div>")

    parts.append(_figure_html(figures.dollars_at_stake_by_care_manager(cms), "fig-care-manager"))

    shown = worklist.sort("worklist_rank").head(limit)
    if total > shown.height:
        scope = (
            f"Showing top {shown.height:,} of {total:,} rows; full list in "
            f'<a href="{NEAR_THRESHOLD_CSV}">{NEAR_THRESHOLD_CSV}</a>.'
        )
    else:
        scope = (
            f"Showing all {total:,} rows; also in "
            f'<a href="{NEAR_THRESHOLD_CSV}">{NEAR_THRESHOLD_CSV}</a>.'
        )
    parts.append("<h2>Patients</h2>")
    parts.append(f'<p class="note" id="worklist-scope">{scope}</p>')
    active = shown.filter(pl.col("fold_reason").is_null()) if "fold_reason" in shown.columns else shown
    folded = shown.filter(pl.col("fold_reason").is_not_null()) if "fold_reason" in shown.columns \
        else shown.clear()
    cm_options = (
        active.select("care_manager_id", *(["care_manager_name"] if "care_manager_name" in active.columns
                                           else [])).unique()
        .sort("care_manager_id", nulls_last=True).rows()
    )
    parts.append(
        '<label for="cm-filter" class="note">Care manager: </label><select id="cm-filter">'
        '<option value="">All care managers</option>'
        + "".join(f'<option value="{_e(o[0] or "")}">{_e(_cm(o[0], o[1] if len(o) > 1 else None))}</option>'
                  for o in cm_options)
        + "</select>"
        '<label for="filter" class="note">Filter rows (all words must match): </label>'
        '<input id="filter" type="search" placeholder="patient, care manager, code, blocker…" '
        'autocomplete="off"><span class="note" id="filter-count"></span>'
    )
    parts.append('<p class="note">Click a column header to sort. Rows with nothing more to earn '
                 "this month or no minutes yet are folded away below the table.</p>")
    # What a care manager acts on first (patient, blockers, dollars, minutes needed) on the left, so
    # it is visible without scrolling at 1440 px; the rest scroll horizontally inside the table box.
    columns: list[tuple[str, bool, str]] = [
        ("Patient", False, "nowrap"), ("Care manager", False, "nowrap"),
        ("Blockers", False, "blockers"), ("$ gained", True, ""), ("Min. needed", True, ""),
        ("Next code", False, "nowrap"), ("Minutes", True, ""),
        ("Pace (projected of needed)", False, "nowrap"), ("Min./day needed", True, ""),
        ("Program", False, "nowrap"), ("Current codes", False, "nowrap"), ("Current $", True, ""),
        ("Days left", True, ""), ("Payer", False, ""), ("Facility", False, ""),
    ]

    def worklist_rows(frame: pl.DataFrame) -> list:
        out = []
        for r in frame.iter_rows(named=True):
            blockers = r.get("blockers") or ""
            per_day = r.get("minutes_per_day_needed")
            out.append((
                [
                    _linked(r.get("patient_id"), r.get("service_month"), linked),
                    _cm(r.get("care_manager_id"), r.get("care_manager_name")),
                    blockers,
                    Sort(fmt_dollars(r.get("dollars_gained")), r.get("dollars_gained")),
                    Sort(fmt_int(r.get("minutes_needed")), r.get("minutes_needed")),
                    _next_code(r.get("next_code"), r.get("next_threshold_minutes")),
                    Sort(fmt_int(r.get("countable_minutes")), r.get("countable_minutes")),
                    Sort(_pace(r), r.get("projected_minutes")),
                    Sort("—" if per_day is None else f"{per_day:,.1f}", per_day),
                    _program(r.get("program")),
                    r.get("current_codes") or "—",
                    Sort(fmt_dollars(r.get("current_amount")), r.get("current_amount")),
                    Sort(fmt_int(r.get("days_left")), r.get("days_left")),
                    r.get("payer_id"),
                    r.get("facility_id"),
                ],
                "blocked" if blockers else "",
                {"data-cm": r.get("care_manager_id") or ""},
            ))
        return out

    headers = [(label, num) for label, num, _ in columns]
    classes = {i: cls for i, (_, _, cls) in enumerate(columns) if cls}
    parts.append(_table(headers, worklist_rows(active), table_id="worklist", col_classes=classes,
                        sortable=True))
    if folded.height:
        parts.append(
            f'<details class="folded" id="folded"><summary>{folded.height:,} rows folded away: '
            "already at the highest code this month, or no minutes yet</summary>"
            + _table(headers, worklist_rows(folded), table_id="worklist-folded",
                     col_classes=classes, sortable=True)
            + "</details>"
        )
    parts.append(_not_improving_section(not_improving))
    return _page("Worklist", WORKLIST_PAGE, "\n".join(parts), as_of=as_of, script=_FILTER_JS,
                 phi=True, health=health)


def _not_improving_section(episodes: pl.DataFrame | None) -> str:
    """Treat to target: patients in care, past week 10, short of a response, with no psychiatric
    consultant review since week 10 (fct_outcome_episodes.not_improving_without_review)."""
    head = ('<h2 id="not-improving">Not improving: no psychiatric review since week 10</h2>'
            '<p class="note">In care today, 10 weeks or more after the baseline score, the latest score short '
            "of a 50% drop, and no psychiatric consultant review since week 10: bring them to the next case "
            "review (treat to target; docs/outcomes.md).</p>")
    if episodes is None or episodes.height == 0:
        return head + _empty("No patient is flagged.")
    rows = (
        ([r["patient_id"], _cm(r["care_manager_id"]), (r["instrument"] or "").upper(),
          f"{fmt_int(r['baseline_score'])} on {fmt_date(r['baseline_date'])}",
          f"{fmt_int(r['latest_score'])} on {fmt_date(r['latest_date'])}" if r["latest_date"] else "—",
          fmt_pct(None if r["latest_reduction"] is None else r["latest_reduction"] * 100),
          fmt_date(r["last_review_date"]) if r["last_review_date"] else "none in the episode"], "")
        for r in episodes.iter_rows(named=True)
    )
    return head + _table([("Patient", False), ("Care manager", False), ("Scale", False), ("Baseline", False),
                          ("Latest", False), ("Drop from baseline", True), ("Last psychiatric review", False)],
                         rows, table_id="not-improving-table", sortable=True)


def outreach_page(
    plan: pl.DataFrame,
    summary: pl.DataFrame,
    headlines: pl.DataFrame | None = None,
    *,
    as_of: dt.date | None = None,
    health: str = "",
    linked: Any = None,
    limit: int = OUTREACH_LIMIT,
) -> str:
    """The open month's outreach plan per care manager (fct_outreach_plan, fct_outreach_summary)
    and the expected revenue gained if it is followed (fct_dashboard_headlines)."""
    h = _one(headlines)
    parts = [
        "<h1>Outreach plan: who to contact first this month</h1>",
        '<p class="lead">Per care manager, patients ranked by dollars gained per care-manager '
        "minute still needed to reach the next code (no blockers), taken in that order while the "
        "minutes fit the capacity left this month: fte × "
        f"{_e(fmt_int(h.get('business_days_left')))} business days left × "
        f"{_e(h.get('care_manager_hours_per_day') if h.get('care_manager_hours_per_day') is not None else '—')} "
        "hours a day × a CoCM share of "
        f"{_e(fmt_pct(None if h.get('care_manager_cocm_share') is None else 100 * h['care_manager_cocm_share']))}"
        " (settings.csv).</p>",
    ]
    if plan.height == 0:
        parts.append(_empty("No rows: no patient without blockers can reach a next code this month."))
        parts.append(_figure_html(figures.outreach_dollars_by_care_manager(summary),
                                  "fig-outreach-dollars"))
        return _page("Outreach plan", OUTREACH_PAGE, "\n".join(parts), as_of=as_of, health=health)

    parts.append('<div class="card-grid">')
    parts.append(_card("Expected revenue gained if the plan is followed",
                       fmt_dollars(h.get("outreach_planned_dollars")), "good"))
    parts.append(_card("Patients in the plan", fmt_int(h.get("outreach_planned_patients"))))
    parts.append(_card("Minutes in the plan", fmt_minutes(h.get("outreach_planned_minutes"))))
    parts.append(_card("Capacity left (all care managers)",
                       fmt_minutes(h.get("outreach_capacity_minutes"))))
    left_out = h.get("outreach_unplanned_dollars") or 0
    parts.append(_card("Left out for lack of capacity", fmt_dollars(h.get("outreach_unplanned_dollars")),
                       "alert" if left_out > 0 else ""))
    parts.append("</div>")
    parts.append(_figure_html(figures.outreach_dollars_by_care_manager(summary),
                              "fig-outreach-dollars"))
    parts.append(_figure_html(figures.outreach_minutes_by_care_manager(summary),
                              "fig-outreach-minutes"))

    parts.append("<h2>By care manager</h2>")
    candidates = summary.filter(pl.col("candidates") > 0)
    cms = figures.top(candidates, "plan_rank", OUTREACH_CARE_MANAGERS)
    if "plan_rank" in cms.columns:
        cms = cms.sort("plan_rank")
    if cms.height < candidates.height:
        parts.append(f'<p class="note">Showing the {cms.height:,} care managers with the most dollars in '
                     f"the plan, of {candidates.height:,}.</p>")
    parts.append(
        _table(
            [("Care manager", False), ("Facility", False), ("Capacity left", True),
             ("Candidates", True), ("In plan", True), ("Minutes in plan", True),
             ("Capacity used", True), ("$ if followed", True), ("$ left out", True)],
            (
                (
                    [_cm(r["care_manager_id"], r.get("care_manager_name")), r.get("facility_id") or "—",
                     fmt_minutes(r["capacity_minutes"]), fmt_int(r["candidates"]),
                     fmt_int(r["planned_patients"]), fmt_minutes(r["planned_minutes"]),
                     fmt_pct(r["capacity_used_pct"]), fmt_dollars(r["planned_dollars"]),
                     fmt_dollars(r["unplanned_dollars"])],
                    "",
                )
                for r in cms.iter_rows(named=True)
            ),
            table_id="outreach-summary",
        )
    )

    parts.append("<h2>The plan, care manager by care manager</h2>")
    parts.append('<p class="note">In rank order; "cumulative" is the running total of minutes '
                 "needed. Greyed rows do not fit the capacity left.</p>")
    plans = cms.head(OUTREACH_PLANS)
    if plans.height < candidates.height:
        parts.append(f'<p class="note">The plans of the first {plans.height:,} care managers; every care '
                     f'manager\'s plan is in <a href="{OUTREACH_PLAN_CSV}">outreach_plan.csv</a>.</p>')
    for i, r in enumerate(plans.iter_rows(named=True)):
        cm = r["care_manager_id"]
        rows = plan.filter(
            pl.col("care_manager_id").is_null() if cm is None else pl.col("care_manager_id") == cm
        ).sort("rank").head(limit)
        parts.append(
            f"<h3>{_e(_cm(cm, r.get('care_manager_name')))}: {_e(fmt_dollars(r['planned_dollars']))} from "
            f"{_e(fmt_int(r['planned_patients']))} patients in "
            f"{_e(fmt_minutes(r['planned_minutes']))} of {_e(fmt_minutes(r['capacity_minutes']))}</h3>"
        )
        if r["candidates"] > rows.height:
            parts.append(f'<p class="note">Showing the first {rows.height:,} of '
                         f"{r['candidates']:,} candidates (all are in the warehouse table "
                         "fct_outreach_plan).</p>")
        parts.append(
            _table(
                [("Rank", True), ("Patient", False), ("Payer", False), ("Program", False),
                 ("Minutes so far", True), ("Next code", False), ("Min. needed", True),
                 ("$ gained", True), ("$ per minute", True), ("Cumulative min.", True),
                 ("In plan", False)],
                (
                    (
                        [fmt_int(p["rank"]), _linked(p["patient_id"], p.get("service_month"), linked),
                         p["payer_id"], _program(p["program"]),
                         fmt_int(p["countable_minutes"]),
                         _next_code(p["next_code"], p["next_threshold_minutes"]),
                         fmt_int(p["minutes_needed"]), fmt_dollars(p["dollars_gained"]),
                         fmt_dollars(p["dollars_per_minute"], cents=True),
                         fmt_int(p["cumulative_minutes"]), "yes" if p["in_plan"] else "no"],
                        "" if p["in_plan"] else "out",
                    )
                    for p in rows.iter_rows(named=True)
                ),
                table_id=f"plan-{i + 1}",
                col_classes={1: "nowrap", 5: "nowrap"},
            )
        )
    return _page("Outreach plan", OUTREACH_PAGE, "\n".join(parts), as_of=as_of, phi=True, health=health)


def revenue_gap_page(
    monthly: pl.DataFrame,
    by_reason: pl.DataFrame,
    patient_months: pl.DataFrame,
    headlines: pl.DataFrame | None = None,
    *,
    as_of: dt.date | None = None,
    health: str = "",
    incomplete: frozenset | set | None = None,
    linked: Any = None,
    limit: int = GAP_TABLE_LIMIT,
) -> str:
    """Closed months: stacked bar by month and reason (fct_revenue_gap_monthly), totals by reason
    (fct_revenue_gap_by_reason) and the top patient-months (fct_revenue_gap_patient_months)."""
    h = _one(headlines)
    parts = [
        "<h1>Revenue left on the table (closed months)</h1>",
        '<p class="lead">Dollars that documented work did not turn into claims, and why.</p>',
    ]
    parts.append(_figure_html(figures.revenue_gap_by_month_and_reason(monthly, incomplete),
                              "fig-revenue-gap"))
    if by_reason.height == 0:
        parts.append(_empty("No rows: nothing was left on the table in closed months."))
        return _page("Revenue gap", REVENUE_GAP_PAGE, "\n".join(parts), as_of=as_of, health=health)

    parts.append("<h2>By reason</h2>")
    reason_rows: list[tuple[Sequence[Any], str]] = [
        (
            [figures.reason_label(r["reason"]), fmt_int(r["patient_months"]),
             fmt_minutes(r["minutes"]), fmt_dollars(r["dollars"])],
            "",
        )
        for r in by_reason.sort("reason_order").iter_rows(named=True)
    ]
    reason_rows.append((["Total", "", "", fmt_dollars(h.get("gap_dollars"))], "total"))
    parts.append(
        _table(
            [("Reason", False), ("Patient-months", True), ("Minutes", True), ("Dollars", True)],
            reason_rows,
            table_id="by-reason",
        )
    )

    top = patient_months.sort("dollar_rank").head(limit)
    n_patient_months = h.get("gap_patient_months", patient_months.height)
    parts.append("<h2>Top patient-months by dollars</h2>")
    parts.append(
        f'<p class="note">Showing top {top.height:,} of {n_patient_months:,} patient-months.</p>'
    )

    def reasons_text(r: dict[str, Any]) -> str:
        return "; ".join(
            f"{figures.reason_label(reason)} {fmt_dollars(dollars)} ({fmt_minutes(minutes)})"
            for reason, dollars, minutes in zip(
                r["reasons"] or [], r["reason_dollars"] or [], r["reason_minutes"] or []
            )
        )

    parts.append(
        _table(
            [("Month", False), ("Facility", False), ("Patient", False), ("Payer", False),
             ("Program", False), ("Minutes", True), ("Dollars", True), ("Reasons", False)],
            (
                (
                    [_month(r["service_month"], incomplete), r["facility_id"],
                     _linked(r["patient_id"], r["service_month"], linked),
                     r["payer_id"], _program(r["program"]), fmt_int(r["minutes"]),
                     fmt_dollars(r["dollars"]), reasons_text(r)],
                    "",
                )
                for r in top.iter_rows(named=True)
            ),
            table_id="top-patient-months",
            col_classes={0: "nowrap", 2: "nowrap"},
        )
    )
    return _page("Revenue gap", REVENUE_GAP_PAGE, "\n".join(parts), as_of=as_of, phi=True, health=health)


def roi_page(
    monthly: pl.DataFrame,
    facility: pl.DataFrame,
    headlines: pl.DataFrame | None = None,
    assumptions: pl.DataFrame | None = None,
    *,
    as_of: dt.date | None = None,
    health: str = "",
    outcomes: pl.DataFrame | None = None,
) -> str:
    """Leadership ROI page from fct_program_roi_monthly, fct_program_roi_facility,
    fct_program_roi_assumptions and fct_dashboard_headlines (break-even, if recovered); none of
    them holds patient identifiers. Every cost assumption is printed on the page."""
    h = _one(headlines)
    parts = [
        "<h1>Program ROI</h1>",
        '<p class="lead">Expected revenue against the program\'s share of care-manager cost and '
        "other program costs, all facilities together. The totals cover the closed months with "
        "complete data; the open month is month to date with its costs prorated.</p>",
    ]
    if monthly.height == 0:
        parts.append(_figure_html(figures.program_roi_by_month(monthly), "fig-roi"))
        parts.append(_empty("No rows: no program months in fct_program_roi yet."))
        parts.append(_assumptions(assumptions))
        return _page("Program ROI", ROI_PAGE, "\n".join(parts), as_of=as_of, health=health)

    closed_net = h.get("roi_closed_net")
    pct = h.get("roi_closed_pct")
    excluded = h.get("roi_incomplete_months_excluded") or 0
    months_note = (f"{fmt_int(h.get('roi_closed_months'))} closed months"
                   + (f", {fmt_int(excluded)} incomplete left out" if excluded else ""))
    parts.append('<div class="card-grid">')
    parts.append(_card(f"ROI ({months_note})", fmt_pct(pct),
                       "" if pct is None else ("good" if pct >= 0 else "alert")))
    parts.append(_card("Net, closed months", fmt_dollars(closed_net),
                       "" if closed_net is None else ("good" if closed_net >= 0 else "alert")))
    parts.append(_card("Expected revenue, closed months", fmt_dollars(h.get("roi_closed_revenue"))))
    parts.append(_card("Program cost, closed months", fmt_dollars(h.get("roi_closed_cost"))))
    parts.append(_card("Break-even: billed patient-months per care manager a month",
                       f"{fmt_int(h.get('roi_break_even_per_care_manager'))} "
                       f"(today {h.get('roi_billed_per_care_manager') if h.get('roi_billed_per_care_manager') is not None else '—'})"))
    recovered = h.get("roi_closed_net_if_recovered")
    parts.append(_card("Net if the revenue left on the table were recovered",
                       f"{fmt_dollars(recovered)} (ROI {fmt_pct(h.get('roi_closed_pct_if_recovered'))})",
                       "" if recovered is None else ("good" if recovered >= 0 else "alert")))
    # outcomes beside money (fct_outcomes_summary, all episodes): what the revenue pays for
    o = _one(outcomes.filter(pl.col("grouping_level") == "total")) if outcomes is not None and outcomes.height else {}
    parts.append(_card("Remission at 6 months (outcomes)",
                       _n_of(o.get("six_month_remissions"), o.get("six_month_judged"), o.get("six_month_remission_rate"))))
    parts.append(_card("Response at 10-14 weeks (outcomes)",
                       _n_of(o.get("early_responses"), o.get("early_judged"), o.get("early_response_rate"))))
    parts.append("</div>")
    parts.append(
        '<p class="note" id="break-even">Break-even at current rates: a billed patient-month '
        f"brings {_e(fmt_dollars(h.get('roi_revenue_per_billed_patient_month'), cents=True))} and a "
        f"care manager costs the program {_e(fmt_dollars(h.get('roi_cost_per_care_manager_month')))} "
        f"a month, so each of the {_e(fmt_int(h.get('roi_care_managers')))} care managers needs "
        f"{_e(fmt_int(h.get('roi_break_even_per_care_manager')))} billed patient-months a month "
        "(the closed months averaged "
        f"{_e(h.get('roi_billed_per_care_manager') if h.get('roi_billed_per_care_manager') is not None else '—')}). "
        f"The revenue left on the table in those months, "
        f"{_e(fmt_dollars(h.get('roi_closed_left_on_table')))}, would bring the net to "
        f"{_e(fmt_dollars(recovered))}.</p>"
    )
    parts.append(_figure_html(figures.program_roi_by_month(monthly), "fig-roi"))
    parts.append(_assumptions(assumptions))

    parts.append("<h2>By month</h2>")
    month_rows: list[tuple[Sequence[Any], str]] = []
    for r in monthly.sort("service_month", descending=True).iter_rows(named=True):
        status = "month to date" if r["month_status"] == "open" else "closed"
        if r.get("is_incomplete"):
            status += f"; incomplete data: {r.get('incomplete_reasons') or ''}"
        month_rows.append((
            [fmt_month(r["service_month"]), status, fmt_dollars(r["expected_revenue"]),
             fmt_dollars(r["total_cost"]), fmt_dollars(r["net"]), fmt_pct(r["roi_pct"]),
             fmt_dollars(r.get("revenue_left_on_table")), fmt_pct(r.get("billing_rate_pct"))],
            "incomplete" if r.get("is_incomplete") else "",
        ))
    parts.append(_table(
        [("Month", False), ("Status", False), ("Revenue", True), ("Cost", True), ("Net", True),
         ("ROI", True), ("Left on table", True), ("Billing rate", True)],
        month_rows, table_id="monthly-roi", col_classes={0: "nowrap"},
    ))

    parts.append("<h2>By facility (closed months with complete data)</h2>")
    if facility.height == 0:
        parts.append(_empty("No closed months yet; only the open month is available."))
    else:
        headers = [
            ("Facility", False), ("Months", True), ("Revenue", True), ("Billed / enrolled", True),
            ("Care mgr cost", True), ("Other cost", True), ("Net", True), ("ROI", True),
            ("Net if recovered", True),
        ]
        rows: list[tuple[Sequence[Any], str]] = []
        for r in facility.sort(["is_total", "facility_id"], nulls_last=True).iter_rows(named=True):
            label = "All facilities" if r["is_total"] else r["facility_id"]
            rows.append((
                [label, fmt_int(r["closed_months"]), fmt_dollars(r["expected_revenue"]),
                 f"{fmt_int(r['patients_billed'])} / {fmt_int(r['patient_months_enrolled'])}",
                 fmt_dollars(r["care_manager_cost"]), fmt_dollars(r["other_cost"]),
                 fmt_dollars(r["net"]), fmt_pct(r["roi_pct"]),
                 fmt_dollars(r.get("net_if_recovered"))],
                "total" if r["is_total"] else "",
            ))
        parts.append(_table(headers, rows, table_id="facility-roi"))
        parts.append(
            '<p class="note">ROI = net ÷ total cost over the closed months with complete data. '
            '"Billed / enrolled" counts patient-months with at least one claim line and all '
            "enrolled patient-months.</p>"
        )
    return _page("Program ROI", ROI_PAGE, "\n".join(parts), as_of=as_of, health=health)


def _assumptions(assumptions: pl.DataFrame | None) -> str:
    """The ROI page's cost assumptions (fct_program_roi_assumptions), printed as they are used."""
    rows = assumptions if assumptions is not None else pl.DataFrame()
    if rows.height == 0:
        return ('<h2>Assumptions</h2>'
                + _empty("No assumptions table (fct_program_roi_assumptions) in this warehouse."))
    return (
        '<h2>Assumptions</h2><div id="roi-assumptions">'
        + _table([("Assumption", False), ("Value", False), ("Source", False)],
                 (([r["assumption"], r["value"], r["source"]], "")
                  for r in rows.sort("sort_order").iter_rows(named=True)),
                 table_id="assumptions")
        + "</div>"
    )


def payments_page(
    summary: pl.DataFrame,
    denials: pl.DataFrame,
    worklist: pl.DataFrame,
    aging: pl.DataFrame,
    gap: pl.DataFrame,
    *,
    as_of: dt.date | None = None,
    health: str = "",
    limit: int = PAYMENTS_TABLE_LIMIT,
) -> str:
    """Payments (claims out as 837P, remittances in from 835): fct_payments_summary (totals, by month,
    by payer), fct_remittance_denials (reasons in plain words), fct_denial_worklist (denied lines to
    correct and resend), fct_remittance_aging (claims with no answer) and
    fct_revenue_gap_post_submission. An analyst page: the worklists name patients."""
    t = _one(summary.filter(pl.col("grouping_level") == "total")) if summary.height else {}
    parts = [
        "<h1>Payments: what was paid, denied or underpaid</h1>",
        '<p class="lead">The claims of closed months (sent as X12 837P at the close) against the 835 '
        "remittances that came back: paid, patient responsibility, denied (with the reason in plain "
        "words), paid below the expected amount, or no answer yet. Collection rate = (paid + patient "
        "responsibility) ÷ expected, over the answered lines. docs/claims-and-remittances.md.</p>",
    ]
    if not t or not t.get("claim_lines"):
        parts.append(_figure_html(figures.payments_by_month(summary), "fig-payments"))
        parts.append(_empty("No claim lines of closed months yet."))
        return _page("Payments", PAYMENTS_PAGE, "\n".join(parts), as_of=as_of, phi=True, health=health)
    parts.append('<div class="card-grid">')
    parts.append(_card("Collection rate (answered lines)",
                       fmt_pct(None if t.get("collection_rate") is None else float(t["collection_rate"]) * 100)))
    parts.append(_card("Paid by payers", fmt_dollars(t.get("paid")), "good"))
    parts.append(_card("Patient responsibility", fmt_dollars(t.get("patient_responsibility"))))
    parts.append(_card(f"Denied ({fmt_int(t.get('denied_lines'))} lines)", fmt_dollars(t.get("denied_expected_amount")),
                       "alert" if t.get("denied_lines") else ""))
    parts.append(_card("Underpaid against the expected amount", fmt_dollars(t.get("underpaid_amount")),
                       "alert" if t.get("underpaid_amount") else ""))
    parts.append(_card(f"No answer yet ({fmt_int((t.get('claim_lines') or 0) - (t.get('answered_lines') or 0))} lines)",
                       fmt_dollars(t.get("unanswered_expected_amount"))))
    parts.append("</div>")
    parts.append(_figure_html(figures.payments_by_month(summary), "fig-payments"))

    parts.append("<h2>By payer</h2>")
    payers = summary.filter(pl.col("grouping_level") == "payer").sort("payer_id")
    parts.append(_table(
        [("Payer", False), ("Claim lines", True), ("Answered", True), ("Expected", True), ("Paid", True),
         ("Patient responsibility", True), ("Denied", True), ("Underpaid", True), ("No answer", True),
         ("Collection rate", True)],
        (([r["payer_id"], fmt_int(r["claim_lines"]), fmt_int(r["answered_lines"]), fmt_dollars(r["expected_amount"]),
           fmt_dollars(r["paid"]), fmt_dollars(r["patient_responsibility"]), fmt_dollars(r["denied_expected_amount"]),
           fmt_dollars(r["underpaid_amount"]), fmt_dollars(r["unanswered_expected_amount"]),
           fmt_pct(None if r["collection_rate"] is None else float(r["collection_rate"]) * 100)], "")
         for r in payers.iter_rows(named=True)),
        table_id="payments-by-payer"))

    parts.append("<h2>Denials to correct and resend</h2>")
    if worklist.height == 0:
        parts.append(_empty("No denied line can be corrected and resent."))
    else:
        shown = worklist.sort(["expected_amount", "service_month", "claim_line_id"], descending=[True, True, False]).head(limit)
        parts.append(f'<p class="note">Showing {shown.height:,} of {worklist.height:,}, most dollars first; a corrected '
                     "claim goes out at the next close as a replacement (frequency code 7).</p>")
        parts.append(_table(
            [("Patient", False), ("Payer", False), ("Month", False), ("Code", False), ("Expected", True),
             ("Reason", False), ("What to do", False)],
            (([r["patient_id"], r["payer_id"], fmt_month(r["service_month"]), r["code"],
               fmt_dollars(r["expected_amount"], cents=True), f"{r['carc_codes']}: {r['reasons']}", r["actions"]], "")
             for r in shown.iter_rows(named=True)),
            table_id="denial-worklist", col_classes={2: "nowrap"}, sortable=True))

    parts.append("<h2>Denial and adjustment reasons</h2>")
    reasons = denials.filter(pl.col("kind") == "denial") if denials.height else denials
    if reasons.height == 0:
        parts.append(_empty("No denials."))
    else:
        parts.append(_table(
            [("Month", False), ("Payer", False), ("Reason", False), ("Remarks", False), ("Lines", True), ("Amount", True)],
            (([fmt_month(r["service_month"]), r["payer_id"],
               f"{r['group_code']}-{r['reason_code']}: {r['reason_description']}", r["rarc_descriptions"] or "—",
               fmt_int(r["claim_lines"]), fmt_dollars(r["amount"], cents=True)], "")
             for r in reasons.sort(["amount", "service_month", "payer_id", "group_code", "reason_code"],
                                descending=[True, True, False, False, False]).head(limit).iter_rows(named=True)),
            table_id="denial-reasons", col_classes={0: "nowrap"}))

    parts.append("<h2>No answer past the aging limit</h2>")
    late = aging.filter(pl.col("past_aging_limit")) if aging.height else aging
    if late.height == 0:
        parts.append(_empty("No claim is waiting past the aging limit (x12_settings.csv remittance_aging_days)."))
    else:
        parts.append(_table(
            [("Patient", False), ("Payer", False), ("Month", False), ("Codes", False), ("Expected", True),
             ("Days without an answer", True)],
            (([r["patient_id"], r["payer_id"], fmt_month(r["service_month"]), r["codes"],
               fmt_dollars(r["expected_amount"], cents=True), fmt_int(r["days_without_answer"])], "")
             for r in late.sort(["days_without_answer", "claim_id"], descending=[True, False]).head(limit).iter_rows(named=True)),
            table_id="payments-aging", sortable=True))

    parts.append("<h2>Revenue left on the table after submission</h2>")
    if gap.height == 0:
        parts.append(_empty("Nothing denied, underpaid or unanswered past the aging limit."))
    else:
        parts.append(_table(
            [("Month", False), ("Payer", False), ("Reason", False), ("Lines", True), ("Dollars", True)],
            (([fmt_month(r["service_month"]), r["payer_id"], r["reason"], fmt_int(r["claim_lines"]),
               fmt_dollars(r["amount"], cents=True)], "")
             for r in gap.sort(["service_month", "amount"], descending=[True, True]).iter_rows(named=True)),
            table_id="post-submission-gap", col_classes={0: "nowrap"}))
    return _page("Payments", PAYMENTS_PAGE, "\n".join(parts), as_of=as_of, phi=True, health=health)


def _n_of(n: Any, total: Any, rate: Any) -> str:
    """"42.0% (21 of 50)"; "—" when nothing was judged."""
    if not total:
        return "—"
    return f"{fmt_pct(None if rate is None else rate * 100)} ({fmt_int(n)} of {fmt_int(total)})"


def outcomes_page(
    summary: pl.DataFrame,
    discharges: pl.DataFrame | None = None,
    *,
    as_of: dt.date | None = None,
    health: str = "",
) -> str:
    """Outcomes (fct_outcomes_summary): follow-up, response at 10-14 weeks, response and remission
    at 6 months, with the counts behind every rate, by month, care manager and facility. A
    leadership page: no patient identifiers (the "not improving" patients are on the worklist)."""
    def level(name: str) -> pl.DataFrame:
        return summary.filter(pl.col("grouping_level") == name) if summary.height else summary

    total = _one(level("total"))
    parts = [
        "<h1>Outcomes: are patients getting better?</h1>",
        '<p class="lead">Measurement-based care in the collaborative care episodes: a baseline score '
        "(PHQ-9 or GAD-7) at the start, repeat scores, response (a 50% drop from the baseline) at "
        "10-14 weeks and at 6 months, remission (a score below 5) at 6 months. Every rate shows its "
        "counts; windows still open are not counted. Definitions: docs/outcomes.md.</p>",
    ]
    if not total:
        parts.append(_figure_html(figures.outcomes_trend(summary), "fig-outcomes"))
        parts.append(_empty("No rows: no measurement-based care episodes yet."))
        return _page("Outcomes", OUTCOMES_PAGE, "\n".join(parts), as_of=as_of, health=health)
    stuck = total.get("not_improving_without_review") or 0
    parts.append('<div class="card-grid">')
    parts.append(_card("Followed up in the last 4 weeks (patient-months)",
                       _n_of(total.get("follow_up_last_4_weeks"), total.get("active_patient_months"),
                             total.get("follow_up_rate"))))
    parts.append(_card("Response at 10-14 weeks",
                       _n_of(total.get("early_responses"), total.get("early_judged"),
                             total.get("early_response_rate"))))
    parts.append(_card("Remission at 6 months",
                       _n_of(total.get("six_month_remissions"), total.get("six_month_judged"),
                             total.get("six_month_remission_rate"))))
    parts.append(_card("Episodes without a baseline score",
                       f"{fmt_int(total.get('episodes_without_baseline'))} of {fmt_int(total.get('episodes'))}",
                       "alert" if total.get("episodes_without_baseline") else ""))
    parts.append(_card("Episodes under way before the data begins",
                       f"{fmt_int(total.get('episodes_started_before_data'))} (counted for follow-up, not judged)"))
    parts.append(_card("Not improving, no psychiatric review since week 10", fmt_int(stuck),
                       "alert" if stuck else ""))
    parts.append(_card("Median days in program", fmt_int(total.get("median_days_in_program"))))
    parts.append("</div>")
    if stuck:
        parts.append(f'<p class="note">The {fmt_int(stuck)} patients not improving are listed for the care '
                     f'team on the <a href="{WORKLIST_PAGE}#not-improving">worklist</a>.</p>')
    parts.append(_figure_html(figures.outcomes_trend(summary), "fig-outcomes"))

    headers = [("Follow-up, last 4 weeks", True), ("Response 10-14 weeks", True),
               ("Response 6 months", True), ("Remission 6 months", True), ("Without baseline", True)]

    def rates(r: dict[str, Any]) -> list[str]:
        return [
            _n_of(r["follow_up_last_4_weeks"], r["active_patient_months"], r["follow_up_rate"]),
            _n_of(r["early_responses"], r["early_judged"], r["early_response_rate"]),
            _n_of(r["six_month_responses"], r["six_month_judged"], r["six_month_response_rate"]),
            _n_of(r["six_month_remissions"], r["six_month_judged"], r["six_month_remission_rate"]),
            fmt_int(r["without_baseline"]),
        ]

    parts.append("<h2>By month</h2>")
    parts.append(_table([("Month", False), *headers],
                        (([fmt_month(r["service_month"]), *rates(r)], "")
                         for r in level("month").sort("service_month", descending=True).iter_rows(named=True)),
                        table_id="outcomes-by-month", col_classes={0: "nowrap"}))
    parts.append("<h2>By care manager</h2>")
    parts.append(_table([("Care manager", False), *headers, ("Not improving, no review", True)],
                        (([_cm(r["care_manager_id"], r["care_manager_name"]), *rates(r),
                           fmt_int(r["not_improving_without_review"])], "")
                         for r in level("care_manager").sort("care_manager_id", nulls_last=True)
                         .iter_rows(named=True)),
                        table_id="outcomes-by-care-manager", sortable=True))
    parts.append("<h2>By facility</h2>")
    parts.append(_table([("Facility", False), *headers, ("Not improving, no review", True)],
                        (([r["facility_id"] or "—", *rates(r), fmt_int(r["not_improving_without_review"])], "")
                         for r in level("facility").sort("facility_id", nulls_last=True).iter_rows(named=True)),
                        table_id="outcomes-by-facility"))
    parts.append('<p class="note">Follow-up counts patient-months with care-manager service; response and '
                 "remission count episodes, in the month the window's last score was taken (or the window "
                 "closed without one).</p>")
    parts.append("<h2>Discharges: why patients left, and after how long</h2>")
    left = discharges.filter(~pl.col("is_total")) if discharges is not None and discharges.height else None
    if left is None or left.height == 0:
        parts.append(_empty("No episode has ended in a discharge yet."))
    else:
        parts.append(_table(
            [("Discharge reason", False), ("Episodes", True), ("Median days in program", True),
             ("Responded at 10-14 weeks", True), ("Remitted at 6 months", True)],
            (([(r["discharge_reason"] or "").replace("_", " "), fmt_int(r["episodes"]),
               fmt_int(r["median_days_in_program"]),
               _n_of(r["early_responses"], r["early_judged"], r["early_response_rate"]),
               _n_of(r["six_month_remissions"], r["six_month_judged"], r["six_month_remission_rate"])], "")
             for r in left.sort(["episodes", "discharge_reason"], descending=[True, False]).iter_rows(named=True)),
            table_id="outcomes-discharges"))
    return _page("Outcomes", OUTCOMES_PAGE, "\n".join(parts), as_of=as_of, health=health)


def compliance_page(
    blocked: pl.DataFrame,
    lag: pl.DataFrame,
    quarantine: pl.DataFrame,
    headlines: pl.DataFrame | None = None,
    *,
    as_of: dt.date | None = None,
    health: str = "",
    incomplete: frozenset | set | None = None,
    limit: int = LATE_TABLE_LIMIT,
) -> str:
    """Compliance: months blocked by a gate (fct_compliance_blocked_months), documentation lag
    per staff member and week (fct_compliance_documentation_lag), quarantined rows by reason
    (fct_compliance_quarantine). No patient identifiers."""
    h = _one(headlines)
    days = h.get("late_documentation_days")
    parts = [
        "<h1>Compliance</h1>",
        '<p class="lead">Months a gate held back (consent, psychiatric review), time documented '
        f"late (more than {_e(fmt_int(days))} days after the service date; settings.csv "
        "<code>late_documentation_days</code>) and rows rejected at ingest.</p>",
    ]
    parts.append('<div class="card-grid">')
    parts.append(_card("Blocked patient-months, closed months",
                       fmt_int(h.get("blocked_months_closed")),
                       "alert" if (h.get("blocked_months_closed") or 0) > 0 else ""))
    parts.append(_card("Dollars held back, closed months", fmt_dollars(h.get("blocked_dollars_closed"))))
    parts.append(_card("Blocked patient-months, open month", fmt_int(h.get("blocked_months_open"))))
    parts.append(_card("Entries documented late",
                       f"{fmt_int(h.get('late_entries'))} of {fmt_int(h.get('documented_entries'))}",
                       "alert" if (h.get("late_entries") or 0) > 0 else ""))
    parts.append(_card("Share of minutes documented late", fmt_pct(h.get("late_minutes_pct"))))
    parts.append(_card("Rows quarantined", fmt_int(h.get("quarantined_rows")),
                       "alert" if (h.get("quarantined_rows") or 0) > 0 else ""))
    parts.append("</div>")

    parts.append("<h2>Months blocked by a gate</h2>")
    parts.append(_figure_html(figures.blocked_months_by_month(blocked, incomplete), "fig-blocked"))
    if blocked.height:
        parts.append(
            _table(
                [("Month", False), ("Status", False), ("Program", False), ("Reason", False),
                 ("Patient-months", True), ("Patients", True), ("Minutes held back", True),
                 ("Dollars held back", True)],
                (
                    (
                        [_month(r["service_month"], incomplete), r["month_status"],
                         _program(r["program"]),
                         figures.reason_label(r["blocked_reason"]), fmt_int(r["patient_months"]),
                         fmt_int(r["patients"]), fmt_minutes(r["minutes_held_back"]),
                         fmt_dollars(r["dollars_held_back"])],
                        "",
                    )
                    for r in blocked.sort(["service_month", "program", "blocked_reason"],
                                          descending=[True, False, False]).iter_rows(named=True)
                ),
                table_id="blocked-months",
                col_classes={0: "nowrap"},
            )
        )
        parts.append('<p class="note">Dollars held back: what the month would bill with the gate '
                     "passed (closed months are also in the revenue gap; the open month is month "
                     "to date).</p>")

    parts.append("<h2>Documentation lag</h2>")
    parts.append(_figure_html(figures.documentation_lag_heatmap(lag), "fig-doc-lag"))
    late = (
        lag.filter(pl.col("late_entries") > 0)
        .sort(["late_minutes", "week_start", "staff_id"], descending=[True, True, False])
        if lag.height else lag
    )
    if late.height == 0:
        parts.append(_empty("No time documented late."))
    else:
        shown = late.head(limit)
        parts.append(f'<p class="note">Staff-weeks with late entries: showing {shown.height:,} of '
                     f"{late.height:,}, most late minutes first.</p>")
        parts.append(
            _table(
                [("Week", False), ("Staff", False), ("Role", False), ("Entries", True),
                 ("Late entries", True), ("Late minutes", True), ("Late share of minutes", True),
                 ("Longest lag", True), ("Undated", True)],
                (
                    (
                        [f"{r['iso_week']} ({fmt_date(r['week_start'])})", r["staff_id"],
                         r["role"] or "—", fmt_int(r["entries"]), fmt_int(r["late_entries"]),
                         fmt_minutes(r["late_minutes"]), fmt_pct(r["late_minutes_pct"]),
                         "—" if r["max_lag_days"] is None else f"{r['max_lag_days']:,} days",
                         fmt_int(r["undated_entries"])],
                        "",
                    )
                    for r in shown.iter_rows(named=True)
                ),
                table_id="late-documentation",
                col_classes={0: "nowrap"},
            )
        )

    parts.append("<h2>Quarantined rows</h2>")
    parts.append(_figure_html(figures.quarantine_by_reason(quarantine), "fig-quarantine"))
    if quarantine.height:
        parts.append(
            _table(
                [("Extract table", False), ("Reason", False), ("Rows", True), ("Files", True)],
                (
                    ([r["table_name"], r["reason"], fmt_int(r["rows_quarantined"]),
                      fmt_int(r["files"])], "")
                    for r in quarantine.sort(["rows_quarantined", "table_name", "reason"],
                                             descending=[True, False, False]).iter_rows(named=True)
                ),
                table_id="quarantine",
            )
        )
        parts.append('<p class="note">Row by row, with file, row number and column: '
                     '<a href="../quarantine.csv">../quarantine.csv</a>.</p>')
    return _page("Compliance", COMPLIANCE_PAGE, "\n".join(parts), as_of=as_of, health=health)


# --------------------------------------------------------------------------- site


def _read(conn: duckdb.DuckDBPyConnection, table: str, where: str = "") -> pl.DataFrame:
    return conn.sql(f"select * from {table} {where}").pl()


def _write_text(path: Path, text: str) -> None:
    """Write next to the target and rename, so a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# Marts the site reads (a missing one raises duckdb.CatalogException).
SITE_MARTS = (
    "fct_run_summary", "fct_dashboard_headlines", "fct_worklist_pace", "fct_outreach_summary",
    "fct_outreach_plan", "fct_revenue_gap_monthly", "fct_revenue_gap_by_reason",
    "fct_revenue_gap_patient_months", "fct_program_roi_monthly", "fct_program_roi_facility",
    "fct_compliance_blocked_months", "fct_compliance_documentation_lag",
    "fct_compliance_quarantine", "fct_program_roi_assumptions", "fct_run_health",
    "fct_run_health_sources", "fct_month_completeness", "fct_outcomes_summary", "fct_outcome_episodes",
    "fct_outcome_discharges", "fct_payments_summary", "fct_remittance_denials", "fct_denial_worklist",
    "fct_remittance_aging", "fct_revenue_gap_post_submission",
)


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

    summary = _read(conn, "fct_run_summary")
    headlines = _read(conn, "fct_dashboard_headlines")
    worklist = _read(conn, "fct_worklist_pace",
                     f"where worklist_rank <= {int(worklist_limit)} order by worklist_rank")
    outreach = _read(conn, "fct_outreach_summary")
    plan = _read(conn, "fct_outreach_plan", f"where rank <= {int(outreach_limit)}")
    gap_monthly = _read(conn, "fct_revenue_gap_monthly")
    gap_by_reason = _read(conn, "fct_revenue_gap_by_reason")
    gap_top = _read(conn, "fct_revenue_gap_patient_months",
                    "order by dollars desc, service_month desc, facility_id, patient_id, program"
                    f" limit {int(gap_table_limit)}").with_row_index("dollar_rank", offset=1)
    roi_monthly = _read(conn, "fct_program_roi_monthly")
    roi_facility = _read(conn, "fct_program_roi_facility")
    blocked = _read(conn, "fct_compliance_blocked_months")
    lag = _read(conn, "fct_compliance_documentation_lag")
    quarantined = _read(conn, "fct_compliance_quarantine")
    assumptions = _read(conn, "fct_program_roi_assumptions")
    completeness = _read(conn, "fct_month_completeness")
    outcomes = _read(conn, "fct_outcomes_summary")
    discharges = _read(conn, "fct_outcome_discharges")
    not_improving = _read(conn, "fct_outcome_episodes", "where not_improving_without_review"
                          " order by care_manager_id nulls last, baseline_date, patient_id")
    incomplete = incomplete_months(completeness)
    health = run_health_banner(_read(conn, "fct_run_health"), _read(conn, "fct_run_health_sources"),
                               completeness)

    row = _summary_row(summary)
    as_of = row.get("as_of") if row else None
    open_month = row.get("open_month") if row else None

    _write_text(out / PLOTLY_JS, plotly.offline.get_plotlyjs())
    # drill-down pages: the worklist's patient-months first (the open month), then the revenue gap's
    pairs: list[tuple[Any, dt.date]] = []
    for frame in (worklist.sort("worklist_rank") if worklist.height else worklist, gap_top):
        if frame.height and {"patient_id", "service_month"} <= set(frame.columns):
            pairs.extend(frame.select("patient_id", "service_month").rows())
    pairs = list(dict.fromkeys(pairs))[:drilldown_limit]
    linked = write_drilldown_pages(conn, out, pairs, as_of=as_of, health=health)
    _write_text(out / WORKLIST_PAGE,
                worklist_page(worklist, headlines, outreach, open_month=open_month, as_of=as_of,
                              limit=worklist_limit, health=health, linked=linked,
                              not_improving=not_improving))
    payments = _read(conn, "fct_payments_summary")
    _write_text(out / PAYMENTS_PAGE, payments_page(
        payments, _read(conn, "fct_remittance_denials"),
        _read(conn, "fct_denial_worklist"), _read(conn, "fct_remittance_aging"),
        _read(conn, "fct_revenue_gap_post_submission"), as_of=as_of, health=health))
    _write_text(out / OUTCOMES_PAGE, outcomes_page(outcomes, discharges, as_of=as_of, health=health))
    _write_text(out / OUTREACH_PAGE,
                outreach_page(plan, outreach, headlines, as_of=as_of, limit=outreach_limit,
                              health=health, linked=linked))
    _write_text(out / REVENUE_GAP_PAGE,
                revenue_gap_page(gap_monthly, gap_by_reason, gap_top, headlines, as_of=as_of,
                                 limit=gap_table_limit, health=health, linked=linked,
                                 incomplete=incomplete))
    _write_text(out / ROI_PAGE, roi_page(roi_monthly, roi_facility, headlines, assumptions,
                                         as_of=as_of, health=health, outcomes=outcomes))
    _write_text(out / COMPLIANCE_PAGE,
                compliance_page(blocked, lag, quarantined, headlines, as_of=as_of, health=health,
                                incomplete=incomplete))
    _write_text(out / INDEX_PAGE, index_page(summary, headlines, roi_monthly, health=health,
                                                   outcomes=outcomes, payments=payments))
    return out / INDEX_PAGE


def png_subtitle(health: pl.DataFrame, headlines: pl.DataFrame) -> str:
    """The line under each leadership PNG's title: as-of date, closed-month net and ROI, revenue
    left on the table, and a warning when the extract is stale or a month is incomplete."""
    r, h = _one(health), _one(headlines)
    text = (f"Data as of {fmt_date(r.get('as_of'))} · net, closed months {fmt_dollars(h.get('roi_closed_net'))}"
            f" (ROI {fmt_pct(h.get('roi_closed_pct'))}) · left on the table "
            f"{fmt_dollars(h.get('gap_dollars'))}")
    if r.get("is_stale"):
        text += " · STALE EXTRACT"
    if r.get("incomplete_month_list"):
        text += f" · incomplete: {r['incomplete_month_list']}"
    return html.escape(text)


def write_leadership_pngs(
    conn: duckdb.DuckDBPyConnection,
    out_dir: str | os.PathLike[str],
    *,
    width: int = 1100,
    scale: float = 2.0,
) -> list[Path]:
    """Export the leadership figures (figures.LEADERSHIP_FIGURES) as PNG files for email.

    Uses plotly's static export (kaleido 1.x), which drives a Chromium-family browser: kaleido
    finds one on PATH (Debian's /usr/bin/chromium) or where the BROWSER_PATH environment variable
    points. Raises RuntimeError (with kaleido's message) when kaleido or a browser is missing;
    nothing is written then. Files are written next to their target and renamed into place.
    """
    try:
        import kaleido  # noqa: F401  (plotly imports it lazily; fail early with a clear message)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("PNG export needs the kaleido package (pip install 'kaleido>=1')") from exc
    import plotly.io as pio

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    subtitle = png_subtitle(_read(conn, "fct_run_health"), _read(conn, "fct_dashboard_headlines"))
    figs, tmps, targets = [], [], []
    incomplete = incomplete_months(_read(conn, "fct_month_completeness"))
    for stem, builder, table in figures.LEADERSHIP_FIGURES:
        takes_incomplete = "incomplete" in builder.__code__.co_varnames[:builder.__code__.co_argcount]
        fig = builder(_read(conn, table), incomplete) if takes_incomplete else builder(_read(conn, table))
        # the as-of date and the headline numbers under the title; the legend on the right, clear of
        # the title (a horizontal legend above the plot wraps into the title on long legends)
        fig.update_layout(
            title=dict(x=0.015, y=0.97, yanchor="top", subtitle=dict(text=subtitle)),
            legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0, yanchor="top"),
            margin=dict(l=80, r=30, t=100),
        )
        figs.append(fig)
        targets.append(out / f"{stem}.png")
        tmps.append(out / f".{stem}.tmp.png")
    try:
        pio.write_images(figs, tmps, format="png", width=width, scale=scale)
    except Exception as exc:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise RuntimeError(f"PNG export failed: {exc}") from exc
    for tmp, target in zip(tmps, targets):
        os.replace(tmp, target)
    return targets
