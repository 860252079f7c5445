"""Issue 11 items 7 and 8: fee rows carry the years they are for, and an unpriced claim line never
stops everything (billing-rules.md section 6; docs/billing-rules.md "fee_schedule.csv" and "Unpriced
claim lines").

- a month is priced at the fee row in force on its last day, and only at that row: a 2026 month at the
  2026 row, a 2025 month at the 2025 row, a month of a year without a row is unpriced (never priced at
  another year's rate);
- fee_schedule.csv is validated as it is seeded (basis, overlapping rows named);
- an unpriced line stays in claims.csv (empty amounts, price_status unpriced), is listed in
  unpriced_claim_lines.csv, every export is written, and `bhi run` / `bhi close` exit non-zero naming
  each payer, code and month;
- money columns of the CSV exports always have two decimals."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from conftest import Drop, copy_first_run
from pipelines.cli import main
from pipelines.defs.checks import claim_lines_priced, claim_lines_unique_with_units, unpriced_summary
from pipelines.outputs.exports import EXPORTS
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR, ReferenceDataError, seed_reference


def reference_copy(tmp_path: Path, *append: str, replace: tuple[str, str] | None = None,
                   file: str = "fee_schedule.csv") -> Path:
    """A copy of the shipped reference data with rows appended to one file (and a text replaced in it)."""
    ref = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    edited = ref / file
    text = edited.read_text()
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    edited.write_text(text + "".join(append))
    return ref


def priced(conn, patient: str = "P1") -> list[tuple]:
    return conn.sql(
        "select strftime(service_month, '%Y-%m'), code, unit_amount, expected_amount, price_status, fee_basis"
        f" from fct_claims where patient_id = '{patient}' order by service_month, code"
    ).fetchall()


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# --- prices carry their year -------------------------------------------------------------------------

def test_a_2026_month_is_priced_at_the_2026_row(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2026-01-01", consent_on="2026-01-01")
    drop.month("P1", "2026-01", 90)  # 99492 + 99494
    conn = build(drop, as_of="2026-02-10")
    # 2026 example rates (4.80 and 1.84 RVU x 2026 CF 33.4009), not the 2025 145.24 / 55.96
    assert priced(conn) == [("2026-01", "99492", 160.32, 160.32, "priced", "published"),
                            ("2026-01", "99494", 61.46, 61.46, "priced", "published")]


def test_a_2025_month_is_priced_at_the_2025_row_and_the_next_month_at_the_2026_row(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2025-12-01", consent_on="2025-12-01")
    drop.month("P1", "2025-12", 40)
    drop.month("P1", "2026-01", 40)
    conn = build(drop, as_of="2026-02-10")
    assert priced(conn) == [("2025-12", "99492", 145.24, 145.24, "priced", "published"),
                            ("2026-01", "99493", 144.96, 144.96, "priced", "published")]


def test_2024_months_are_priced_at_the_derived_rows_in_force_at_month_end(drop: Drop, build):
    drop.enroll("P1", enrolled_on="2024-02-01", consent_on="2024-02-01")
    drop.month("P1", "2024-02", 40)  # CF 32.7442 until 2024-03-08
    drop.month("P1", "2024-03", 40)  # CF 33.2875 from 2024-03-09: in force on 03-31
    conn = build(drop, as_of="2024-04-02")
    assert priced(conn) == [("2024-02", "99492", 147.03, 147.03, "priced", "derived_cf_ratio"),
                            ("2024-03", "99493", 137.48, 137.48, "priced", "derived_cf_ratio")]


@pytest.mark.parametrize("enrolled, minutes, as_of, code", [
    ("2027-01", 40, "2027-02-10", "99492"),  # no 2027 row is shipped: the 2026 rate is not carried forward
    ("2024-06", 20, "2024-07-10", "G2214"),  # G2214's modeling default is shipped for 2025 only
    ("2023-12", 40, "2024-01-10", "99492"),  # before the first (2024) row
], ids=["2027-after-the-last-row", "G2214-2024-no-row", "2023-before-the-first-row"])
def test_a_month_with_no_row_in_force_is_unpriced_not_priced_at_another_year(drop: Drop, build, enrolled,
                                                                               minutes, as_of, code):
    drop.enroll("P1", enrolled_on=f"{enrolled}-01", consent_on=f"{enrolled}-01")
    drop.month("P1", enrolled, minutes)
    conn = build(drop, as_of=as_of)
    assert priced(conn) == [(enrolled, code, None, None, "unpriced", None)]
    row = conn.sql("select payer_id, code, strftime(service_month, '%Y-%m'), units, reason "
                   "from fct_unpriced_claim_lines").fetchall()
    assert row == [("medicare", code, enrolled, 1, "no_fee_row_in_force")]
    assert conn.sql("select unpriced_claim_lines from rpt_run_summary").fetchall() == [(1,)]


def test_a_row_in_force_without_an_amount_reports_the_line_unpriced(drop: Drop, build, tmp_path):
    # like the shipped G0568/G0569/G0570 rows: the code is in force, its rate is not settled
    ref = reference_copy(tmp_path, "medicare,G0512,2025-01-01,2025-12-31,,no_rate,rate not settled (test)\n")
    drop.facility("FQ1", "fqhc")
    drop.enroll("P1", enrolled_on="2025-11-01", consent_on="2025-11-01", facility="FQ1")
    drop.month("P1", "2025-11", 70)
    conn = build(drop, as_of="2025-12-10", reference_dir=ref)
    assert priced(conn) == [("2025-11", "G0512", None, None, "unpriced", "no_rate")]
    assert conn.sql("select reason, message from fct_unpriced_claim_lines").fetchall() == [(
        "fee_row_without_amount",
        "the fee_schedule.csv row for payer medicare (or *), code G0512, in force on 2025-11-30 has no amount"
        " (basis no_rate); load your contracted rate",
    )]


def test_a_payer_row_wins_over_the_default_row_of_the_same_year(drop: Drop, build, tmp_path):
    ref = reference_copy(tmp_path, "acme_commercial,99492,2026-01-01,2026-12-31,170.00,contracted,contract (test)\n")
    drop.enroll("P1", payer="acme_commercial")
    drop.month("P1", "2026-01", 75)
    drop.enroll("P2")
    drop.month("P2", "2026-01", 75)
    conn = build(drop, as_of="2026-02-10", reference_dir=ref)
    assert priced(conn, "P1") == [("2026-01", "99492", 170.0, 170.0, "priced", "contracted")]
    assert priced(conn, "P2") == [("2026-01", "99492", 160.32, 160.32, "priced", "published")]


# --- the reference is validated as it is seeded -------------------------------------------------------

def test_every_shipped_fee_row_is_for_one_year_and_says_how_it_was_derived():
    conn = duckdb.connect()
    seed_reference(conn)
    rows = conn.sql("select code, effective_from, effective_to, amount, basis, source from ref_fee_schedule").fetchall()
    assert rows
    for code, start, end, amount, basis, source in rows:
        assert end is not None and start.year == end.year, (code, start)
        if basis == "derived_cf_ratio":
            assert source.startswith("DERIVED ESTIMATE"), code
        if basis == "no_rate":
            assert amount is None
    years = conn.sql("select distinct code from ref_fee_schedule where year(effective_from) = 2026 and amount is not null"
                     " order by 1").fetchall()
    assert [c for (c,) in years] == ["99484", "99492", "99493", "99494", "G0323", "G0568", "G0569", "G0570", "G2214"]
    # the APCM add-ons are valued by crosswalk (CMS-1832-F): the crosswalked code's amount, marked an estimate
    crosswalked = conn.sql("select a.code, a.amount = b.amount, a.source like 'ESTIMATE%' from ref_fee_schedule as a"
                           " inner join ref_fee_schedule as b on b.code = case a.code when 'G0568' then '99492'"
                           " when 'G0569' then '99493' else '99484' end and b.effective_from = a.effective_from"
                           " where a.code in ('G0568', 'G0569', 'G0570') order by 1").fetchall()
    assert crosswalked == [("G0568", True, True), ("G0569", True, True), ("G0570", True, True)]


def test_overlapping_fee_rows_for_one_payer_and_code_are_an_error_naming_the_rows(tmp_path):
    ref = reference_copy(tmp_path, "*,99493,2026-07-01,,150.00,contracted,mid-year rate (test)\n")
    with pytest.raises(ReferenceDataError) as err:
        seed_reference(duckdb.connect(), ref)
    assert str(err.value) == (
        "fee_schedule.csv: * 99493 2026-01-01..2026-12-31 ($144.96, published) overlaps"
        " * 99493 2026-07-01..open ($150.00, contracted): one row per payer and code in force on any day"
    )


def test_a_reference_row_repeating_its_key_is_an_error_naming_it(tmp_path):
    """Two settings.csv rows for one setting: which value applies would be row order."""
    ref = reference_copy(tmp_path, "max_minutes_per_entry,600,a second row for one setting\n", file="settings.csv")
    with pytest.raises(ReferenceDataError) as err:
        seed_reference(duckdb.connect(), ref)
    assert str(err.value) == "settings.csv: two rows for setting=max_minutes_per_entry: one row per setting at most"


def test_dated_reference_rows_of_one_key_in_force_on_one_day_are_an_error(tmp_path):
    """payers.csv: a second medicare row from 2026-07-01 while the 2017 row is open-ended: the payer's
    rules of a July month would be either row; the same row ending the day before is fine."""
    row = ("medicare,Medicare Part B,cms_midpoint,false,4,6,month_end,,false,0.05,0.20,{},,a mid-year change"
           " (test),true\n")
    ref = reference_copy(tmp_path, row.format("2026-07-01"), file="payers.csv")
    with pytest.raises(ReferenceDataError) as err:
        seed_reference(duckdb.connect(), ref)
    assert str(err.value) == (
        "payers.csv: two rows for payer_id=medicare (2017-01-01..open and 2026-07-01..open):"
        " one row per payer_id in force on one day"
    )
    ended = tmp_path / "ended"
    shutil.copytree(ref, ended)
    payers = ended / "payers.csv"
    payers.write_text(payers.read_text().replace(",0.05,0.20,2017-01-01,,", ",0.05,0.20,2017-01-01,2026-06-30,", 1))
    assert seed_reference(duckdb.connect(), ended)["ref_payers"] == 5


def test_rows_of_different_payers_or_adjacent_periods_do_not_overlap(tmp_path):
    ref = reference_copy(
        tmp_path,
        "medicare,99493,2026-01-01,2026-06-30,140.00,contracted,first half (test)\n",
        "medicare,99493,2026-07-01,,150.00,contracted,second half (test)\n",
    )
    counts = seed_reference(duckdb.connect(), ref)
    assert counts["ref_fee_schedule"] == 27


@pytest.mark.parametrize("row, problem", [
    ("*,99999,2026-01-01,2026-12-31,10.00,,no basis (test)\n",
     "basis must be one of published, derived_cf_ratio, crosswalk, contracted, modeling_default, no_rate"),
    ("*,99999,2026-01-01,2026-12-31,10.00,guess,bad basis (test)\n",
     "basis must be one of published, derived_cf_ratio, crosswalk, contracted, modeling_default, no_rate"),
    ("*,99999,2026-01-01,2026-12-31,,published,no amount (test)\n", "amount is required (or basis no_rate)"),
    ("*,99999,2026-01-01,2026-12-31,10.00,no_rate,amount with no_rate (test)\n", "a no_rate row has no amount"),
    ("*,99999,2026-12-31,2026-01-01,10.00,published,reversed (test)\n", "effective_to is before effective_from"),
], ids=["no-basis", "unknown-basis", "no-amount", "no-rate-with-amount", "reversed-period"])
def test_an_incomplete_fee_row_is_an_error_naming_it(tmp_path, row, problem):
    with pytest.raises(ReferenceDataError) as err:
        seed_reference(duckdb.connect(), reference_copy(tmp_path, row))
    assert str(err.value).startswith("fee_schedule.csv: * 99999 ")
    assert problem in str(err.value)


def test_a_fee_schedule_without_the_basis_column_is_an_error(tmp_path):
    ref = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, ref)
    (ref / "fee_schedule.csv").write_text(
        "payer_id,code,effective_from,effective_to,amount,source\n*,99492,2026-01-01,,160.32,old layout\n"
    )
    with pytest.raises(ReferenceDataError, match="fee_schedule.csv has no column basis"):
        seed_reference(duckdb.connect(), ref)


# --- one unpriced line must not stop everything ------------------------------------------------------

def _fqhc_drop(drop: Drop) -> Drop:
    """2025-11 (closed as of 2025-12-10): an FQHC G0512 month (no rate shipped), a priced 99492 month,
    a G2214 near miss; 2025-12 (open): a patient on the worklist."""
    drop.facility("FQ1", "fqhc")
    drop.enroll("P1", enrolled_on="2025-11-01", consent_on="2025-11-01", facility="FQ1")
    drop.month("P1", "2025-11", 70)
    drop.enroll("P2", enrolled_on="2025-11-01", consent_on="2025-11-01")
    drop.month("P2", "2025-11", 40)
    drop.enroll("P3", enrolled_on="2025-11-01", consent_on="2025-11-01")
    drop.month("P3", "2025-11", 33)
    drop.enroll("P4", enrolled_on="2025-12-01", consent_on="2025-12-01")
    drop.month("P4", "2025-12", 25)
    return drop


@pytest.fixture
def fqhc_drop(drop: Drop) -> Drop:
    return _fqhc_drop(drop)


@pytest.fixture(scope="module")
def fqhc_run(tmp_path_factory):
    """One `bhi run` of the FQHC drop as of 2025-12-10 into an out folder holding yesterday's
    claims.csv (once for this file's tests): (drop, out, exit code, stdout, stderr)."""
    root = tmp_path_factory.mktemp("fqhc-run")
    drop = _fqhc_drop(Drop(root / "drop"))
    out = root / "out"
    out.mkdir()
    (out / "claims.csv").write_text("stale,claims,from,yesterday\n")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["run", "--extracts", str(drop.write()), "--out", str(out), "--as-of", "2025-12-10",
                     "--allow-stale"])
    return drop, out, code, stdout.getvalue(), stderr.getvalue()


