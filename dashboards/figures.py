"""Figure builders: pure functions from a mart frame (polars) to a plotly Figure.

Each function takes one mart table as read with `select * from fct_...` (extra columns are
ignored) and only *reshapes* it: every number drawn is a value the SQL model already holds
(sums, running totals, ranks and shares are computed in sql/marts/, never here). An empty input
gives a figure with zero traces and a note instead of raising.
"""

from __future__ import annotations

import plotly.graph_objects as go
import polars as pl

from dashboards.theme import MUTED, apply_theme, concept, fmt_month, reason_concept

# Human labels for fct_revenue_gap.reason; unknown reasons are shown as they are.
REASON_LABELS: dict[str, str] = {
    "near_miss": "Near miss (short of a threshold)",
    "missing_consent": "Missing consent",
    "missing_psych_review": "No psychiatric review",
    "missing_consent_and_psych_review": "Missing consent and psychiatric review",
    "time_before_consent": "Time before consent",
    "over_add_on_cap": "Over the add-on cap",
    "missing_initiating_visit": "No initiating visit",
    "missing_bh_diagnosis": "No behavioral health diagnosis",
    "missing_measurement": "No validated rating scale",
    "billed_under_other_program": "Billed under the other program",
}
# Stable colours for the known reasons (the stylesheet's --c-reason-* variables) so a reason keeps its
# colour across months and pages.
REASON_COLORS: dict[str, str] = {reason: concept(reason_concept(reason)) for reason in REASON_LABELS}
# for a reason the stylesheet does not know: colours no concept uses
EXTRA_COLORS: tuple[str, ...] = ("#7F7F7F", "#17BECF", "#BCBD22", "#9467BD", "#E377C2", "#393B79")
PROGRAM_LABELS = {"cocm": "CoCM", "bhi": "General BHI"}
UNASSIGNED = "Unassigned"
# charts with one bar or row per care manager or staff member show the top ones only (by the rank
# column of the mart), so a system with thousands of staff still gets a readable, small page
TOP_ROWS = 30


def top(frame: pl.DataFrame, rank_column: str, limit: int = TOP_ROWS) -> pl.DataFrame:
    """The rows ranked 1..limit by the mart's rank column (all rows when the frame has none)."""
    if rank_column not in frame.columns:
        return frame
    return frame.filter(pl.col(rank_column) <= limit)


def _of_total(title: str, shown: int, total: int) -> str:
    return title if shown >= total else f"{title} (top {shown:,} of {total:,})"

TITLE_REVENUE_GAP = "Revenue left on the table by month and reason (closed months)"
TITLE_CARE_MANAGER = "Dollars still reachable this month, by care manager"
TITLE_ROI = "Is the program paying for itself? Revenue vs cost, net and cumulative net by month"
TITLE_OUTREACH_DOLLARS = "Expected revenue gained if the outreach plan is followed, by care manager"
TITLE_OUTREACH_MINUTES = "Care-manager minutes: remaining capacity vs minutes the plan needs"
TITLE_BLOCKED = "Patient-months blocked by a failed gate (consent, psychiatric review, initiating visit ...)"
TITLE_DOC_LAG = "Minutes documented late, by staff member and week of service"
TITLE_QUARANTINE = "Rows quarantined at ingest, by reason"


def reason_colors(reasons: list) -> dict:
    """One colour per distinct reason: the known reasons keep theirs (REASON_COLORS), the others
    take palette colours no reason on this chart uses yet, so two categories never share a colour."""
    out: dict = {}
    used = set()
    for reason in reasons:
        if reason in REASON_COLORS and reason not in out:
            out[reason] = REASON_COLORS[reason]
            used.add(REASON_COLORS[reason])
    spare = [c for c in EXTRA_COLORS if c not in used]
    for reason in reasons:
        if reason not in out:
            out[reason] = spare.pop(0) if spare else MUTED
            used.add(out[reason])
    return out


def reason_label(reason: str | None) -> str:
    if reason is None:
        return "(no reason)"
    # several failed gates are one reason: "missing_consent + missing_psych_review"
    return " + ".join(REASON_LABELS.get(part, part) for part in reason.split(" + "))


def program_label(program: str | None) -> str:
    if program is None:
        return ""
    return PROGRAM_LABELS.get(program, program)


