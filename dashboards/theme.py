"""One small visual theme shared by every figure and page, plus value formatters (the page
templates' filters, dashboards/render.py). dashboards/static/site.css writes these colours and the
font stack out literally; tests/test_dashboards.py keeps the two in step.

No Dagster imports here: the dashboards package is pure (marts in, figures/HTML out).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

FONT_STACK = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans", "Liberation Sans", sans-serif'
)

# Okabe-Ito: readable for the common forms of colour blindness.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # green
    "#D55E00",  # vermillion
    "#CC79A7",  # pink
    "#56B4E9",  # sky
    "#F0E442",  # yellow
    "#000000",  # black
)
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#e4e7eb"
POSITIVE = "#009E73"
NEGATIVE = "#D55E00"

SITE_CSS = Path(__file__).parent / "static" / "site.css"
_VARIABLE = re.compile(r"--c-([a-z0-9-]+)\s*:\s*([^;]+);")


@cache
def concept_colors() -> dict[str, str]:
    """The colour of each concept (expected, paid, denied, reason-near-miss ...), as the stylesheet's
    :root writes them (`--c-paid: #009E73;`), an alias (`var(--c-denied)`) resolved: the one place a
    colour's meaning is written down, shared by the pages and the figures."""
    raw = {name: value.strip() for name, value in _VARIABLE.findall(SITE_CSS.read_text(encoding="utf-8"))}

    def resolve(value: str, depth: int = 0) -> str:
        alias = re.fullmatch(r"var\(--c-([a-z0-9-]+)\)", value)
        return resolve(raw[alias.group(1)], depth + 1) if alias and depth < 5 else value.upper()

    return {name: resolve(value) for name, value in raw.items()}


def concept(name: str) -> str:
    """The colour of one concept (see concept_colors); a KeyError names a concept the stylesheet lacks."""
    return concept_colors()[name]


def reason_concept(reason: str) -> str:
    """The stylesheet concept of a revenue-gap reason: "missing_consent" -> "reason-missing-consent"."""
    return "reason-" + reason.replace("_", "-")


TEMPLATE_NAME = "bhi"

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font=dict(family=FONT_STACK, size=13, color=INK),
        title=dict(font=dict(size=16), x=0.0, xanchor="left"),
        colorway=list(PALETTE),
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin=dict(l=60, r=20, t=60, b=50),
        hoverlabel=dict(font=dict(family=FONT_STACK)),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0),
        xaxis=dict(gridcolor=GRID, linecolor=GRID, zerolinecolor=GRID, automargin=True),
        yaxis=dict(gridcolor=GRID, linecolor=GRID, zerolinecolor="#9aa5b1", automargin=True),
    )
)
# Registered by name so `fig.update_layout(template="bhi")` also works; the global default is
# left alone (importing this module must not restyle other people's figures).
pio.templates[TEMPLATE_NAME] = TEMPLATE


def apply_theme(fig: go.Figure, *, height: int = 440) -> go.Figure:
    """Apply the shared template and a fixed height (the HTML div has no height of its own)."""
    fig.update_layout(template=TEMPLATE, height=height)
    return fig


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_dollars(value: float | int | None, *, cents: bool = False) -> str:
    """1234.5 -> "$1,235" (or "$1,234.50" with cents=True); -80 -> "-$80"; None -> "—"."""
    if _missing(value):
        return "—"
    # Decimal half-up, so $9,876.50 shows as "$9,877" (round() would give "$9,876").
    amount = Decimal(repr(float(value)))  # type: ignore[arg-type]
    rounded = abs(amount).quantize(Decimal("0.01") if cents else Decimal("1"), ROUND_HALF_UP)
    sign = "-" if amount < 0 and rounded != 0 else ""
    return f"{sign}${rounded:,}"


def fmt_minutes(value: float | int | None) -> str:
    """65 -> "65 min"; 1234 -> "1,234 min"; None -> "—"."""
    if _missing(value):
        return "—"
    return f"{round(float(value)):,} min"  # type: ignore[arg-type]


def fmt_int(value: float | int | None) -> str:
    """12345 -> "12,345"; None -> "—"."""
    if _missing(value):
        return "—"
    return f"{round(float(value)):,}"  # type: ignore[arg-type]


def fmt_pct(value: float | int | None) -> str:
    """Value already in percent: 12.345 -> "12.3%"; None -> "—"."""
    if _missing(value):
        return "—"
    return f"{float(value):,.1f}%"  # type: ignore[arg-type]


def fmt_month(value: dt.date | None) -> str:
    """date(2025, 3, 1) -> "2025-03"; None -> "—"."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m")


def fmt_date(value: dt.date | None) -> str:
    if value is None:
        return "—"
    return value.isoformat()
