"""Tests for the synthetic extract-drop generator (pipelines/sample.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from pipelines.sample import COUNTING_ACTIVITIES, ROLES, TABLE_COLUMNS, write_sample

AS_OF = dt.date(2026, 10, 20)
MONTHS = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
STATIC = ["staff", "enrollments", "psych_reviews", "assessments", "encounters", "program_costs", "apcm"]


def _read(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)  # everything as text, like an ingest would see it


def _entries_raw(d: Path) -> pl.DataFrame:
    files = sorted(d.glob("time_entries_*.csv"))
    return pl.concat([_read(f).with_columns(file=pl.lit(f.name)) for f in files])


def _is_bad(df: pl.DataFrame) -> pl.Series:
    mins = df["minutes"].cast(pl.Int64, strict=False)
    date = df["service_date"].str.to_date("%Y-%m-%d", strict=False)
    return (mins.is_null() | (mins <= 0) | date.is_null() | df["patient_id"].is_null()).fill_null(True)


def _entries(d: Path) -> pl.DataFrame:
    """Valid time entries, typed, with staff role and enrollment attributes joined on."""
    raw = _entries_raw(d)
    good = raw.filter(~_is_bad(raw)).with_columns(
        pl.col("minutes").cast(pl.Int64),
        pl.col("service_date").str.to_date(),
        pl.col("documented_at").str.to_date(),
    )
    staff = _read(d / "staff.csv").select("staff_id", "role", pl.col("facility_id").alias("staff_facility"))
    enr = _read(d / "enrollments.csv").select("patient_id", "payer_id", "facility_id", "consent_on")
    return good.join(staff, on="staff_id", how="left").join(enr, on="patient_id", how="left")


@pytest.fixture(scope="module")
def drop(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    d = tmp_path_factory.mktemp("sample")
    return d, write_sample(d)


@pytest.fixture(scope="module")
def entries(drop) -> pl.DataFrame:
    return _entries(drop[0])


@pytest.fixture(scope="module")
def patient_months(entries) -> pl.DataFrame:
    """Countable care-manager minutes per patient-month (CM / practitioner / clinical staff)."""
    return (
        entries.filter(
            pl.col("activity").is_in(COUNTING_ACTIVITIES)
            & pl.col("role").is_in(["care_manager", "billing_practitioner", "clinical_staff"])
            & (pl.col("service_date") < dt.date(2026, 10, 1))  # closed months only
        )
        .group_by("patient_id", "program", month=pl.col("service_date").dt.strftime("%Y-%m"))
        .agg(pl.col("minutes").sum())
    )


def _file_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


# ---- files, counts, determinism -----------------------------------------------------------


def test_files_and_returned_counts(drop):
    d, rows = drop
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted([f"time_entries_{m}.csv" for m in MONTHS] + [f"{t}.csv" for t in STATIC])
    assert set(rows) == {"time_entries", *STATIC}
    assert rows["time_entries"] == _entries_raw(d).height
    for t in STATIC:
        assert rows[t] == _read(d / f"{t}.csv").height > 0


def test_required_columns(drop):
    d, _ = drop
    for f in d.glob("time_entries_*.csv"):
        assert tuple(_read(f).columns) == TABLE_COLUMNS["time_entries"], f.name
    for t in STATIC:
        assert tuple(_read(d / f"{t}.csv").columns) == TABLE_COLUMNS[t], t


def test_deterministic(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    kw = dict(patients=120, months=4)
    write_sample(a, **kw)
    write_sample(b, **kw)
    write_sample(c, seed=8, **kw)
    assert _file_bytes(a) == _file_bytes(b)
    fa, fc = _file_bytes(a), _file_bytes(c)
    assert fa.keys() == fc.keys()
    assert any(fa[k] != fc[k] for k in fa)


def test_ids_unique_and_formatted(drop):
    d, _ = drop
    raw = _entries_raw(d)
    assert raw["entry_id"].is_unique().all()
    assert raw["entry_id"].str.contains(r"^E\d{8}$").all()
    enr = _read(d / "enrollments.csv")
    assert enr["patient_id"].is_unique().all() and enr["patient_id"].str.contains(r"^P\d{6}$").all()
    staff = _read(d / "staff.csv")
    assert staff["staff_id"].is_unique().all() and staff["staff_id"].str.contains(r"^S\d{4}$").all()
    assert set(staff["facility_id"]) == {"F01", "F02", "F03"}
    assert _read(d / "encounters.csv")["encounter_id"].is_unique().all()
    assert _read(d / "psych_reviews.csv")["review_id"].is_unique().all()


# ---- bad rows and basic validity ----------------------------------------------------------


def test_bad_rows_only_the_documented_four(drop):
    d, _ = drop
    raw = _entries_raw(d)
    bad = raw.filter(_is_bad(raw))
    assert bad.height == 4
    assert set(bad["file"]) == {"time_entries_2026-05.csv"}
    assert "2026-13-05" in bad["service_date"].to_list()
    assert bad["patient_id"].null_count() == 1
    assert "0" in bad["minutes"].to_list() and "abc" in bad["minutes"].to_list()


def test_minutes_positive_integers_and_times_consistent(entries):
    assert (entries["minutes"] > 0).all()
    start = entries["start_time"].str.slice(0, 2).cast(pl.Int64) * 60 + entries["start_time"].str.slice(3, 2).cast(pl.Int64)
    end = entries["end_time"].str.slice(0, 2).cast(pl.Int64) * 60 + entries["end_time"].str.slice(3, 2).cast(pl.Int64)
    assert (end - start == entries["minutes"]).all()
    assert start.min() >= 6 * 60 and end.max() <= 20 * 60
    # Counting bursts are small.
    burst = entries.filter(pl.col("activity").is_in(COUNTING_ACTIVITIES))["minutes"]
    assert burst.min() >= 5 and burst.quantile(0.99) <= 45


def test_no_overlapping_entries_per_staff_day(entries):
    t = entries.with_columns(
        s=pl.col("start_time").str.slice(0, 2).cast(pl.Int64) * 60 + pl.col("start_time").str.slice(3, 2).cast(pl.Int64)
    ).sort("staff_id", "service_date", "s")
    prev_end = (pl.col("s") + pl.col("minutes")).shift(1).over("staff_id", "service_date")
    assert t.filter(pl.col("s") < prev_end).height == 0


def test_referential_integrity(drop, entries):
    d, _ = drop
    assert entries["role"].null_count() == 0, "staff_id not in staff.csv"
    assert entries["payer_id"].null_count() == 0, "patient_id not in enrollments.csv"
    raw = _entries_raw(d)
    bad = raw.filter(_is_bad(raw))
    staff_ids = set(_read(d / "staff.csv")["staff_id"])
    assert set(bad["staff_id"]) <= staff_ids
    # Staff work at the patient's facility.
    assert (entries["staff_facility"] == entries["facility_id"]).all()
    staff = _read(d / "staff.csv")
    consultants = set(staff.filter(pl.col("role") == "psychiatric_consultant")["staff_id"])
    enr = _read(d / "enrollments.csv")
    bp = enr.join(staff, left_on="billing_provider_id", right_on="staff_id")
    assert bp.height == enr.height
    assert (bp["role"] == "billing_practitioner").all() and (bp["facility_id"] == bp["facility_id_right"]).all()
    rv = _read(d / "psych_reviews.csv")
    assert set(rv["consultant_id"]) <= consultants
    assert set(rv["patient_id"]) <= set(enr["patient_id"])
    enc = _read(d / "encounters.csv")
    assert set(enc["patient_id"]) <= set(enr["patient_id"]) and set(enc["provider_id"]) <= staff_ids


def test_linked_encounters(drop, entries):
    d, _ = drop
    enc = _read(d / "encounters.csv")
    linked = entries.filter(pl.col("encounter_id").is_not_null())
    assert set(linked["activity"]) == {"psychotherapy", "crisis", "psychiatric_evaluation"}
    assert entries.filter(
        pl.col("activity").is_in(["psychotherapy", "crisis", "psychiatric_evaluation"]) & pl.col("encounter_id").is_null()
    ).height == 0
    j = linked.join(enc, on="encounter_id", how="left")
    assert j["cpt_code"].null_count() == 0
    assert (j["patient_id"] == j["patient_id_right"]).all()
    assert (j["staff_id"] == j["provider_id"]).all()
    assert (j["service_date"].cast(pl.String) == j["encounter_date"]).all()
    cpt = dict(psychotherapy={"90834", "90837"}, crisis={"90839"}, psychiatric_evaluation={"90791"})
    for act, codes in cpt.items():
        assert set(j.filter(pl.col("activity") == act)["cpt_code"]) <= codes
    assert (j.filter(pl.col("activity") == "psychotherapy")["role"] == "therapist").all()
    assert (j.filter(pl.col("activity") == "psychiatric_evaluation")["role"] == "psychiatric_consultant").all()
    # One initiating visit per patient, by the billing provider, before enrollment.
    enr = _read(d / "enrollments.csv")
    iv = enc.filter(pl.col("cpt_code").is_in(["99213", "99214", "G0438"])).join(enr, on="patient_id")
    assert iv.height == enr.height and iv["patient_id"].is_unique().all()
    assert (iv["provider_id"] == iv["billing_provider_id"]).all()
    assert (iv["encounter_date"] < iv["enrolled_on"]).all()


def test_open_month_cut_at_open_day(drop, entries):
    d, _ = drop
    assert entries["service_date"].max() <= AS_OF
    assert entries["documented_at"].max() <= AS_OF
    assert (entries["documented_at"] >= entries["service_date"]).all()
    october = _read(d / "time_entries_2026-10.csv")["service_date"].str.to_date()
    assert october.min() >= dt.date(2026, 10, 1) and october.max() <= AS_OF
    assert _read(d / "psych_reviews.csv")["review_date"].str.to_date().max() <= AS_OF
    assert _read(d / "encounters.csv")["encounter_date"].str.to_date().max() <= AS_OF
    enr = _read(d / "enrollments.csv")
    for c in ("enrolled_on", "consent_on", "discharged_on"):
        assert enr[c].str.to_date().max() <= AS_OF
    # Every other month's entries stay in their own file's month.
    raw = entries.with_columns(m=pl.col("service_date").dt.strftime("%Y-%m"))
    assert (raw["file"] == ("time_entries_" + raw["m"] + ".csv")).all()


def test_open_day_parameter(tmp_path):
    write_sample(tmp_path, patients=60, months=2, end_month="2027-01", open_day=10)
    e = _entries(tmp_path)
    assert e["service_date"].max() <= dt.date(2027, 1, 10)
    assert sorted(p.name for p in tmp_path.glob("time_entries_*.csv")) == [
        "time_entries_2026-12.csv",
        "time_entries_2027-01.csv",
    ]
    raw = _entries_raw(tmp_path)
    assert "2026-13-05" in raw["service_date"].to_list()


# ---- staff, enrollments, mix ---------------------------------------------------------------


def test_every_role_present_per_facility(drop):
    d, _ = drop
    staff = _read(d / "staff.csv").with_columns(pl.col("annual_cost").cast(pl.Float64), pl.col("fte").cast(pl.Float64))
    assert set(staff["role"]) == set(ROLES)
    per_fac = staff.group_by("facility_id").agg(pl.col("role").n_unique())
    assert (per_fac["role"] == len(ROLES)).all()
    assert staff["fte"].is_between(0.1, 1.0).all() and (staff["annual_cost"] > 0).all()
    cm = staff.filter(pl.col("role") == "care_manager")
    # employer cost = BLS OEWS 21-1022 wage p25-p75 ($56,710-$82,240) / 0.701 (BLS ECEC wage share)
    assert cm["annual_cost"].is_between(80_800, 117_400).all()
    assert (cm["fte"] >= 0.8).all()  # AIMS Center: care managers full-time or nearly so
    consultants = staff.filter(pl.col("role") == "psychiatric_consultant")
    assert consultants["fte"].max() <= 0.3
    # BLS OEWS 29-1223 psychiatrists mean $269,940 +-10%, / 0.701
    assert consultants["annual_cost"].is_between(346_400, 423_600).all()
    assert staff["name"].str.contains(r"^[A-Z][a-z]+( [A-Z][a-z]+)* \d+$").all()


def test_caseload_and_consultant_cost_match_the_published_figures(drop, entries):
    """docs/sample.md: ~70 active patients per care-manager program FTE over the closed months (AIMS
    Center: 60-80 per full-time care manager), and the psychiatric consultant's cost per CoCM
    patient-month is 3 hours a week per full caseload at a psychiatrist's hourly employer cost."""
    d, _ = drop
    share = float(
        pl.read_csv(Path(__file__).parent.parent / "data" / "reference" / "settings.csv")
        .filter(pl.col("setting") == "care_manager_cocm_share")["value"][0]
    )
    staff = _read(d / "staff.csv").with_columns(pl.col("fte").cast(pl.Float64))
    program_fte = staff.filter(pl.col("role") == "care_manager")["fte"].sum() * share
    closed = entries.filter(pl.col("service_date") < dt.date(2026, 10, 1))
    active = closed.group_by(month=pl.col("service_date").dt.month()).agg(pl.col("patient_id").n_unique())
    per_fte = active["patient_id"].mean() / program_fte
    assert 60 <= per_fte <= 80, per_fte
    costs = _read(d / "program_costs.csv").with_columns(pl.col("amount").cast(pl.Float64))
    consult = costs.filter(pl.col("category") == "psychiatric_consultant")["amount"].sum()
    cocm = (
        closed.vstack(entries.filter(pl.col("service_date") >= dt.date(2026, 10, 1)))
        .filter(pl.col("program") == "cocm")
        .select("patient_id", pl.col("service_date").dt.month())
        .unique()
        .height
    )
    hourly = 269_940 / 2080 / 0.701  # psychiatrist's mean wage per hour / wage share of employer cost
    per_patient_month = consult / cocm
    # 3 h a week x 52 / 12 per 60-80 patients at ~$185 an hour: $30-$40 per CoCM patient-month
    assert 3 * 52 / 12 / 80 * hourly <= per_patient_month <= 3 * 52 / 12 / 60 * hourly, per_patient_month