def care_manager_label(care_manager_id: str | None, name: str | None = None) -> str:
    """The care manager's name from the staff extract ("Name (id)"), the id when there is no name."""
    if care_manager_id is None:
        return UNASSIGNED
    return f"{name} ({care_manager_id})" if name else str(care_manager_id)


def _with_labels(frame: pl.DataFrame) -> pl.DataFrame:
    names = (pl.col("care_manager_name") if "care_manager_name" in frame.columns
             else pl.lit(None, dtype=pl.String))
    return frame.with_columns(
        pl.when(pl.col("care_manager_id").is_null()).then(pl.lit(UNASSIGNED))
        .when(names.is_not_null()).then(pl.format("{} ({})", names, pl.col("care_manager_id")))
        .otherwise(pl.col("care_manager_id").cast(pl.String)).alias("label")
    )


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


INCOMPLETE = "incomplete data"


def month_labels(monthly: pl.DataFrame) -> list[str]:
    """YYYY-MM, with "(month to date)" for the open month and "(incomplete data)" for a month whose
    data is incomplete (fct_month_completeness via the mart's is_incomplete column)."""
    labels = []
    for r in monthly.iter_rows(named=True):
        label = fmt_month(r["service_month"])
        if r.get("month_status") == "open":
            label += " (month to date)"
        if r.get("is_incomplete"):
            label += f" ({INCOMPLETE})"
        labels.append(label)
    return labels


def _incomplete(monthly: pl.DataFrame) -> list[bool]:
    if "is_incomplete" not in monthly.columns:
        return [False] * monthly.height
    return [bool(v) for v in monthly.get_column("is_incomplete").to_list()]


def _reasons(monthly: pl.DataFrame) -> list[str | None]:
    if "incomplete_reasons" not in monthly.columns:
        return [None] * monthly.height
    return monthly.get_column("incomplete_reasons").to_list()