def test_fqhc_g0512_without_a_rate_writes_every_export_lists_the_line_and_exits_non_zero(fqhc_run):
    _, out, code, stdout, stderr = fqhc_run
    assert code == 1
    # every export and the dashboards are written
    for name in EXPORTS:
        assert (out / name).exists(), name
    assert (out / "dashboards" / "index.html").exists()
    assert "claim lines unpriced               1" in stdout
    # the list: one line per payer/code/month
    assert (
        "bhi run: 1 claim line(s) unpriced (no fee_schedule.csv rate in force; marked unpriced in claims.csv,"
        f" listed in {out / 'unpriced_claim_lines.csv'}); load the rate for each payer/code/month:\n"
        "  medicare G0512 2025-11: 1 line(s) unpriced, no fee_schedule.csv row in force"
    ) in stderr
    assert "P1" not in stderr  # no patient identifiers in the message
    unpriced = read_csv(out / "unpriced_claim_lines.csv")
    assert [(r["payer_id"], r["code"], r["service_month"], r["units"], r["reason"]) for r in unpriced] == [
        ("medicare", "G0512", "2025-11", "1", "no_fee_row_in_force")
    ]
    # claims.csv replaces yesterday's file and shows the line as unpriced, next to the priced lines
    claims = {r["patient_id"]: r for r in read_csv(out / "claims.csv")}
    assert set(claims) == {"P1", "P2", "P3"}
    p1 = claims["P1"]
    assert (p1["code"], p1["price_status"], p1["unit_amount"], p1["expected_amount"], p1["expected_collection"],
            p1["payer_share"], p1["patient_share"]) == ("G0512", "unpriced", "", "", "", "", "")
    assert (claims["P2"]["code"], claims["P2"]["price_status"], claims["P2"]["expected_amount"]) == (
        "99492", "priced", "145.24")
    # the summary's expected revenue counts priced lines only
    assert "expected revenue        $     202.24" in stdout  # 145.24 + 57.00


