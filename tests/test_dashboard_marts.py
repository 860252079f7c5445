"""The dashboard marts (sql/marts/fct_outreach_*, fct_care_manager_capacity, rpt_worklist_pace,
fct_compliance_*, rpt_dashboard_headlines) on tiny drops built through the real SQL."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from conftest import Drop
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR


def reference_with(tmp_path: Path, **settings: str) -> Path:
    """A copy of the shipped reference folder with some settings.csv values changed."""
    ref = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    path = ref / "settings.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = {r["setting"] for r in rows}
    assert set(settings) <= names, f"unknown settings {set(settings) - names}"
    for r in rows:
        if r["setting"] in settings:
            r["value"] = settings[r["setting"]]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["setting", "value", "description"])
        writer.writeheader()
        writer.writerows(rows)
    return ref


def rows(conn, sql: str) -> list[dict]:
    rel = conn.sql(sql)
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def test_shipped_settings_have_the_dashboard_rows():
    with (DEFAULT_REFERENCE_DIR / "settings.csv").open(newline="") as fh:
        settings = {r["setting"]: r for r in csv.DictReader(fh)}
    assert settings["late_documentation_days"]["value"] == "7"
    assert float(settings["care_manager_hours_per_day"]["value"]) > 0
    assert 0 < float(settings["care_manager_cocm_share"]["value"]) <= 1
    for name in ("late_documentation_days", "care_manager_hours_per_day", "care_manager_cocm_share"):
        assert settings[name]["description"].strip(), name


# --------------------------------------------------------------------------- outreach plan

# as of Friday 2026-06-26: Monday 29 and Tuesday 30 are the business days left (2).
# capacity = fte x 2 days x 1 hour x 60 x 0.25 = fte x 30 minutes.
AS_OF_FRIDAY = "2026-06-26"


def outreach_drop(drop: Drop, fte: str) -> Drop:
    drop.staff[0]["fte"] = fte  # CM1
    for patient, minutes in (("PA", 6), ("PB", 16), ("PC", 6)):
        drop.enroll(patient, enrolled_on="2026-06-01",
                    consent_on=None if patient == "PC" else "2026-06-01")
        drop.month(patient, "2026-06", minutes)
    return drop


@pytest.fixture
def small_capacity(tmp_path: Path) -> Path:
    return reference_with(tmp_path, care_manager_hours_per_day="1", care_manager_cocm_share="0.25")


def test_capacity_is_fte_times_business_days_hours_and_share(drop, build, small_capacity):
    conn = build(outreach_drop(drop, "0.99"), AS_OF_FRIDAY, small_capacity)
    cap = rows(conn, "select * from fct_care_manager_capacity")
    assert len(cap) == 1
    assert cap[0]["care_manager_id"] == "CM1"
    assert cap[0]["business_days_left"] == 2
    assert cap[0]["capacity_minutes"] == 29  # floor(0.99 * 2 * 1 * 60 * 0.25) = floor(29.7)


def test_capacity_uses_the_shipped_settings(drop, build):
    drop.enroll("PA")
    drop.month("PA", "2026-10", 10)
    conn = build(drop, "2026-10-20")  # Tue: Oct 21-23 and 26-30 are left, 8 business days
    cap = rows(conn, "select * from fct_care_manager_capacity")[0]
    assert cap["business_days_left"] == 8
    assert cap["capacity_minutes"] == int(1 * 8 * cap["hours_per_day"] * 60 * cap["cocm_share"])


def test_last_day_of_the_month_leaves_no_capacity(drop, build):
    drop.enroll("PA")
    drop.month("PA", "2026-06", 10)
    conn = build(drop, "2026-06-30")
    assert rows(conn, "select capacity_minutes, business_days_left from fct_care_manager_capacity") == [
        {"capacity_minutes": 0, "business_days_left": 0}
    ]
    assert rows(conn, "select bool_or(in_plan) as any_in from fct_outreach_plan") == [{"any_in": False}]


def test_outreach_plan_ranks_by_dollars_per_minute_and_fills_capacity_exactly(drop, build, small_capacity):
    conn = build(outreach_drop(drop, "1"), AS_OF_FRIDAY, small_capacity)
    plan = rows(conn, "select * from fct_outreach_plan order by rank")
    # PC has no consent: a blocker, so not a candidate
    assert [p["patient_id"] for p in plan] == ["PA", "PB"]
    pa, pb = plan
    # 2026 example rates: G2214 60.79, 99492 160.32
    assert (pa["minutes_needed"], pa["dollars_gained"], pa["next_code"]) == (10, 60.79, "G2214")
    assert (pb["minutes_needed"], pb["dollars_gained"], pb["next_code"]) == (20, 99.53, "99492")
    assert pa["dollars_per_minute"] == pytest.approx(6.079)
    assert pb["dollars_per_minute"] == pytest.approx(4.9765)
    assert [p["rank"] for p in plan] == [1, 2]
    assert [p["cumulative_minutes"] for p in plan] == [10, 30]
    assert {p["capacity_minutes"] for p in plan} == {30}
    # 30 minutes needed of 30 left: the boundary is inclusive
    assert [p["in_plan"] for p in plan] == [True, True]
    for column in ("care_manager_id", "patient_id", "payer_id", "program", "minutes_needed",
                   "dollars_gained", "dollars_per_minute", "rank", "cumulative_minutes",
                   "capacity_minutes", "in_plan"):
        assert column in pa
    assert pa["care_manager_id"] == "CM1" and pa["payer_id"] == "medicare" and pa["program"] == "cocm"


def test_patient_that_would_overrun_the_capacity_left_is_not_in_plan(drop, build, small_capacity):
    conn = build(outreach_drop(drop, "0.99"), AS_OF_FRIDAY, small_capacity)
    plan = rows(conn, "select patient_id, cumulative_minutes, capacity_minutes, in_plan "
                      "from fct_outreach_plan order by rank")
    assert plan == [
        {"patient_id": "PA", "cumulative_minutes": 10, "capacity_minutes": 29, "in_plan": True},
        # 20 minutes needed, 19 left: out
        {"patient_id": "PB", "cumulative_minutes": 30, "capacity_minutes": 29, "in_plan": False},
    ]
    summary = rows(conn, "select * from rpt_outreach_summary where care_manager_id = 'CM1'")[0]
    assert summary["candidates"] == 2
    assert summary["planned_patients"] == 1
    assert summary["planned_minutes"] == 10
    assert summary["planned_dollars"] == pytest.approx(60.79)  # 2026 example rates
    assert summary["unplanned_dollars"] == pytest.approx(99.53)
    assert summary["reachable_dollars"] == pytest.approx(60.79 + 99.53 + 60.79)  # PC too, blocked
    head = rows(conn, "select * from rpt_dashboard_headlines")[0]
    assert head["outreach_planned_dollars"] == pytest.approx(60.79)
    assert head["outreach_planned_patients"] == 1
    assert head["business_days_left"] == 2


# --------------------------------------------------------------------------- worklist pace


def test_worklist_pace_projects_minutes_to_month_end(drop, build):
    # as of 2026-06-15: 15 of 30 days elapsed, so the projection doubles the minutes so far
    for patient, minutes in (("PA", 20), ("PB", 6)):
        drop.enroll(patient, enrolled_on="2026-06-01", consent_on="2026-06-01")
        drop.month(patient, "2026-06", minutes)
    conn = build(drop, "2026-06-15")
    pace = {r["patient_id"]: r for r in rows(conn, "select * from rpt_worklist_pace")}
    pa, pb = pace["PA"], pace["PB"]
    assert (pa["days_in_month"], pa["days_elapsed"], pa["days_left"]) == (30, 15, 15)
    assert pa["projected_minutes"] == 40 and pa["next_threshold_minutes"] == 36
    assert pa["pace_status"] == "on pace"
    assert pb["projected_minutes"] == 12 and pb["next_threshold_minutes"] == 16
    assert pb["pace_status"] == "behind pace"
    assert pb["minutes_per_day_needed"] == pytest.approx(10 / 15, abs=0.05)
    assert sorted(r["worklist_rank"] for r in pace.values()) == [1, 2]
    head = rows(conn, "select * from rpt_dashboard_headlines")[0]
    assert head["patient_programs_behind_pace"] == 1 and head["patient_programs_on_pace"] == 1


# --------------------------------------------------------------------------- compliance


def lag_drop(drop: Drop) -> Drop:
    drop.enroll("PA")
    drop.log("PA", "2026-06-01", 10)
    drop.entries[-1]["documented_at"] = "2026-06-08"  # 7 days: on time
    drop.log("PA", "2026-06-02", 12)
    drop.entries[-1]["documented_at"] = "2026-06-10"  # 8 days: late
    drop.log("PA", "2026-06-03", 5)  # no documented_at
    drop.log("PA", "2026-06-04", 7)
    drop.entries[-1]["documented_at"] = "2026-06-04"
    return drop


def test_documentation_lag_boundary_7_days_is_on_time_8_is_late(drop, build):
    conn = build(lag_drop(drop), "2026-06-15")
    lag = rows(conn, "select * from fct_compliance_documentation_lag")
    assert len(lag) == 1
    week = lag[0]
    assert week["staff_id"] == "CM1" and week["role"] == "care_manager"
    assert str(week["week_start"]) == "2026-06-01" and week["iso_week"] == "2026-W23"
    assert week["late_documentation_days"] == 7
    assert (week["entries"], week["minutes"]) == (4, 34)
    assert (week["late_entries"], week["late_minutes"]) == (1, 12)
    assert week["undated_entries"] == 1
    assert week["max_lag_days"] == 8
    assert week["late_minutes_pct"] == pytest.approx(round(100 * 12 / 34, 1))


def test_documentation_lag_threshold_is_a_setting(drop, build, tmp_path):
    ref = reference_with(tmp_path, late_documentation_days="8")
    conn = build(lag_drop(drop), "2026-06-15", ref)
    week = rows(conn, "select * from fct_compliance_documentation_lag")[0]
    assert week["late_documentation_days"] == 8
    assert (week["late_entries"], week["late_minutes"]) == (0, 0)


def test_blocked_months_and_quarantine_counts(drop, build):
    drop.enroll("PA", consent_on=None)  # no consent: every month blocked
    drop.month("PA", "2026-05", 40)
    drop.enroll("PB")
    drop.month("PB", "2026-05", 40, review=False)  # no psychiatric review in May
    drop.log("PB", "2026-05-20", "abc")  # quarantined: unreadable minutes
    drop.log("PB", "2026-05-21", "0")  # quarantined: minutes must be > 0
    conn = build(drop, "2026-06-15")
    blocked = rows(conn, "select * from fct_compliance_blocked_months "
                         "where month_status = 'closed' order by blocked_reason")
    assert [(str(b["service_month"]), b["blocked_reason"], b["patient_months"]) for b in blocked] == [
        ("2026-05-01", "missing_consent", 1),
        ("2026-05-01", "missing_psych_review", 1),
    ]
    consent, review = blocked
    assert consent["minutes_held_back"] == 40 and consent["dollars_held_back"] > 0
    assert review["minutes_held_back"] == 40 and review["dollars_held_back"] > 0
    quarantine = rows(conn, "select * from fct_compliance_quarantine")
    assert sum(q["rows_quarantined"] for q in quarantine) == 2
    assert {q["table_name"] for q in quarantine} == {"time_entries"}
    head = rows(conn, "select * from rpt_dashboard_headlines")[0]
    assert head["quarantined_rows"] == 2
    assert head["blocked_months_closed"] == 2
    assert head["blocked_dollars_closed"] == pytest.approx(
        consent["dollars_held_back"] + review["dollars_held_back"]
    )


# --------------------------------------------------------------------------- run health


def _te_file(path: Path, rows: list[dict], columns: list[str]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns})


def _drop_with_a_rejected_september(tmp_path: Path) -> Drop:
    """Daily entries (every business day) Jul-Oct 2026; September's file is rejected (no minutes
    column), so September has no entries at all."""
    import datetime as dt

    d = Drop(tmp_path / "drop")
    d.enroll("P1", enrolled_on="2026-06-01", consent_on="2026-06-01")
    day = dt.date(2026, 7, 1)
    september = []
    while day <= dt.date(2026, 10, 20):
        if day.isoweekday() <= 5:
            if day.month == 9:
                september.append({"entry_id": f"S{day:%m%d}", "patient_id": "P1", "staff_id": "CM1",
                                  "service_date": day.isoformat(), "activity": "follow_up"})
            else:
                d.log("P1", day.isoformat(), 5)
        day += dt.timedelta(days=1)
    for month in ("2026-07", "2026-08", "2026-10"):
        d.review("P1", f"{month}-15")
    d.write()
    _te_file(d.folder / "time_entries_2026-09.csv", september,
             ["entry_id", "patient_id", "staff_id", "service_date", "activity"])
    return d


def test_rejected_month_file_marks_the_month_incomplete(tmp_path: Path):
    """A rejected time_entries_2026-09.csv: September is incomplete (named by the file, and a gap
    in a daily flow), on the ROI and overview pages (chart label, table row, banner) and in the
    exports, never a $0 month; the ROI totals leave it out and say so."""
    import datetime as dt

    from conftest import build_warehouse
    from dashboards import site
    from pipelines.outputs.exports import write_exports

    d = _drop_with_a_rejected_september(tmp_path)
    # every model: the exports and the site read most marts
    conn = build_warehouse(tmp_path / "w.duckdb", d.folder, "2026-10-20", every_model=True)
    try:
        assert rows(conn, "select source_file from ingest_errors") == [
            {"source_file": "time_entries_2026-09.csv"}]
        months = {r["service_month"].strftime("%Y-%m"): r for r in rows(conn, "select * from fct_month_completeness")}
        assert [m for m, r in months.items() if r["is_incomplete"]] == ["2026-09"]
        reasons = months["2026-09"]["incomplete_reasons"]
        assert "rejected file time_entries_2026-09.csv" in reasons
        assert "no time entries for 22 business days" in reasons
        assert months["2026-08"]["daily_flow"] and months["2026-08"]["longest_gap_business_days"] == 0
        health = rows(conn, "select * from fct_run_health")[0]
        assert health["files_rejected"] == 1 and health["incomplete_month_list"] == "2026-09"
        assert not health["is_stale"]
        summary = rows(conn, "select * from rpt_run_summary")[0]
        assert summary["incomplete_month_list"] == "2026-09" and summary["files_rejected"] == 1
        roi = rows(conn, "select * from rpt_program_roi_facility where is_total")[0]
        assert roi["closed_months"] == 2 and roi["incomplete_months_excluded"] == 1

        out = tmp_path / "out"
        write_exports(conn, out)
        with (out / "month_completeness.csv").open() as fh:
            exported = {r["service_month"]: r for r in csv.DictReader(fh)}
        assert exported["2026-09"]["is_incomplete"] == "true"
        assert "rejected file" in exported["2026-09"]["incomplete_reasons"]
        assert exported["2026-08"]["is_incomplete"] == "false"

        site.render_site(conn, out / "dashboards")
    finally:
        conn.close()
    for name in ("roi.html", "index.html"):
        text = (out / "dashboards" / name).read_text()
        assert "2026-09 (incomplete data)" in text, name  # the chart's month label
        assert "2026-09 is incomplete (rejected file time_entries_2026-09.csv" in text, name
    roi_text = (out / "dashboards" / "roi.html").read_text()
    assert '<tr class="incomplete"><td class="nowrap">2026-09</td>' in roi_text
    assert "1 incomplete left out" in roi_text
    # drill-down: the worklist's open-month patient links to its `bhi explain` page; leadership
    # pages link to none
    key = (tmp_path / ("w.duckdb" + site.DRILLDOWN_KEY_SUFFIX)).read_bytes()  # beside the warehouse
    href = site.drilldown_href("P1", dt.date(2026, 10, 1), key)
    assert f'<a class="drill" href="{href}">P1</a>' in (out / "dashboards" / "worklist.html").read_text()
    explained = (out / "dashboards" / href).read_text()
    assert "P1, 2026-10" in explained and "entries:" in explained and 'id="run-health"' in explained
    assert 'src="../plotly.min.js"' in explained and 'href="../roi.html"' in explained
    for name in ("roi.html", "index.html", "compliance.html"):
        assert "explain/" not in (out / "dashboards" / name).read_text(), name


def test_month_completeness_rules_need_a_daily_flow(drop: Drop, build):
    """A sparse extract (a few entries a month, like most test drops) is not judged by the gap and
    volume rules: only a rejected file makes its month incomplete."""
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    drop.month("P1", "2026-02", 20)
    conn = build(drop, "2026-03-10")
    got = rows(conn, "select service_month, daily_flow, is_incomplete from fct_month_completeness")
    assert [r["is_incomplete"] for r in got] == [False, False, False]
    assert not any(r["daily_flow"] for r in got)


def test_low_volume_month_is_incomplete(tmp_path: Path):
    """Daily entries, but one month with a fifth of the usual entries per business day: incomplete
    by the volume rule (incomplete_month_volume_share 0.5), not by the gap rule."""
    import datetime as dt

    from conftest import build_warehouse

    d = Drop(tmp_path / "drop")
    d.enroll("P1", enrolled_on="2026-06-01", consent_on="2026-06-01")
    day = dt.date(2026, 7, 1)
    while day <= dt.date(2026, 10, 20):
        if day.isoweekday() <= 5:
            for _ in range(1 if day.month == 8 else 5):
                d.log("P1", day.isoformat(), 2)
        day += dt.timedelta(days=1)
    d.write()
    conn = build_warehouse(tmp_path / "w.duckdb", d.folder, "2026-10-20")
    try:
        got = {r["service_month"].strftime("%Y-%m"): r
               for r in rows(conn, "select * from fct_month_completeness")}
    finally:
        conn.close()
    assert [m for m, r in got.items() if r["is_incomplete"]] == ["2026-08"]
    assert "1.0 entries per business day vs 5.0 usually" in got["2026-08"]["incomplete_reasons"]


def test_stale_extract_in_run_health(drop: Drop, build):
    """The newest time entry more than stale_extract_days (3) before the as-of date: stale. Exactly
    3 days: not stale."""
    drop.enroll("P1")
    drop.log("P1", "2026-03-02", 20)
    drop.log("P1", "2026-03-06", 20)
    fresh = rows(build(drop, "2026-03-09"), "select * from fct_run_health")[0]
    assert fresh["days_since_newest_entry"] == 3 and not fresh["is_stale"]
    stale = rows(build(drop, "2026-03-10"), "select * from fct_run_health")[0]
    assert stale["days_since_newest_entry"] == 4 and stale["is_stale"]
    assert stale["stale_sources"] == 1  # time entries of F1


def test_roi_charges_the_program_share_and_prorates_the_open_month(drop: Drop, build):
    """Care-manager cost = annual cost x fte / 12 x care_manager_cocm_share (0.5); the open month's
    cost is prorated to the days elapsed (10 of 31)."""
    drop.enroll("P1")
    drop.month("P1", "2026-02", 70)
    drop.month("P1", "2026-03", 20)
    conn = build(drop, "2026-03-10")
    got = {r["service_month"].strftime("%Y-%m"): r
           for r in rows(conn, "select * from fct_program_roi order by service_month")}
    assert got["2026-02"]["care_manager_cost"] == pytest.approx(72000 / 12 * 0.5)
    assert got["2026-02"]["cost_share_of_month"] == 1.0
    assert got["2026-03"]["care_manager_cost"] == pytest.approx(round(72000 / 12 * 0.5 * 10 / 31, 2))
    assumptions = rows(conn, "select assumption, value from rpt_program_roi_assumptions")
    assert [a["assumption"] for a in assumptions][:3] == ["Care manager cost", "Other program costs",
                                                          "Open month"]
    assert "program share of 50%" in assumptions[0]["value"]
    assert "prorated to 10 of 31 days" in assumptions[2]["value"]
    be = rows(conn, "select * from rpt_program_roi_break_even")[0]
    # February: 1 billed patient-month; cost 3,000 a care manager-month
    assert be["cost_per_care_manager_month"] == pytest.approx(3000.0)
    assert be["break_even_billed_patient_months_per_care_manager"] == -(-3000 // be["revenue_per_billed_patient_month"])


def test_bhi_run_exits_3_on_a_stale_extract_unless_allowed(drop: Drop, build, tmp_path: Path,
                                                           capsys, monkeypatch):
    """`bhi run` on an extract whose newest entry is 9 days before the as-of date (more than
    stale_extract_days = 3): the run-health line says STALE and the exit code is 3; with
    --allow-stale the same run exits 0. The pipeline itself is replaced by the run summary of a
    warehouse built here (the SQL is the same; a Dagster run would take ~25 s)."""
    import datetime as dt

    import pipelines.run
    from pipelines.cli import STALE_EXIT_CODE, main
    from pipelines.run import RunOutcome

    drop.enroll("P1")
    drop.month("P1", "2026-02", 40)  # entries on 2026-02-02 and 2026-02-03
    conn = build(drop, "2026-02-12")
    summary = rows(conn, "select * from rpt_run_summary")[0]
    assert summary["is_stale"] and summary["days_since_newest_entry"] == 9
    assert summary["newest_entry_date"] == dt.date(2026, 2, 3)
    outcome = RunOutcome(success=True, summary=summary, build={"mode": "full", "reason": "test"})
    monkeypatch.setattr(pipelines.run, "run_pipeline", lambda **kw: outcome)
    args = ["run", "--extracts", str(drop.folder), "--out", str(tmp_path / "out"), "--as-of", "2026-02-12"]
    assert main(args) == STALE_EXIT_CODE == 3
    captured = capsys.readouterr()
    assert ("run health              newest entry 2026-02-03 (9 days before as-of, STALE); "
            "0 files rejected; 0 field warnings; 0 unpriced lines; incomplete months: none") in captured.out
    assert "stale extract" in captured.err and "--allow-stale" in captured.err
    assert "P1" not in captured.err  # no patient identifiers in the message
    assert main([*args, "--allow-stale"]) == 0