def _wrap(text: str, width: int = 22) -> str:
    """A reason broken into short lines for an annotation (<br> between words)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def _gap(values: list, incomplete: list[bool]) -> list:
    """The values with None for each incomplete month: a gap in the chart, never a $0 month."""
    return [None if flag else v for v, flag in zip(values, incomplete)]


def _mark_incomplete(fig: go.Figure, labels: list[str], incomplete: list[bool],
                     reasons: list[str | None] | None = None) -> None:
    """Shade each incomplete month and write "incomplete data" and its reason over it, so a month
    with missing data reads as a gap with its reason, never as a $0 month (the traces draw nothing
    there: _gap)."""
    reasons = reasons or [None] * len(labels)
    for i, (label, flag, reason) in enumerate(zip(labels, incomplete, reasons)):
        if not flag:
            continue
        # a category axis puts month i at position i: shade from i - 0.5 to i + 0.5
        fig.add_vrect(x0=i - 0.5, x1=i + 0.5, xref="x", fillcolor="#f0f2f5", line_width=0,
                      layer="below")
        text = "incomplete data:<br>not drawn" + (f"<br>({_wrap(reason)})" if reason else "")
        fig.add_annotation(x=label, xref="x", y=0.5, yref="paper", text=text,
                           showarrow=False, font=dict(color=concept("alert"), size=12),
                           bgcolor="rgba(255,255,255,0.85)")


def _months(frame: pl.DataFrame, column: str = "service_month") -> list:
    return sorted(frame.get_column(column).unique().to_list(), key=lambda d: (d is None, d))


def revenue_gap_by_month_and_reason(monthly: pl.DataFrame, incomplete: frozenset | set | None = None
                                    ) -> go.Figure:
    """Stacked bars: dollars left on the table per service_month, one trace per reason.

    Input: rpt_revenue_gap_monthly (service_month, reason, dollars, reason_order). Traces follow
    reason_order (largest reason overall at the bottom of the stack); a month without a reason
    draws 0 for it, so the stack height of a month is the month's total.
    """
    if monthly.height == 0:
        return empty_figure(TITLE_REVENUE_GAP, "No revenue left on the table in closed months.")

    months = _months(monthly)
    incomplete = incomplete or set()
    month_labels = [fmt_month(m) + (f" ({INCOMPLETE})" if m in incomplete else "") for m in months]
    order = (
        monthly.select("reason", "reason_order")
        .unique()
        .sort("reason_order", nulls_last=True)
        .get_column("reason")
        .to_list()
    )
    lookup = {(r["service_month"], r["reason"]): r["dollars"] for r in monthly.iter_rows(named=True)}

    colors = reason_colors(order)
    fig = go.Figure()
    for reason in order:
        color = colors[reason]
        fig.add_trace(
            go.Bar(
                name=reason_label(reason),
                meta=reason_concept(reason) if reason in REASON_COLORS else None,
                x=month_labels,
                y=[None if m in incomplete else lookup.get((m, reason)) or 0.0 for m in months],
                marker_color=color,
                hovertemplate="%{x}<br>%{fullData.name}: %{y:$,.0f}<extra></extra>",
            )
        )
    _mark_incomplete(fig, month_labels, [m in incomplete for m in months])
    fig.update_layout(
        title=dict(text=TITLE_REVENUE_GAP),
        barmode="stack",
        xaxis=dict(title=dict(text="Service month"), type="category"),
        yaxis=dict(title=dict(text="Dollars"), tickformat="$,.0f"),
    )
    return apply_theme(fig)


def dollars_at_stake_by_care_manager(summary: pl.DataFrame) -> go.Figure:
    """Horizontal bars: dollars still reachable this month per care manager.

    Input: rpt_outreach_summary (care_manager_id, reachable_dollars, reachable_patient_programs).
    Care managers with nothing reachable are left out; null care manager = "Unassigned"; the
    largest is drawn at the top.
    """
    rows = summary.filter(pl.col("reachable_dollars") > 0) if summary.height else summary
    total = rows.height
    rows = top(rows, "reachable_rank")
    if rows.height == 0:
        message = ("No enrolled patients in the open month." if summary.height == 0
                   else "No further dollars reachable this month.")
        return empty_figure(TITLE_CARE_MANAGER, message)
    rows = _with_labels(rows).sort(["reachable_dollars", "label"], descending=[False, True])

    fig = go.Figure(
        go.Bar(
            name="Dollars still reachable",
            orientation="h",
            x=rows.get_column("reachable_dollars").to_list(),
            y=rows.get_column("label").to_list(),
            customdata=rows.get_column("reachable_patient_programs").to_list(),
            marker_color=concept("expected"), meta="expected",
            hovertemplate="%{y}<br>%{x:$,.0f} across %{customdata} patient-programs"
            "<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text=_of_total(TITLE_CARE_MANAGER, rows.height, total)),
        showlegend=False,
        xaxis=dict(title=dict(text="Dollars if the next threshold is reached"), tickformat="$,.0f"),
        yaxis=dict(title=dict(text="Care manager"), type="category"),
    )
    return apply_theme(fig, height=max(300, 120 + 28 * rows.height))


# ROI page: the money of each month side by side (rpt_money_by_month): (trace name, column, concept)
MONEY_BARS = (
    ("Expected (fee schedule)", "expected_revenue", "expected"),
    ("Submitted", "submitted", "submitted"),
    ("Paid by payers", "paid", "paid"),
    ("Patient responsibility", "patient_responsibility", "patient"),
    ("Denied", "denied", "denied"),
    ("Outstanding (no answer yet)", "outstanding", "outstanding"),
    ("Program cost", "total_cost", "cost"),
)


def program_roi_by_month(monthly: pl.DataFrame) -> go.Figure:
    """Grouped bars per month: expected, submitted, paid, patient responsibility, denied,
    outstanding and cost (MONEY_BARS), with the net and cumulative-net lines and, for the open month,
    its projected net (an open marker, "projected" in its name).

    Input: rpt_money_by_month. The open month is labelled "(month to date)"; an incomplete month is
    drawn as a gap with its reason (no bar, no point), never as $0.
    """
    if monthly.height == 0:
        return empty_figure(TITLE_ROI, "No program months yet.")

    monthly = monthly.sort("service_month")
    labels = month_labels(monthly)
    incomplete = _incomplete(monthly)
    money_hover = "%{x}<br>%{fullData.name}: %{y:$,.0f}<extra></extra>"
    fig = go.Figure()
    for name, column, color in MONEY_BARS:
        fig.add_trace(go.Bar(name=name, x=labels, y=_gap(monthly.get_column(column).to_list(), incomplete),
                             marker_color=concept(color), meta=color, hovertemplate=money_hover))
    fig.add_trace(go.Scatter(name="Net (revenue - cost)", x=labels, y=_gap(monthly.get_column("net").to_list(), incomplete),
                             mode="lines+markers", line=dict(color=concept("net"), width=2), meta="net",
                             hovertemplate=money_hover))
    fig.add_trace(go.Scatter(name="Cumulative net", x=labels,
                             y=_gap(monthly.get_column("cumulative_net").to_list(), incomplete),
                             mode="lines+markers", line=dict(color=concept("net"), width=2, dash="dot"), meta="net",
                             hovertemplate=money_hover))
    if "projected_net" in monthly.columns and monthly.get_column("projected_net").is_not_null().any():
        fig.add_trace(go.Scatter(name="Projected net, open month (at the month-to-date pace)", x=labels,
                                 y=monthly.get_column("projected_net").to_list(), mode="markers", meta="net",
                                 marker=dict(color="white", size=12, symbol="diamond-open",
                                             line=dict(color=concept("net"), width=2)),
                                 hovertemplate="%{x}<br>projected net at month end: %{y:$,.0f}<extra></extra>"))
    _mark_incomplete(fig, labels, incomplete, _reasons(monthly))
    fig.update_layout(
        title=dict(text=TITLE_ROI),
        barmode="group",
        xaxis=dict(title=dict(text="Service month"), type="category"),
        yaxis=dict(title=dict(text="Dollars"), tickformat="$,.0f"),
    )
    return apply_theme(fig, height=480)


TITLE_TREND = "Revenue, revenue left on the table and billing rate by month"


def revenue_trend(monthly: pl.DataFrame) -> go.Figure:
    """The overview's trend from rpt_money_by_month: expected revenue and revenue left on the table
    (stacked bars: together what the documented work could have billed) and the billing rate
    (patient-months billed / enrolled, right axis) of the closed months; the open month shows its
    revenue to date only (left on the table and billing rate are not known until it closes);
    incomplete months are a gap with their reason, never 0."""
    if monthly.height == 0:
        return empty_figure(TITLE_TREND, "No program months yet.")
    monthly = monthly.sort("service_month")
    labels = month_labels(monthly)
    incomplete = _incomplete(monthly)
    is_open = [s == "open" for s in monthly.get_column("month_status").to_list()]
    money_hover = "%{x}<br>%{fullData.name}: %{y:$,.0f}<extra></extra>"
    fig = go.Figure()
    fig.add_trace(go.Bar(name="Expected revenue", x=labels,
                         y=_gap(monthly.get_column("expected_revenue").to_list(), incomplete),
                         marker_color=concept("expected"), meta="expected", hovertemplate=money_hover))
    fig.add_trace(go.Bar(name="Left on the table", x=labels,
                         y=_gap(monthly.get_column("revenue_left_on_table").to_list(), incomplete),
                         marker_color=concept("left"), meta="left", hovertemplate=money_hover))
    fig.add_trace(go.Scatter(name="Billing rate (closed months)", x=labels,
                             y=_gap(monthly.get_column("billing_rate_pct").to_list(),
                                    [a or b for a, b in zip(incomplete, is_open)]), yaxis="y2",
                             mode="lines+markers", line=dict(color=concept("rate"), width=2), meta="rate",
                             hovertemplate="%{x}<br>Billing rate: %{y:.1f}%<extra></extra>"))
    _mark_incomplete(fig, labels, incomplete, _reasons(monthly))
    fig.update_layout(
        title=dict(text=TITLE_TREND),
        barmode="stack",
        xaxis=dict(title=dict(text="Service month"), type="category"),
        yaxis=dict(title=dict(text="Dollars"), tickformat="$,.0f"),
        yaxis2=dict(title=dict(text="Patient-months billed"), overlaying="y", side="right",
                    ticksuffix="%", range=[0, 100], tickmode="linear", tick0=0, dtick=25,
                    showgrid=False, automargin=True),
    )
    return apply_theme(fig)


TITLE_OUTCOMES = "Follow-up in the last 4 weeks and response at 10-14 weeks, by month"


def outcomes_trend(summary: pl.DataFrame) -> go.Figure:
    """The outcomes page's trend from rpt_outcomes_summary (grouping_level 'month'): the share of
    active patients with a repeat score in the last 4 weeks and the share of judged 10-14 week
    windows that showed a response; every point's hover gives its n of N."""
    monthly = summary.filter(pl.col("grouping_level") == "month") if summary.height else summary
    if monthly.height == 0:
        return empty_figure(TITLE_OUTCOMES, "No active measurement-based care months yet.")
    monthly = monthly.sort("service_month")
    labels = [fmt_month(m) for m in monthly.get_column("service_month").to_list()]

    def pct(rate: str) -> list:
        return [None if v is None else v * 100 for v in monthly.get_column(rate).to_list()]

    fig = go.Figure()
    for name, rate, n, total, color in (
        ("Followed up (last 4 weeks)", "follow_up_rate", "follow_up_last_4_weeks", "active_patient_months", "follow-up"),
        ("Response at 10-14 weeks", "early_response_rate", "early_responses", "early_judged", "response"),
    ):
        counts = [f"{a:,} of {b:,}" for a, b in zip(monthly.get_column(n).to_list(), monthly.get_column(total).to_list())]
        fig.add_trace(go.Scatter(name=name, x=labels, y=pct(rate), mode="lines+markers", customdata=counts,
                                 line=dict(color=concept(color), width=2), meta=color,
                                 hovertemplate="%{x}<br>%{fullData.name}: %{y:.1f}% (%{customdata})<extra></extra>"))
    fig.update_layout(
        title=dict(text=TITLE_OUTCOMES),
        xaxis=dict(title=dict(text="Month"), type="category"),
        yaxis=dict(title=dict(text="Share"), ticksuffix="%", range=[0, 100]),
    )
    return apply_theme(fig)