def test_a_closed_month_with_unpriced_lines_says_so(fqhc_run, tmp_path, capsys):
    drop, run_out, *_ = fqhc_run
    _, _, out = copy_first_run(drop, run_out, tmp_path)
    assert main(["close", "--out", str(out), "--month", "2025-11"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("closed 2025-11 as of 2025-12-10: 3 claim lines, $202.24 (1 unpriced, not in the amount)")
    assert "bhi close: unpriced claim lines in 2025-11 (1 line(s))" in captured.err
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.sql("select claim_lines, unpriced_lines from month_end_close").fetchall() == [(3, 1)]
        assert conn.sql("select code, price_status from month_end_claims where price_status = 'unpriced'"
                        ).fetchall() == [("G0512", "unpriced")]
    month_file = read_csv(out / "month_end" / "claims_2025-11.csv")
    assert [(r["code"], r["price_status"], r["expected_amount"]) for r in month_file if r["code"] == "G0512"] == [
        ("G0512", "unpriced", "")
    ]


def test_money_columns_of_the_exports_have_two_decimals(fqhc_run):
    out = fqhc_run[1]
    two_decimals = re.compile(r"^-?\d+\.\d\d$")
    money = {
        "claims.csv": ["unit_amount", "expected_amount", "expected_collection", "payer_share", "patient_share"],
        "revenue_gap.csv": ["dollars"],
        "near_threshold.csv": ["current_amount", "dollars_gained"],
    }
    for name, columns in money.items():
        rows = read_csv(out / name)
        assert rows, name
        for row in rows:
            for column in columns:
                value = row[column]
                if name == "claims.csv" and row["price_status"] == "unpriced":
                    assert value == ""
                else:
                    assert two_decimals.match(value), (name, column, value)
    # values a double prints with one decimal (27.6, 57.0) are written with two
    p2 = next(r for r in read_csv(out / "claims.csv") if r["patient_id"] == "P2")
    assert (p2["expected_collection"], p2["payer_share"], p2["patient_share"]) == ("137.98", "110.38", "27.60")
    gap = read_csv(out / "revenue_gap.csv")
    assert [(r["patient_id"], r["reason"], r["dollars"]) for r in gap] == [("P3", "near_miss", "88.24")]


def test_the_price_check_warns_and_the_unique_check_still_blocks(fqhc_drop, build):
    conn = build(fqhc_drop, as_of="2025-12-10", every_model=True)  # the checks read the file
    path = conn.sql("select path from duckdb_databases() where database_name = current_database()").fetchall()[0][0]
    conn.close()
    resource = DuckDBResource(database=path)
    (price_spec,) = claim_lines_priced.check_specs
    (unique_spec,) = claim_lines_unique_with_units.check_specs
    assert not price_spec.blocking and unique_spec.blocking
    result = claim_lines_priced(warehouse=resource)
    assert not result.passed and result.severity.value == "WARN"
    assert result.description == "medicare G0512 2025-11: 1 line(s) unpriced, no fee_schedule.csv row in force"
    assert claim_lines_unique_with_units(warehouse=resource).passed  # unpriced lines do not block the exports
    with duckdb.connect(path) as w:
        w.execute("insert into fct_claims select * from fct_claims where patient_id = 'P2'")
    result = claim_lines_unique_with_units(warehouse=resource)
    assert not result.passed and result.description == "1 duplicate claim_line_id(s)"


def test_the_unpriced_list_is_capped():
    rows = [("medicare", "G0512", f"2025-{m:02d}", 1, "no_fee_row_in_force") for m in range(1, 13)]
    rows += [("nc_medicaid", "G0512", f"2025-{m:02d}", 2, "fee_row_without_amount") for m in range(1, 13)]
    lines = unpriced_summary(rows, 20)
    assert len(lines) == 21
    assert lines[0] == "medicare G0512 2025-01: 1 line(s) unpriced, no fee_schedule.csv row in force"
    assert lines[12] == "nc_medicaid G0512 2025-01: 2 line(s) unpriced, the fee row in force has no amount"
    assert lines[-1] == "... and 4 more payer/code/month combinations"
