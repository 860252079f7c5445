"""835 remittances as payers send them, through `bhi run`: hand-written files in the published shapes
(tests/fixtures/x12: a Humana-style pipe-delimited file with a `>` component separator, no newlines and
a byte-order mark; a file of two interchanges, one with two transactions, CRLF after each segment; a
second payer reusing a trace number; a 4010 835 named .txt; an 837P named .835). The claim ids in
the files are placeholders (@P1JAN@ ...) filled with the ids the warehouse gives these claims."""

from __future__ import annotations

import contextlib
import csv
import io
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from conftest import Drop, build_warehouse
from pipelines.cli import main
from test_x12_837 import demographics, two_patients

FIXTURES = Path(__file__).parent / "fixtures" / "x12"
AS_OF = "2026-04-10"


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """One `bhi run` of a drop billing P1/P2 (January 99492, February 99493 + 99494) and P3 (January
    99492), with the fixture 835s -> (out folder, exit code, stdout, stderr)."""
    root = tmp_path_factory.mktemp("shapes")
    drop = Drop(root / "drop")
    two_patients(drop)
    drop.enroll("P3", enrolled_on="2026-01-01")
    drop.month("P3", "2026-01", 40)
    demographics(drop, ["P1", "P2", "P3"])
    with build_warehouse(root / "ids.duckdb", drop.write(), AS_OF) as conn:
        ids = conn.sql("select distinct patient_id, upper(strftime(service_month, '%b')), claim_id"
                       " from fct_x12_claim_lines").fetchall()
    for f in FIXTURES.iterdir():
        content = f.read_bytes()
        for patient, month, claim_id in ids:
            content = content.replace(f"@{patient}{month}@".encode(), claim_id.encode())
        (drop.folder / f.name).write_bytes(content)
    out = root / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run", "--extracts", str(drop.folder), "--out", str(out), "--as-of", AS_OF, "--allow-stale"])
    return out, code, stdout.getvalue(), stderr.getvalue()


