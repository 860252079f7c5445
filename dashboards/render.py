"""Fill the page templates (dashboards/templates/*.html.j2) with mart rows; no SQL, no disk.

One Jinja2 environment with autoescaping for the HTML templates: every value from the data is
escaped on output (`finalize` escapes with `html.escape(quote=True)`, the entities the pages always
used; None prints as ""). Plotly figures come in as markup (`figure_html`), their titles escaped.
The value formatters of dashboards/theme.py are the filters (money, minutes, integer, pct, share,
month, date) and the label helpers of dashboards/figures.py are filters too (program, reason,
care_manager). The site's CSS and scripts are static files (dashboards/static/) that the base
layout inlines, so each page still works on its own from disk or as an attachment: site.css,
filter.js (the worklist's filter box) and sort.js (click a column header of a table with class
"sortable" to sort it; cells carry data-sort, a number, when their text is formatted).
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import plotly.graph_objects as go
from markupsafe import Markup

from dashboards import figures
from dashboards.theme import fmt_date, fmt_dollars, fmt_int, fmt_minutes, fmt_month, fmt_pct

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"

PLOTLY_JS = "plotly.min.js"
INDEX_PAGE = "index.html"
WORKLIST_PAGE = "worklist.html"
REVENUE_GAP_PAGE = "revenue_gap.html"
ROI_PAGE = "roi.html"
OUTREACH_PAGE = "outreach.html"
COMPLIANCE_PAGE = "compliance.html"
OUTCOMES_PAGE = "outcomes.html"
PAYMENTS_PAGE = "payments.html"
NAV = (
    (INDEX_PAGE, "Overview"),
    (WORKLIST_PAGE, "Worklist (open month)"),
    (OUTREACH_PAGE, "Outreach plan"),
    (REVENUE_GAP_PAGE, "Revenue gap (closed months)"),
    (PAYMENTS_PAGE, "Payments"),
    (ROI_PAGE, "Program ROI"),
    (OUTCOMES_PAGE, "Outcomes"),
    (COMPLIANCE_PAGE, "Compliance"),
)
DRILLDOWN_DIR = "explain"
NEAR_THRESHOLD_CSV = "../near_threshold.csv"  # written by the exports step into the parent dir
OUTREACH_PLAN_CSV = "../outreach_plan.csv"  # written by the exports step into the parent dir


def _escape(value: Any) -> Any:
    """Every value printed by a template: markup as it is, anything else escaped; None -> ""."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def month_label(value: Any, incomplete: Any = None) -> str:
    """YYYY-MM, with "(incomplete data)" for a month fct_month_completeness marks incomplete."""
    return fmt_month(value) + (f" ({figures.INCOMPLETE})" if incomplete and value in incomplete else "")


def share(value: Any) -> str:
    """A ratio (0.421) as a percentage ("42.1%"); None -> "—"."""
    return fmt_pct(None if value is None else float(value) * 100)


def next_code(code: str | None, at_minutes: int | None) -> str:
    if not code:
        return "—"
    return code if at_minutes is None else f"{code} at {at_minutes} min"


def n_of(n: Any, total: Any, rate: Any) -> str:
    """"42.0% (21 of 50)"; "—" when nothing was judged."""
    if not total:
        return "—"
    return f"{share(rate)} ({fmt_int(n)} of {fmt_int(total)})"


def pace(status: str | None, projected: Any, needed: Any) -> str:
    if not status or status == "no next code":
        return "—"
    return f"{status} ({fmt_int(projected)} of {fmt_int(needed)})"


def decimal1(value: Any) -> str:
    return "—" if value is None else f"{value:,.1f}"


def or_dash(value: Any) -> Any:
    """The value, or "—" when it is empty."""
    return value or "—"


def static_text(name: str) -> Markup:
    """A file of dashboards/static/, to inline in a page."""
    return Markup(_static(name))


@cache
def _static(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=True),
        finalize=_escape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        money=fmt_dollars, minutes=fmt_minutes, integer=fmt_int, pct=fmt_pct, share=share,
        month=month_label, date=fmt_date, program=figures.program_label, reason=figures.reason_label,
        care_manager=figures.care_manager_label, or_dash=or_dash, decimal1=decimal1,
    )
    env.globals.update(
        n_of=n_of, pace=pace, next_code=next_code, static_text=static_text, zip=zip, NAV=NAV, PLOTLY_JS=PLOTLY_JS,
        INDEX_PAGE=INDEX_PAGE, WORKLIST_PAGE=WORKLIST_PAGE, REVENUE_GAP_PAGE=REVENUE_GAP_PAGE,
        ROI_PAGE=ROI_PAGE, OUTREACH_PAGE=OUTREACH_PAGE, COMPLIANCE_PAGE=COMPLIANCE_PAGE,
        OUTCOMES_PAGE=OUTCOMES_PAGE, PAYMENTS_PAGE=PAYMENTS_PAGE,
        NEAR_THRESHOLD_CSV=NEAR_THRESHOLD_CSV, OUTREACH_PLAN_CSV=OUTREACH_PLAN_CSV,
    )
    return env


def render(template: str, **context: Any) -> str:
    """One page: templates/<template> filled with `context`."""
    return environment().get_template(template).render(**context)


def run_health_banner(health: dict[str, Any]) -> Markup:
    """The run-health box every page starts with (macros.html.j2 run_health), from marts.health."""
    return environment().get_template("macros.html.j2").module.run_health(
        health["h"], health["sources"], health["has_completeness"], health["incomplete_rows"])


def figure_html(fig: go.Figure, div_id: str) -> Markup:
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
    return Markup('<div class="figure"><h3 class="fig-title">{}</h3>{}</div>').format(
        _escape(title), Markup(body))
