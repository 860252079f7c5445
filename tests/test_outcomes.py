"""Outcome measures of measurement-based care (docs/outcomes.md) at their window edges: the 10-14 week
window (day 69 vs 70), the response share (49% vs 50%), remission (PHQ-9 5 vs 4), the treat-to-target
flag (review on the mark's day vs the day before), follow-up in the last 4 weeks (day 28 vs 27), and
episodes without a baseline counted, not dropped. One warehouse for the module: each patient is one
hand-built score series."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import Drop, build_warehouse

BASELINE = dt.date(2026, 1, 5)
AS_OF = "2026-09-20"


def day(n: int) -> str:
    return (BASELINE + dt.timedelta(days=n)).isoformat()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("outcomes")
    d = Drop(folder / "drop")
    d.add_staff("CM2", "care_manager")
    d.add_staff("CM3", "care_manager")
    d.add_staff("CM4", "care_manager")

    def patient(pid: str, scores: list[tuple[int, float]], *, staff="CM1", reviews: list[int] | None = None):
        d.enroll(pid, enrolled_on="2026-01-01")
        for m in range(1, 10):
            d.month(pid, f"2026-{m:02d}", 40, review=reviews is None, staff=staff)
        for n in reviews or []:
            d.review(pid, day(n))
        for n, score in scores:
            d.assess(pid, day(n), "phq9", score)

    patient("EARLY69", [(0, 20), (69, 8)])  # the only follow-up falls a day before the window
    patient("EARLY70", [(0, 20), (70, 8)])  # first day of the 10-14 week window
    patient("LAST98", [(0, 20), (70, 8), (98, 16)])  # the window's last score is judged
    patient("RED49", [(0, 20), (80, 10.2)])  # 49% reduction
    patient("RED50", [(0, 20), (80, 10)])  # 50% reduction
    patient("REMIT5", [(0, 20), (150, 5)])
    patient("REMIT4", [(0, 20), (150, 4)])
    patient("SIX119", [(0, 20), (119, 2)])  # a day before the 6-month window: no score in it
    # treat to target: still short of a response after 10 weeks, reviews on either side of the mark
    patient("STUCK69", [(0, 20), (100, 18)], reviews=[69])
    patient("STUCK70", [(0, 20), (100, 18)], reviews=[70])
    patient("BETTER", [(0, 20), (100, 9)], reviews=[])
    # follow-up per month for care manager CM2 (April: last 4 weeks = Apr 3 .. Apr 30)
    d.enroll("F1", enrolled_on="2026-01-01")
    d.enroll("F2", enrolled_on="2026-01-01")
    d.enroll("F3", enrolled_on="2026-01-01")
    d.enroll("F4", enrolled_on="2026-01-01")
    for pid in ("F1", "F2", "F3", "F4"):
        for m in range(1, 10):
            d.month(pid, f"2026-{m:02d}", 40, staff="CM2")
    for pid in ("F1", "F2", "F4"):
        d.assess(pid, "2026-01-05", "phq9", 15)
    d.assess("F1", "2026-04-10", "phq9", 12)
    d.assess("F2", "2026-03-30", "phq9", 12)
    d.assess("F4", "2026-04-02", "phq9", 12)  # in April, but 28 days before April's end: not in the last 4 weeks
    # discharges (care manager CM3): one with its reason, one without
    d.enroll("GONE1", enrolled_on="2026-01-01", discharged_on="2026-04-10", discharge_reason=" Goals_Met ")
    d.enroll("GONE2", enrolled_on="2026-01-01", discharged_on="2026-05-20")
    for pid in ("GONE1", "GONE2"):
        for m in range(1, 4):
            d.month(pid, f"2026-{m:02d}", 40, staff="CM3")
    # an episode under way before the extracts begin (enrolled 2025-06, care manager CM4): its first
    # score in the data is not its baseline; its scores count as follow-ups
    d.enroll("CONT", enrolled_on="2025-06-02", consent_on="2025-06-02")
    for m in range(1, 10):
        d.month("CONT", f"2026-{m:02d}", 40, staff="CM4")
    d.assess("CONT", "2026-02-10", "phq9", 14)
    d.assess("CONT", "2026-04-20", "phq9", 5)
    conn = build_warehouse(folder / "w.duckdb", d.write(), AS_OF)
    yield conn
    conn.close()


def episode(conn, patient: str) -> dict:
    rel = conn.execute("select * from fct_outcome_episodes where patient_id = ?", [patient])
    cols = [c[0] for c in rel.description]
    rows = rel.fetchall()
    assert len(rows) == 1, rows
    return dict(zip(cols, rows[0]))


def test_a_score_on_day_69_is_before_the_10_week_window(outcomes):
    assert episode(outcomes, "EARLY69")["early_response"] == "no_score_in_window"


def test_a_score_on_day_70_is_judged_in_the_10_week_window(outcomes):
    assert episode(outcomes, "EARLY70")["early_response"] == "response"


def test_the_last_score_of_the_window_is_judged(outcomes):
    row = episode(outcomes, "LAST98")
    assert row["early_response"] == "no_response"
    assert row["early_judged_on"] == BASELINE + dt.timedelta(days=98)


def test_a_49_percent_reduction_is_not_a_response(outcomes):
    assert episode(outcomes, "RED49")["early_response"] == "no_response"


def test_a_50_percent_reduction_is_a_response(outcomes):
    row = episode(outcomes, "RED50")
    assert row["early_response"] == "response"
    assert row["latest_reduction"] == pytest.approx(0.5)


def test_phq9_of_5_at_six_months_is_not_remission(outcomes):
    row = episode(outcomes, "REMIT5")
    assert row["six_month_remission"] == "no_remission"
    assert row["six_month_response"] == "response"


def test_phq9_of_4_at_six_months_is_remission(outcomes):
    assert episode(outcomes, "REMIT4")["six_month_remission"] == "remission"


def test_a_score_a_day_before_the_six_month_window_does_not_count(outcomes):
    row = episode(outcomes, "SIX119")
    assert row["six_month_remission"] == "no_score_in_window"
    assert row["six_month_response"] == "no_score_in_window"


def test_not_improving_without_a_review_since_the_10_week_mark_is_flagged(outcomes):
    assert episode(outcomes, "STUCK69")["not_improving_without_review"] is True


def test_a_review_on_the_10_week_mark_clears_the_not_improving_flag(outcomes):
    assert episode(outcomes, "STUCK70")["not_improving_without_review"] is False


def test_an_improving_patient_is_not_flagged(outcomes):
    assert episode(outcomes, "BETTER")["not_improving_without_review"] is False


def test_episodes_without_a_baseline_are_counted_not_dropped(outcomes):
    row = episode(outcomes, "F3")
    assert row["has_baseline"] is False
    assert row["early_response"] == "no_baseline"
    rows = outcomes.execute(
        "select without_baseline from rpt_outcomes_monthly where care_manager_id = 'CM2'"
        " and service_month = '2026-04-01'"
    ).fetchall()
    assert rows == [(1,)]


def test_follow_up_in_the_month_and_in_the_last_4_weeks(outcomes):
    rows = outcomes.execute(
        "select strftime(service_month, '%Y-%m'), active_patients, follow_up_in_month, follow_up_last_4_weeks"
        " from rpt_outcomes_monthly where care_manager_id = 'CM2' and service_month between '2026-03-01'"
        " and '2026-05-01' order by 1"
    ).fetchall()
    assert rows == [("2026-03", 4, 1, 1), ("2026-04", 4, 2, 1), ("2026-05", 4, 0, 0)]


def test_window_outcomes_count_in_the_month_they_became_known(outcomes):
    # CM1's 10-14 week windows (days 70-98: Mar 16 - Apr 13). March: EARLY70, RED49, RED50 scored on
    # days 70 and 80 (2 responses). April: LAST98 scored on day 98; EARLY69, REMIT5, REMIT4, SIX119,
    # STUCK69, STUCK70 and BETTER closed empty on day 98
    rows = outcomes.execute(
        "select strftime(service_month, '%Y-%m'), sum(early_judged)::int, sum(early_responses)::int"
        " from rpt_outcomes_monthly where care_manager_id = 'CM1' and early_judged > 0 group by 1 order by 1"
    ).fetchall()
    assert rows == [("2026-03", 3, 2), ("2026-04", 8, 0)]


def test_discharges_are_counted_by_reason_with_time_in_program(outcomes):
    gone1, gone2, stays = episode(outcomes, "GONE1"), episode(outcomes, "GONE2"), episode(outcomes, "F1")
    assert (gone1["discharge_reason"], gone1["days_in_program"]) == ("goals_met", 100)  # Jan 1 - Apr 10
    assert (gone2["discharge_reason"], gone2["days_in_program"]) == ("not recorded", 140)  # Jan 1 - May 20
    assert stays["discharge_reason"] is None
    rows = outcomes.execute(
        "select discharge_reason, episodes, median_days_in_program from fct_outcome_discharges"
        " where not is_total order by 1"
    ).fetchall()
    assert rows == [("goals_met", 1, 100), ("not recorded", 1, 140)]


def test_an_episode_under_way_before_the_data_is_counted_for_follow_up_but_never_judged(outcomes):
    row = episode(outcomes, "CONT")
    assert row["started_before_data"] is True and row["episode_number"] == 0
    assert (row["baseline_date"], row["has_baseline"], row["instrument"]) == (None, False, "phq9")
    assert row["early_response"] == row["six_month_remission"] == "baseline_before_data"
    rows = outcomes.execute(
        "select strftime(service_month, '%Y-%m'), active_patients, without_baseline, baseline_before_data,"
        " follow_up_in_month, follow_up_last_4_weeks from rpt_outcomes_monthly where care_manager_id = 'CM4'"
        " and service_month in ('2026-02-01', '2026-03-01', '2026-04-01') order by 1"
    ).fetchall()
    assert rows == [("2026-02", 1, 0, 1, 1, 1), ("2026-03", 1, 0, 1, 0, 0), ("2026-04", 1, 0, 1, 1, 1)]