TITLE_PAYMENTS = "What came back for the claims of each month: paid, patient share, denied, underpaid, no answer"


def payments_by_month(summary: pl.DataFrame) -> go.Figure:
    """The payments page's chart from rpt_payments_summary (grouping_level 'month'): the expected
    amount of each closed month split into paid, patient responsibility, denied, underpaid and not
    answered yet (stacked bars)."""
    monthly = summary.filter(pl.col("grouping_level") == "month") if summary.height else summary
    if monthly.height == 0:
        return empty_figure(TITLE_PAYMENTS, "No claims of closed months yet.")
    monthly = monthly.sort("service_month")
    labels = [fmt_month(m) for m in monthly.get_column("service_month").to_list()]
    fig = go.Figure()
    for name, column, color in (
        ("Paid", "paid", "paid"), ("Patient responsibility", "patient_responsibility", "patient"),
        ("Denied", "denied_expected_amount", "denied"), ("Underpaid", "underpaid_amount", "underpaid"),
        ("No answer yet", "unanswered_expected_amount", "outstanding"),
    ):
        fig.add_trace(go.Bar(name=name, x=labels, y=[float(v or 0) for v in monthly.get_column(column).to_list()],
                             marker_color=concept(color), meta=color,
                             hovertemplate="%{x}<br>%{fullData.name}: %{y:$,.2f}<extra></extra>"))
    fig.update_layout(
        title=dict(text=TITLE_PAYMENTS),
        barmode="stack",
        xaxis=dict(title=dict(text="Service month"), type="category"),
        yaxis=dict(title=dict(text="Dollars"), tickformat="$,.0f"),
    )
    return apply_theme(fig)


