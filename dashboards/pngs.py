"""The leadership figures as PNG files for email (plotly's static export through kaleido)."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from dashboards import figures, marts
from dashboards.theme import fmt_date, fmt_dollars, fmt_pct

PNG_DIR = "email"  # leadership figures as PNG, under the site folder


def png_subtitle(health: Mapping[str, Any], headlines: Mapping[str, Any]) -> str:
    """The line under each leadership PNG's title (fct_run_health, rpt_dashboard_headlines): as-of
    date, closed-month net and ROI, revenue left on the table, and a warning when the extract is
    stale or a month is incomplete."""
    r, h = health, headlines
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
    data = marts.pngs(conn)
    subtitle = png_subtitle(data["health"], data["headlines"])
    figs, tmps, targets = [], [], []
    for stem, builder, table in figures.LEADERSHIP_FIGURES:
        takes_incomplete = "incomplete" in builder.__code__.co_varnames[:builder.__code__.co_argcount]
        frame = marts.frame(conn, f"select * from {table}")
        fig = builder(frame, data["incomplete"]) if takes_incomplete else builder(frame)
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
