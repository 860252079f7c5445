"""APCM behavioral-health add-ons (CY 2026 PFS final rule, CMS-1832-F; docs/billing-rules.md, APCM): in a
patient-month with an APCM base code (G0556-G0558) billed by the enrollment's billing practitioner, the
standalone CoCM / general BHI codes are billed as G0568 / G0569 / G0570 (Medicare rows of
apcm_add_ons.csv); without the base, or with the base by another practitioner, the standalone codes stay."""

import pytest

from tests.conftest import Drop, write_csv


def _apcm(drop: Drop, rows: list[tuple[str, str, str, str]]) -> None:
    write_csv(drop.folder / "apcm.csv",
              [{"patient_id": p, "service_month": m, "apcm_code": c, "billing_provider_id": b} for p, m, c, b in rows],
              ["patient_id", "service_month", "apcm_code", "billing_provider_id"])


@pytest.fixture(scope="module")
def apcm_warehouse(tmp_path_factory):
    from tests.conftest import build_warehouse

    folder = tmp_path_factory.mktemp("apcm")
    d = Drop(folder / "drop")
    d.add_staff("BP2", "billing_practitioner")
    for p in ("BASE", "NOBASE", "OTHER", "MID", "LONG", "BHI", "NEAR", "MCAID"):
        payer = "nc_medicaid" if p == "MCAID" else "medicare"
        program = "bhi" if p == "BHI" else "cocm"
        d.enroll(p, enrolled_on="2026-01-01", consent_on="2026-01-01", payer=payer, program=program)
    d.month("BASE", "2026-01", 40)      # initial month, APCM by BP1: G0568
    d.month("NOBASE", "2026-01", 40)    # no APCM row: 99492
    d.month("OTHER", "2026-01", 40)     # APCM by BP2, enrollment billed by BP1: 99492 stays
    d.month("MID", "2026-01", 40)       # standalone 99492 in January ...
    d.month("MID", "2026-02", 40)       # ... APCM from February: subsequent month, G0569
    d.month("LONG", "2026-01", 120)     # 99492 + 99494 x2 earned: G0568 only in an APCM month
    d.month("BHI", "2026-01", 25, review=False)  # 99484 -> G0570
    d.month("NEAR", "2026-01", 20)      # G2214 earned: nothing billed in an APCM month, next code G0568 at 36
    d.month("MCAID", "2026-01", 40)     # payer without APCM add-on rows: 99492 stays
    d.write()
    _apcm(d, [("BASE", "2026-01", "G0556", "BP1"), ("OTHER", "2026-01", "G0557", "BP2"),
              ("MID", "2026-02", "G0557", "BP1"), ("LONG", "2026-01", "G0558", "BP1"),
              ("BHI", "2026-01", "G0556", "BP1"), ("NEAR", "2026-01", "G0556", "BP1"),
              ("MCAID", "2026-01", "G0556", "BP1")])
    conn = build_warehouse(folder / "w.duckdb", d.folder, "2026-03-15")
    yield conn
    conn.close()


def codes(conn, patient: str, month: str) -> str | None:
    return conn.sql(
        f"select current_codes from fct_patient_months where patient_id = '{patient}'"
        f" and service_month = '{month}-01'").fetchall()[0][0]


def test_apcm_month_with_the_base_by_the_same_practitioner_bills_the_add_on(apcm_warehouse):
    assert codes(apcm_warehouse, "BASE", "2026-01") == "G0568"
    assert codes(apcm_warehouse, "BHI", "2026-01") == "G0570"
    amount, = apcm_warehouse.sql("select expected_amount from fct_claims where patient_id = 'BASE'").fetchall()[0]
    assert float(amount) == 160.32  # the crosswalk estimate of fee_schedule.csv (99492's 2026 example rate)


def test_same_minutes_bill_the_add_on_with_the_base_and_the_standalone_code_without(apcm_warehouse):
    assert (codes(apcm_warehouse, "BASE", "2026-01"), codes(apcm_warehouse, "NOBASE", "2026-01")) == ("G0568", "99492")


def test_base_by_another_practitioner_keeps_the_standalone_codes_and_says_why(apcm_warehouse):
    assert codes(apcm_warehouse, "OTHER", "2026-01") == "99492"
    status, detail = apcm_warehouse.sql(
        "select status, detail from fct_claim_evidence where patient_id = 'OTHER' and item = 'apcm'").fetchall()[0]
    assert status == "standalone" and "BP2" in detail and "same practitioner" in detail


def test_bhi_explain_says_why_the_add_on_was_or_was_not_billed(apcm_warehouse):
    from pipelines.outputs.explain import explain_with

    text = explain_with(apcm_warehouse.build("fct_claim_evidence").conn, "LONG", "2026-01")
    assert "G0568 earned" in text and "99492 earned, billed as the APCM add-on G0568" in text
    assert "gate apcm: add-on (APCM base G0558 billed by BP1 (the billing practitioner)" in text
    other = explain_with(apcm_warehouse.conn, "OTHER", "2026-01")
    assert "gate apcm: standalone (APCM base G0557 billed by BP2, not the billing practitioner BP1" in other


def test_month_moving_from_standalone_cocm_to_apcm_mid_episode_is_subsequent(apcm_warehouse):
    assert codes(apcm_warehouse, "MID", "2026-01") == "99492"
    assert codes(apcm_warehouse, "MID", "2026-02") == "G0569"


def test_add_on_minutes_bill_nothing_more_in_an_apcm_month(apcm_warehouse):
    assert codes(apcm_warehouse, "LONG", "2026-01") == "G0568"
    detail, = apcm_warehouse.sql(
        "select detail from fct_claim_evidence where patient_id = 'LONG' and section = 'threshold'").fetchall()[0]
    assert "99492 earned, billed as the APCM add-on G0568 (base G0558" in detail


def test_worklist_next_code_names_the_add_on(apcm_warehouse):
    row = apcm_warehouse.sql(
        "select current_codes, next_codes, next_target_minutes from fct_patient_months"
        " where patient_id = 'NEAR' and service_month = '2026-01-01'").fetchall()[0]
    assert row == ("", "G0568", 36)


def test_only_a_payer_with_add_on_rows_bills_the_add_on(apcm_warehouse):
    # the same APCM month under Medicare (rows shipped) and NC Medicaid (none)
    assert (codes(apcm_warehouse, "BASE", "2026-01"), codes(apcm_warehouse, "MCAID", "2026-01")) == ("G0568", "99492")
