"""Claims out as X12 837P: files validated by pyx12 (005010X222A1), stable claim ids, a claim with a
missing element held back with the element named, replacements (frequency 7) and voids (8)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import duckdb
import pytest

from conftest import Drop, write_csv
from pipelines.ingest.load import load_drop
from pipelines.outputs.close import close_months, send_claims
from pipelines.warehouse.models import MODELS, in_dependency_order, materialize
from pipelines.warehouse.run_state import snapshot_claims, write_run_parameters
from pipelines.x12.claims_837 import X837_DIR, submit_month
from pipelines.x12.remittance_835 import load_remittances
from pipelines.x12.segments import X12ValueError, amount, segment, text
from pipelines.x12.validate import validate_x12

PATIENT_COLUMNS = ["patient_id", "member_id", "last_name", "first_name", "birth_date", "sex", "address_line", "city",
                   "state", "postal_code"]


def demographics(drop: Drop, patients: list[str], *, without: dict[str, str] | None = None) -> None:
    """Write the optional patients / providers / facility_billing extracts for the drop's patients;
    `without` blanks one column of one patient (patient_id -> column)."""
    without = without or {}
    rows = []
    for n, p in enumerate(patients, start=1):
        row = {"patient_id": p, "member_id": f"1EG4TE5MK{n:02d}", "last_name": f"Test{n}", "first_name": "Pat",
               "birth_date": "1950-02-03", "sex": "F", "address_line": "2 Elm St", "city": "Cary", "state": "NC",
               "postal_code": "27511"}
        if p in without:
            row[without[p]] = ""
        rows.append(row)
    write_csv(drop.folder / "patients.csv", rows, PATIENT_COLUMNS)
    write_csv(drop.folder / "providers.csv", [
        {"provider_id": "BP1", "npi": "1245319599", "taxonomy_code": "207Q00000X", "last_name": "Smith",
         "first_name": "Ann"}])
    write_csv(drop.folder / "facility_billing.csv", [
        {"facility_id": "F1", "npi": "1234567893", "tin": "12-3456789", "billing_name": "Main Street Clinic",
         "taxonomy_code": "261QM0801X", "address_line": "1 Main St", "city": "Raleigh", "state": "NC",
         "postal_code": "27601-1234", "place_of_service": "11"}])


def rebuild(conn, folder: Path, as_of: str) -> None:
    """A later nightly run on the same warehouse: the new files of the drop, every model again."""
    write_run_parameters(conn, as_of)
    snapshot_claims(conn)
    load_drop(conn, folder)
    load_remittances(conn, folder)
    for model in in_dependency_order(MODELS):
        materialize(conn, model)


def claims_in(text_: str) -> dict[str, str]:
    """CLM01 -> frequency code (CLM05-3) of an interchange."""
    out = {}
    for seg in text_.split("~"):
        parts = seg.strip().split("*")
        if parts[0] == "CLM":
            out[parts[1]] = parts[5].split(":")[2]
    return out


def two_patients(drop: Drop) -> None:
    for p in ("P1", "P2"):
        drop.enroll(p, enrolled_on="2026-01-01")
        drop.month(p, "2026-01", 40)   # initial: 99492
        drop.month(p, "2026-02", 80)   # subsequent: 99493 + 99494


def test_segment_writer_escapes_separators_and_refuses_overlong_values():
    assert segment("N3", "1 Main*St~ #2") == "N3*1 MAIN ST #2~"
    assert segment("SV1", ("HC", "99493", ""), "190.00", "UN", 1, "", "", ("1",)) == "SV1*HC:99493*190.00*UN*1***1~"
    assert amount(190) == "190" and amount("85.50") == "85.5" and amount(-12.255) == "-12.26"
    try:
        text("x" * 61, 60, "billing provider name")
    except X12ValueError as exc:
        assert "billing provider name" in str(exc) and "xxx" not in str(exc).lower()
    else:
        raise AssertionError("an overlong value must be refused")


def test_pyx12_verdict_can_fail():
    """The validator is asserted, so it must be able to say no: a wrong segment count is rejected."""
    good = segment("ST", "837", "0001", "005010X222A1")
    verdict = validate_x12(good)
    assert not verdict.valid


def test_close_writes_837p_that_pyx12_accepts(drop, build, tmp_path):
    two_patients(drop)
    demographics(drop, ["P1", "P2"])
    conn = build(drop, "2026-03-15", every_model=True)  # handed to the month-end code
    out = tmp_path / "out"
    close_months(conn, out, "2026-01", "2026-02")
    sent = send_claims(conn, out, "2026-01", "2026-02")
    assert [(x.month, x.claims, x.lines) for x in sent] == [("2026-01", 2, 2), ("2026-02", 2, 4)]
    files = sorted((out / "month_end" / "837p").glob("*.x12"))
    assert len(files) == 2
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        content = f.read_text()
        verdict = validate_x12(content)
        assert verdict.valid, verdict.errors
        assert "IK5*A" in verdict.ack  # pyx12's 999: transaction set accepted
        assert set(claims_in(content).values()) == {"1"}
    feb = files[1].read_text()
    # charges from the charge master, not the expected allowed amount: 99493 190.00 + 99494 85.00
    assert "SV1*HC:99493*190*UN*1***1~" in feb and "SV1*HC:99494*85*UN*1***1~" in feb
    assert "DTP*472*D8*20260228~" in feb  # date of service per the payer's month_end policy row
    assert "HI*ABK:F321~" in feb and "CLM*" in feb and "*11:B:1*" in feb
    ids = set(claims_in(feb))
    assert ids == {r[0] for r in conn.sql(
        "select distinct claim_id from fct_x12_claim_lines where service_month = '2026-02-01'").fetchall()}
    assert all("P1" not in i and "P2" not in i for i in ids)  # the claim id carries no patient id


def test_claim_ids_are_stable_across_rebuilds(tmp_path):
    from conftest import build_warehouse

    ids = []
    for n in range(2):
        d = Drop(tmp_path / f"d{n}")
        two_patients(d)
        demographics(d, ["P1", "P2"])
        conn = build_warehouse(tmp_path / f"w{n}.duckdb", d.write(), "2026-03-15")
        ids.append(conn.sql("select claim_line_id, claim_id from fct_x12_claim_lines order by 1").fetchall())
        conn.close()
    assert ids[0] == ids[1] and len(ids[0]) == 6


def test_missing_member_id_holds_the_claim_and_names_it(drop, build, tmp_path):
    two_patients(drop)
    demographics(drop, ["P1", "P2"], without={"P2": "member_id"})
    conn = build(drop, "2026-03-15", every_model=True)  # handed to the month-end code
    held = conn.sql("select patient_id, service_month::varchar, missing_elements from fct_x12_claims_held"
                    " order by all").fetchall()
    assert held == [("P2", "2026-01-01", "member id"), ("P2", "2026-02-01", "member id")]
    out = tmp_path / "out"
    sent = submit_month(conn, out, "2026-01")
    assert [x.claims for x in sent] == [1]
    assert "*MI*1EG4TE5MK01~" in sent[0].content and "NM1*IL*1*TEST2" not in sent[0].content


def test_invalid_npi_check_digit_is_named(drop, build):
    two_patients(drop)
    demographics(drop, ["P1", "P2"])
    write_csv(drop.folder / "providers.csv", [
        {"provider_id": "BP1", "npi": "1245319590", "taxonomy_code": "207Q00000X", "last_name": "Smith",
         "first_name": "Ann"}])
    conn = build(drop, "2026-03-15")
    rows = conn.sql("select distinct missing_elements from fct_x12_claim_lines").fetchall()
    assert rows == [("rendering provider NPI",)]


def _answer(drop: Drop, claim_ids: dict[str, tuple[str, str]], name: str, payment_date: str = "2026-03-20") -> None:
    """An 835 (as the remittance_claims CSV extract) answering claims: claim id -> (CLP02 status,
    CLP07 payer claim control number)."""
    write_csv(drop.folder / name, [
        {"trace_number": f"T{name}", "claim_index": n, "payer_edi_id": "MCR01", "payment_date": payment_date,
         "claim_id": claim_id, "claim_status": status, "charge": "275", "paid": "0" if status == "22" else "200",
         "patient_responsibility": "0", "payer_claim_control_number": icn, "member_id": "1EG4TE5MK01"}
        for n, (claim_id, (status, icn)) in enumerate(sorted(claim_ids.items()), start=1)])


def _correct_p1_and_void_p2(drop: Drop) -> None:
    """A late entry: P1's February grows to 110 minutes (99494 x2): a replacement; P2's February
    entries are deleted at the source: the claim is no longer billable: a void."""
    drop.log("P1", "2026-02-27", 30)
    p2_feb = [e for e in drop.entries if e["patient_id"] == "P2" and e["service_date"].startswith("2026-02")]
    write_csv(drop.folder / "time_entries_zz_late.csv",
              [{**e, "deleted": "true"} for e in p2_feb]
              + [e for e in drop.entries if e["service_date"] == "2026-02-27"],
              ["entry_id", "patient_id", "staff_id", "service_date", "minutes", "activity", "deleted"])


def test_rerun_sends_nothing_then_correction_is_a_replacement_and_removal_a_void(drop, build, tmp_path):
    two_patients(drop)
    demographics(drop, ["P1", "P2"])
    conn = build(drop, "2026-03-15", every_model=True)  # handed to the month-end code
    out = tmp_path / "out" / "month_end"
    first = submit_month(conn, out, "2026-02")
    assert [x.frequency_codes for x in first] == [{"1": 2}]
    assert submit_month(conn, out, "2026-02") == []  # closing again: nothing changed, nothing sent
    original = {r[0]: r[1] for r in conn.sql(
        "select patient_id, claim_id from fct_x12_claim_lines where service_month = '2026-02-01'").fetchall()}

    _correct_p1_and_void_p2(drop)
    rebuild(conn, drop.folder, "2026-03-16")
    # no 835 has come back: REF*F8 has no payer control number to carry, so both wait, with the reason
    # (005010X222A1 2300 REF*F8, required for CLM05-3 = 7 or 8, is the payer's claim control number)
    assert submit_month(conn, out, "2026-02") == []
    assert conn.sql("select claim_id, frequency_code, reason from x12_claims_waiting order by 1").fetchall() == sorted([
        (original["P1"], "7", "waits for the payer's claim control number (835 CLP07) for REF*F8"),
        (original["P2"], "8", "waits for the payer's claim control number (835 CLP07) for REF*F8"),
    ])

    _answer(drop, {original["P1"]: ("1", "ICN-P1"), original["P2"]: ("1", "ICN-P2")}, "remittance_claims_a.csv")
    rebuild(conn, drop.folder, "2026-03-21")
    second = submit_month(conn, out, "2026-02")
    assert len(second) == 1
    content = second[0].content
    assert validate_x12(content).valid
    assert claims_in(content) == {original["P1"]: "7", original["P2"]: "8"}
    # both reference the payer's claim control number (CLP07), never our own claim id
    assert "REF*F8*ICN-P1~" in content and "REF*F8*ICN-P2~" in content
    assert f"REF*F8*{original['P1']}~" not in content
    assert "SV1*HC:99494*170*UN*1***1~" not in content and "SV1*HC:99494*170*UN*2***1~" in content  # corrected
    assert "SV1*HC:99493*190*UN*1***1~" in content  # the void repeats the lines sent
    ledger = conn.sql("select frequency_code, count(*) from x12_claim_submissions group by 1 order by 1").fetchall()
    assert ledger == [("1", 2), ("7", 1), ("8", 1)]
    assert conn.sql("select count(*) from x12_claims_waiting").fetchall() == [(0,)]
    assert submit_month(conn, out, "2026-02") == []  # the void is not sent twice


def test_a_claim_the_payer_reversed_is_sent_again_as_an_original_and_not_voided(drop, build, tmp_path):
    """The payer reversed both February claims (835 CLP02 = 22) and paid neither again: a changed
    claim goes out as a new original (frequency 1, no REF*F8: there is no claim at the payer to
    replace); a void of a reversed claim is not sent (nothing to void), and says so."""
    two_patients(drop)
    demographics(drop, ["P1", "P2"])
    conn = build(drop, "2026-03-15", every_model=True)
    out = tmp_path / "out" / "month_end"
    submit_month(conn, out, "2026-02")
    original = {r[0]: r[1] for r in conn.sql(
        "select patient_id, claim_id from fct_x12_claim_lines where service_month = '2026-02-01'").fetchall()}
    _answer(drop, {original["P1"]: ("1", "ICN-P1"), original["P2"]: ("1", "ICN-P2")}, "remittance_claims_a.csv")
    _answer(drop, {original["P1"]: ("22", "ICN-P1"), original["P2"]: ("22", "ICN-P2")}, "remittance_claims_b.csv",
            "2026-03-25")
    _correct_p1_and_void_p2(drop)
    rebuild(conn, drop.folder, "2026-03-26")
    (sent,) = submit_month(conn, out, "2026-02")
    assert validate_x12(sent.content).valid
    assert claims_in(sent.content) == {original["P1"]: "1"}
    assert "REF*F8" not in sent.content
    assert conn.sql("select claim_id, frequency_code, reason from x12_claims_waiting").fetchall() == [
        (original["P2"], "8", "void not sent: the payer reversed the claim (835 CLP02 = 22), nothing to void")]

    # a reversal followed by a corrected payment: the correction's control number is referenced
    _answer(drop, {original["P1"]: ("1", "ICN-P1-NEW")}, "remittance_claims_c.csv", "2026-03-30")
    late = next(e for e in drop.entries if e["service_date"] == "2026-02-27")  # voided: 80 minutes, 99494 x1
    write_csv(drop.folder / "time_entries_zzz_void.csv", [{**late, "deleted": "true"}], [*late, "deleted"])
    rebuild(conn, drop.folder, "2026-03-31")
    (sent,) = submit_month(conn, out, "2026-02")
    assert claims_in(sent.content) == {original["P1"]: "7"} and "REF*F8*ICN-P1-NEW~" in sent.content


@pytest.mark.parametrize("traces, files, icn", [
    (("T1", "T2"), ("a", "b"), "ICN-B"),  # two deliveries: the later one's
    (("T2", "T1"), ("a", "b"), "ICN-B"),
    (("T2", "T1"), ("a", "a"), "ICN-A"),  # one delivery: the higher trace number's
])
def test_a_replacement_references_the_control_number_of_the_later_of_two_same_day_payments(
    drop, build, tmp_path, traces, files, icn
):
    """Two payments of P1's February claim dated the same day: the replacement claim (REF*F8) names
    the payer's control number by the rule of fct_claim_payments, whatever the row order."""
    two_patients(drop)
    demographics(drop, ["P1", "P2"])
    conn = build(drop, "2026-03-15", every_model=True)
    out = tmp_path / "out" / "month_end"
    submit_month(conn, out, "2026-02")
    (claim_id,), = conn.sql("select distinct claim_id from fct_x12_claim_lines"
                            " where patient_id = 'P1' and service_month = '2026-02-01'").fetchall()
    payments: dict[str, list[dict]] = {}
    for suffix, trace, control_number in zip(files, traces, ("ICN-A", "ICN-B")):
        payments.setdefault(suffix, []).append({
            "trace_number": trace, "claim_index": 1, "payer_edi_id": "MCR01", "payment_date": "2026-03-20",
            "claim_id": claim_id, "claim_status": "1", "charge": "360", "paid": "200", "patient_responsibility": "50",
            "payer_claim_control_number": control_number, "member_id": "1EG4TE5MK01"})
    for suffix, rows in payments.items():
        write_csv(drop.folder / f"remittance_claims_{suffix}.csv", rows)
    drop.log("P1", "2026-02-27", 30)  # a late entry: P1's February claim is replaced
    write_csv(drop.folder / "time_entries_zz_late.csv", [e for e in drop.entries if e["service_date"] == "2026-02-27"])
    rebuild(conn, drop.folder, "2026-03-21")
    (sent,) = submit_month(conn, out, "2026-02")
    assert claims_in(sent.content) == {claim_id: "7"}
    assert f"REF*F8*{icn}~" in sent.content


