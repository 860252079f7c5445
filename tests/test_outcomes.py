"""Outcome measures of measurement-based care (docs/outcomes.md) at their window edges: the 10-14 week
window (day 69 vs 70), the response share (49% vs 50%), remission (PHQ-9 5 vs 4), the treat-to-target
flag (review on the mark's day vs the day before), follow-up in the last 4 weeks (day 28 vs 27), and
episodes without a baseline counted, not dropped. One warehouse for the module: each patient is one
hand-built score series."""

from __future__ import annotations

import datetime as dt
import re
import shutil

import duckdb
import polars as pl
import pytest

from dashboards.render import n_of
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR, ReferenceDataError, seed_reference
from tests.conftest import SAMPLE_DIR, Drop, build_warehouse

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


def one_row(conn, sql: str, params: list) -> dict:
    rel = conn.execute(sql, params)
    cols = [c[0] for c in rel.description]
    rows = rel.fetchall()
    assert len(rows) == 1, rows
    return dict(zip(cols, rows[0]))


def episode(conn, patient: str) -> dict:
    return one_row(conn, "select * from fct_outcome_episodes where patient_id = ?", [patient])


def measure(conn, patient: str, name: str) -> dict:
    """The patient's row of a published measure (fct_outcome_measures)."""
    return one_row(conn, "select * from fct_outcome_measures where patient_id = ? and measure = ?", [patient, name])


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


def test_phq9_of_5_at_four_to_eight_months_is_not_remission(outcomes):
    assert measure(outcomes, "REMIT5", "drre_remission")["result"] == "not_met"
    assert measure(outcomes, "REMIT5", "drre_response")["result"] == "met"


def test_phq9_of_4_at_four_to_eight_months_is_remission(outcomes):
    assert measure(outcomes, "REMIT4", "drre_remission")["result"] == "met"


def test_a_score_a_day_before_the_drre_window_does_not_count(outcomes):
    # HEDIS DRR-E: 120-240 days after the index; day 119 is outside, and a closed window without a
    # score is in the denominator, not met
    row = measure(outcomes, "SIX119", "drre_remission")
    assert (row["result"], row["in_denominator"], row["met"]) == ("no_score_in_window", True, False)
    assert measure(outcomes, "SIX119", "drre_follow_up")["result"] == "no_score_in_window"


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
    assert row["early_response"] == "baseline_before_data"
    rows = outcomes.execute(
        "select strftime(service_month, '%Y-%m'), active_patients, without_baseline, baseline_before_data,"
        " follow_up_in_month, follow_up_last_4_weeks from rpt_outcomes_monthly where care_manager_id = 'CM4'"
        " and service_month in ('2026-02-01', '2026-03-01', '2026-04-01') order by 1"
    ).fetchall()
    assert rows == [("2026-02", 1, 0, 1, 1, 1), ("2026-03", 1, 0, 1, 0, 0), ("2026-04", 1, 0, 1, 1, 1)]


# --------------------------------------------------------------------------- the published measures
# CMS159v14 (remission at 12 months +/- 60 days), CBE 1884 (response at 6 months +/- 60 days), HEDIS
# DRR-E (follow-up / response / remission 120-240 days after the index): per patient, the index PHQ-9
# above 9, the window fixed from the index whatever happened to the enrollment, the most recent score in
# it. A warehouse of its own: its data begins in January 2025, so 12-month windows close before AS_OF_12.

INDEX = dt.date(2025, 1, 6)
AS_OF_12 = "2026-06-15"