def test_enrollment_mix_and_red_flags(drop, entries):
    d, _ = drop
    enr = _read(d / "enrollments.csv")
    n = enr.height
    assert 0.7 <= (enr["program"] == "cocm").mean() <= 0.9
    share = enr["payer_id"].value_counts(normalize=True)
    shares = dict(zip(share["payer_id"], share["proportion"]))
    assert set(shares) == {"medicare", "nc_medicaid", "acme_commercial", "bcbs_mi"}
    assert 0.4 <= shares["medicare"] <= 0.6 and shares["bcbs_mi"] >= 0.04
    assert 0.02 <= enr["consent_on"].null_count() / n <= 0.12
    assert 0.04 <= enr["discharged_on"].is_not_null().mean() <= 0.18
    assert enr["diagnosis_code"].str.contains(r"^F\d\d(\.\w+)?$").all()
    enrolled = enr["enrolled_on"].str.to_date()
    assert (enrolled < dt.date(2026, 5, 1)).sum() > 0.1 * n  # some enrolled before the window
    assert (enrolled >= dt.date(2026, 5, 1)).sum() > 0.4 * n  # many during it
    # Some minutes are logged before consent (late consent).
    pre_consent = entries.filter(pl.col("service_date") < pl.col("consent_on").str.to_date())
    assert pre_consent["patient_id"].n_unique() >= 3
    # Late documentation exists but is the exception.
    late = (entries["documented_at"] - entries["service_date"]).dt.total_days()
    assert 0.01 <= (late >= 3).mean() <= 0.1 and late.max() <= 20