def test_the_sample_837p_passes_pyx12_and_its_835s_reconcile(sample_run, tmp_path):
    """The committed sample (with its claims-loop files): every closed month's 837P is accepted by
    pyx12, no claim is held but the one the claim scrub holds (a BCBS Michigan 99494 x3 over the shipped
    MUE excerpt), and every line of its 835s is matched and balances."""
    shutil.copyfile(sample_run[0] / "warehouse.duckdb", tmp_path / "sample.duckdb")  # sending claims writes
    conn = duckdb.connect(str(tmp_path / "sample.duckdb"))
    try:
        assert conn.sql("select payer_id, codes, scrub_edits from fct_x12_claims_held").fetchall() == [
            ("bcbs_mi", "99493, 99494", "99494: ncci_mue")]
        sent = []
        for month in ("2026-05", "2026-06", "2026-07", "2026-08", "2026-09"):
            sent += submit_month(conn, tmp_path / "out", month)
        assert sum(x.lines for x in sent) == conn.sql(
            "select count(*) from fct_x12_claim_lines where claim_missing_elements is null").fetchall()[0][0]
        assert sum(x.lines for x in sent) == conn.sql("select count(*) from fct_claims").fetchall()[0][0] - 2
        # submit_month refuses an interchange pyx12 rejects (InvalidInterchange) before it writes: each
        # file of every month passed. Checked again here from the files on disk for the last month,
        # which has both shapes (one interchange per billing provider and one per payer and month)
        september = [x for x in sent if x.month == "2026-09"]
        assert {x.payer_id == "medicare" for x in september} == {True, False}
        for x in september:
            verdict = validate_x12((tmp_path / "out" / X837_DIR / x.file_name).read_text())
            assert verdict.valid, (x.file_name, verdict.errors[:3])
        # Medicare wants one interchange per billing provider (payer_edi row), the others one per month
        medicare = {x.facility_id for x in sent if x.payer_id == "medicare" and x.month == "2026-09"}
        assert medicare == {"F01", "F02", "F03"}
        assert conn.sql("select count(*) from fct_remittance_unmatched").fetchall() == [(0,)]
        assert conn.sql("select bool_and(balanced), count(*) > 0 from fct_remittance_lines").fetchall() == [(True, True)]
        statuses = dict(conn.sql("select payment_status, count(*) from fct_claim_payments group by 1").fetchall())
        assert set(statuses) == {"paid", "paid with patient responsibility", "underpaid", "denied",
                                 "not submitted"}  # built before the close
        assert statuses["paid"] + statuses["paid with patient responsibility"] > (
            statuses["denied"] + statuses["underpaid"] + statuses["not submitted"])
    finally:
        conn.close()


