"""Figure builders: pure functions from a mart frame (polars) to a plotly Figure.

Each function takes the mart table as read with `select * from fct_...` (extra columns are
ignored, row order does not matter), aggregates what it needs and returns a themed
`plotly.graph_objects.Figure`. An empty input gives a figure with zero traces and a
"No rows" note instead of raising.
"""

from __future__ import annotations

import polars as pl
import plotly.graph_objects as go

from dashboards.theme import INK, MUTED, NEGATIVE, PALETTE, apply_theme, fmt_month

# Human labels for fct_revenue_gap.reason; unknown reasons are shown as they are.
REASON_LABELS: dict[str, str] = {
    "near_miss": "Near miss (short of a threshold)",
    "missing_consent": "Missing consent",
    "missing_psych_review": "No psychiatric review",
    "time_before_consent": "Time before consent",
    "over_add_on_cap": "Over the add-on cap",
}
# Stable colours for the known reasons so a reason keeps its colour across months/pages.
REASON_COLORS: dict[str, str] = {
    "near_miss": PALETTE[0],
    "missing_consent": PALETTE[1],
    "missing_psych_review": PALETTE[2],
    "time_before_consent": PALETTE[3],
    "over_add_on_cap": PALETTE[4],
}
UNASSIGNED = "Unassigned"

TITLE_REVENUE_GAP = "Revenue left on the table by month and reason (closed months)"
TITLE_CARE_MANAGER = "Dollars still reachable this month, by care manager"
TITLE_ROI = "Is the program paying for itself? Revenue vs cost, net and cumulative net by month"


def reason_label(reason: str | None) -> str:
    if reason is None:
        return "(no reason)"
    return REASON_LABELS.get(reason, reason)


def empty_figure(title: str, message: str = "No rows to show.") -> go.Figure:
    """A themed figure with no traces and a centred note (used for empty marts)."""
    fig = go.Figure()
    fig.update_layout(
        title=dict(text=title),
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        annotations=[
            dict(
                text=message,
                x=0.5,
                y=0.5,
                xref="paper",
                yref="paper",
                showarrow=False,
                font=dict(size=15, color=MUTED),
            )
        ],
    )
    return apply_theme(fig, height=260)


def revenue_gap_by_month_and_reason(gap: pl.DataFrame) -> go.Figure:
    """Stacked bars: dollars left on the table per service_month, one trace per reason.

    Input: fct_revenue_gap (service_month, reason, dollars, ...). Null dollars count as 0.
    Traces are ordered by total dollars (largest reason at the bottom of the stack); every
    trace has one y value per month, so the stack height of a month equals its total dollars.
    """
    if gap.height == 0:
        return empty_figure(TITLE_REVENUE_GAP, "No revenue left on the table in closed months.")

    by = (
        gap.select(
            pl.col("service_month"),
            pl.col("reason"),
            pl.col("dollars").cast(pl.Float64).fill_null(0.0),
        )
        .group_by("service_month", "reason")
        .agg(pl.col("dollars").sum())
    )
    months = sorted(by.get_column("service_month").unique().to_list(), key=lambda d: (d is None, d))
    month_labels = [fmt_month(m) for m in months]
    totals = by.group_by("reason").agg(pl.col("dollars").sum().alias("total"))
    reasons = [
        r["reason"]
        for r in sorted(
            totals.to_dicts(), key=lambda r: (-r["total"], r["reason"] is None, r["reason"] or "")
        )
    ]
    lookup = {(r["service_month"], r["reason"]): r["dollars"] for r in by.to_dicts()}

    extra_colors = iter(PALETTE[5:] + PALETTE)
    fig = go.Figure()
    for reason in reasons:
        color = REASON_COLORS.get(reason) if reason is not None else None
        if color is None:
            color = next(extra_colors)
        fig.add_trace(
            go.Bar(
                name=reason_label(reason),
                x=month_labels,
                y=[lookup.get((m, reason), 0.0) for m in months],
                marker_color=color,
                hovertemplate="%{x}<br>%{fullData.name}: $%{y:,.0f}<extra></extra>",
            )
        )
    fig.update_layout(
        title=dict(text=TITLE_REVENUE_GAP),
        barmode="stack",
        xaxis=dict(title=dict(text="Service month"), type="category"),
        yaxis=dict(title=dict(text="Dollars"), tickprefix="$", tickformat=",.0f"),
    )
    return apply_theme(fig)