def _outreach_rows(summary: pl.DataFrame) -> pl.DataFrame:
    """Care managers with candidates (the top ones by plan_rank), largest planned dollars at the top
    of a horizontal chart."""
    rows = top(summary.filter(pl.col("candidates") > 0), "plan_rank")
    return _with_labels(rows).sort(["planned_dollars", "unplanned_dollars", "label"],
                                   descending=[False, False, True])


def outreach_dollars_by_care_manager(summary: pl.DataFrame) -> go.Figure:
    """Stacked horizontal bars per care manager: dollars in the plan, dollars left out of it.

    Input: rpt_outreach_summary (planned_dollars, unplanned_dollars, planned_patients,
    unplanned_patients, candidates).
    """
    total = summary.filter(pl.col("candidates") > 0).height if summary.height else 0
    rows = _outreach_rows(summary) if summary.height else summary
    if rows.height == 0:
        return empty_figure(TITLE_OUTREACH_DOLLARS, "No outreach candidates this month.")
    labels = rows.get_column("label").to_list()
    fig = go.Figure()
    fig.add_trace(
        go.Bar(name="In the plan (fits the capacity left)", orientation="h", y=labels,
               x=rows.get_column("planned_dollars").to_list(),
               customdata=rows.get_column("planned_patients").to_list(),
               marker_color=concept("expected"), meta="expected",
               hovertemplate="%{y}<br>In plan: %{x:$,.0f} from %{customdata} patients"
               "<extra></extra>")
    )
    fig.add_trace(
        go.Bar(name="Left out (no capacity left, or no care manager)", orientation="h", y=labels,
               x=rows.get_column("unplanned_dollars").to_list(),
               customdata=rows.get_column("unplanned_patients").to_list(),
               marker_color=concept("left"), meta="left",
               hovertemplate="%{y}<br>Left out: %{x:$,.0f} from %{customdata} patients"
               "<extra></extra>")
    )
    fig.update_layout(
        title=dict(text=_of_total(TITLE_OUTREACH_DOLLARS, rows.height, total)),
        barmode="stack",
        xaxis=dict(title=dict(text="Dollars gained this month"), tickformat="$,.0f"),
        yaxis=dict(title=dict(text="Care manager"), type="category"),
    )
    return apply_theme(fig, height=max(300, 140 + 30 * rows.height))


