"""Claim scrub before the 837P (fct_claim_scrub_findings; docs/billing-rules.md, Claim scrubbing): NCCI PTP
edits (modifier indicator 0 / 1 / 9, effective and deletion dates), MUEs (MAI 1 per line, MAI 2 / 3 per date
of service), add-on codes without their primary, APCM add-ons without their base or with another
practitioner, standalone codes in an APCM month. The edits are test files in CMS's column layout; the claim
lines are written straight into fct_claims so each edit's boundary is one line apart."""

import shutil

import pytest

from pipelines.warehouse.models import materialize
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR
from tests.conftest import MODELS_BY_NAME, Drop, build_warehouse, write_csv

PTP = [  # Column 1, Column 2, *, Effective Date, Deletion Date, Modifier, PTP Edit Rationale
    ("99492", "99484", "", "20170101", "*", "0", "Mutually exclusive procedures"),
    ("99493", "99484", "", "20170101", "*", "1", "Misuse of column two code with column one code"),
    ("99492", "G2214", "", "20210101", "*", "9", "Edit deleted"),
    ("99493", "G2214", "", "20170101", "20260201", "0", "Mutually exclusive procedures"),
]
MUE = [("99494", "2", "1 Line Edit", "Clinical: Data"), ("99484", "1", "2 Date of Service Edit: Policy", "CMS Policy")]


@pytest.fixture(scope="module")
def scrub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scrub")
    ref = folder / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    for excerpt in (ref / "ncci").glob("*EXCERPT*"):
        excerpt.unlink()
    (ref / "ncci" / "ccipra-v321r0-f1.txt").write_text(
        "CPT codes, descriptions and other data only are copyright 2025 American Medical Association.\n"
        "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date *=no data\t"
        "Modifier 0=not allowed 1=allowed 9=not applicable\tPTP Edit Rationale\n"
        + "".join("\t".join(r) + "\n" for r in PTP))
    (ref / "ncci" / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv").write_text(
        '"CPT codes, descriptions and other data only are copyright 2025 American Medical Association."\n'
        "HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n"
        + "".join(",".join(r) + "\n" for r in MUE))
    d = Drop(folder / "drop")
    d.enroll("P1")
    d.month("P1", "2026-01", 40)
    d.write()
    write_csv(d.folder / "apcm.csv", [{"patient_id": "P1", "service_month": "2026-02", "apcm_code": "G0556",
                                       "billing_provider_id": "BP1"}],
              ["patient_id", "service_month", "apcm_code", "billing_provider_id"])
    conn = build_warehouse(folder / "w.duckdb", d.folder, "2026-04-15", ref)
    conn.build("fct_claims", "stg_apcm")
    conn.execute("create table claim_template as select * from fct_claims")
    assert conn.sql("select count(*) from claim_template").fetchall() == [(1,)]
    yield conn
    conn.close()


def findings(conn, lines: list[tuple]) -> set[tuple]:
    """Scrub these claim lines (line id, code, units, modifiers, date of service[, billing provider]) of
    patient P1: {(line id, edit, other code)}."""
    conn.execute("delete from fct_claims")
    for line_id, code, units, modifiers, dos, *provider in lines:
        conn.execute(
            "insert into fct_claims select * replace (? as claim_line_id, ? as code, ? as units, ? as modifiers,"
            " ?::date as date_of_service, date_trunc('month', ?::date)::date as service_month,"
            " ? as billing_provider_id) from claim_template",
            [line_id, code, units, modifiers, dos, dos, provider[0] if provider else "BP1"])
    materialize(conn.conn, MODELS_BY_NAME["fct_claim_scrub_findings"])
    return set(conn.sql("select claim_line_id, edit, other_code from fct_claim_scrub_findings").fetchall())


def test_ptp_modifier_indicator_0_fails_the_column_2_line_even_with_a_modifier(scrub):
    assert findings(scrub, [("A", "99492", 1, "", "2026-01-31"), ("B", "99484", 1, "59", "2026-01-31")]) == {
        ("B", "ncci_ptp", "99492")}


def test_ptp_pair_on_different_dates_or_practitioners_passes(scrub):
    assert findings(scrub, [("A", "99492", 1, "", "2026-01-31"), ("B", "99484", 1, "", "2026-01-31")]) == {
        ("B", "ncci_ptp", "99492")}
    assert findings(scrub, [("A", "99492", 1, "", "2026-01-31"), ("B", "99484", 1, "", "2026-01-30")]) == set()
    assert findings(scrub, [("A", "99492", 1, "", "2026-01-31"), ("B", "99484", 1, "", "2026-01-31", "BP2")]) == set()


