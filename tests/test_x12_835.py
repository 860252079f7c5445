"""Payments in from X12 835: parsed with pyx12, loaded with the ledger / re-delivery / quarantine
rules, matched to claim lines, reconciled to the cent, and the reconciliation marts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conftest import write_csv
from pipelines.x12.claims_837 import submit_month
from pipelines.x12.sample_835 import write_sample_835s
from pipelines.x12.validate import validate_x12
from test_x12_837 import demographics, rebuild, two_patients


def scenario(drop, build, tmp_path, forced_by_patient):
    """P1/P2 billed in January (99492) and February (99493 + 99494), sent as 837P, then an 835 per
    payer and month with the given outcome per (patient, month)."""
    two_patients(drop)
    demographics(drop, ["P1", "P2"])
    conn = build(drop, "2026-04-10", every_model=True)  # handed to submit_month and rebuilt
    for month in ("2026-01", "2026-02"):
        submit_month(conn, tmp_path / "out", month)
    lines = conn.sql("select claim_line_id, patient_id, strftime(service_month, '%Y-%m') from fct_x12_claim_lines").fetchall()
    forced = {cl: forced_by_patient[(p, m)] for cl, p, m in lines if (p, m) in forced_by_patient}
    files = write_sample_835s(conn, drop.folder, ["2026-01", "2026-02"], forced=forced)
    rebuild(conn, drop.folder, "2026-04-10")
    return conn, files


OUTCOMES = {
    ("P1", "2026-01"): ("underpaid", "", ""),
    ("P2", "2026-01"): ("unanswered", "", ""),
    ("P1", "2026-02"): ("paid", "", ""),
    ("P2", "2026-02"): ("denied", "50", "N362"),
}


def test_sample_835_passes_pyx12_and_reconciles_to_the_cent(drop, build, tmp_path):
    conn, files = scenario(drop, build, tmp_path, OUTCOMES)
    assert [f.name for f in files] == ["remit_medicare_2026-01.835", "remit_medicare_2026-02.835"]
    for f in files:
        assert validate_x12(f.read_text()).valid
    # every remittance line matched (by claim id) and balanced: nothing unmatched
    assert conn.sql("select count(*) from fct_remittance_unmatched").fetchall() == [(0,)]
    assert conn.sql("select count(*), count(*) filter (where matched_by = 'claim id and line control number')"
                    " from fct_remittance_lines").fetchall() == [(5, 5)]
    # paid + adjustments + patient responsibility = charge, to the cent, for every answered line
    rows = conn.sql("select charge, paid, patient_responsibility, contractual_adjustment, other_adjustment"
                    " from fct_claim_payments where payment_status not in ('no answer', 'not submitted')").fetchall()
    assert len(rows) == 5
    for charge, paid, pr, co, other in rows:
        assert Decimal(str(paid)) + Decimal(str(pr)) + Decimal(str(co)) + Decimal(str(other)) == Decimal(str(charge))
    status = dict(conn.sql("select patient_id || ' ' || strftime(service_month, '%Y-%m') || ' ' || code,"
                           " payment_status from fct_claim_payments").fetchall())
    assert status == {
        "P1 2026-01 99492": "underpaid", "P2 2026-01 99492": "no answer",
        # Medicare's 20 % coinsurance: paid at the expected amount, part of it by the patient
        "P1 2026-02 99493": "paid with patient responsibility", "P1 2026-02 99494": "paid with patient responsibility",
        "P2 2026-02 99493": "denied", "P2 2026-02 99494": "denied",
    }


def test_payments_marts(drop, build, tmp_path):
    conn, _ = scenario(drop, build, tmp_path, OUTCOMES)
    # underpaid: allowed 90 % of the expected 160.32 (2026 example rate) = 144.29 -> variance -16.03;
    # Medicare 20 % coinsurance: paid 115.43, patient 28.86
    assert conn.sql("select paid, patient_responsibility, contract_variance from fct_claim_payments"
                    " where patient_id = 'P1' and code = '99492'").fetchall() == [
        (Decimal("115.43"), Decimal("28.86"), Decimal("-16.03"))]
    aging = conn.sql("select payer_id, codes, days_without_answer, past_aging_limit, payment_status"
                     " from fct_remittance_aging").fetchall()
    sent_on = conn.sql("select min(submitted_at)::date from x12_claim_submissions").fetchall()[0][0]
    import datetime as dt
    assert aging == [("medicare", "99492", (dt.date(2026, 4, 10) - sent_on).days, False, "no answer")]
    denials = conn.sql("select group_code, reason_code, reason_description, kind, claim_lines, amount, rarc_codes"
                       " from fct_remittance_denials where kind = 'denial'").fetchall()
    assert denials == [("CO", "50", "These are non-covered services because this is not deemed a medical necessity"
                        " by the payer", "denial", 2, Decimal("275.00"), "N362")]
    worklist = conn.sql("select code, carc_codes, actions from fct_denial_worklist order by code").fetchall()
    assert [w[:2] for w in worklist] == [("99493", "CO-50"), ("99494", "CO-50")]
    assert "medical necessity" in worklist[0][2]
    rate = conn.sql("select service_month::varchar, claim_lines, answered_lines, denied_lines, collection_rate"
                    " from rpt_collection_rate order by 1").fetchall()
    # the rate counts what the payer paid, never the patient's share (issue: patient responsibility is owed,
    # not collected). January: 115.43 paid of the 160.32 expected on the one answered line -> 72 %;
    # February: P1 paid in full less the 20 % coinsurance, P2 denied, equal expected amounts -> 80 % / 2 = 40 %
    assert rate == [("2026-01-01", 2, 1, 0, 0.72), ("2026-02-01", 4, 4, 2, 0.4)]
    gap = conn.sql("select reason, claim_lines, amount from fct_revenue_gap_post_submission order by 1").fetchall()
    assert gap == [("denied", 2, Decimal("206.42")), ("underpaid", 1, Decimal("16.03"))]  # 2026 rates: 144.96 + 61.46


def test_redelivered_835_is_not_counted_twice_and_a_bad_file_is_rejected(drop, build, tmp_path):
    conn, files = scenario(drop, build, tmp_path, OUTCOMES)
    (drop.folder / "copy_of_remit.835").write_bytes(files[1].read_bytes())
    (drop.folder / "broken.835").write_text(files[0].read_text().replace("SE*", "SE*9"))
    rebuild(conn, drop.folder, "2026-04-11")
    ledger = dict(conn.sql("select source_file, status from ingest_files where table_name = 'remittance_835'").fetchall())
    assert ledger["copy_of_remit.835"] == "duplicate" and ledger["broken.835"] == "rejected"
    detail = conn.sql("select detail from ingest_files where source_file = 'broken.835'").fetchall()[0][0]
    assert "number of segments in SE01 does not match" in detail and "SE count" not in detail  # words, never values
    # named in this load's rejected files: `bhi run` exits 1 and prints it
    assert conn.sql("select source_file from ingest_errors").fetchall() == [("broken.835",)]
    assert conn.sql("select count(*) from fct_remittance_lines").fetchall() == [(5,)]
    rebuild(conn, drop.folder, "2026-04-12")  # a rerun: the rejected file is retried, nothing doubles
    assert conn.sql("select count(*) from fct_remittance_lines").fetchall() == [(5,)]
    assert conn.sql("select source_file from ingest_errors").fetchall() == [("broken.835",)]


def test_payment_under_an_unknown_claim_id_matches_by_patient_date_and_code_or_is_listed(drop, build, tmp_path):
    conn, files = scenario(drop, build, tmp_path, OUTCOMES)
    feb = files[1].read_text()
    claim_p1 = conn.sql("select distinct claim_id from fct_x12_claim_lines where patient_id = 'P1'"
                        " and service_month = '2026-02-01'").fetchall()[0][0]
    claim_p2 = conn.sql("select distinct claim_id from fct_x12_claim_lines where patient_id = 'P2'"
                        " and service_month = '2026-02-01'").fetchall()[0][0]
    # the payer echoes another claim id for P1 (matched by member id, date and code) and changes
    # P2's member id too (nothing fits: listed as unmatched)
    changed = (feb.replace(f"CLP*{claim_p1}*", "CLP*OTHERID1*").replace(f"CLP*{claim_p2}*", "CLP*OTHERID2*")
               .replace("*MI*1EG4TE5MK02~", "*MI*UNKNOWN~").replace("EFT202602", "EFT902602"))
    files[1].write_text(changed)
    rebuild(conn, drop.folder, "2026-04-11")
    by = conn.sql("select claim_id, matched_by, count(*) from fct_remittance_lines"
                  " where claim_id like 'OTHER%' group by all order by 1").fetchall()
    assert by == [("OTHERID1", "patient, date of service and code", 2), ("OTHERID2", None, 2)]
    unmatched = conn.sql("select claim_id, reason from fct_remittance_unmatched").fetchall()
    assert len(unmatched) == 2 and all(r[0] == "OTHERID2" and r[1].startswith("pays no claim line") for r in unmatched)


def paid_twice(drop, build, payments):
    """P1's January 99492 (a closed month) paid by two 835 payments delivered as CSV files (a file per
    table and suffix; files are delivered in name order), matched by member id, date of service and
    code: payments = [(file suffix, trace number, payment date, payer claim control number, carc, rarc)]."""
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    demographics(drop, ["P1"])
    files: dict[str, dict[str, list[dict]]] = {}
    for suffix, trace, day, icn, carc, rarc in payments:
        rows = files.setdefault(suffix, {"claims": [], "lines": [], "adjustments": []})
        rows["claims"].append({
            "trace_number": trace, "claim_index": 1, "payer_edi_id": "MCR01", "payment_date": day,
            "claim_id": "FROMPAYER", "claim_status": "1", "charge": "200", "paid": "100",
            "patient_responsibility": "25", "payer_claim_control_number": icn, "member_id": "1EG4TE5MK01"})
        rows["lines"].append({"trace_number": trace, "claim_index": 1, "line_index": 1, "code": "99492",
                              "charge": "200", "paid": "100", "units": "1", "service_date": "2026-01-31"})
        group, reason = carc.split("-")
        rows["adjustments"] += [
            {"trace_number": trace, "claim_index": 1, "line_index": 1, "adjustment_index": 1, "kind": "carc",
             "group_code": group, "reason_code": reason, "amount": "75"},
            {"trace_number": trace, "claim_index": 1, "line_index": 1, "adjustment_index": 2, "kind": "rarc",
             "group_code": "", "reason_code": rarc, "amount": ""}]
    for suffix, tables in files.items():
        for table, rows in tables.items():
            write_csv(drop.folder / f"remittance_{table}_{suffix}.csv", rows)
    return build(drop, "2026-03-10")


@pytest.mark.parametrize("codes", [(("PR-2", "N362"), ("CO-45", "M15")), (("CO-45", "M15"), ("PR-2", "N362"))])
@pytest.mark.parametrize("traces, files, icn", [
    (("T1", "T2"), ("a", "b"), "ICN-B"),  # two deliveries: the later one's
    (("T2", "T1"), ("a", "b"), "ICN-B"),
    (("T1", "T2"), ("a", "a"), "ICN-B"),  # one delivery: the higher trace number's
    (("T2", "T1"), ("a", "a"), "ICN-A"),
])
def test_the_control_number_of_two_payments_on_one_day_is_the_later_deliverys(
    drop, build, traces, files, icn, codes
):
    """Two payments of one claim line dated the same day: the payer's claim control number shown is
    the later delivery's, within one delivery the higher trace number's, whatever the row order; the
    reason and remark codes of both are listed in code order."""
    conn = paid_twice(drop, build, [(files[0], traces[0], "2026-02-20", "ICN-A", *codes[0]),
                                    (files[1], traces[1], "2026-02-20", "ICN-B", *codes[1])])
    assert conn.sql("select paid, payer_claim_control_number, carc_codes, rarc_codes"
                    " from fct_claim_payments").fetchall() == [(Decimal("200.00"), icn, "CO-45,PR-2", "M15,N362")]


@pytest.mark.parametrize("reverse", [False, True])
def test_the_reasons_of_denied_lines_are_listed_in_text_order_whatever_the_row_order(drop, build, reverse):
    """P1's February 99493 and 99494 denied in one 835: 99493 for CO-50 and CO-16 with remark N362,
    99494 for CO-50 with remark M76. The worklist lists a line's reasons and actions, and the denials
    mart the remarks of a reason, each in text order, whatever order the adjustments came in."""
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    drop.month("P1", "2026-02", 80)  # subsequent: 99493 + 99494
    demographics(drop, ["P1"])
    write_csv(drop.folder / "remittance_claims.csv", [{
        "trace_number": "T1", "claim_index": 1, "payer_edi_id": "MCR01", "payment_date": "2026-03-05",
        "claim_id": "FROMPAYER", "claim_status": "4", "charge": "300", "paid": "0", "patient_responsibility": "0",
        "member_id": "1EG4TE5MK01"}])
    write_csv(drop.folder / "remittance_lines.csv", [
        {"trace_number": "T1", "claim_index": 1, "line_index": n, "code": code, "charge": "150", "paid": "0",
         "units": "1", "service_date": "2026-02-28"} for n, code in ((1, "99493"), (2, "99494"))])
    adjustments = [(1, "carc", "CO", "50", "150"), (1, "carc", "CO", "16", "0"), (1, "rarc", "", "N362", ""),
                   (2, "carc", "CO", "50", "150"), (2, "rarc", "", "M76", "")]
    write_csv(drop.folder / "remittance_adjustments.csv", [
        {"trace_number": "T1", "claim_index": 1, "line_index": line, "adjustment_index": n, "kind": kind,
         "group_code": group, "reason_code": reason, "amount": amount}
        for n, (line, kind, group, reason, amount) in enumerate(adjustments[::-1] if reverse else adjustments, 1)])
    conn = build(drop, "2026-03-10")
    assert conn.sql("select code, carc_codes, reasons, actions from fct_denial_worklist order by code").fetchall() == [
        ("99493", "CO-16,CO-50",
         "Claim or service lacks information or has submission/billing error(s)"
         " | These are non-covered services because this is not deemed a medical necessity by the payer",
         "Add documentation of medical necessity (diagnosis, care plan) and resend or appeal"
         " | Read the remark code (RARC), add the missing information and resend"),
        ("99494", "CO-50", "These are non-covered services because this is not deemed a medical necessity by the payer",
         "Add documentation of medical necessity (diagnosis, care plan) and resend or appeal"),
    ]
    assert conn.sql("select rarc_codes, rarc_descriptions from fct_remittance_denials where reason_code = '50'"
                    ).fetchall() == [("M76,N362", "Missing / incomplete / invalid diagnosis or condition"
                                      " | The number of days or units of service exceeds our acceptable maximum")]


def test_other_separators_and_another_payers_trace_number_lose_no_payment(drop, build, tmp_path):
    """Two 835s that lost payments: January's payment delivered again with `>` as the component
    separator (ISA16) and `|` between elements (its service lines were split on a literal ':' and all
    quarantined), and ACME's payment reusing Medicare's February trace number (TRN02) with its own
    payer id (TRN03): it replaced Medicare's payment, whose claims fell back to "no answer"."""
    from pathlib import Path

    conn, files = scenario(drop, build, tmp_path, OUTCOMES)
    states = "select claim_line_id, payment_status, paid from fct_claim_payments order by 1"
    before = conn.sql(states).fetchall()
    january = files[0].read_text().translate(str.maketrans({"*": "|", ":": ">"}))
    files[0].write_text(january)
    acme = (Path(__file__).parent / "fixtures" / "x12" / "c_acme_same_trace.835").read_text()
    (drop.folder / "z_acme_remit.835").write_text(acme.replace("*TR0001*", "*EFT2026020002*"))
    rebuild(conn, drop.folder, "2026-04-11")
    assert conn.sql("select source_file, status from ingest_files where table_name = 'remittance_835'"
                    " and source_file in ('remit_medicare_2026-01.835', 'z_acme_remit.835') order by delivery_seq").fetchall() == [
        ("remit_medicare_2026-01.835", "loaded"), ("remit_medicare_2026-01.835", "loaded"), ("z_acme_remit.835", "loaded")]
    assert conn.sql("select count(*) from quarantine").fetchall() == [(0,)]
    assert conn.sql(states).fetchall() == before
    assert conn.sql("select claim_id, paid from fct_remittance_unmatched").fetchall() == [("ACMECLAIM9", Decimal("100.00"))]
    assert conn.sql("select count(*) from fct_remittance_provider_adjustments").fetchall() == [(2,)]
    # ACME sends that payment again without its PLB (BPR02 = the claim paid): it replaces the first as a
    # whole, the earlier PLB rows go with it, and nothing is counted twice
    again = (acme.replace("*TR0001*", "*EFT2026020002*").replace("BPR*I*72.5*", "BPR*I*100*")
             .replace("PLB*1234567893*20261231*WO:OVERPAY0001*30*L6:INTEREST0001*-2.5~\n", "").replace("SE*18*", "SE*17*"))
    (drop.folder / "zz_acme_remit_again.835").write_text(again)
    rebuild(conn, drop.folder, "2026-04-12")
    assert conn.sql("select status from ingest_files where source_file = 'zz_acme_remit_again.835'").fetchall() == [
        ("loaded",)]
    assert conn.sql("select count(*) from fct_remittance_provider_adjustments").fetchall() == [(0,)]
    assert conn.sql("select bool_and(balanced), count(*) from fct_remittance_payments").fetchall() == [(True, 3)]
    assert conn.sql("select claim_id, paid from fct_remittance_unmatched").fetchall() == [("ACMECLAIM9", Decimal("100.00"))]
    assert conn.sql(states).fetchall() == before
