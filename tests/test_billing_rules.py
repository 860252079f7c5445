"""Billing-rules.md section 7 (the test oracle), for both rule sets, through the real SQL models.

Every case is its own patient in one small drop; a subsequent-month case logs 40 minutes in
January first so that February is the episode's second month.
"""

from __future__ import annotations

import pytest

from conftest import Drop, build_warehouse

# (rule set's payer, month type, countable minutes, expected codes)
CASES = [
    # Medicare, midpoint (CPT 50 % + 1) rule
    ("medicare", "initial", 15, ""),
    ("medicare", "initial", 16, "G2214"),
    ("medicare", "initial", 35, "G2214"),
    ("medicare", "initial", 36, "99492"),
    ("medicare", "initial", 68, "99492"),
    ("medicare", "initial", 85, "99492"),
    ("medicare", "initial", 86, "99492 + 99494"),
    ("medicare", "initial", 115, "99492 + 99494"),
    ("medicare", "initial", 116, "99492 + 99494 x2"),
    ("medicare", "subsequent", 15, ""),
    ("medicare", "subsequent", 16, "G2214"),
    ("medicare", "subsequent", 30, "G2214"),
    ("medicare", "subsequent", 31, "99493"),
    ("medicare", "subsequent", 75, "99493"),
    ("medicare", "subsequent", 76, "99493 + 99494"),
    ("medicare", "subsequent", 105, "99493 + 99494"),
    ("medicare", "subsequent", 106, "99493 + 99494 x2"),
    # full-time (literal descriptor) reading
    ("acme_commercial", "initial", 29, ""),
    ("acme_commercial", "initial", 30, "G2214"),
    ("acme_commercial", "initial", 68, "G2214"),
    ("acme_commercial", "initial", 69, "G2214"),
    ("acme_commercial", "initial", 70, "99492"),
    ("acme_commercial", "initial", 99, "99492"),
    ("acme_commercial", "initial", 100, "99492 + 99494"),
    ("acme_commercial", "initial", 130, "99492 + 99494 x2"),
    ("acme_commercial", "subsequent", 29, ""),
    ("acme_commercial", "subsequent", 30, "G2214"),
    ("acme_commercial", "subsequent", 55, "G2214"),
    ("acme_commercial", "subsequent", 59, "G2214"),
    ("acme_commercial", "subsequent", 60, "99493"),
    ("acme_commercial", "subsequent", 89, "99493"),
    ("acme_commercial", "subsequent", 90, "99493 + 99494"),
]

BHI_CASES = [("medicare", 19, ""), ("medicare", 20, "99484"), ("acme_commercial", 19, ""), ("acme_commercial", 20, "99484")]

# add-on caps: Medicare 2 (default), NC Medicaid 4, BCBS Michigan none
CAP_CASES = [
    ("medicare", 146, "99492 + 99494 x2", 1, 1),  # 3rd unit earned at 146 -> over the cap by 1 minute
    ("medicare", 200, "99492 + 99494 x2", 2, 55),  # units earned at 86, 116, 146, 176
    ("nc_medicaid", 200, "99492 + 99494 x4", 0, 0),
    ("nc_medicaid", 206, "99492 + 99494 x4", 1, 1),
    ("bcbs_mi", 206, "99492 + 99494 x5", 0, 0),
]

RATES = {"99492": 160.32, "99493": 144.96, "99494": 61.46, "G2214": 60.79, "99484": 57.45}  # 2026 example rates


def _case_id(case) -> str:
    return "-".join(str(x) for x in case[:3])


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rules")
    d = Drop(tmp / "drop")
    for i, (payer, month_type, minutes, _) in enumerate(CASES):
        patient = f"C{i:03d}"
        d.enroll(patient, payer=payer)
        if month_type == "initial":
            d.month(patient, "2026-02", minutes)
        else:
            d.month(patient, "2026-01", 40)
            d.month(patient, "2026-02", minutes)
    for i, (payer, minutes, _) in enumerate(BHI_CASES):
        d.enroll(f"B{i:03d}", payer=payer, program="bhi")
        d.month(f"B{i:03d}", "2026-02", minutes, review=False)
    for i, (payer, minutes, *_rest) in enumerate(CAP_CASES):
        d.enroll(f"K{i:03d}", payer=payer)
        d.month(f"K{i:03d}", "2026-02", minutes)
    conn = build_warehouse(tmp / "w.duckdb", d.write(), "2026-03-10")
    yield conn
    conn.close()


def _month(conn, patient: str) -> dict:
    cols = [c[0] for c in conn.sql("describe fct_patient_months").fetchall()]
    rows = conn.sql(
        f"select * from fct_patient_months where patient_id = '{patient}' and service_month = date '2026-02-01'"
    ).fetchall()
    assert len(rows) == 1
    return dict(zip(cols, rows[0]))


def _claims(conn, patient: str) -> str:
    rows = conn.sql(
        f"select code, units from fct_claims where patient_id = '{patient}' and service_month = date '2026-02-01' "
        "order by code = '99494', code"
    ).fetchall()
    return " + ".join(code + (f" x{units}" if units > 1 else "") for code, units in rows)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_cocm_threshold_boundaries(warehouse, case):
    payer, month_type, minutes, expected = case
    patient = f"C{CASES.index(case):03d}"
    month = _month(warehouse, patient)
    assert month["month_type"] == month_type
    assert month["countable_minutes"] == minutes
    assert month["current_codes"] == expected
    assert _claims(warehouse, patient) == expected  # closed month, gates met: the codes are claimed


@pytest.mark.parametrize("case", BHI_CASES, ids=_case_id)
def test_general_bhi_99484_floor_is_not_lowered_by_midpoint_rule(warehouse, case):
    payer, minutes, expected = case
    patient = f"B{BHI_CASES.index(case):03d}"
    assert _month(warehouse, patient)["current_codes"] == expected
    assert _claims(warehouse, patient) == expected


@pytest.mark.parametrize("case", CAP_CASES, ids=_case_id)
def test_add_on_cap_per_payer_reports_minutes_beyond_it(warehouse, case):
    payer, minutes, expected, units_over, minutes_over = case
    patient = f"K{CAP_CASES.index(case):03d}"
    month = _month(warehouse, patient)
    assert month["current_codes"] == expected
    assert month["units_over_cap"] == units_over
    assert month["minutes_over_cap"] == minutes_over
    gap = warehouse.sql(
        f"select minutes, dollars from fct_revenue_gap where patient_id = '{patient}' and reason = 'over_add_on_cap'"
    ).fetchall()
    assert gap == ([(minutes_over, round(units_over * RATES["99494"], 2))] if units_over else [])


def test_expected_amounts_use_the_fee_schedule(warehouse):
    patient = f"C{CASES.index(('medicare', 'initial', 116, '99492 + 99494 x2')):03d}"
    rows = warehouse.sql(
        f"select code, units, unit_amount, expected_amount from fct_claims where patient_id = '{patient}' order by code"
    ).fetchall()
    assert rows == [("99492", 1, 160.32, 160.32), ("99494", 2, 61.46, 122.92)]  # 2026-02: the 2026 rows


def test_no_patient_month_has_two_base_codes(warehouse):
    assert warehouse.sql(
        "select count(*) from (select patient_id, service_month from fct_claims where code <> '99494' "
        "group by all having count(*) > 1)"
    ).fetchall() == [(0,)]