def outreach_minutes_by_care_manager(summary: pl.DataFrame) -> go.Figure:
    """Grouped horizontal bars per care manager: capacity left, minutes the plan uses, minutes
    all candidates would need. Input: rpt_outreach_summary."""
    total = summary.filter(pl.col("candidates") > 0).height if summary.height else 0
    rows = _outreach_rows(summary) if summary.height else summary
    if rows.height == 0:
        return empty_figure(TITLE_OUTREACH_MINUTES, "No outreach candidates this month.")
    labels = rows.get_column("label").to_list()
    minutes_hover = "%{y}<br>%{fullData.name}: %{x:,} min<extra></extra>"
    fig = go.Figure()
    for name, column, color in (
        ("Capacity left this month", "capacity_minutes", "capacity"),
        ("Minutes in the plan", "planned_minutes", "expected"),
        ("Minutes all candidates need", "candidate_minutes", "needed"),
    ):
        fig.add_trace(
            go.Bar(name=name, orientation="h", y=labels, x=rows.get_column(column).to_list(),
                   marker_color=concept(color), meta=color, hovertemplate=minutes_hover)
        )
    fig.update_layout(
        title=dict(text=_of_total(TITLE_OUTREACH_MINUTES, rows.height, total)),
        barmode="group",
        xaxis=dict(title=dict(text="Minutes"), tickformat=",d"),
        yaxis=dict(title=dict(text="Care manager"), type="category"),
    )
    return apply_theme(fig, height=max(320, 140 + 54 * rows.height))


def blocked_months_by_month(blocked: pl.DataFrame, incomplete: frozenset | set | None = None
                            ) -> go.Figure:
    """Stacked bars: blocked patient-months per service month, one trace per gate reason and
    program. Input: fct_compliance_blocked_months (service_month, month_status, program,
    blocked_reason, patient_months)."""
    if blocked.height == 0:
        return empty_figure(TITLE_BLOCKED, "No patient-month is blocked by a gate.")
    months = _months(blocked)
    status = {r["service_month"]: r["month_status"] for r in blocked.iter_rows(named=True)}
    incomplete = incomplete or set()
    labels = [fmt_month(m) + (" (month to date)" if status.get(m) == "open" else "")
              + (f" ({INCOMPLETE})" if m in incomplete else "") for m in months]
    keys = (
        blocked.select("blocked_reason", "program").unique()
        .sort(["blocked_reason", "program"], nulls_last=True).rows()
    )
    lookup = {(r["service_month"], r["blocked_reason"], r["program"]): r["patient_months"]
              for r in blocked.iter_rows(named=True)}
    colors = reason_colors([reason for reason, _ in keys])
    fig = go.Figure()
    for reason, program in keys:
        fig.add_trace(
            go.Bar(
                name=f"{reason_label(reason)} · {program_label(program)}",
                x=labels,
                y=[None if m in incomplete else lookup.get((m, reason, program)) or 0 for m in months],
                marker_color=colors[reason],
                meta=reason_concept(reason) if reason in REASON_COLORS else None,
                marker_pattern_shape="/" if program == "bhi" else "",
                hovertemplate="%{x}<br>%{fullData.name}: %{y} patient-months<extra></extra>",
            )
        )
    _mark_incomplete(fig, labels, [m in incomplete for m in months])
    fig.update_layout(
        title=dict(text=TITLE_BLOCKED),
        barmode="stack",
        xaxis=dict(title=dict(text="Service month"), type="category"),
        yaxis=dict(title=dict(text="Patient-months"), tickformat=",d"),
    )
    return apply_theme(fig)