def test_ptp_modifier_indicator_1_is_bypassed_by_an_ncci_modifier_only(scrub):
    pair = [("A", "99493", 1, "", "2026-03-31")]
    assert findings(scrub, [*pair, ("B", "99484", 1, "", "2026-03-31")]) == {("B", "ncci_ptp", "99493")}
    assert findings(scrub, [*pair, ("B", "99484", 1, "GT", "2026-03-31")]) == {("B", "ncci_ptp", "99493")}
    assert findings(scrub, [*pair, ("B", "99484", 1, "GT,XU", "2026-03-31")]) == set()


def test_ptp_modifier_indicator_9_never_fails(scrub):
    # G2214 under 99492 (indicator 9) and under 99493 (indicator 0) on one date: only the 0 edit fails it
    assert findings(scrub, [("A", "99492", 1, "", "2026-01-31"), ("B", "G2214", 1, "", "2026-01-31")]) == set()
    assert findings(scrub, [("A", "99492", 1, "", "2026-01-31"), ("C", "99493", 1, "", "2026-01-31"),
                            ("B", "G2214", 1, "", "2026-01-31")]) == {("B", "ncci_ptp", "99493")}


def test_ptp_edit_applies_until_the_day_before_its_deletion_date(scrub):
    assert findings(scrub, [("A", "99493", 1, "", "2026-01-31"), ("B", "G2214", 1, "", "2026-01-31")]) == {
        ("B", "ncci_ptp", "99493")}
    # (by BP2: February is P1's APCM month with BP1)
    assert findings(scrub, [("A", "99493", 1, "", "2026-02-01", "BP2"), ("B", "G2214", 1, "", "2026-02-01", "BP2")]) == set()


def test_mue_mai_1_counts_units_per_line(scrub):
    base = ("P", "99493", 1, "", "2026-03-31")
    assert findings(scrub, [base, ("A", "99494", 2, "", "2026-03-31")]) == set()
    assert findings(scrub, [base, ("A", "99494", 3, "", "2026-03-31")]) == {("A", "ncci_mue", "")}
    # two lines of 2 units each: a line edit passes both
    assert findings(scrub, [base, ("A", "99494", 2, "", "2026-03-31"), ("B", "99494", 2, "76", "2026-03-31")]) == set()


def test_mue_mai_2_sums_units_on_the_date_of_service(scrub):
    assert findings(scrub, [("A", "99484", 1, "", "2026-03-31")]) == set()
    assert findings(scrub, [("A", "99484", 1, "", "2026-03-31"), ("B", "99484", 1, "76", "2026-03-31")]) == {
        ("A", "ncci_mue", ""), ("B", "ncci_mue", "")}
    assert findings(scrub, [("A", "99484", 1, "", "2026-03-31"), ("B", "99484", 1, "", "2026-03-30")]) == set()


def test_add_on_without_its_primary_fails(scrub):
    assert findings(scrub, [("A", "99494", 1, "", "2026-03-31")]) == {("A", "add_on_without_primary", "")}
    assert findings(scrub, [("P", "99492", 1, "", "2026-03-31"), ("A", "99494", 1, "", "2026-03-31")]) == set()
    assert findings(scrub, [("P", "99492", 1, "", "2026-03-30"), ("A", "99494", 1, "", "2026-03-31")]) == {
        ("A", "add_on_without_primary", "")}


def test_apcm_add_on_needs_the_base_by_the_same_practitioner(scrub):
    # apcm.csv: P1 has G0556 by BP1 in 2026-02 only
    assert findings(scrub, [("A", "G0569", 1, "", "2026-02-28")]) == set()
    assert findings(scrub, [("A", "G0569", 1, "", "2026-03-31")]) == {("A", "apcm_add_on_without_base", "")}
    assert findings(scrub, [("A", "G0569", 1, "", "2026-02-28", "BP2")]) == {
        ("A", "apcm_add_on_other_practitioner", "G0556")}


def test_standalone_code_in_an_apcm_month_fails(scrub):
    assert findings(scrub, [("A", "99493", 1, "", "2026-02-28")]) == {("A", "standalone_code_in_apcm_month", "G0556")}
    assert findings(scrub, [("A", "99493", 1, "", "2026-03-31")]) == set()
    # the base by another practitioner: the standalone code is what bills
    assert findings(scrub, [("A", "99493", 1, "", "2026-02-28", "BP2")]) == set()