def after(n: int) -> str:
    return (INDEX + dt.timedelta(days=n)).isoformat()


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    folder = tmp_path_factory.mktemp("published")
    d = Drop(folder / "drop")

    def patient(pid: str, scores: list[tuple[str, float]], *, months=range(1, 4), enrolled_on="2025-01-01",
                discharged_on="", diagnosis="F32.1", instrument="phq9"):
        d.enroll(pid, enrolled_on=enrolled_on, consent_on=enrolled_on, discharged_on=discharged_on,
                 diagnosis=diagnosis)
        for m in months:
            d.month(pid, f"2025-{m:02d}", 40)
        for day_, score in scores:
            d.assess(pid, day_, instrument, score)

    # index eligibility: the first PHQ-9 must be above 9
    patient("IDX9", [(after(0), 9), (after(150), 3)])
    patient("IDX10", [(after(0), 10), (after(150), 3)])
    # discharged goals met on day 99, PHQ-9 of 3 on day 180: inside the windows fixed from the index
    patient("DISCH", [(after(0), 20), (after(180), 3)], months=range(1, 5), discharged_on=after(99))
    # discharged on day 149, PHQ-9 of 3 the day after (inside the DRR-E window, days 120-240)
    patient("DISCH1", [(after(0), 20), (after(150), 3)], months=range(1, 6), discharged_on=after(149))
    # look-back: a score 7 days before the enrollment is the baseline, 8 days before is not; across a
    # month boundary as within a month
    # (their service begins in April: the index event is the enrollment, not the first month of service)
    patient("LB7", [("2025-03-09", 20), ("2025-03-18", 14)], months=range(4, 6), enrolled_on="2025-03-16")
    patient("LB8", [("2025-03-08", 20), ("2025-03-18", 14)], months=range(4, 6), enrolled_on="2025-03-16")
    patient("LBX", [("2025-02-24", 18), ("2025-03-20", 12)], months=range(3, 6), enrolled_on="2025-03-03")
    # a PHQ-9 and a GAD-7 on the same day: the diagnosis decides the instrument
    for pid, diagnosis in (("DXDEP", "F32.1"), ("DXANX", "F41.1")):
        patient(pid, [(after(0), 18), (after(80), 4)], diagnosis=diagnosis)
        d.assess(pid, after(0), "gad7", 15)
        d.assess(pid, after(80), "gad7", 14)
    # CMS159: 12 months after the index (2026-01-06) +/- 60 days = 2025-11-07 .. 2026-03-07
    for pid, day_ in (("Y12M60", "2025-11-07"), ("Y12M61", "2025-11-06"), ("Y12P60", "2026-03-07"),
                      ("Y12P61", "2026-03-08")):
        patient(pid, [(after(0), 20), (day_, 3)])
    # exclusions: a bipolar diagnosis on another enrollment, before the DRR-E window ends / after it
    # ends but before the CMS159 window ends
    patient("BIPOLAR", [(after(0), 20), (after(150), 3)])
    d.enroll("BIPOLAR", program="bhi", enrolled_on="2025-06-01", diagnosis="F31.81")
    patient("LATEBIP", [(after(0), 20), (after(150), 3)])
    d.enroll("LATEBIP", program="bhi", enrolled_on="2025-10-01", diagnosis="F31.81")
    conn = build_warehouse(folder / "w.duckdb", d.write(), AS_OF_12)
    yield conn
    conn.close()


def test_an_index_phq9_of_9_is_not_in_the_denominator(published):
    row = measure(published, "IDX9", "drre_remission")
    assert (row["result"], row["in_denominator"], row["index_date"]) == ("not_in_denominator", False, None)
    assert "above 9" in row["reason"] and "first: 9 on 2025-01-06" in row["reason"]


def test_an_index_phq9_of_10_is_judged(published):
    row = measure(published, "IDX10", "drre_remission")
    assert (row["result"], row["index_score"], row["in_denominator"], row["met"]) == ("met", 10, True, True)


def test_a_score_after_discharge_inside_the_window_counts(published):
    # old code: the window was cut at the discharge (six_month_remission = no_score_in_window)
    row = measure(published, "DISCH", "drre_remission")
    assert (row["result"], row["result_date"]) == ("met", INDEX + dt.timedelta(days=180))
    assert measure(published, "DISCH", "nqf1884_response_6m")["result"] == "met"
    assert episode(published, "DISCH")["discharged_on"] == INDEX + dt.timedelta(days=99)
    row = measure(published, "DISCH1", "drre_remission")
    assert (row["result"], row["result_date"]) == ("met", INDEX + dt.timedelta(days=150))
    assert episode(published, "DISCH1")["episode_end"] == INDEX + dt.timedelta(days=149)


def test_a_score_7_days_before_enrollment_is_the_baseline(published):
    row = episode(published, "LB7")
    assert (row["baseline_date"], row["baseline_score"]) == (dt.date(2025, 3, 9), 20)


def test_a_score_8_days_before_enrollment_is_not_the_baseline(published):
    # old code: any score from the 1st of the enrollment's month was the baseline (20 on 03-08)
    row = episode(published, "LB8")
    assert (row["baseline_date"], row["baseline_score"]) == (dt.date(2025, 3, 18), 14)


def test_the_look_back_does_not_depend_on_the_month_boundary(published):
    # enrolled 03-03, scored 02-24 (7 days before, in February): old code took 03-20 as the baseline
    row = episode(published, "LBX")
    assert (row["baseline_date"], row["baseline_score"]) == (dt.date(2025, 2, 24), 18)


def test_a_depression_diagnosis_is_measured_by_the_phq9_beside_a_same_day_gad7(published):
    # old code: the same-day tie went to the instrument name (gad7): no response
    row = episode(published, "DXDEP")
    assert (row["instrument"], row["baseline_score"], row["early_response"]) == ("phq9", 18, "response")
    assert measure(published, "DXDEP", "drre_follow_up")["index_score"] == 18


def test_an_anxiety_diagnosis_is_measured_by_the_gad7_beside_a_same_day_phq9(published):
    row = episode(published, "DXANX")
    assert (row["instrument"], row["baseline_score"], row["early_response"]) == ("gad7", 15, "no_response")
    rows = published.execute(
        "select measure from fct_outcome_measures where patient_id = 'DXANX' order by measure").fetchall()
    assert rows == [("gad7_remission_4_8m",), ("gad7_response_4_8m",)]  # not in the depression measures


@pytest.mark.parametrize("patient,result", [("Y12M61", "no_score_in_window"), ("Y12M60", "met"),
                                            ("Y12P60", "met"), ("Y12P61", "no_score_in_window")])
