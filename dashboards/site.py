"""Static dashboard site: marts in an open DuckDB connection -> four HTML pages + plotly.min.js.

`render_site(conn, out_dir)` is the only function that touches the database or the disk. The
`*_page` functions are pure (polars frames in, an HTML string out) so they can be tested without
a warehouse. Every value that comes from the data goes through `html.escape` (the `_table` and
`_cell` helpers do it; nothing else interpolates data). The site needs no network: figures use
the one shared `plotly.min.js` written next to the pages, so it works from file://.

No Dagster imports here.
"""

from __future__ import annotations

import datetime as dt
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

PLOTLY_JS = "plotly.min.js"
INDEX_PAGE = "index.html"
WORKLIST_PAGE = "worklist.html"
REVENUE_GAP_PAGE = "revenue_gap.html"
ROI_PAGE = "roi.html"
PAGES = (INDEX_PAGE, WORKLIST_PAGE, REVENUE_GAP_PAGE, ROI_PAGE)
WORKLIST_LIMIT = 500
GAP_TABLE_LIMIT = 50
NEAR_THRESHOLD_CSV = "../near_threshold.csv"  # written by the exports step into the parent dir

PROGRAM_LABELS = {"cocm": "CoCM", "bhi": "General BHI"}

_NAV = (
    (INDEX_PAGE, "Overview"),
    (WORKLIST_PAGE, "Worklist (open month)"),
    (REVENUE_GAP_PAGE, "Revenue gap (closed months)"),
    (ROI_PAGE, "Program ROI"),
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
.table-wrap {{ overflow-x: auto; background: white; border: 1px solid {GRID}; border-radius: 8px; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.85rem; }}
th, td {{ padding: 5px 8px; border-bottom: 1px solid {GRID}; text-align: left;
          vertical-align: top; }}
th {{ background: #f0f2f5; position: sticky; top: 0; font-weight: 600; white-space: nowrap; }}
td.num, th.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.blockers {{ min-width: 14em; }}
td.nowrap {{ white-space: nowrap; }}
tr.blocked td.blockers {{ color: {NEGATIVE}; }}
tr.total td {{ font-weight: 650; border-top: 2px solid {GRID}; }}
input#filter {{ font: inherit; padding: 6px 10px; width: min(420px, 100%);
                border: 1px solid #c5ccd3;
                border-radius: 6px; margin: 6px 12px 10px 0; }}
footer {{ color: {MUTED}; font-size: 0.85rem; margin-top: 30px; }}
"""

_FILTER_JS = """
(function () {
  var input = document.getElementById("filter");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#worklist tbody tr"));
  var count = document.getElementById("filter-count");
  function apply() {
    var terms = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    rows.forEach(function (tr) {
      var text = tr.textContent.toLowerCase();
      var ok = terms.every(function (t) { return text.indexOf(t) !== -1; });
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " rows shown";
  }
  input.addEventListener("input", apply);
  apply();
})();
"""


# --------------------------------------------------------------------------- html helpers


def _e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute; None -> ""."""
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: Any, *, num: bool = False, cls: str = "") -> str:
    classes = " ".join(c for c in ("num" if num else "", cls) if c)
    attr = f' class="{_e(classes)}"' if classes else ""
    return f"<td{attr}>{_e(value)}</td>"


def _table(
    headers: Sequence[tuple[str, bool]],
    rows: Iterable[tuple[Sequence[Any], str]],
    *,
    table_id: str | None = None,
    col_classes: dict[int, str] | None = None,
) -> str:
    """headers: (label, is_numeric); rows: (cell values already formatted as text, row class);
    col_classes: extra CSS class per column index.

    Every header and cell is escaped here.
    """
    col_classes = col_classes or {}
    numeric = [is_num for _, is_num in headers]
    num_attr = ' class="num"'
    head = "".join(
        f'<th{num_attr if is_num else ""} scope="col">{_e(label)}</th>'
        for label, is_num in headers
    )
    body = []
    for values, row_cls in rows:
        cells = "".join(
            _cell(v, num=numeric[i] if i < len(numeric) else False, cls=col_classes.get(i, ""))
            for i, v in enumerate(values)
        )
        cls_attr = f' class="{_e(row_cls)}"' if row_cls else ""
        body.append(f"<tr{cls_attr}>{cells}</tr>")
    id_attr = f' id="{_e(table_id)}"' if table_id else ""
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
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        default_height=f"{int(fig.layout.height or 440)}px",
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="figure">{body}</div>'


def _page(
    title: str,
    current: str,
    body: str,
    *,
    as_of: dt.date | None,
    script: str = "",
    phi: bool = False,
) -> str:
    current_attr = ' aria-current="page"'
    nav = "".join(
        f'<a href="{href}"{current_attr if href == current else ""}>{_e(label)}</a>'
        for href, label in _NAV
    )
    footer = f"Data as of {_e(fmt_date(as_of))}. " if as_of else ""
    if phi:
        footer += "Contains patient identifiers (PHI): keep within the care and billing team. "
    footer += "Generated by bhi-revenue from the warehouse marts."
    script_html = f"<script>{script}</script>" if script else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · BHI revenue</title>
<style>{CSS}</style>
<script src="{PLOTLY_JS}"></script>
</head>
<body>
<header><div class="container"><span class="brand">BHI revenue</span><nav>{nav}</nav></div></header>
<main class="container">
{body}
<footer>{footer}</footer>
</main>
{script_html}
</body>
</html>
"""


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


# --------------------------------------------------------------------------- pages (pure)


def index_page(summary: pl.DataFrame) -> str:
    """Overview: headline numbers from fct_run_summary (first row) and links to the pages."""
    row = _summary_row(summary)
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
        parts.append('<div class="card-grid">')
        parts.append(_card("As of", fmt_date(as_of)))
        parts.append(_card("Open month", fmt_month(row.get("open_month"))))
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
    parts.append("<h2>Pages</h2>")
    parts.append(
        '<div class="links">'
        f'<a href="{WORKLIST_PAGE}"><strong>Worklist</strong><br>Who is near the next billing '
        "threshold this month, what it is worth and what blocks it.</a>"
        f'<a href="{REVENUE_GAP_PAGE}"><strong>Revenue gap</strong><br>Dollars left on the table '
        "in closed months, by reason and by patient-month.</a>"
        f'<a href="{ROI_PAGE}"><strong>Program ROI</strong><br>Expected revenue against care '
        "manager and other costs, month by month.</a>"
        "</div>"
    )
    return _page("Overview", INDEX_PAGE, "\n".join(parts), as_of=as_of)


def sort_worklist(near: pl.DataFrame) -> pl.DataFrame:
    """Most dollars first; ties: fewest minutes needed, fewest days left, then ids."""
    return near.sort(
        ["dollars_gained", "minutes_needed", "days_left", "facility_id", "patient_id", "program"],
        descending=[True, False, False, False, False, False],
        nulls_last=True,
    )


def worklist_page(
    near: pl.DataFrame,
    *,
    open_month: dt.date | None = None,
    as_of: dt.date | None = None,
    limit: int = WORKLIST_LIMIT,
) -> str:
    """Analyst worklist for the open month from fct_near_threshold (top `limit` rows by dollars)."""
    total = near.height
    parts = [
        "<h1>Worklist: who is near the next code this month</h1>",
        f'<p class="lead">Open month {_e(fmt_month(open_month))}'
        + (f", as of {_e(fmt_date(as_of))}" if as_of else "")
        + ". Sorted by dollars gained if the next threshold is reached.</p>",
    ]
    if total == 0:
        parts.append(_empty("No rows: no enrolled patients with activity in the open month."))
        fig = figures.dollars_at_stake_by_care_manager(near)
        parts.append(_figure_html(fig, "fig-care-manager"))
        return _page("Worklist", WORKLIST_PAGE, "\n".join(parts), as_of=as_of)

    gained = near.get_column("dollars_gained").cast(pl.Float64).fill_null(0.0)
    reachable = int((gained > 0).sum())
    blocked = int((near.get_column("blockers").fill_null("") != "").sum())
    parts.append('<div class="card-grid">')
    reachable_dollars = float(gained.clip(lower_bound=0).sum())
    parts.append(_card("Dollars still reachable", fmt_dollars(reachable_dollars), "good"))
    parts.append(_card("Patient-programs with a next code", fmt_int(reachable)))
    parts.append(_card("Patient-programs with blockers", fmt_int(blocked),
                       "alert" if blocked else ""))
    parts.append(_card("Patient-programs enrolled", fmt_int(total)))
    parts.append("</div>")

    parts.append(_figure_html(figures.dollars_at_stake_by_care_manager(near), "fig-care-manager"))

    shown = sort_worklist(near).head(limit)
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
    parts.append(
        '<label for="filter" class="note">Filter rows (all words must match): </label>'
        '<input id="filter" type="search" placeholder="patient, care manager, code, blocker…" '
        'autocomplete="off"><span class="note" id="filter-count"></span>'
    )
    # Most-used columns first so they stay visible on a laptop; the rest scroll horizontally.
    columns: list[tuple[str, bool, str]] = [
        ("Patient", False, "nowrap"), ("Care manager", False, ""), ("Program", False, "nowrap"),
        ("Minutes", True, ""), ("Next code", False, "nowrap"), ("Min. needed", True, ""),
        ("$ gained", True, ""), ("Blockers", False, "blockers"),
        ("Current codes", False, "nowrap"), ("Current $", True, ""), ("Days left", True, ""),
        ("Payer", False, ""), ("Facility", False, ""),
    ]
    rows = []
    for r in shown.iter_rows(named=True):
        blockers = r.get("blockers") or ""
        cm = r.get("care_manager_id")
        rows.append(
            (
                [
                    r.get("patient_id"),
                    figures.UNASSIGNED if cm is None else cm,
                    _program(r.get("program")),
                    fmt_int(r.get("countable_minutes")),
                    _next_code(r.get("next_code"), r.get("next_threshold_minutes")),
                    fmt_int(r.get("minutes_needed")),
                    fmt_dollars(r.get("dollars_gained")),
                    blockers,
                    r.get("current_codes") or "—",
                    fmt_dollars(r.get("current_amount")),
                    fmt_int(r.get("days_left")),
                    r.get("payer_id"),
                    r.get("facility_id"),
                ],
                "blocked" if blockers else "",
            )
        )
    parts.append(
        _table(
            [(label, num) for label, num, _ in columns],
            rows,
            table_id="worklist",
            col_classes={i: cls for i, (_, _, cls) in enumerate(columns) if cls},
        )
    )
    return _page("Worklist", WORKLIST_PAGE, "\n".join(parts), as_of=as_of, script=_FILTER_JS,
                 phi=True)


def top_patient_months(gap: pl.DataFrame, limit: int = GAP_TABLE_LIMIT) -> pl.DataFrame:
    """fct_revenue_gap grouped to patient-month (facility, patient, payer, program, month).

    Columns: the keys, minutes, dollars, reasons (text like "Missing consent $120 (40 min);
    ..." ordered by dollars). Sorted by dollars desc; at most `limit` rows.
    """
    keys = ["facility_id", "patient_id", "payer_id", "program", "service_month"]
    if gap.height == 0:
        return pl.DataFrame(
            schema={**{k: gap.schema.get(k, pl.String) for k in keys},
                    "minutes": pl.Int64, "dollars": pl.Float64, "reasons": pl.String}
        )
    per_reason = (
        gap.with_columns(
            pl.col("dollars").cast(pl.Float64).fill_null(0.0),
            pl.col("minutes").cast(pl.Int64).fill_null(0),
        )
        .group_by(*keys, "reason")
        .agg(pl.col("minutes").sum(), pl.col("dollars").sum())
    )
    top = (
        per_reason.group_by(*keys)
        .agg(pl.col("minutes").sum(), pl.col("dollars").sum())
        .sort(
            ["dollars", "service_month", "facility_id", "patient_id", "program"],
            descending=[True, True, False, False, False],
            nulls_last=True,
        )
        .head(limit)
    )
    # Reason text only for the rows shown (the gap table can be large).
    detail = per_reason.join(top.select(keys), on=keys, how="semi", nulls_equal=True).sort(
        ["dollars", "reason"], descending=[True, False], nulls_last=True
    )
    reasons: dict[tuple, list[str]] = {}
    for r in detail.iter_rows(named=True):
        reasons.setdefault(tuple(r[k] for k in keys), []).append(
            f"{figures.reason_label(r['reason'])} {fmt_dollars(r['dollars'])} "
            f"({fmt_minutes(r['minutes'])})"
        )
    text = [
        "; ".join(reasons.get(tuple(r[k] for k in keys), [])) for r in top.iter_rows(named=True)
    ]
    return top.with_columns(pl.Series("reasons", text, dtype=pl.String))


def revenue_gap_page(
    gap: pl.DataFrame, *, as_of: dt.date | None = None, limit: int = GAP_TABLE_LIMIT
) -> str:
    """Closed months: stacked bar by month and reason, totals by reason, top patient-months."""
    parts = [
        "<h1>Revenue left on the table (closed months)</h1>",
        '<p class="lead">Dollars that documented work did not turn into claims, and why.</p>',
    ]
    parts.append(_figure_html(figures.revenue_gap_by_month_and_reason(gap), "fig-revenue-gap"))
    if gap.height == 0:
        parts.append(_empty("No rows: nothing was left on the table in closed months."))
        return _page("Revenue gap", REVENUE_GAP_PAGE, "\n".join(parts), as_of=as_of)

    by_reason = (
        gap.with_columns(
            pl.col("dollars").cast(pl.Float64).fill_null(0.0),
            pl.col("minutes").cast(pl.Int64).fill_null(0),
        )
        .group_by("reason")
        .agg(
            pl.col("dollars").sum(),
            pl.col("minutes").sum(),
            pl.struct("facility_id", "patient_id", "program", "service_month")
            .n_unique()
            .alias("patient_months"),
        )
        .sort(["dollars", "reason"], descending=[True, False], nulls_last=True)
    )
    total_dollars = float(by_reason.get_column("dollars").sum())
    parts.append("<h2>By reason</h2>")
    reason_rows: list[tuple[Sequence[Any], str]] = [
        (
            [figures.reason_label(r["reason"]), fmt_int(r["patient_months"]),
             fmt_minutes(r["minutes"]), fmt_dollars(r["dollars"])],
            "",
        )
        for r in by_reason.iter_rows(named=True)
    ]
    reason_rows.append((["Total", "", "", fmt_dollars(total_dollars)], "total"))
    parts.append(
        _table(
            [("Reason", False), ("Patient-months", True), ("Minutes", True), ("Dollars", True)],
            reason_rows,
            table_id="by-reason",
        )
    )

    n_patient_months = gap.select(
        pl.struct("facility_id", "patient_id", "payer_id", "program", "service_month").n_unique()
    ).item()
    top = top_patient_months(gap, limit)
    parts.append("<h2>Top patient-months by dollars</h2>")
    parts.append(
        f'<p class="note">Showing top {top.height:,} of {n_patient_months:,} patient-months.</p>'
    )
    parts.append(
        _table(
            [("Month", False), ("Facility", False), ("Patient", False), ("Payer", False),
             ("Program", False), ("Minutes", True), ("Dollars", True), ("Reasons", False)],
            (
                (
                    [fmt_month(r["service_month"]), r["facility_id"], r["patient_id"],
                     r["payer_id"], _program(r["program"]), fmt_int(r["minutes"]),
                     fmt_dollars(r["dollars"]), r["reasons"]],
                    "",
                )
                for r in top.iter_rows(named=True)
            ),
            table_id="top-patient-months",
            col_classes={0: "nowrap", 2: "nowrap"},
        )
    )
    return _page("Revenue gap", REVENUE_GAP_PAGE, "\n".join(parts), as_of=as_of, phi=True)


def facility_roi(roi: pl.DataFrame) -> pl.DataFrame:
    """fct_program_roi closed months summed per facility (sorted by facility_id).

    roi_pct here is 100 * net / total_cost over the facility's closed months (null when the
    cost is 0); the mart's per-month roi_pct is not averaged.
    """
    money = ["expected_revenue", "care_manager_cost", "other_cost", "total_cost", "net"]
    counts = ["claim_lines", "patients_billed", "patient_months_enrolled"]
    closed = roi.filter(pl.col("month_status") == "closed")
    return (
        closed.group_by("facility_id")
        .agg(
            pl.col("service_month").n_unique().alias("closed_months"),
            *[pl.col(c).cast(pl.Float64).fill_null(0.0).sum() for c in money],
            *[pl.col(c).cast(pl.Int64).fill_null(0).sum() for c in counts],
        )
        .with_columns(
            pl.when(pl.col("total_cost") > 0)
            .then(100.0 * pl.col("net") / pl.col("total_cost"))
            .otherwise(None)
            .alias("roi_pct")
        )
        .sort("facility_id", nulls_last=True)
    )


def roi_page(roi: pl.DataFrame, *, as_of: dt.date | None = None) -> str:
    """Leadership ROI page. Uses only fct_program_roi, which holds no patient identifiers."""
    parts = [
        "<h1>Program ROI</h1>",
        '<p class="lead">Expected revenue against care manager and other costs, all facilities '
        "together. The open month is month to date.</p>",
    ]
    parts.append(_figure_html(figures.program_roi_by_month(roi), "fig-roi"))
    if roi.height == 0:
        parts.append(_empty("No rows: no program months in fct_program_roi yet."))
        return _page("Program ROI", ROI_PAGE, "\n".join(parts), as_of=as_of)

    monthly = figures.roi_monthly(roi)
    closed_m = monthly.filter(pl.col("month_status") == "closed")
    cum = float(monthly.get_column("cumulative_net").tail(1).item())
    parts.append('<div class="card-grid">')
    parts.append(_card("Expected revenue, closed months",
                       fmt_dollars(float(closed_m.get_column("expected_revenue").sum()))))
    parts.append(_card("Total cost, closed months",
                       fmt_dollars(float(closed_m.get_column("total_cost").sum()))))
    closed_net = float(closed_m.get_column("net").sum())
    parts.append(_card("Net, closed months", fmt_dollars(closed_net),
                       "good" if closed_net >= 0 else "alert"))
    parts.append(_card("Cumulative net incl. open month", fmt_dollars(cum),
                       "good" if cum >= 0 else "alert"))
    parts.append("</div>")

    per_fac = facility_roi(roi)
    parts.append("<h2>By facility (closed months)</h2>")
    if per_fac.height == 0:
        parts.append(_empty("No closed months yet; only the open month is available."))
    else:
        headers = [
            ("Facility", False), ("Closed months", True), ("Expected revenue", True),
            ("Claim lines", True), ("Patient-months billed", True),
            ("Patient-months enrolled", True), ("Care manager cost", True), ("Other cost", True),
            ("Total cost", True), ("Net", True), ("ROI", True),
        ]

        def row_values(r: dict[str, Any]) -> list[str]:
            return [
                fmt_int(r["closed_months"]), fmt_dollars(r["expected_revenue"]),
                fmt_int(r["claim_lines"]), fmt_int(r["patients_billed"]),
                fmt_int(r["patient_months_enrolled"]), fmt_dollars(r["care_manager_cost"]),
                fmt_dollars(r["other_cost"]), fmt_dollars(r["total_cost"]),
                fmt_dollars(r["net"]), fmt_pct(r["roi_pct"]),
            ]

        rows: list[tuple[Sequence[Any], str]] = [
            ([r["facility_id"], *row_values(r)], "") for r in per_fac.iter_rows(named=True)
        ]
        tot = per_fac.select(pl.exclude("facility_id", "roi_pct", "closed_months").sum()).row(
            0, named=True
        )
        tot["closed_months"] = closed_m.height
        tot["roi_pct"] = 100.0 * tot["net"] / tot["total_cost"] if tot["total_cost"] > 0 else None
        rows.append((["All facilities", *row_values(tot)], "total"))
        parts.append(_table(headers, rows, table_id="facility-roi"))
        parts.append(
            '<p class="note">ROI = net ÷ total cost over the closed months. "Patient-months '
            'billed" sums the monthly count of patients with at least one claim line.</p>'
        )
    return _page("Program ROI", ROI_PAGE, "\n".join(parts), as_of=as_of)


# --------------------------------------------------------------------------- site


def _read(conn: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    return conn.sql(f"select * from {table}").pl()


def _write_text(path: Path, text: str) -> None:
    """Write next to the target and rename, so a reader never sees half a page."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def render_site(
    conn: duckdb.DuckDBPyConnection,
    out_dir: str | os.PathLike[str],
    *,
    worklist_limit: int = WORKLIST_LIMIT,
    gap_table_limit: int = GAP_TABLE_LIMIT,
) -> Path:
    """Read the marts from `conn` and write the static site into `out_dir`; return index.html.

    Writes index.html, worklist.html, revenue_gap.html, roi.html and one shared plotly.min.js.
    Reads fct_run_summary, fct_near_threshold, fct_revenue_gap and fct_program_roi (a missing
    table raises duckdb.CatalogException; an empty one renders a "no rows" message).
    Only reads from the connection, so a read-only connection is enough.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    summary = _read(conn, "fct_run_summary")
    near = _read(conn, "fct_near_threshold")
    gap = _read(conn, "fct_revenue_gap")
    roi = _read(conn, "fct_program_roi")

    row = _summary_row(summary)
    as_of = row.get("as_of") if row else None
    open_month = row.get("open_month") if row else None

    _write_text(out / PLOTLY_JS, plotly.offline.get_plotlyjs())
    _write_text(out / WORKLIST_PAGE,
                worklist_page(near, open_month=open_month, as_of=as_of, limit=worklist_limit))
    _write_text(out / REVENUE_GAP_PAGE, revenue_gap_page(gap, as_of=as_of, limit=gap_table_limit))
    _write_text(out / ROI_PAGE, roi_page(roi, as_of=as_of))
    _write_text(out / INDEX_PAGE, index_page(summary))
    return out / INDEX_PAGE