def test_missing_psychiatric_reviews(drop, entries):
    d, _ = drop
    cocm_pm = (
        entries.filter(pl.col("program") == "cocm")
        .select("patient_id", month=pl.col("service_date").dt.strftime("%Y-%m"))
        .unique()
    )
    rv = _read(d / "psych_reviews.csv").select("patient_id", month=pl.col("review_date").str.slice(0, 7)).unique()
    missing = cocm_pm.join(rv, on=["patient_id", "month"], how="anti").height / cocm_pm.height
    assert 0.04 <= missing <= 0.2


def test_entry_roles_and_activities(entries):
    total = entries.height
    by_role = dict(entries.group_by("role").len().iter_rows())
    assert by_role["care_manager"] / total > 0.7
    assert 0 < by_role.get("clinical_staff", 0) / total < 0.05
    cs = entries.filter(pl.col("role") == "clinical_staff")
    assert (cs["program"] == "bhi").all()
    cons = entries.filter(pl.col("role") == "psychiatric_consultant")
    assert set(cons["activity"]) == {"case_review", "psychiatric_evaluation"}
    assert set(entries["activity"]) == set(COUNTING_ACTIVITIES) | {"psychotherapy", "crisis", "psychiatric_evaluation", "clerical"}
    non_counting = entries.filter(~pl.col("activity").is_in(COUNTING_ACTIVITIES)).height / total
    assert 0.03 <= non_counting <= 0.25
    # CoCM time is mostly logged by the patient's one primary care manager.
    cocm_cm = entries.filter((pl.col("program") == "cocm") & (pl.col("role") == "care_manager"))
    top = cocm_cm.group_by("patient_id", "staff_id").len().group_by("patient_id").agg(
        top=pl.col("len").max(), total=pl.col("len").sum()
    )
    assert top["top"].sum() / top["total"].sum() > 0.85


