"""Synthetic EHR extract-drop generator for Behavioral Health Integration (CoCM / General BHI).

`write_sample(out_dir, ...)` writes a drop of CSV extracts that looks like what a clinic's EHR
hands over each month, and that tells a demo story:

* CoCM patient-months whose care-manager minutes land in the billable bands (99492 36-85 in an
  episode's initial month, 99493 31-75 later, +99494 beyond), a visible share a few minutes short
  of a threshold (28-35 min, 55-69 min), some well above (add-on units), and General BHI (99484)
  patients on both sides of 20 minutes;
* counting activities (assessment, follow_up, care_coordination, brief_intervention,
  registry_review, case_review) mixed with non-counting ones (psychotherapy, crisis,
  psychiatric_evaluation, clerical), consultant case reviews (count only for payers such as
  bcbs_mi), clinical-staff time for BHI patients;
* red flags: missing consent, consent after the first minutes, CoCM months without a psychiatric
  review, late documentation, gaps and a 6+ month break that restarts an episode;
* four deliberately bad rows in the first month's time-entry file, for the quarantine;
* a program whose staffing, caseload, pay and consultant cost follow published figures (AIMS Center,
  BLS; the calibration constants below and docs/sample.md), so the ROI page tells the truth.

Everything is vectorised with numpy / polars (a Python loop runs per month, never per patient or
per entry), so the same function produces a 10M-entry benchmark drop.  Output is byte-for-byte
deterministic for a given set of arguments.

Files (UTF-8, header row, ISO dates, HH:MM times, ids as zero-padded strings):
``time_entries_<YYYY-MM>.csv`` (one per service month), ``staff.csv``, ``enrollments.csv``,
``psych_reviews.csv``, ``encounters.csv``, ``program_costs.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

__all__ = [
    "write_sample",
    "ROLES",
    "PAYERS",
    "ACTIVITIES",
    "COUNTING_ACTIVITIES",
    "TIME_ENTRY_COLUMNS",
    "TABLE_COLUMNS",
    "BAD_ROWS",
]

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

ROLES = ("billing_practitioner", "psychiatric_consultant", "care_manager", "therapist", "clinical_staff")
_R_BP, _R_CONS, _R_CM, _R_TH, _R_CS = range(5)
_ROLE_TITLES = ("Billing Practitioner", "Psychiatric Consultant", "Care Manager", "Therapist", "Clinical Staff")

# --------------------------------------------------------------------------------------------
# Program calibration: published figures where they exist, assumptions where they do not.
# docs/sample.md lists each one with its source (title, publisher, year, URL).
# --------------------------------------------------------------------------------------------

# Wages are 70.1% of employer compensation cost in private industry (BLS ECEC, Table 1), so a
# roster's yearly cost of a person (staff.annual_cost) is the wage / 0.701 (benefits included).
_WAGE_SHARE_OF_EMPLOYER_COST = 0.701
# Yearly wage (low, high) and FTE (low, high) per role (ROLES order); annual_cost = wage / 0.701.
_ROLE_WAGE = (
    (216_700, 264_900, 0.2, 0.5),  # billing practitioner: BLS OEWS May 2023 29-1215 family medicine mean $240,790, +-10%
    (242_900, 296_900, 0.1, 0.3),  # psychiatric consultant: BLS OEWS May 2025 29-1223 psychiatrists mean $269,940, +-10%
    (56_710, 82_240, 0.8, 1.0),  # care manager: BLS OEWS May 2025 21-1022 healthcare social workers p25-p75; AIMS: full-time
    (47_100, 76_530, 0.5, 1.0),  # therapist: BLS OEWS May 2025 21-1018 mental health counselors p25-p75
    (39_800, 48_600, 0.5, 1.0),  # clinical staff: medical assistants 31-9092 median $44,200 (secondary source), +-10%
)
# Enrolled patients (over the window) per care manager: AIMS Center caseload guidance, 60-80 active
# patients per full-time care manager (Medicaid / vulnerable adults), 90-120 (commercially insured).
_PATIENTS_PER_CARE_MANAGER = 70
# Psychiatric consultant: AIMS Center, ~0.075 FTE (3 hours a week) per full-time care manager with a
# full caseload; costed per CoCM patient-month at the psychiatrist's hourly employer cost (BLS mean).
_CONSULTANT_HOURS_PER_WEEK_PER_CARE_MANAGER = 3.0
_PSYCHIATRIST_MEAN_WAGE = 269_940  # BLS OEWS May 2025, 29-1223 psychiatrists, annual mean wage
_CONSULTANT_COST_PER_COCM_PATIENT_MONTH = (
    _CONSULTANT_HOURS_PER_WEEK_PER_CARE_MANAGER * 52 / 12 / _PATIENTS_PER_CARE_MANAGER
    * _PSYCHIATRIST_MEAN_WAGE / 2080 / _WAGE_SHARE_OF_EMPLOYER_COST
)  # ~0.19 h x $185/h = ~$34
# Registry software and training: ASSUMPTIONS (no published price found): a licence of $300 per
# facility-month plus $4 per active patient-month; a $2,000 kickoff training, refreshers later.
_REGISTRY_PER_FACILITY_MONTH = 300.0
_REGISTRY_PER_ACTIVE_PATIENT_MONTH = 4.0
_KICKOFF_TRAINING = 2000.0

PAYERS = ("medicare", "nc_medicaid", "acme_commercial", "bcbs_mi")
_PAYER_P = (0.5, 0.2, 0.2, 0.1)  # ASSUMPTION: payer mix of the enrolled patients (no published mix used)
PROGRAMS = ("cocm", "bhi")

# Activity codes: the first six count toward the bundle, the rest never do.
ACTIVITIES = (
    "assessment",
    "follow_up",
    "care_coordination",
    "brief_intervention",
    "registry_review",
    "case_review",
    "psychotherapy",
    "crisis",
    "psychiatric_evaluation",
    "clerical",
)
COUNTING_ACTIVITIES = ACTIVITIES[:6]
_A_ASSESS, _A_FOLLOW, _A_COORD, _A_BRIEF, _A_REGISTRY, _A_CASE, _A_PSYTX, _A_CRISIS, _A_EVAL, _A_CLERICAL = range(10)
# Mix of the counting activities for ordinary care-manager bursts.
_COUNT_ACT_P = np.array([0.05, 0.35, 0.25, 0.15, 0.12, 0.08])

# Discharge reasons of the sample (synthetic shares: most leave with goals met or lost to follow-up)
_DISCHARGE_REASONS = ("goals_met", "referred_on", "patient_declined", "lost_to_follow_up")
_DISCHARGE_REASON_P = (0.45, 0.15, 0.15, 0.25)
_DIAGNOSES = ("F32.1", "F33.1", "F41.1", "F32.0", "F33.0", "F43.10", "F41.9", "F43.23", "F32.2")
_DIAG_P = (0.22, 0.16, 0.18, 0.08, 0.08, 0.10, 0.07, 0.07, 0.04)
_INIT_CPTS = ("99213", "99214", "G0438")
_INIT_CPT_P = (0.5, 0.35, 0.15)
_COST_CATEGORIES = ("psychiatric_consultant", "registry_software", "training")

TIME_ENTRY_COLUMNS = (
    "entry_id",
    "patient_id",
    "staff_id",
    "service_date",
    "minutes",
    "activity",
    "program",
    "start_time",
    "end_time",
    "documented_at",
    "encounter_id",
)
TABLE_COLUMNS = {
    "time_entries": TIME_ENTRY_COLUMNS,
    "staff": ("staff_id", "role", "facility_id", "name", "annual_cost", "fte"),
    "enrollments": (
        "patient_id",
        "program",
        "payer_id",
        "facility_id",
        "billing_provider_id",
        "enrolled_on",
        "consent_on",
        "discharged_on",
        "diagnosis_code",
        "discharge_reason",
    ),
    "psych_reviews": ("review_id", "patient_id", "review_date", "consultant_id"),
    "assessments": ("patient_id", "assessment_date", "instrument", "score"),
    "encounters": ("encounter_id", "patient_id", "encounter_date", "provider_id", "cpt_code"),
    "apcm": ("patient_id", "service_month", "apcm_code", "billing_provider_id"),
    "program_costs": ("month", "facility_id", "category", "amount"),
}
# The deliberately bad rows of the first month's time-entry file: (what is wrong, column).
BAD_ROWS = (
    ("minutes is 0", "minutes"),
    ("service_date is not a date (month 13)", "service_date"),
    ("patient_id is empty", "patient_id"),
    ("minutes is not a number", "minutes"),
)

# Minute targets (countable care-manager minutes of a full patient-month): mixtures of
# (weight, low, high), uniform integers within each component.  ASSUMPTION: no published
# distribution of CoCM minutes per patient-month, nor share of patient-months that bill, was found
# (docs/sample.md); these put ~70% of closed patient-months over a billing threshold and make every
# band of the rules (short of a threshold, add-on units, G2214, both sides of 99484's 20) visible.
_TARGET_INITIAL = (  # 99492: 36-85, G2214 16-35, +99494 from 86
    (0.05, 5, 15),
    (0.08, 16, 29),
    (0.15, 30, 35),  # a few minutes short of 36
    (0.30, 36, 61),
    (0.18, 62, 69),  # short of 70 on the full-time reading
    (0.10, 70, 85),
    (0.14, 86, 150),  # add-on units
)
_TARGET_SUBSEQUENT = (  # 99493: 31-75, G2214 16-30, +99494 from 76
    (0.06, 5, 15),
    (0.09, 16, 26),
    (0.15, 27, 30),  # a few minutes short of 31
    (0.28, 31, 54),
    (0.20, 55, 59),  # short of 60 on the full-time reading
    (0.10, 60, 75),
    (0.12, 76, 140),  # add-on units
)
_TARGET_BHI = (  # 99484: >= 20
    (0.10, 5, 11),
    (0.25, 14, 19),  # just below 20
    (0.50, 20, 40),
    (0.15, 41, 70),
)

_DAY_START = 8 * 60  # 08:00
_DAY_END = 18 * 60  # 18:00


# --------------------------------------------------------------------------------------------
# Small vectorised helpers
# --------------------------------------------------------------------------------------------


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """'P' + zero-padded number, vectorised (numbers are 1-based)."""
    s = pl.Series(np.asarray(numbers, dtype=np.int64)).cast(pl.String).str.zfill(width)
    return (prefix + s).alias("")


def _width(n: int, minimum: int) -> int:
    return max(minimum, len(str(max(int(n), 1))))


def _dates(days: np.ndarray) -> pl.Series:
    return pl.Series(np.asarray(days, dtype=np.int64).astype("datetime64[D]"))


def _hhmm(minute_of_day: np.ndarray) -> pl.Series:
    m = np.asarray(minute_of_day, dtype=np.int64)
    h = pl.Series(m // 60).cast(pl.String).str.zfill(2)
    mm = pl.Series(m % 60).cast(pl.String).str.zfill(2)
    return h + ":" + mm


def _pick(vocab, codes: np.ndarray) -> pl.Series:
    return pl.Series(list(vocab), dtype=pl.String).gather(pl.Series(np.asarray(codes, dtype=np.int64)))


def _mixture(rng: np.random.Generator, spec, n: int) -> np.ndarray:
    w = np.array([c[0] for c in spec], dtype=float)
    lo = np.array([c[1] for c in spec], dtype=np.int64)
    hi = np.array([c[2] for c in spec], dtype=np.int64)
    comp = np.searchsorted(np.cumsum(w / w.sum()), rng.random(n), side="right")
    comp = np.minimum(comp, len(spec) - 1)
    return lo[comp] + np.floor(rng.random(n) * (hi[comp] - lo[comp] + 1)).astype(np.int64)


def _weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def _draw_day(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A day in [lo, hi], moved off weekends when the range allows."""
    d = lo + np.floor(rng.random(lo.shape[0]) * (hi - lo + 1)).astype(np.int64)
    wd = _weekday(d)
    sat, sun = wd == 5, wd == 6
    d = np.where(sat & (d - 1 >= lo), d - 1, np.where(sat & (d + 2 <= hi), d + 2, d))
    d = np.where(sun & (d + 1 <= hi), d + 1, np.where(sun & (d - 2 >= lo), d - 2, d))
    return d