def test_bhi_close_exits_1_naming_the_missing_elements_of_held_claims(drop, tmp_path, capsys):
    from pipelines.cli import main

    two_patients(drop)
    demographics(drop, ["P1", "P2"], without={"P2": "member_id"})
    out = tmp_path / "out"
    assert main(["run", "--extracts", str(drop.write()), "--out", str(out), "--as-of", "2026-03-15",
                 "--allow-stale"]) == 0
    capsys.readouterr()
    assert main(["close", "--out", str(out), "--month", "2026-01", "--through", "2026-02"]) == 1
    err = capsys.readouterr().err
    assert "2 claim(s) held back from the 837P" in err and "2 missing member id" in err
    assert "P1" not in err and "P2" not in err


def _control_numbers(content: str) -> tuple[str, str, str]:
    """(ISA13, GS06, ST02) of an interchange."""
    segs = {s.strip().split("*")[0]: s.strip().split("*") for s in content.split("~") if s.strip()}
    return segs["ISA"][13], segs["GS"][6], segs["ST"][2]


def test_two_warehouses_of_one_submitter_never_write_the_same_control_number_or_file_name(tmp_path):
    """A persisted counter per submitter id (BHI_X12_COUNTER_DIR): a second warehouse, and a
    rebuilt one, continue where the first stopped; ISA13, GS06 and ST02 carry the one number."""
    from conftest import build_warehouse

    sent = []
    for n in range(2):
        d = Drop(tmp_path / f"d{n}")
        two_patients(d)
        demographics(d, ["P1", "P2"])
        conn = build_warehouse(tmp_path / f"w{n}.duckdb", d.write(), "2026-03-15", every_model=True)
        try:
            sent += submit_month(conn, tmp_path / f"out{n}", "2026-02")
        finally:
            conn.close()
    assert len(sent) == 2
    assert len({x.control_number for x in sent}) == 2 and len({x.file_name for x in sent}) == 2
    for x in sent:
        icn = f"{x.control_number:09d}"
        assert _control_numbers(x.content) == (icn, str(x.control_number), icn)
        assert validate_x12(x.content).valid


def test_a_published_837p_is_never_written_in_place(tmp_path):
    """A file written again under the same name is a new inode renamed into place: a hard link to
    the published one keeps its bytes."""
    from pipelines.x12.claims_837 import _write_private

    path = tmp_path / "837p_2026-02_medicare_000000001.x12"
    _write_private(path, "ISA*first~")
    link = tmp_path / "published.x12"
    os.link(path, link)
    _write_private(path, "ISA*second~")
    assert link.read_text() == "ISA*first~" and path.read_text() == "ISA*second~"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