def test_gaps_and_breaks(drop):
    d, _ = drop
    e = _entries(d).with_columns(m=pl.col("service_date").dt.month())
    months = e.group_by("patient_id").agg(pl.col("m").unique().sort())
    gaps = months.filter((pl.col("m").list.max() - pl.col("m").list.min() + 1) > pl.col("m").list.len())
    assert gaps.height >= 0.1 * months.height  # some patient-months without activity


def test_breaks_and_restart_with_longer_window(tmp_path):
    write_sample(tmp_path, patients=600, months=12)
    e = _entries(tmp_path)
    m = e.select("patient_id", mi=pl.col("service_date").dt.year() * 12 + pl.col("service_date").dt.month()).unique()
    gaps = m.sort("patient_id", "mi").with_columns(step=pl.col("mi").diff().over("patient_id"))
    assert gaps.filter(pl.col("step") >= 7)["patient_id"].n_unique() >= 3  # 6+ month break then restart


# ---- the minute story ------------------------------------------------------------------------


def test_cocm_minutes_tell_the_story(patient_months):
    x = patient_months.filter(pl.col("program") == "cocm")["minutes"]
    n = x.len()
    assert n > 400
    billable = x.is_between(31, 85).mean()  # inside the 99493 / 99492 single-code bands
    near_short = x.is_between(26, 35).mean()  # a few minutes short of 31 / 36
    near_full = x.is_between(55, 69).mean()  # short of 60 / 70 on the full-time reading
    addon = (x >= 76).mean()
    low = (x < 16).mean()
    assert 0.35 <= billable <= 0.8, billable
    assert 0.08 <= near_short <= 0.35, near_short
    assert 0.1 <= near_full <= 0.35, near_full
    assert 0.05 <= addon <= 0.25, addon
    assert (x >= 116).sum() > 0  # some earn two add-on units
    assert 0.02 <= low <= 0.2, low