def _group_starts(sizes: np.ndarray) -> np.ndarray:
    return np.cumsum(sizes) - sizes


def _schedule(rng: np.random.Generator, staff: np.ndarray, day: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """Start minute-of-day per entry so that no staff member has overlapping entries on a day.

    Entries of a staff-day are laid out back to back from 08:00 with random gaps that share the
    day's slack (10 hours minus the logged minutes); an overloaded day starts earlier instead
    (only degenerate drops, e.g. a one-day open month, get there).
    """
    n = staff.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((rng.random(n), day, staff))
    s, d, m = staff[order], day[order], minutes[order].astype(np.int64)
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = (s[1:] != s[:-1]) | (d[1:] != d[:-1])
    gid = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, n))
    total = np.add.reduceat(m, starts)
    window = _DAY_END - _DAY_START
    slack = np.maximum(window - total, 0).astype(float)
    day0 = np.where(total <= window, _DAY_START, np.maximum(_DAY_END - total, 0))
    # Gap weights: one per entry (gap before it) plus one for the tail of the day.
    w = rng.exponential(size=n)
    tail = rng.exponential(size=starts.shape[0])
    wsum = np.add.reduceat(w, starts) + tail
    cw = np.cumsum(w)
    cw_in = cw - np.repeat(cw[starts] - w[starts], sizes)
    gap_before = np.floor(slack[gid] * cw_in / wsum[gid]).astype(np.int64)
    cm = np.cumsum(m)
    m_before = cm - m - np.repeat(cm[starts] - m[starts], sizes)
    start_sorted = day0[gid] + gap_before + m_before
    out = np.empty(n, dtype=np.int64)
    out[order] = start_sorted
    return out