def dollars_at_stake_by_care_manager(near: pl.DataFrame) -> go.Figure:
    """Horizontal bars: sum of dollars_gained per care manager in the open month.

    Input: fct_near_threshold. Null care_manager_id is shown as "Unassigned"; rows whose
    dollars_gained is null or <= 0 (nothing further reachable) are left out. One trace;
    the largest care manager is drawn at the top.
    """
    if near.height == 0:
        return empty_figure(TITLE_CARE_MANAGER, "No enrolled patients in the open month.")

    per_cm = (
        near.select(
            pl.col("care_manager_id").cast(pl.String).fill_null(UNASSIGNED),
            pl.col("dollars_gained").cast(pl.Float64),
        )
        .filter(pl.col("dollars_gained") > 0)
        .group_by("care_manager_id")
        .agg(pl.col("dollars_gained").sum().alias("dollars"), pl.len().alias("patients"))
        .sort(["dollars", "care_manager_id"], descending=[False, True])
    )
    if per_cm.height == 0:
        return empty_figure(TITLE_CARE_MANAGER, "No further dollars reachable this month.")

    fig = go.Figure(
        go.Bar(
            name="Dollars still reachable",
            orientation="h",
            x=per_cm.get_column("dollars").to_list(),
            y=per_cm.get_column("care_manager_id").to_list(),
            customdata=per_cm.get_column("patients").to_list(),
            marker_color=PALETTE[0],
            hovertemplate="%{y}<br>$%{x:,.0f} across %{customdata} patient-programs"
            "<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text=TITLE_CARE_MANAGER),
        showlegend=False,
        xaxis=dict(title=dict(text="Dollars if the next threshold is reached"), tickprefix="$",
                   tickformat=",.0f"),
        yaxis=dict(title=dict(text="Care manager"), type="category"),
    )
    return apply_theme(fig, height=max(300, 120 + 28 * per_cm.height))


def roi_monthly(roi: pl.DataFrame) -> pl.DataFrame:
    """fct_program_roi summed over facilities: one row per service_month, in month order.

    Columns: service_month, month_status ('open' if any facility row is open), expected_revenue,
    total_cost, net, cumulative_net (running sum of the summed net, recomputed here so a
    facility missing a month does not distort the total).
    """
    if roi.height == 0:
        return pl.DataFrame(
            schema={
                "service_month": pl.Date,
                "month_status": pl.String,
                "expected_revenue": pl.Float64,
                "total_cost": pl.Float64,
                "net": pl.Float64,
                "cumulative_net": pl.Float64,
            }
        )
    return (
        roi.group_by("service_month")
        .agg(
            pl.when((pl.col("month_status") == "open").any())
            .then(pl.lit("open"))
            .otherwise(pl.lit("closed"))
            .alias("month_status"),
            pl.col("expected_revenue").cast(pl.Float64).fill_null(0.0).sum(),
            pl.col("total_cost").cast(pl.Float64).fill_null(0.0).sum(),
            pl.col("net").cast(pl.Float64).fill_null(0.0).sum(),
        )
        .sort("service_month")
        .with_columns(pl.col("net").cum_sum().alias("cumulative_net"))
    )


def program_roi_by_month(roi: pl.DataFrame) -> go.Figure:
    """Grouped bars (expected revenue, total cost) with net and cumulative-net lines.

    Input: fct_program_roi, summed over facilities (see `roi_monthly`). Four traces in this
    order: revenue bars, cost bars, net line, cumulative net line. The open month is labelled
    "(month to date)" on the axis because its numbers are still moving.
    """
    if roi.height == 0:
        return empty_figure(TITLE_ROI, "No program months yet.")

    monthly = roi_monthly(roi)
    labels = [
        fmt_month(r["service_month"]) + (" (month to date)" if r["month_status"] == "open" else "")
        for r in monthly.iter_rows(named=True)
    ]
    money_hover = "%{x}<br>%{fullData.name}: $%{y:,.0f}<extra></extra>"
    fig = go.Figure()
    fig.add_trace(
        go.Bar(name="Expected revenue", x=labels,
               y=monthly.get_column("expected_revenue").to_list(),
               marker_color=PALETTE[0], hovertemplate=money_hover)
    )
    fig.add_trace(
        go.Bar(name="Total cost", x=labels, y=monthly.get_column("total_cost").to_list(),
               marker_color="#9aa5b1", hovertemplate=money_hover)
    )
    fig.add_trace(
        go.Scatter(name="Net", x=labels, y=monthly.get_column("net").to_list(),
                   mode="lines+markers", line=dict(color=NEGATIVE, width=2),
                   hovertemplate=money_hover)
    )
    fig.add_trace(
        go.Scatter(name="Cumulative net", x=labels,
                   y=monthly.get_column("cumulative_net").to_list(),
                   mode="lines+markers", line=dict(color=INK, width=2, dash="dot"),
                   hovertemplate=money_hover)
    )
    fig.update_layout(
        title=dict(text=TITLE_ROI),
        barmode="group",
        xaxis=dict(title=dict(text="Service month"), type="category"),
        yaxis=dict(title=dict(text="Dollars"), tickprefix="$", tickformat=",.0f"),
    )
    return apply_theme(fig)