def query(out: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        return conn.sql(sql).fetchall()


def read_csv(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_835s_are_found_by_content_and_other_files_refused_in_one_line(shapes_run):
    """A pipe-delimited .x12 with a BOM and no newlines, a CRLF .edi of two interchanges and a .835 are
    read; a 4010 835 named .txt and an 837P named .835 are refused, each in one line saying what it
    is: a ledger row, the run's stderr and exit code 1. A missing payer contact (PER*BL) is a warning."""
    out, code, _, stderr = shapes_run
    ledger = dict(query(out, "select source_file, status from ingest_files where table_name = 'remittance_835'"))
    assert ledger == {"a_humana_style.x12": "loaded", "b_multi_interchange.edi": "loaded",
                      "c_acme_same_trace.835": "loaded", "d_old_4010.txt": "rejected", "e_claims_named.835": "rejected"}
    assert code == 1
    refused = [line for line in stderr.splitlines() if "d_old_4010.txt" in line or "e_claims_named.835" in line]
    assert len(refused) == 2
    assert "an 835 remittance of version 004010X091A1 (4010): only 005010X221A1 is read" in refused[0]
    assert "an 837 claim file (GS01 HC, version 005010X222A1), not an 835 remittance" in refused[1]
    detail = query(out, "select detail from ingest_files where source_file = 'a_humana_style.x12'")[0][0]
    assert detail.startswith("loaded with 1 validator warning(s)")
    assert "PER (Payer Technical Contact Information): required segment missing" in detail
    # every payment of the three files: four transactions in the .edi and .x12, one in the .835
    assert query(out, "select count(*) from stg_remittance_payments") == [(5,)]


def test_another_payers_payment_with_the_same_trace_number_replaces_nothing(shapes_run):
    """ACME's payment (delivered after the Humana-style one) reuses trace number TR0001: both stay."""
    out, *_ = shapes_run
    assert query(out, "select payer_identifier, payer_name, payment_amount from stg_remittance_payments"
                      " where trace_number = 'TR0001' order by 1") == [
        ("1610000001", "HUMANA STYLE HEALTH PLAN", Decimal("583.50")),
        ("1999999991", "ACME HEALTH PLAN", Decimal("72.50"))]
    assert query(out, "select count(*) from stg_remittance_lines where trace_number = 'TR0001'") == [(7,)]


def test_each_claim_line_ends_in_the_state_the_835_says(shapes_run):
    out, *_ = shapes_run
    rows = query(out, "select patient_id || ' ' || strftime(service_month, '%Y-%m') || ' ' || code, payment_status,"
                      " paid, patient_responsibility, matched_by from fct_claim_payments order by 1")
    assert [(r[0], r[1]) for r in rows] == [
        ("P1 2026-01 99492", "paid with patient responsibility"),  # allowed = expected, 20 % by the patient
        ("P1 2026-02 99493", "underpaid"),  # a claim-level CO-253 takes its share below the expected amount
        ("P1 2026-02 99494", "underpaid"),  # re-coded by the payer (SVC01 G0511, SVC06 99494)
        ("P2 2026-01 99492", "denied"),  # claim-level denial, no service line
        ("P2 2026-02 99493", "reversed and re-paid"),
        ("P2 2026-02 99494", "reversed and re-paid"),
        ("P3 2026-01 99492", "reversed"),  # CLP02 22, not paid again
    ]
    by_line = {r[0]: r[2:] for r in rows}
    # the claim-level CAS (3.30) shared by charge: 190/275 -> 2.28, the rest 1.02; CLP04 161.84 in all
    assert by_line["P1 2026-02 99493"][:2] == (Decimal("113.69"), Decimal("28.99"))
    assert by_line["P1 2026-02 99494"] == (Decimal("48.15"), Decimal("12.29"),
                                           "claim id and billed code (SVC06, re-coded by the payer)")
    assert by_line["P1 2026-02 99493"][0] + by_line["P1 2026-02 99494"][0] == Decimal("161.84")
    # net of the reversal: the re-payment's amounts only
    assert by_line["P2 2026-02 99493"][:2] == (Decimal("100.00"), Decimal("25.00"))
    assert by_line["P3 2026-01 99492"][:2] == (Decimal("0.00"), Decimal("0.00"))
    assert by_line["P1 2026-01 99492"][2] == "claim id and line control number"
    # the reversal is not a denial: only P2's claim-level denial is on the worklist
    assert query(out, "select count(*) from fct_denial_worklist") == [(1,)]


def test_a_claim_level_denial_is_on_the_worklist_with_its_codes_in_words(shapes_run):
    out, *_ = shapes_run
    rows = read_csv(out / "denials.csv")
    assert len(rows) == 1
    row = rows[0]
    claim_id = query(out, "select claim_id from fct_x12_claim_lines where patient_id = 'P2'"
                          " and service_month = '2026-01-01'")[0][0]
    assert (row["claim_id"], row["payer_claim_control_number"], row["carc_codes"], row["rarc_codes"]) == (
        claim_id, "MCRICN0002", "CO-50", "N362")
    assert row["patient_name"] == "TEST2, PAT"  # the patients extract's name, for the biller
    assert "not deemed a medical necessity" in row["reasons"]
    assert row["rarc_descriptions"] == "The number of days or units of service exceeds our acceptable maximum"
    assert row["actions"].startswith("Add documentation of medical necessity")
    assert (row["expected_amount"], row["denied_on"], row["days_since_denial"]) == ("160.32", "2026-03-12", "29")


def test_provider_adjustments_are_kept_and_each_payment_balanced(shapes_run):
    """PLB rows per provider and fiscal period with the reason in words; BPR02 = sum of CLP04 - sum of
    PLB; the payment whose BPR02 is $10 off is flagged on stderr (exit 1) and on the summary line."""
    out, _, stdout, stderr = shapes_run
    assert query(out, "select trace_number, provider_id, fiscal_period_date::varchar, reason_code, reason_description,"
                      " amount from fct_remittance_provider_adjustments order by 1, adjustment_index") == [
        ("TR0001", "1234567893", "2026-12-31", "WO", "Overpayment recovery", Decimal("30.00")),
        ("TR0001", "1234567893", "2026-12-31", "L6", "Interest owed", Decimal("-2.50")),
        ("TR0003", "1234567893", "2026-12-31", "FB", "Forwarding balance", Decimal("-153.40")),
        ("TR0004", "1234567893", "2026-12-31", "L6", "Interest owed", Decimal("-2.50")),
    ]
    assert query(out, "select trace_number, payment_amount, expected_payment, difference from fct_remittance_payments"
                      " where not balanced") == [("TR0003", Decimal("10.00"), Decimal("0.00"), Decimal("10.00"))]
    assert "1 835 payment(s) do not balance" in stderr and "$10.00" in stderr
    assert "5 payments (1 NOT BALANCED, $10.00)" in stdout


def test_unmatched_remittances_are_listed_with_their_dollars(shapes_run):
    out, _, stdout, _ = shapes_run
    rows = read_csv(out / "remittance_unmatched.csv")
    assert [(r["claim_id"], r["paid"], r["unmatched"]) for r in rows] == [("ACMECLAIM9", "100.00", "true")]
    assert "1 unmatched lines ($100.00)" in stdout


def test_round_trip_on_the_sample_every_line_in_the_state_its_835_says_and_all_outputs_agree(sample_run):
    """The bundled sample's 835s answer the claims the sample bills (pipelines/x12/sample_835.py draws
    each claim's outcome from its stable claim id): every claim line ends in the state its 835 says,
    and the 835 files' payment totals (BPR02), payments.csv, denials.csv, remittance_unmatched.csv, the
    payments page and the run summary agree to the cent."""
    from conftest import SAMPLE_DIR
    from pipelines.x12.remittance_835 import interchanges
    from pipelines.x12.sample_835 import outcome_lines

    out, stdout = sample_run
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        months = [m for (m,) in conn.sql("select distinct strftime(service_month, '%Y-%m') from fct_x12_claim_lines"
                                         " where service_month < date '2026-10-01' order by 1").fetchall()]
        said = {}
        for r in outcome_lines(conn, months):
            if r["outcome"] == "paid":
                said[r["claim_line_id"]] = ("paid with patient responsibility"
                                            if any(a[0] == "PR" and a[2] for a in r["adjustments"]) else "paid")
            else:  # unanswered: the sample run closed no month, so nothing was recorded as sent
                said[r["claim_line_id"]] = {"unanswered": "not submitted"}.get(r["outcome"], r["outcome"])
        states = dict(conn.sql("select claim_line_id, payment_status from fct_claim_payments").fetchall())
        total = conn.sql("select paid, patient_responsibility, denied_lines, denied_expected_amount"
                         " from rpt_payments_summary where grouping_level = 'total'").fetchall()[0]
        # a claim the scrub holds (fct_x12_claims_held) is never sent, so no 835 answers its lines
        held = {line for (line,) in conn.sql("select claim_line_id from fct_x12_claim_lines"
                                             " where claim_missing_elements is not null").fetchall()}
        claim_lines = conn.sql("select count(*) from fct_claims").fetchall()[0][0]
    assert len(said) + len(held) == claim_lines == len(states) and set(states) == set(said) | held
    assert states == said | {line: "not submitted" for line in held}
    # the files: the sum of BPR02 over every 835 = the claims paid (no PLB in the sample)
    bpr = sum(Decimal(seg.split(ic.element)[2]) for f in SAMPLE_DIR.glob("*.835")
              for ic in interchanges(f.read_bytes()) for seg in ic.content.split(ic.terminator)
              if seg.strip().startswith("BPR" + ic.element))
    payments = read_csv(out / "payments.csv")
    paid = sum(Decimal(r["paid"]) for r in payments)
    patient = sum(Decimal(r["patient_responsibility"]) for r in payments)
    assert paid == bpr == total[0] and patient == total[1]
    denials = read_csv(out / "denials.csv")
    assert len(denials) == total[2] == sum(1 for r in payments if r["payment_status"] == "denied")
    assert sum(Decimal(r["expected_amount"]) for r in denials) == total[3]
    assert read_csv(out / "remittance_unmatched.csv") == []
    page = (out / "dashboards" / "payments.html").read_text()
    for shown in (f"${paid:,.2f}", f"${patient:,.2f}", f"Denied ({len(denials)} lines)", f"${total[3]:,.2f}",
                  f"of {len(denials)} denied lines", "Unmatched remittances (0 lines)"):
        assert shown in page, shown
    assert "20 payments, all balanced; 0 unmatched lines ($0.00)" in stdout
    assert f"{len(denials)} denied lines ->" in stdout


def test_findings_on_contacts_and_addresses_are_warnings_and_the_others_reject_in_words():
    """pyx12's findings in words (segment / element name and the 999 error code spelled out), never a
    value; on PER / N3 / N4 (x12_835_warning_segments.csv) a warning, elsewhere a rejection."""
    from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR
    from pipelines.x12.remittance_835 import interchanges
    from pipelines.x12.validate import validate_x12

    warn = {r["segment"] for r in read_csv(DEFAULT_REFERENCE_DIR / "x12_835_warning_segments.csv")}
    raw = (FIXTURES / "c_acme_same_trace.835").read_bytes()
    bad_state = interchanges(raw.replace(b"N4*CARY*NC*27511", b"N4*CARY*QQ*27511"))[0].content
    verdict = validate_x12(bad_state, warn)
    assert verdict.valid and verdict.warnings == ["N402 (Payer State Code): invalid code value (error 7)"]
    assert not validate_x12(bad_state).valid  # without the setting, the same finding rejects
    bad_money = interchanges(raw.replace(b"CAS*CO*45*50~", b"CAS*CO*45*5O~"))[0].content
    verdict = validate_x12(bad_money, warn)
    assert not verdict.valid and verdict.warnings == []
    assert any(f.startswith("CAS03 (") and "5O" not in f for f in verdict.safe), verdict.safe


def test_round_trip_close_then_835_then_run_through_the_command_line(tmp_path):
    """`bhi run`, `bhi close` (837P sent), an 835 per payer and month answering the close's claims with
    known outcomes, `bhi run` again: every line in the state the 835 says (the unanswered claim, sent
    at the close, is "no answer"), and payments.csv, denials.csv, the page and the summary agree."""
    from pipelines.x12.sample_835 import write_sample_835s
    from test_x12_835 import OUTCOMES

    drop = Drop(tmp_path / "drop")
    two_patients(drop)
    demographics(drop, ["P1", "P2"])
    drop.write()
    out = tmp_path / "out"
    run = ["run", "--extracts", str(drop.folder), "--out", str(out), "--as-of", AS_OF, "--allow-stale"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(run) == 0
        assert main(["close", "--out", str(out), "--month", "2026-01", "--through", "2026-02"]) == 0
    with duckdb.connect(str(out / "warehouse.duckdb")) as conn:
        lines = conn.sql("select claim_line_id, patient_id, strftime(service_month, '%Y-%m') from fct_x12_claim_lines"
                         ).fetchall()
        forced = {cl: OUTCOMES[(p, m)] for cl, p, m in lines}
        files = write_sample_835s(conn, drop.folder, ["2026-01", "2026-02"], forced=forced)
    assert len(files) == 2
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(run) == 0
    states = dict(query(out, "select patient_id || ' ' || strftime(service_month, '%Y-%m') || ' ' || code,"
                             " payment_status from fct_claim_payments"))
    assert states == {
        "P1 2026-01 99492": "underpaid", "P2 2026-01 99492": "no answer",
        "P1 2026-02 99493": "paid with patient responsibility", "P1 2026-02 99494": "paid with patient responsibility",
        "P2 2026-02 99493": "denied", "P2 2026-02 99494": "denied",
    }
    payments = read_csv(out / "payments.csv")
    paid = sum(Decimal(r["paid"]) for r in payments)
    bpr = sum(Decimal(a) for (a,) in query(out, "select payment_amount from fct_remittance_payments where balanced"))
    assert paid == bpr == Decimal("115.43") + Decimal("115.97") + Decimal("49.17")
    assert len(read_csv(out / "denials.csv")) == 2
    page = (out / "dashboards" / "payments.html").read_text()
    assert f"${paid:,.2f}" in page and "Denied (2 lines)" in page and "of 2 denied lines" in page
    assert "2 payments, all balanced; 0 unmatched lines ($0.00)" in stdout.getvalue()
    assert "2 denied lines ->" in stdout.getvalue()