# --------------------------------------------------------------------------------------------
# Main entry point
# --------------------------------------------------------------------------------------------


def write_sample(
    out_dir: str | Path,
    *,
    patients: int = 300,
    months: int = 6,
    end_month: str = "2026-10",
    seed: int = 7,
    open_day: int = 20,
) -> dict[str, int]:
    """Write a synthetic extract drop; return {table_name: rows_written}.

    Months run from ``end_month - (months - 1)`` to ``end_month``; ``end_month`` is the open
    (month-to-date) month and holds time entries, reviews and encounters only up to ``open_day``.
    One ``time_entries_<YYYY-MM>.csv`` is written per month; other tables are single files.
    Existing files of the same names are overwritten; nothing else in ``out_dir`` is touched.
    """
    if patients < 1:
        raise ValueError("patients must be >= 1")
    if months < 1:
        raise ValueError("months must be >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    N, M = int(patients), int(months)

    # ---- calendar ----------------------------------------------------------------------
    end_m = np.datetime64(end_month, "M")
    month_m = end_m - np.arange(M)[::-1]
    m_first = month_m.astype("datetime64[D]").astype(np.int64)
    m_last = (month_m + 1).astype("datetime64[D]").astype(np.int64) - 1
    open_day = int(min(max(open_day, 1), m_last[-1] - m_first[-1] + 1))
    as_of = int(m_first[-1] + open_day - 1)
    m_hi = m_last.copy()
    m_hi[-1] = as_of
    win_start = int(m_first[0])
    month_labels = [str(x) for x in month_m]

    # ---- facilities and staff ------------------------------------------------------------
    F = max(1, min(math.ceil(N / 100), max(3, math.ceil(N / 1000))))
    fac_w = rng.dirichlet(np.full(F, 6.0))
    p_fac = np.minimum(np.searchsorted(np.cumsum(fac_w), rng.random(N), side="right"), F - 1)
    n_f = np.bincount(p_fac, minlength=F)
    role_n = np.stack(
        [
            np.maximum(1, np.ceil(n_f / 150)),  # billing practitioners
            np.maximum(1, np.round(n_f / 300)),  # psychiatric consultants
            np.maximum(1, np.ceil(n_f / _PATIENTS_PER_CARE_MANAGER)),  # care managers
            np.maximum(1, np.ceil(n_f / 250)),  # therapists
            np.maximum(1, np.ceil(n_f / 400)),  # clinical staff
        ],
        axis=1,
    ).astype(np.int64)  # (F, 5), staff ordered by facility then role
    role_off = (np.cumsum(role_n.ravel()) - role_n.ravel()).reshape(F, 5)
    S = int(role_n.sum())
    s_role = np.repeat(np.tile(np.arange(5), F), role_n.ravel())
    s_fac = np.repeat(np.arange(F), role_n.sum(axis=1))
    # Per-role running number for names ("Care Manager 3").
    s_num = np.zeros(S, dtype=np.int64)
    for r in range(5):
        idx = np.flatnonzero(s_role == r)
        s_num[idx] = np.arange(1, idx.size + 1)
    pay = np.array(_ROLE_WAGE, dtype=float)
    cost = (pay[s_role, 0] + rng.random(S) * (pay[s_role, 1] - pay[s_role, 0])) / _WAGE_SHARE_OF_EMPLOYER_COST
    s_cost = (np.round(cost / 100) * 100).astype(np.int64)
    s_fte = np.round(pay[s_role, 2] + rng.random(S) * (pay[s_role, 3] - pay[s_role, 2]), 1)

    def staff_of(role: int, fac: np.ndarray) -> np.ndarray:
        """A random staff member of `role` at each facility in `fac`."""
        k = role_n[fac, role]
        return role_off[fac, role] + np.floor(rng.random(fac.shape[0]) * k).astype(np.int64)

    p_cm = staff_of(_R_CM, p_fac)
    p_cons = staff_of(_R_CONS, p_fac)
    p_bp = staff_of(_R_BP, p_fac)
    p_th = staff_of(_R_TH, p_fac)
    p_cs = staff_of(_R_CS, p_fac)

    # ---- patients and enrollment -----------------------------------------------------------
    p_prog = (rng.random(N) >= 0.8).astype(np.int64)  # 0 cocm, 1 bhi
    p_payer = np.minimum(np.searchsorted(np.cumsum(_PAYER_P), rng.random(N), side="right"), 3)
    p_diag = np.minimum(np.searchsorted(np.cumsum(_DIAG_P), rng.random(N), side="right"), len(_DIAGNOSES) - 1)
    pre = rng.random(N) < 0.3  # enrolled before the window
    # Within ~11 months, so the initiating visit stays inside the 12-month look-back of the window.
    pre_days = 1 + np.floor(rng.random(N) * 330).astype(np.int64)
    in_span = as_of - win_start + 1
    in_days = np.floor(rng.random(N) * in_span).astype(np.int64)
    enrolled = np.where(pre, win_start - pre_days, win_start + in_days)
    u = rng.random(N)
    consent_missing = u < 0.05
    consent_late = (u >= 0.05) & (u < 0.12) & ~pre  # ~5% of all patients
    consent = np.where(
        consent_late,
        enrolled + 14 + np.floor(rng.random(N) * 11).astype(np.int64),
        enrolled + np.minimum(np.floor(rng.exponential(1.5, N)).astype(np.int64), 6),
    )
    # Care starts at consent, except where the consent is late or missing (the red flags).
    act_start = np.where(consent_late | consent_missing, enrolled, consent)
    # A consent that would be signed after the as-of date is simply not in the extract yet.
    consent_missing |= consent > as_of
    # Discharges (~10%): some time after care started, not after the as-of date.
    d_lo = np.maximum(act_start, win_start) + 30
    can_dis = d_lo <= as_of
    discharged = (rng.random(N) < 0.10) & can_dis
    dis_day = d_lo + np.floor(rng.random(N) * (as_of - d_lo + 1).clip(min=1)).astype(np.int64)
    stop = np.where(discharged, dis_day, as_of)

    # ---- patient-month grid ----------------------------------------------------------------
    lo = np.maximum(m_first[None, :], act_start[:, None])
    hi = np.minimum(m_hi[None, :], stop[:, None])
    active = lo <= hi
    first_m = np.where(active.any(axis=1), active.argmax(axis=1), M)
    midx = np.arange(M)[None, :]
    # Random gap months (never the first month of care).
    gap = (rng.random((N, M)) < 0.10) & (midx > first_m[:, None])
    # A handful of 6-7 month breaks followed by a restart (a new episode).
    brk_len = 6 + (rng.random(N) < 0.3).astype(np.int64)
    b_lo = first_m + 1
    b_hi = M - 1 - brk_len  # last possible break start so that the restart is in the window
    brk = (rng.random(N) < 0.03) & (b_lo <= b_hi) & ~discharged
    b_start = b_lo + np.floor(rng.random(N) * (b_hi - b_lo + 1).clip(min=1)).astype(np.int64)
    in_break = brk[:, None] & (midx >= b_start[:, None]) & (midx < (b_start + brk_len)[:, None])
    active &= ~gap & ~in_break
    restart = brk[:, None] & (midx == (b_start + brk_len)[:, None])
    active |= restart & (lo <= hi)
    # Initial month of an episode: the first month of care for patients enrolled in the window,
    # or the first month after a break.
    first_act = np.where(active.any(axis=1), active.argmax(axis=1), M)
    initial = active & (((midx == first_act[:, None]) & ~pre[:, None]) | restart)

    # Minute targets per patient-month (countable care-manager minutes).
    target = np.where(
        p_prog[:, None] == 1,
        _mixture(rng, _TARGET_BHI, N * M).reshape(N, M),
        np.where(
            initial,
            _mixture(rng, _TARGET_INITIAL, N * M).reshape(N, M),
            _mixture(rng, _TARGET_SUBSEQUENT, N * M).reshape(N, M),
        ),
    )
    # Open month: month-to-date share of the business days.
    wd_all = _weekday(np.arange(m_first[-1], m_last[-1] + 1))
    frac = max(np.count_nonzero(wd_all[:open_day] < 5), 1) / max(np.count_nonzero(wd_all < 5), 1)
    target[:, -1] = np.round(target[:, -1] * frac).astype(np.int64)
    active[:, -1] &= target[:, -1] >= 5  # no contact yet this month
    initial &= active

    # Psychiatric reviews: ~90% of active CoCM patient-months.
    cocm_pm = active & (p_prog[:, None] == 0)
    has_review = cocm_pm & (rng.random((N, M)) < 0.90)
    rv_p, rv_m = np.nonzero(has_review.T)[::-1]  # month-major order
    rv_day = _draw_day(rng, lo[rv_p, rv_m], hi[rv_p, rv_m])
    rv_order = np.lexsort((rv_p, rv_day))
    rv_p, rv_day = rv_p[rv_order], rv_day[rv_order]

    # Measurement-based care: a rating scale in most initial months (85%) and later CoCM months (75%);
    # drawn from its own random stream so that the other tables do not change with it.
    arng = np.random.default_rng(seed + 1)
    draw = arng.random((N, M))
    has_scale = cocm_pm & np.where(initial, draw < 0.85, draw < 0.75)
    as_p, as_m = np.nonzero(has_scale.T)[::-1]
    as_day = _draw_day(arng, lo[as_p, as_m], hi[as_p, as_m])
    as_order = np.lexsort((as_p, as_day))
    as_p, as_day = as_p[as_order], as_day[as_order]
    # Score trajectories (docs/outcomes.md): one instrument per patient, the one of the diagnosis
    # (data/reference/outcome_instruments.csv: GAD-7 for an anxiety diagnosis F41.x, PHQ-9 for
    # depression F32 / F33; for the other diagnoses (F43.x) GAD-7 for 30%), a baseline of 10 or more
    # (the usual CoCM entry score), and an improvement reached over ten weeks: about 45% respond (a
    # 50-90% drop), 35% improve partly, 20% do not; +-1 point of noise on every score.
    p_dx = np.asarray(_DIAGNOSES)[p_diag]
    p_gad = np.where(np.char.startswith(p_dx, "F41"), True,
                     np.where(np.char.startswith(p_dx, "F43"), arng.random(N) < 0.3, False))
    kind = arng.random(N)
    partly = np.where(kind < 0.80, arng.uniform(0.15, 0.49, N), arng.uniform(-0.15, 0.1, N))
    improvement = np.where(kind < 0.45, arng.uniform(0.5, 0.9, N), partly)
    baseline = arng.integers(10, 25, N)
    first_day = np.full(N, np.iinfo(np.int64).max)
    np.minimum.at(first_day, as_p, as_day)
    progress = np.minimum(1.0, (as_day - first_day[as_p]) / 70)
    as_gad = p_gad[as_p]
    noise = arng.integers(-1, 2, as_p.size)
    as_score = np.clip(
        np.rint(baseline[as_p] * (1 - improvement[as_p] * progress)) + noise, 0, np.where(as_gad, 21, 27)
    ).astype(np.int64)

    # Initiating visits: an E/M or AWV by the billing practitioner shortly before enrollment.
    iv_day = enrolled - 1 - np.floor(rng.random(N) * 21).astype(np.int64)
    iv_cpt = np.minimum(np.searchsorted(np.cumsum(_INIT_CPT_P), rng.random(N), side="right"), 2)

    pw = _width(N, 6)
    sw = _width(S, 4)

    # ---- time entries, month by month ------------------------------------------------------
    rows: dict[str, int] = {}
    n_entries_total = 0
    ew = 8
    enc_next = N + 1  # encounter ids: initiating visits are 1..N
    enc_frames: list[pl.DataFrame] = []
    for mi in range(M):
        a = np.flatnonzero(active[:, mi])
        na = a.size
        a_lo, a_hi = lo[a, mi], hi[a, mi]
        a_prog, a_init, a_tgt = p_prog[a], initial[a, mi], target[a, mi]
        a_fac = p_fac[a]

        # Counting bursts: split the target into k entries of >= 5 minutes.
        k = np.clip(np.round(a_tgt / (10 + rng.random(na) * 10)), 1, None).astype(np.int64)
        k = np.minimum(np.maximum(k, np.ceil(a_tgt / 40)), a_tgt // 5).astype(np.int64)
        nc = int(k.sum())
        g = np.repeat(np.arange(na), k)
        gs = _group_starts(k)
        rank = np.arange(nc) - np.repeat(gs, k)
        w = rng.gamma(4.0, size=nc)
        cw = np.cumsum(w)
        cw_in = cw - np.repeat(cw[gs] - w[gs], k)
        wsum = cw_in[gs + k - 1]
        rem = a_tgt - 5 * k
        pos = np.floor(cw_in / wsum[g] * rem[g] + 0.5).astype(np.int64)
        pos[gs + k - 1] = rem
        prev = np.empty(nc, dtype=np.int64)
        prev[1:] = pos[:-1]
        prev[gs] = 0
        c_min = 5 + pos - prev
        c_act = np.minimum(np.searchsorted(np.cumsum(_COUNT_ACT_P), rng.random(nc), side="right"), 5)
        c_act = np.where(a_init[g] & (rank == 0), _A_ASSESS, c_act)
        ps = a[g]
        c_staff = p_cm[ps].copy()
        uu = rng.random(nc)
        cover = uu < 0.06
        c_staff = np.where(cover, staff_of(_R_CM, a_fac[g]), c_staff)
        c_staff = np.where((uu >= 0.06) & (uu < 0.07), p_bp[ps], c_staff)
        c_staff = np.where((a_prog[g] == 1) & (uu >= 0.90) & (uu < 0.95), p_cs[ps], c_staff)

        # Non-counting and consultant entries (at most one of each kind per patient-month).
        parts_p = [ps]
        parts_staff = [c_staff]
        parts_min = [c_min]
        parts_act = [c_act]
        parts_g = [g]
        uc = rng.random((6, na))
        sel = np.flatnonzero(uc[0] < 0.07)  # psychotherapy by a therapist
        long_ = rng.random(sel.size) < 0.4
        parts_p.append(a[sel]); parts_staff.append(p_th[a[sel]]); parts_g.append(sel)
        parts_min.append(np.where(long_, 53 + rng.integers(0, 8, sel.size), 38 + rng.integers(0, 15, sel.size)))
        parts_act.append(np.full(sel.size, _A_PSYTX))
        sel = np.flatnonzero(uc[1] < 0.01)  # crisis, by the care manager
        parts_p.append(a[sel]); parts_staff.append(p_cm[a[sel]]); parts_g.append(sel)
        parts_min.append(35 + rng.integers(0, 40, sel.size))
        parts_act.append(np.full(sel.size, _A_CRISIS))
        sel = np.flatnonzero((a_prog == 0) & (uc[2] < np.where(a_init, 0.35, 0.02)))  # psychiatric evaluation
        parts_p.append(a[sel]); parts_staff.append(p_cons[a[sel]]); parts_g.append(sel)
        parts_min.append(50 + rng.integers(0, 26, sel.size))
        parts_act.append(np.full(sel.size, _A_EVAL))
        sel = np.flatnonzero(uc[3] < 0.15)  # clerical
        parts_p.append(a[sel]); parts_staff.append(p_cm[a[sel]]); parts_g.append(sel)
        parts_min.append(5 + rng.integers(0, 8, sel.size))
        parts_act.append(np.full(sel.size, _A_CLERICAL))
        sel = np.flatnonzero((a_prog == 0) & (uc[4] < 0.20))  # consultant case review
        parts_p.append(a[sel]); parts_staff.append(p_cons[a[sel]]); parts_g.append(sel)
        parts_min.append(5 + rng.integers(0, 16, sel.size))
        parts_act.append(np.full(sel.size, _A_CASE))

        e_p = np.concatenate(parts_p)
        e_staff = np.concatenate(parts_staff)
        e_min = np.concatenate(parts_min).astype(np.int64)
        e_act = np.concatenate(parts_act).astype(np.int64)
        e_g = np.concatenate(parts_g)
        e_day = _draw_day(rng, a_lo[e_g], a_hi[e_g])
        e_start = _schedule(rng, e_staff, e_day, e_min)
        late = rng.random(e_p.size) < 0.04
        e_doc = np.minimum(e_day + np.where(late, 3 + rng.integers(0, 18, e_p.size), 0), as_of)

        # Order like an extract (by date, time, staff) and number the entries.
        order = np.lexsort((e_p, e_staff, e_start, e_day))
        e_p, e_staff, e_min, e_act, e_day, e_start, e_doc = (
            x[order] for x in (e_p, e_staff, e_min, e_act, e_day, e_start, e_doc)
        )
        linked = (e_act == _A_PSYTX) | (e_act == _A_CRISIS) | (e_act == _A_EVAL)
        n_link = int(linked.sum())
        enc_no = np.zeros(e_p.size, dtype=np.int64)
        enc_no[linked] = enc_next + np.arange(n_link)
        enc_next += n_link
        l_cpt = np.where(
            e_act[linked] == _A_PSYTX,
            np.where(e_min[linked] >= 53, 1, 0),
            np.where(e_act[linked] == _A_CRISIS, 2, 3),
        )
        if n_link:
            enc_frames.append(
                pl.DataFrame(
                    {
                        "encounter_id": _ids("V", enc_no[linked], ew),
                        "patient_id": _ids("P", e_p[linked] + 1, pw),
                        "encounter_date": _dates(e_day[linked]),
                        "provider_id": _ids("S", e_staff[linked] + 1, sw),
                        "cpt_code": _pick(("90834", "90837", "90839", "90791"), l_cpt),
                    }
                )
            )

        enc_col = _ids("V", enc_no, ew)
        enc_col = pl.select(pl.when(pl.Series(linked)).then(enc_col).otherwise(None)).to_series()
        df = pl.DataFrame(
            {
                "patient_id": _ids("P", e_p + 1, pw),
                "staff_id": _ids("S", e_staff + 1, sw),
                "service_date": _dates(e_day),
                "minutes": pl.Series(e_min),
                "activity": _pick(ACTIVITIES, e_act),
                "program": _pick(PROGRAMS, p_prog[e_p]),
                "start_time": _hhmm(e_start),
                "end_time": _hhmm(e_start + e_min),
                "documented_at": _dates(e_doc),
                "encounter_id": enc_col,
            }
        )
        if mi == 0:
            df = _add_bad_rows(df, linked, month_m[0])
        df = df.with_columns(_ids("E", n_entries_total + 1 + np.arange(df.height), ew).alias("entry_id"))
        df = df.select(TIME_ENTRY_COLUMNS)
        df.write_csv(out / f"time_entries_{month_labels[mi]}.csv")
        n_entries_total += df.height

    rows["time_entries"] = n_entries_total

    # ---- static tables -------------------------------------------------------------------
    staff_df = pl.DataFrame(
        {
            "staff_id": _ids("S", np.arange(1, S + 1), sw),
            "role": _pick(ROLES, s_role),
            "facility_id": _ids("F", s_fac + 1, 2),
            "name": _pick(_ROLE_TITLES, s_role) + " " + pl.Series(s_num).cast(pl.String),
            "annual_cost": pl.Series(s_cost),
            "fte": pl.Series(s_fte),
        }
    )
    staff_df.write_csv(out / "staff.csv")
    rows["staff"] = staff_df.height

    consent_col = _dates(consent)
    consent_col = pl.select(pl.when(pl.Series(~consent_missing)).then(consent_col).otherwise(None)).to_series()
    dis_col = _dates(dis_day)
    dis_col = pl.select(pl.when(pl.Series(discharged)).then(dis_col).otherwise(None)).to_series()
    # why discharged patients left (docs/outcomes.md), from a stream of its own so no other table changes
    reason = np.random.default_rng(seed + 2).choice(_DISCHARGE_REASONS, N, p=_DISCHARGE_REASON_P)
    reason_col = pl.select(pl.when(pl.Series(discharged)).then(pl.Series(reason.astype(str))).otherwise(None)).to_series()
    enr_df = pl.DataFrame(
        {
            "patient_id": _ids("P", np.arange(1, N + 1), pw),
            "program": _pick(PROGRAMS, p_prog),
            "payer_id": _pick(PAYERS, p_payer),
            "facility_id": _ids("F", p_fac + 1, 2),
            "billing_provider_id": _ids("S", p_bp + 1, sw),
            "enrolled_on": _dates(enrolled),
            "consent_on": consent_col,
            "discharged_on": dis_col,
            "diagnosis_code": _pick(_DIAGNOSES, p_diag),
            "discharge_reason": reason_col,
        }
    )
    enr_df.write_csv(out / "enrollments.csv")
    rows["enrollments"] = enr_df.height

    rv_df = pl.DataFrame(
        {
            "review_id": _ids("R", np.arange(1, rv_p.size + 1), 7),
            "patient_id": _ids("P", rv_p + 1, pw),
            "review_date": _dates(rv_day),
            "consultant_id": _ids("S", p_cons[rv_p] + 1, sw),
        }
    )
    rv_df.write_csv(out / "psych_reviews.csv")
    rows["psych_reviews"] = rv_df.height

    as_df = pl.DataFrame(
        {
            "patient_id": _ids("P", as_p + 1, pw),
            "assessment_date": _dates(as_day),
            "instrument": pl.Series(np.where(as_gad, "gad7", "phq9")),
            "score": as_score,
        }
    )
    as_df.write_csv(out / "assessments.csv")
    rows["assessments"] = as_df.height

    init_df = pl.DataFrame(
        {
            "encounter_id": _ids("V", np.arange(1, N + 1), ew),
            "patient_id": _ids("P", np.arange(1, N + 1), pw),
            "encounter_date": _dates(iv_day),
            "provider_id": _ids("S", p_bp + 1, sw),
            "cpt_code": _pick(_INIT_CPTS, iv_cpt),
        }
    )
    enc_df = pl.concat([init_df, *enc_frames], how="vertical")
    enc_df.write_csv(out / "encounters.csv")
    rows["encounters"] = enc_df.height

    # Program costs per facility-month (see the calibration constants at the top): the psychiatric
    # consultant's hours per CoCM patient-month, registry licence, and training (a kickoff in the
    # first month, occasional refreshers later).
    act_fm = np.stack([np.bincount(p_fac, weights=cocm_pm[:, mi], minlength=F) for mi in range(M)])  # (M, F)
    all_fm = np.stack([np.bincount(p_fac, weights=active[:, mi], minlength=F) for mi in range(M)])
    consult = act_fm * _CONSULTANT_COST_PER_COCM_PATIENT_MONTH
    registry = _REGISTRY_PER_FACILITY_MONTH + _REGISTRY_PER_ACTIVE_PATIENT_MONTH * all_fm
    training = np.where(rng.random((M, F)) < 0.2, 350 + np.round(rng.random((M, F)) * 850), 0.0)
    training[0, :] = _KICKOFF_TRAINING
    amounts = np.stack([consult, registry, training], axis=2)  # (M, F, 3)
    mm, ff, cc = np.meshgrid(np.arange(M), np.arange(F), np.arange(3), indexing="ij")
    keep = (amounts > 0).ravel()
    cost_df = pl.DataFrame(
        {
            "month": _pick(month_labels, mm.ravel()[keep]),
            "facility_id": _ids("F", ff.ravel()[keep] + 1, 2),
            "category": _pick(_COST_CATEGORIES, cc.ravel()[keep]),
            "amount": pl.Series(np.round(amounts.ravel()[keep], 2)),
        }
    )
    cost_df.write_csv(out / "program_costs.csv", float_precision=2)
    rows["program_costs"] = cost_df.height

    # APCM (docs/billing-rules.md, APCM): the last facility bills advanced primary care management
    # (G0556-G0558) for its Medicare patients' active months from 2026, by the patient's billing
    # practitioner; a stream of its own so no other table changes
    on_apcm = (p_fac == F - 1) & (p_payer == PAYERS.index("medicare"))
    ap_p, ap_m = np.nonzero(active & on_apcm[:, None] & (month_m >= np.datetime64("2026-01", "M"))[None, :])
    level = np.random.default_rng(seed + 3).choice(3, ap_p.size, p=[0.3, 0.5, 0.2])
    apcm_df = pl.DataFrame(
        {
            "patient_id": _ids("P", ap_p + 1, pw),
            "service_month": _pick(month_labels, ap_m),
            "apcm_code": _pick(("G0556", "G0557", "G0558"), level),
            "billing_provider_id": _ids("S", p_bp[ap_p] + 1, sw),
        }
    ).select(TABLE_COLUMNS["apcm"])
    apcm_df.write_csv(out / "apcm.csv")
    rows["apcm"] = apcm_df.height
    return rows


def _add_bad_rows(df: pl.DataFrame, linked: np.ndarray, first_month: np.datetime64) -> pl.DataFrame:
    """Insert the four deliberately bad rows (see BAD_ROWS) into the first month's entries.

    Each is a copy of an ordinary (unlinked) entry with one field broken, placed right after it.
    Columns become strings so that 'abc' and a month-13 date can be written.
    """
    df = df.with_columns(
        pl.col("minutes").cast(pl.String),
        pl.col("service_date").cast(pl.String),
        pl.col("documented_at").cast(pl.String),
    )
    year = str(first_month)[:4]
    cand = np.flatnonzero(~linked)
    if cand.size == 0:  # degenerate tiny drop: build from a minimal template
        template = pl.DataFrame(
            {
                "patient_id": ["P" + "1".zfill(6)],
                "staff_id": ["S0001"],
                "service_date": [f"{year}-{str(first_month)[5:7]}-05"],
                "minutes": ["10"],
                "activity": ["follow_up"],
                "program": ["cocm"],
                "start_time": ["09:00"],
                "end_time": ["09:10"],
                "documented_at": [f"{year}-{str(first_month)[5:7]}-05"],
                "encounter_id": [None],
            },
            schema=df.schema,
        )
        df = template if df.height == 0 else df
        anchors = [df.height - 1] * 4
        src = [template] * 4
    else:
        anchors = [int(cand[(i + 1) * cand.size // 5 - (1 if (i + 1) * cand.size // 5 >= cand.size else 0)]) for i in range(4)]
        src = [df.slice(a, 1) for a in anchors]
    bad = [
        src[0].with_columns(minutes=pl.lit("0"), end_time=pl.col("start_time")),
        src[1].with_columns(service_date=pl.lit(f"{year}-13-05")),
        src[2].with_columns(patient_id=pl.lit(None, dtype=pl.String)),
        src[3].with_columns(minutes=pl.lit("abc")),
    ]
    pieces = []
    prev = 0
    for a, b in sorted(zip(anchors, bad), key=lambda t: t[0]):
        pieces.append(df.slice(prev, a + 1 - prev))
        pieces.append(b)
        prev = a + 1
    pieces.append(df.slice(prev))
    return pl.concat(pieces, how="vertical")