def test_no_837p_leaves_the_close_with_a_line_the_shipped_edits_reject(tmp_path):
    """NC Medicaid allows 99494 x4 (payers.csv): 140 minutes in a subsequent month earn 99493 + 99494 x3, more
    than the shipped MUE excerpt's 2 units a date: that claim is held with the edit named, the other sent."""
    from pipelines.outputs.close import close_months, send_claims
    from test_x12_837 import claims_in, demographics

    d = Drop(tmp_path / "drop")
    d.enroll("P1", payer="nc_medicaid")
    d.enroll("P2")
    for p, minutes in (("P1", 140), ("P2", 80)):
        d.month(p, "2026-01", 40)
        d.month(p, "2026-02", minutes)
    demographics(d, ["P1", "P2"])
    conn = build_warehouse(tmp_path / "w.duckdb", d.write(), "2026-03-15", every_model=True)
    try:
        out = tmp_path / "out"
        close_months(conn, out, "2026-02", "2026-02")
        sent = send_claims(conn, out, "2026-02", "2026-02")
        sent_ids = {c for x in sent for c in claims_in(x.content)}
        failing = {r[0] for r in conn.sql(
            "select x.claim_id from fct_claim_scrub_findings join fct_x12_claim_lines as x using (claim_line_id)"
        ).fetchall()}
        assert failing and sent_ids and not failing & sent_ids
        held = conn.sql("select codes, scrub_edits from fct_x12_claims_held").fetchall()
        assert held == [("99493, 99494", "99494: ncci_mue")]
        from pipelines.outputs.explain import explain_with

        assert "CLAIM SCRUB: 99494 ncci_mue: NCCI MUE 99494: 3 unit(s) on the date of service, more than the MUE" \
            " value 2" in explain_with(conn, "P1", "2026-02")
        # nothing in the submission ledger fails a shipped edit
        assert conn.sql("select count(*) from x12_claim_submission_lines semi join fct_claim_scrub_findings"
                        " using (claim_line_id)").fetchall() == [(0,)]
    finally:
        conn.close()


def _ncci_reference(tmp_path, name: str, text: str):
    ref = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    (ref / "ncci" / name).write_text(text)
    return ref


def test_a_quarter_loaded_replaces_the_shipped_excerpt_and_keeps_cms_columns(tmp_path):
    import duckdb

    from pipelines.warehouse.reference import seed_reference

    ref = _ncci_reference(tmp_path, "ccipra-v321r0-f1.txt",
                          "notice line\nColumn 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\t"
                          "Deletion Date *=no data\tModifier 0=not allowed 1=allowed 9=not applicable\tPTP Edit Rationale\n"
                          "\t\t\t\t\t\t\n99492\t99484\t\t20170101\t20250101\t9\tEdit deleted\n")
    conn = duckdb.connect()
    counts = seed_reference(conn, ref)
    assert counts["ref_ncci_ptp"] == 1  # the excerpt's 13 edits are not applied once a quarter's file is there
    assert counts["ref_ncci_mue"] == 9  # no MUE file loaded: the MUE excerpt still applies
    assert conn.sql("select column_1, column_2, effective_date::varchar, deletion_date::varchar, modifier_indicator,"
                    " source_file from ref_ncci_ptp").fetchall() == [
        ("99492", "99484", "2017-01-01", "2025-01-01", "9", "ccipra-v321r0-f1.txt")]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("notes.txt", "my notes\n", "ncci/notes.txt: not a CMS practitioner PTP or MUE file"),
    ("MCR_MUE_PractitionerServices_Eff_01-01-2026.csv",
     "HCPCS/CPT Code,Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n99494,two,3 x,y\n",
     "NCCI file(s) with unreadable edit rows (a date, modifier indicator, MUE value or adjudication indicator):"
     " MCR_MUE_PractitionerServices_Eff_01-01-2026.csv: 1 row(s)"),
])
def test_an_unreadable_ncci_file_stops_the_run_naming_it(tmp_path, name, text, message):
    import duckdb

    from pipelines.warehouse.reference import ReferenceDataError, seed_reference

    with pytest.raises(ReferenceDataError) as err:
        seed_reference(duckdb.connect(), _ncci_reference(tmp_path, name, text))
    assert str(err.value).startswith(message)