def test_bhi_minutes_on_both_sides_of_20(patient_months):
    x = patient_months.filter(pl.col("program") == "bhi")["minutes"]
    assert x.len() > 80
    assert 0.35 <= (x >= 20).mean() <= 0.85
    assert 0.1 <= x.is_between(14, 19).mean() <= 0.45


# ---- scale -----------------------------------------------------------------------------------


def test_scaling_is_roughly_proportional(tmp_path, drop):
    _, small = drop
    rows = write_sample(tmp_path, patients=5000)
    ratio = rows["time_entries"] / small["time_entries"]
    assert 5000 / 300 * 0.75 <= ratio <= 5000 / 300 * 1.3
    assert rows["enrollments"] == 5000
    staff = _read(tmp_path / "staff.csv")
    cms = (staff["role"] == "care_manager").sum()
    assert 5000 / 85 <= cms <= 5000 / 55
    assert staff["facility_id"].n_unique() >= 3
    assert _entries_raw(tmp_path).filter(_is_bad(_entries_raw(tmp_path))).height == 4


def test_tiny_drop(tmp_path):
    rows = write_sample(tmp_path, patients=1, months=1)
    assert rows["enrollments"] == 1
    raw = _entries_raw(tmp_path)
    assert raw.filter(_is_bad(raw)).height == 4


def test_assessments_cover_most_cocm_months_with_validated_scales(drop):
    d, _ = drop
    scales = _read(d / "assessments.csv")
    assert set(scales.get_column("instrument").unique()) == {"phq9", "gad7"}
    enrolled = set(_read(d / "enrollments.csv").filter(pl.col("program") == "cocm").get_column("patient_id"))
    assert set(scales.get_column("patient_id")) <= enrolled


def test_each_patient_is_scored_with_the_instrument_of_the_diagnosis(drop):
    # data/reference/outcome_instruments.csv: PHQ-9 for depression (F32 / F33), GAD-7 for anxiety (F41.x)
    d, _ = drop
    scales = _read(d / "assessments.csv").join(
        _read(d / "enrollments.csv").select("patient_id", "diagnosis_code"), on="patient_id")
    group = pl.col("diagnosis_code").str.slice(0, 3)
    used = scales.group_by(group.alias("group")).agg(pl.col("instrument").unique().sort()).sort("group")
    assert {r["group"]: r["instrument"] for r in used.to_dicts() if r["group"] != "F43"} == {
        "F32": ["phq9"], "F33": ["phq9"], "F41": ["gad7"]}