def documentation_lag_heatmap(lag: pl.DataFrame) -> go.Figure:
    """Heatmap: late minutes per staff member (rows) and ISO week of service (columns).

    Input: fct_compliance_documentation_lag (staff_id, week_start, iso_week, late_minutes,
    late_entries, minutes). Empty cells are weeks without entries for that staff member.
    """
    if lag.height == 0:
        return empty_figure(TITLE_DOC_LAG, "No time entries.")
    weeks = (lag.select("week_start", "iso_week").unique().sort("week_start").rows())
    all_staff = lag.get_column("staff_id").n_unique()
    lag = top(lag, "staff_late_rank")
    staff = sorted(lag.get_column("staff_id").cast(pl.String).fill_null("(none)").unique().to_list(),
                   reverse=True)
    cell = {(r["staff_id"] if r["staff_id"] is not None else "(none)", r["week_start"]): r
            for r in lag.iter_rows(named=True)}
    z, text = [], []
    for s in staff:
        z_row, t_row = [], []
        for week_start, _ in weeks:
            r = cell.get((s, week_start))
            z_row.append(None if r is None else r["late_minutes"])
            t_row.append("" if r is None else
                         f"{r['late_entries']} late of {r['entries']} entries; "
                         f"{r['late_minutes']} of {r['minutes']} min")
        z.append(z_row)
        text.append(t_row)
    fig = go.Figure(
        go.Heatmap(
            x=[label for _, label in weeks],
            y=staff,
            z=z,
            text=text,
            colorscale=[[0.0, "#f7f8fa"], [0.001, "#fde0c5"], [1.0, concept("alert")]],
            colorbar=dict(title=dict(text="Late min")),
            hoverongaps=False,
            xgap=1,
            ygap=1,
            hovertemplate="%{y} · %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text=_of_total(TITLE_DOC_LAG, len(staff), all_staff)),
        xaxis=dict(title=dict(text="ISO week of service"), type="category"),
        yaxis=dict(title=dict(text="Staff"), type="category"),
    )
    return apply_theme(fig, height=max(320, 160 + 24 * len(staff)))


def quarantine_by_reason(quarantine: pl.DataFrame) -> go.Figure:
    """Horizontal bars: quarantined rows per extract table and reason.
    Input: fct_compliance_quarantine (table_name, reason, rows_quarantined)."""
    if quarantine.height == 0:
        return empty_figure(TITLE_QUARANTINE, "No rows were quarantined.")
    rows = quarantine.sort(["rows_quarantined", "table_name", "reason"],
                           descending=[False, True, True])
    labels = [f"{r['table_name']}: {r['reason']}" for r in rows.iter_rows(named=True)]
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=labels,
            x=rows.get_column("rows_quarantined").to_list(),
            marker_color=concept("alert"), meta="alert",
            hovertemplate="%{y}<br>%{x} rows<extra></extra>",
        )
    )
    fig.update_layout(
        title=dict(text=TITLE_QUARANTINE),
        showlegend=False,
        xaxis=dict(title=dict(text="Rows"), tickformat=",d"),
        yaxis=dict(type="category", automargin=True),
    )
    return apply_theme(fig, height=max(280, 140 + 30 * rows.height))


# The figures leadership gets as PNG for email: (file stem, builder, mart it is drawn from); a
# builder with an `incomplete` parameter also gets the incomplete months (fct_month_completeness).
LEADERSHIP_FIGURES = (
    ("program_roi_by_month", program_roi_by_month, "rpt_money_by_month"),
    ("revenue_gap_by_month", revenue_gap_by_month_and_reason, "rpt_revenue_gap_monthly"),
    ("outreach_by_care_manager", outreach_dollars_by_care_manager, "rpt_outreach_summary"),
)