def test_cms159_remission_at_12_months_plus_minus_60_days(published, patient, result):
    row = measure(published, patient, "cms159_remission_12m")
    assert (row["window_from"], row["window_to"]) == (dt.date(2025, 11, 7), dt.date(2026, 3, 7))
    assert (row["result"], row["in_denominator"]) == (result, True)


def test_a_bipolar_diagnosis_before_the_window_ends_excludes_the_patient(published):
    for name in ("cms159_remission_12m", "drre_remission", "nqf1884_response_6m"):
        row = measure(published, "BIPOLAR", name)
        assert (row["result"], row["in_denominator"]) == ("excluded", False), name
        assert row["reason"] == "excluded: bipolar disorder (F31.81) on an enrollment"
    # diagnosed 2025-10-01: after the DRR-E window (to 2025-09-03), before the CMS159 window ends
    assert measure(published, "LATEBIP", "drre_remission")["result"] == "met"
    assert measure(published, "LATEBIP", "cms159_remission_12m")["result"] == "excluded"


def test_measure_counts_by_care_manager_and_month_of_index(published):
    rows = published.execute(
        "select grouping_level, strftime(index_month, '%Y-%m'), met, denominator, excluded, without_index"
        " from rpt_outcome_measures where measure = 'drre_remission' and grouping_level in ('total', 'index_month')"
        " order by grouping_level, index_month nulls first"
    ).fetchall()
    # depression patients indexed in January: IDX10, DISCH, DISCH1, LATEBIP met, BIPOLAR excluded, DXDEP
    # and the four Y12* not met (no score 120-240 days after the index); LBX indexed in February, LB7 /
    # LB8 in March, not met; IDX9 without an index
    assert rows == [("index_month", None, 0, 0, 0, 1), ("index_month", "2025-01", 4, 9, 1, 0),
                    ("index_month", "2025-02", 0, 1, 0, 0), ("index_month", "2025-03", 0, 2, 0, 0),
                    ("total", None, 4, 12, 1, 1)]
    by_care_manager = published.execute(
        "select care_manager_id, care_manager_name, met, denominator from rpt_outcome_measures"
        " where measure = 'drre_remission' and grouping_level = 'care_manager'").fetchall()
    assert by_care_manager == [("CM1", None, 4, 12)]


# --------------------------------------------------------------------------- the bundled sample


def test_the_sample_outcomes_page_and_outcome_measures_csv_agree(sample_run):
    out, _ = sample_run
    frame = pl.read_csv(out / "outcome_measures.csv", infer_schema_length=None)
    manifest = pl.read_csv(out / "manifest.csv").filter(pl.col("file") == "outcome_measures.csv")
    assert manifest["rows"].to_list() == [frame.height]
    counts = frame.group_by("measure_name").agg(pl.col("met").sum(), pl.col("in_denominator").sum()).sort("measure_name")
    page = (out / "dashboards" / "outcomes.html").read_text()
    table = re.search(r'<table id="outcome-measures".*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    rows = {re.sub(r"<[^>]+>", "", r.split("</td>")[0]).split(" (project")[0]: r
            for r in re.findall(r"<tr>.*?</tr>", table, re.S)}
    assert sorted(rows) == counts["measure_name"].to_list()
    judged = 0
    for name, met, total in counts.iter_rows():
        assert n_of(met, total, round(met / total, 4) if total else None) in rows[name], name
        judged += total
    assert judged > 0  # the sample judges some windows (DRR-E and CBE 1884 from May 2026 indexes)
    # and every patient judged has an index score above 9 (CMS159, CBE 1884, DRR-E: "greater than nine")
    assert frame.filter(pl.col("in_denominator") & (pl.col("index_score") <= 9)).height == 0


def test_the_sample_roi_other_cost_is_every_program_cost_of_its_months(sample_run):
    out, _ = sample_run
    costs = pl.read_csv(SAMPLE_DIR / "program_costs.csv")
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        closed = conn.sql("select strftime(service_month, '%Y-%m'), facility_id, other_cost from fct_program_roi"
                          " where month_status = 'closed'").pl()
    closed.columns = ["month", "facility_id", "other_cost"]
    expected = costs.filter(pl.col("month").is_in(closed["month"].unique().to_list()))
    assert round(closed["other_cost"].sum(), 2) == round(expected["amount"].sum(), 2)


def test_a_measure_row_that_cannot_be_judged_stops_the_seed(tmp_path):
    # a typo in result_kind would otherwise judge every patient not met, silently
    ref = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    path = ref / "outcome_measures.csv"
    path.write_text(path.read_text().replace("drre_remission,5,Depression remission (4-8 months),patient,true,phq9,"
                                             "depression,remission,", "drre_remission,5,Depression remission (4-8 months),"
                                             "patient,true,phq9,depression,remision,"))
    with duckdb.connect() as conn, pytest.raises(ReferenceDataError, match="drre_remission: result_kind must be one of"):
        seed_reference(conn, ref)
