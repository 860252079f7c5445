"""Real-world extracts: date-times in date columns, bad values in optional columns (field warnings),
malformed CSV rows, numbers too large for their type, the quarantine share of a run, and messages
that never echo patient identifiers (issue 11 items 1, 2, 10, 11; issue 12 item 6)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import Drop, write_csv
from pipelines.cli import main
from pipelines.ingest.extract_format import TABLES
from pipelines.ingest.load import load_drop
from pipelines.outputs.exports import write_csv as export_csv
from pipelines.warehouse.reference import seed_reference

TE_COLUMNS = ["entry_id", "patient_id", "staff_id", "service_date", "minutes", "activity", "program",
              "start_time", "end_time", "documented_at", "encounter_id"]


def _ingest(tmp_path, folder, **kw):
    conn = duckdb.connect(str(tmp_path / "ingest.duckdb"))
    seed_reference(conn)
    return conn, load_drop(conn, folder, **kw)


def _entry(drop: Drop, patient="P1", day="2026-01-05", minutes=20, **fields) -> dict:
    entry_id = drop.log(patient, day, minutes)
    drop.entries[-1].update(fields)
    return drop.entries[-1] | {"entry_id": entry_id}


# ---------------------------------------------------------------------------------------------------
# Item 1: date-times in date and time columns


@pytest.mark.parametrize(
    "documented_at, expected",
    [
        ("2026-01-06", "2026-01-06 00:00:00"),
        ("2026-01-06T17:00:00", "2026-01-06 17:00:00"),  # what most EHR reports export
        ("2026-01-06 17:00:00", "2026-01-06 17:00:00"),
        ("2026-01-06T17:00", "2026-01-06 17:00:00"),  # no seconds
        ("2026-01-06T17:00:00.250", "2026-01-06 17:00:00.25"),  # fractional seconds
        ("2026-01-06T17:00:00Z", "2026-01-06 17:00:00"),  # the offset is not applied: wall time as written
        ("2026-01-06T17:00:00+02:00", "2026-01-06 17:00:00"),
        ("2026-01-06T17:00:00-0500", "2026-01-06 17:00:00"),
    ],
)
def test_documented_at_date_time_loads_and_keeps_its_time(drop: Drop, tmp_path, documented_at, expected):
    drop.enroll("P1")
    _entry(drop, documented_at=documented_at)
    conn, result = _ingest(tmp_path, drop.write())
    assert result.rows_quarantined["time_entries"] == 0
    assert conn.sql("select documented_at::varchar from raw_time_entries").fetchall() == [(expected,)]
    assert conn.sql("select count(*) from field_warnings").fetchall() == [(0,)]


@pytest.mark.parametrize(
    "service_date, expected",
    [
        ("2026-01-05T23:30:00", "2026-01-05"),
        ("2026-01-05 08:00", "2026-01-05"),
        ("2026-01-05T23:30:00.5-05:00", "2026-01-05"),  # the date as written, not converted to UTC
        ("2026-1-5T9:05", "2026-01-05"),
    ],
)
def test_date_time_in_service_date_means_its_date_part(drop: Drop, tmp_path, service_date, expected):
    drop.enroll("P1")
    drop.log("P1", service_date, 20)
    conn, result = _ingest(tmp_path, drop.write())
    assert result.rows_quarantined["time_entries"] == 0
    assert conn.sql("select service_date::varchar from raw_time_entries").fetchall() == [(expected,)]


@pytest.mark.parametrize("service_date", ["2026-01-05T25:00", "2026-02-30T10:00", "2026-01-05T10:00 EST", "2026-01-05x"])
def test_date_time_that_is_not_a_real_date_time_is_still_quarantined(drop: Drop, tmp_path, service_date):
    drop.enroll("P1")
    drop.log("P1", service_date, 20)
    conn, _ = _ingest(tmp_path, drop.write())
    assert conn.sql("select columns, reason from quarantine").fetchall() == [
        ("service_date", "service_date: cannot read the value as a date (YYYY-MM-DD)")
    ]


def test_correction_delivered_with_date_time_documented_at_is_applied(drop: Drop, build):
    drop.enroll("P1", payer="medicare")
    first = _entry(drop, day="2026-01-05", minutes=20, documented_at="2026-01-05T17:00:00")
    folder = drop.write()
    # the correction (a later file) raises the entry to 40 minutes, documented the next morning
    write_csv(folder / "time_entries_fix1.csv", [first | {"minutes": 40, "documented_at": "2026-01-06T08:15:00Z"}],
              TE_COLUMNS)
    drop.write = lambda: folder  # build() writes the drop: keep the folder as it is
    conn = build(drop, "2026-02-10")
    assert conn.sql("select count(*) from quarantine").fetchall() == [(0,)]
    assert conn.sql(
        "select minutes, documented_at::varchar, source_file from stg_time_entries where version_rank = 1"
    ).fetchall() == [(40, "2026-01-06 08:15:00", "time_entries_fix1.csv")]
    assert conn.sql(
        "select status, reason, minutes from fct_minutes_reconciliation order by status"
    ).fetchall() == [("counted", "", 40), ("excluded", "superseded_by_later_delivery", 20)]


def test_documentation_lag_mart_counts_days_of_a_documented_date_time(drop: Drop, build):
    """late_documentation_days = 7: documented 7 days later at 23:59 is on time, 8 days later at
    00:01 is late; a date without a time works as before."""
    drop.enroll("P1")
    _entry(drop, day="2026-01-05", minutes=20, documented_at="2026-01-12T23:59:00")
    _entry(drop, day="2026-01-06", minutes=20, documented_at="2026-01-14T00:01:00")
    _entry(drop, day="2026-01-07", minutes=20, documented_at="2026-01-08")
    _entry(drop, day="2026-01-08", minutes=20)  # undated
    conn = build(drop, "2026-02-10")
    assert conn.sql(
        "select entries, late_entries, late_minutes, undated_entries, max_lag_days from fct_compliance_documentation_lag"
    ).fetchall() == [(4, 1, 20, 1, 8)]


def test_excel_date_time_cells_load_in_date_and_timestamp_columns(drop: Drop, tmp_path):
    drop.enroll("P1")
    folder = drop.write()
    pl.DataFrame({
        "entry_id": ["X1"], "patient_id": ["P1"], "staff_id": ["CM1"],
        "service_date": [dt.datetime(2026, 1, 5, 14, 30)], "minutes": [20], "activity": ["follow_up"],
        "documented_at": [dt.datetime(2026, 1, 6, 9, 45, 10)],
    }).write_excel(folder / "time_entries_book.xlsx")
    conn, result = _ingest(tmp_path, folder)
    assert result.file_errors == [] and result.rows_quarantined["time_entries"] == 0
    assert conn.sql(
        "select service_date::varchar, documented_at::varchar from raw_time_entries where entry_id = 'X1'"
    ).fetchall() == [("2026-01-05", "2026-01-06 09:45:10")]


# ---------------------------------------------------------------------------------------------------
# Item 2: a bad value in a column billing does not need is a field warning


def test_billing_critical_columns_are_declared_per_table():
    """The decision, per column (docs/extract-format.md lists it): only these columns may be
    unreadable without quarantining the row."""
    not_critical = {(t, c.name) for t, spec in TABLES.items() for c in spec.columns if not c.critical}
    assert not_critical == {
        ("time_entries", "start_time"), ("time_entries", "end_time"), ("time_entries", "documented_at"),
        ("time_entries", "encounter_id"),
        ("staff", "name"), ("staff", "annual_cost"), ("staff", "fte"),
        ("payers", "name"), ("assessments", "score"), ("facilities", "name"),
        ("enrollments", "discharge_reason"),
        # the 837P's demographics: an unreadable value leaves the element empty, and the claim is held
        # back naming the missing element (docs/claims-and-remittances.md), never sent half-filled
        *(("patients", c) for c in ("member_id", "last_name", "first_name", "birth_date", "sex", "address_line",
                                    "city", "state", "postal_code")),
        *(("providers", c) for c in ("npi", "taxonomy_code", "last_name", "first_name")),
        *(("facility_billing", c) for c in ("npi", "tin", "billing_name", "taxonomy_code", "address_line", "city",
                                            "state", "postal_code", "place_of_service")),
        # remittances: identifiers and codes kept as text (never unreadable); amounts and dates are critical
        ("remittance_claims", "payer_edi_id"), ("remittance_claims", "payer_claim_control_number"),
        ("remittance_claims", "member_id"), ("remittance_lines", "modifiers"),
        ("remittance_lines", "line_control_number"), ("remittance_adjustments", "group_code"),
        ("remittance_lines", "original_code"),
        *((t, "payer_identifier") for t in ("remittance_payments", "remittance_claims", "remittance_lines",
                                             "remittance_adjustments", "remittance_provider_adjustments")),
        *(("remittance_payments", c) for c in ("payer_edi_id", "payer_name", "credit_debit", "payment_method")),
        ("remittance_provider_adjustments", "provider_id"), ("remittance_provider_adjustments", "reference_id"),
    }
    assert all(c.critical for spec in TABLES.values() for c in spec.columns if c.required)


def test_bad_optional_value_keeps_the_row_and_records_a_field_warning(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40, review=True)
    drop.entries[0].update(documented_at="last tuesday", start_time="9am", end_time="09:20")
    drop.staff[0]["annual_cost"] = "$72,000"
    conn = build(drop, "2026-02-10")
    assert conn.sql("select count(*) from quarantine").fetchall() == [(0,)]
    assert conn.sql(
        "select table_name, source_file, source_row, column_name, reason from field_warnings order by all"
    ).fetchall() == [
        ("staff", "staff.csv", 2, "annual_cost", "cannot read '$72,000' as a number"),
        ("time_entries", "time_entries.csv", 2, "documented_at",
         "cannot read the value as a date or date-time (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS])"),
        ("time_entries", "time_entries.csv", 2, "start_time", "cannot read the value as a time (HH:MM)"),
    ]
    # the row loaded with the unreadable columns empty (the interval is gone, end_time is kept)
    assert conn.sql(
        "select minutes, documented_at, start_time, end_time::varchar from raw_time_entries where source_row = 2"
    ).fetchall() == [(20, None, None, "09:20:00")]
    # every minute still counts; the reconciliation says how many counted entries carry a warning
    assert conn.sql(
        "select status, entries, minutes, entries_with_field_warnings from fct_minutes_reconciliation"
    ).fetchall() == [("counted", 2, 40, 1)]
    assert conn.sql("select field_warnings, claim_lines from rpt_run_summary").fetchall() == [(3, 1)]


def test_bad_value_in_a_billing_critical_optional_column_still_quarantines(drop: Drop, tmp_path):
    drop.enroll("P1")
    _entry(drop, deleted="maybe")  # a void flag that cannot be read: never count it as live
    _entry(drop, program="ccm")
    drop.enrollments[0]["discharged_on"] = "soon"
    folder = drop.write()
    rows = list(csv.DictReader((folder / "time_entries.csv").open()))
    write_csv(folder / "time_entries.csv", [r | {"deleted": e.get("deleted", "")} for r, e in zip(rows, drop.entries)],
              [*TE_COLUMNS, "deleted"])
    conn, _ = _ingest(tmp_path, folder)
    assert conn.sql("select table_name, source_row, columns from quarantine order by all").fetchall() == [
        ("enrollments", 2, "discharged_on"), ("time_entries", 2, "deleted"), ("time_entries", 3, "program"),
    ]
    assert conn.sql("select count(*) from field_warnings").fetchall() == [(0,)]


def test_a_quarantined_row_lists_its_optional_problems_too_without_a_field_warning(drop: Drop, tmp_path):
    drop.enroll("P1")
    _entry(drop, minutes="abc", documented_at="never")
    conn, _ = _ingest(tmp_path, drop.write())
    assert conn.sql("select columns from quarantine").fetchall() == [("minutes,documented_at",)]
    assert conn.sql("select count(*) from field_warnings").fetchall() == [(0,)]


def test_field_warnings_follow_the_ledger_redelivery_and_full_refresh(drop: Drop, tmp_path):
    drop.enroll("P1")
    _entry(drop, documented_at="n/a")
    folder = drop.write()
    conn, result = _ingest(tmp_path, folder)
    assert result.field_warnings["time_entries"] == 1
    # the same bytes again under another name: a duplicate, no second warning
    (folder / "time_entries_copy.csv").write_bytes((folder / "time_entries.csv").read_bytes())
    result = load_drop(conn, folder)
    assert result.field_warnings["time_entries"] == 0
    assert conn.sql("select count(*) from field_warnings").fetchall() == [(1,)]
    # a full refresh starts again: still one
    load_drop(conn, folder, full_refresh=True)
    assert conn.sql("select source_file, delivery_seq is not null from field_warnings").fetchall() == [
        ("time_entries.csv", True)
    ]


def test_full_refresh_table_drops_the_field_warnings_of_the_files_it_replaces(drop: Drop, tmp_path):
    drop.staff[0]["fte"] = "full"
    folder = drop.write()
    (folder / "bhi-profile.yaml").write_text("full_refresh: [staff]\n")
    conn, _ = _ingest(tmp_path, folder)
    assert conn.sql("select source_file, column_name from field_warnings").fetchall() == [("staff.csv", "fte")]
    drop.staff[0]["fte"] = "1"
    write_csv(folder / "staff_2.csv", drop.staff, ["staff_id", "role", "facility_id", "name", "annual_cost", "fte"])
    load_drop(conn, folder)
    assert conn.sql("select count(*) from field_warnings").fetchall() == [(0,)]


# ---------------------------------------------------------------------------------------------------
# Item 10: malformed rows and numbers too large for their type


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


HEADER = ",".join(TE_COLUMNS)


@pytest.mark.parametrize(
    "bad_line, reason",
    [
        ("E3,P1,CM1,2026-01-07,20,follow_up,,,,,,EXTRA", "malformed row: 12 fields where the header has 11"),
        ('E3,P1,CM1,2026-01-07,20,follow_up,,,,"2026-01-07,', "malformed row: a quote is not closed, or a quoted field is malformed"),
        ('E3,"P1,CM1,2026-01-07,20,follow_up,,,,,', "malformed row: a quote is not closed, or a quoted field is malformed"),
    ],
)
def test_malformed_row_is_quarantined_by_row_and_the_rest_of_the_file_loads(drop: Drop, tmp_path, bad_line, reason):
    drop.enroll("P1")
    folder = drop.write()
    _write_lines(folder / "time_entries.csv", [
        HEADER,
        "E1,P1,CM1,2026-01-05,20,follow_up,,,,,",
        'E2,P1,CM1,2026-01-06,15,follow_up,,,,,"V1"',
        bad_line,
        "E4,P1,CM1,2026-01-08,10,follow_up,,,,,",
        'E5,P1,CM1,2026-01-09,5,follow_up,,,,"2026-01-09 10:00",',
    ])
    conn, result = _ingest(tmp_path, folder)
    assert result.file_errors == []
    assert conn.sql("select entry_id, source_row from raw_time_entries order by 1").fetchall() == [
        ("E1", 2), ("E2", 3), ("E4", 5), ("E5", 6)
    ]
    ((source_file, row, columns, got, record),) = conn.sql(
        "select source_file, source_row, columns, reason, record from quarantine"
    ).fetchall()
    assert (source_file, row, columns, got) == ("time_entries.csv", 4, "", reason)
    assert json.loads(record) == {"line": bad_line}  # the line as delivered stays in the record only
    assert conn.sql("select rows_read, rows_loaded, rows_quarantined from ingest_files"
                    " where source_file = 'time_entries.csv'").fetchall() == [(5, 4, 1)]


def test_unterminated_quote_in_the_last_row(drop: Drop, tmp_path):
    drop.enroll("P1")
    folder = drop.write()
    _write_lines(folder / "time_entries.csv", [HEADER, "E1,P1,CM1,2026-01-05,20,follow_up,,,,,", 'E2,P1,CM1,"2026-01-06,15'])
    conn, result = _ingest(tmp_path, folder)
    assert result.file_errors == []
    assert conn.sql("select entry_id from raw_time_entries").fetchall() == [("E1",)]
    assert conn.sql("select source_row, reason from quarantine").fetchall() == [
        (3, "malformed row: a quote is not closed, or a quoted field is malformed")
    ]


def test_quoted_line_breaks_still_load_in_a_file_with_a_malformed_row(drop: Drop, tmp_path):
    drop.enroll("P1")
    folder = drop.write()
    _write_lines(folder / "time_entries.csv", [
        HEADER, 'E1,P1,CM1,2026-01-05,20,follow_up,,,,,"V', '1"', "E2,P1,CM1,2026-01-06,15,follow_up,,,,,,X",
        "E3,P1,CM1,2026-01-07,10,follow_up",  # fewer fields than the header: padded, as polars does
    ])
    conn, _ = _ingest(tmp_path, folder)
    assert conn.sql("select entry_id, encounter_id, source_row from raw_time_entries order by 1").fetchall() == [
        ("E1", "V\n1", 2), ("E3", None, 4)
    ]
    assert conn.sql("select source_row from quarantine").fetchall() == [(3,)]


def test_eleven_digit_minutes_is_quarantined_and_the_run_completes(drop: Drop, build):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    drop.log("P1", "2026-01-20", "99999999999")
    drop.log("P1", "2026-01-21", "-99999999999")
    conn = build(drop, "2026-02-10")
    assert conn.sql("select columns, reason from quarantine order by source_row").fetchall() == [
        ("minutes", "minutes: cannot read '99999999999' as a whole number"),
        ("minutes", "minutes: cannot read '-99999999999' as a whole number"),
    ]
    # unreadable minutes count as 0 in the reconciliation (no overflow there either)
    assert conn.sql(
        "select status, sum(entries), sum(minutes) from fct_minutes_reconciliation group by all order by status"
    ).fetchall() == [("counted", 2, 40), ("quarantined", 2, 0)]


def test_numbers_too_large_or_not_finite_never_fail_the_load(drop: Drop, tmp_path):
    drop.payers = [
        {"payer_id": "P_BIG", "rule_set": "cms_midpoint", "max_add_on_units": "99999999999"},
        {"payer_id": "P_OK", "rule_set": "cms_midpoint", "max_add_on_units": "2147483647"},
    ]
    drop.staff[0]["annual_cost"] = "1e400"
    drop.staff[1]["fte"] = "nan"
    drop.staff[2]["annual_cost"] = "inf"
    conn, _ = _ingest(tmp_path, drop.write())
    assert conn.sql("select table_name, columns from quarantine").fetchall() == [("payers", "max_add_on_units")]
    assert conn.sql("select payer_id, max_add_on_units from raw_payers").fetchall() == [("p_ok", 2147483647)]
    assert conn.sql("select source_row, column_name from field_warnings order by all").fetchall() == [
        (2, "annual_cost"), (3, "fte"), (4, "annual_cost")
    ]


def test_unreadable_file_is_named_in_one_line_without_its_content(drop: Drop, tmp_path):
    folder = drop.write()
    (folder / "encounters_2.parquet").write_bytes(b"PAR1 secret PATSECRET9 not a parquet\nfile")
    (folder / "encounters_3.xlsx").write_bytes(b"PK\x03\x04 PATSECRET9 broken workbook")
    _, result = _ingest(tmp_path, folder)
    assert len(result.file_errors) == 2
    for message in result.file_errors:
        assert "\n" not in message and "PATSECRET9" not in message and "cannot read file" in message


@pytest.mark.parametrize(
    "header, shown",
    [
        (HEADER + ",Entry ID", "entry_id"),  # two spellings of one known column
        (HEADER + ",minutes", "minutes"),  # the same name twice
        ("E90,PATSECRET9,CM1,2026-01-20,20,PATSECRET9,,,,,", "names that are not known columns"),  # no header row
    ],
    ids=["two-spellings", "repeated", "no-header-row"],
)
def test_two_columns_with_one_name_reject_the_file_naming_it(drop: Drop, tmp_path, header, shown):
    """`Entry ID` and `entry_id` (or a repeated name) in one header: which holds the values cannot be
    told, so the file is rejected in one line naming it and the column (the whole load crashed
    before), never a name that may be data; the other files load."""
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40)
    folder = drop.write()
    _write_lines(folder / "time_entries_2.csv", [header, "E91,P1,CM1,2026-01-21,20,follow_up,,,,,,X"])
    conn, result = _ingest(tmp_path, folder)
    (message,) = result.file_errors
    assert message.startswith(f"{folder / 'time_entries_2.csv'}: two or more columns have the same name")
    assert shown in message and "PATSECRET9" not in message and "\n" not in message
    assert conn.sql("select count(*) from raw_time_entries").fetchall() == [(2,)]  # time_entries.csv loaded


def test_header_cells_without_a_name_are_not_repeated_names(drop: Drop, tmp_path):
    """A spreadsheet export's trailing empty header cells are columns without a name: ignored, the file loads."""
    drop.enroll("P1")
    folder = drop.write()
    _write_lines(folder / "time_entries.csv", [HEADER + ",,", "E91,P1,CM1,2026-01-21,20,follow_up,,,,,,,"])
    conn, result = _ingest(tmp_path, folder)
    assert result.file_errors == []
    assert conn.sql("select count(*) from raw_time_entries").fetchall() == [(1,)]


# ---------------------------------------------------------------------------------------------------
# Item 11: the quarantine share of a run


def _share_drop(drop: Drop, bad: int, good: int) -> Path:
    drop.enroll("P1")
    for i in range(good):
        drop.log("P1", f"2026-01-{1 + i % 28:02d}", 5)
    for _ in range(bad):
        drop.log("P1", "2026-01-05", 5, activity="golf")
    return drop.write()


def test_quarantine_share_over_the_setting_exits_1_naming_file_and_column(drop: Drop, tmp_path, capsys):
    folder = _share_drop(drop, bad=2, good=38)  # 2 of 40 = 5.0%: not more than 5%
    out = tmp_path / "out"
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-02-10", "--allow-stale"]) == 0
    assert "too many rows quarantined" not in capsys.readouterr().err
    # one more bad row: 3 of 41 = 7.3%
    write_csv(folder / "time_entries_2.csv", [{"entry_id": "Z1", "patient_id": "P1", "staff_id": "CM1",
                                              "service_date": "2026-01-06", "minutes": 5, "activity": "golf"}])
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-02-10", "--allow-stale"]) == 1
    captured = capsys.readouterr()
    (line,) = [x for x in captured.err.splitlines() if "too many rows quarantined" in x]
    assert line == (
        "bhi run: too many rows quarantined: time_entries: 3 of 41 rows quarantined (7.3%, over"
        " max_quarantine_share 5.0%); most in time_entries.csv, column activity (2 rows)"
    )
    # every output is still written
    assert "claim lines (closed)" in captured.out
    for name in ("claims.csv", "quarantine.csv", "field_warnings.csv", "minutes_reconciliation.csv"):
        assert (out / name).exists()


def test_quarantine_share_limit_is_a_setting(drop: Drop, tmp_path):
    import shutil

    from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR

    reference = tmp_path / "reference"
    shutil.copytree(DEFAULT_REFERENCE_DIR, reference)
    settings = reference / "settings.csv"
    settings.write_text(settings.read_text().replace("max_quarantine_share,0.05,", "max_quarantine_share,0.5,"))
    folder = _share_drop(drop, bad=3, good=7)  # 30%: under 50%
    from conftest import build_warehouse

    conn = build_warehouse(tmp_path / "w.duckdb", folder, "2026-02-10", reference)
    assert conn.sql("select over_limit, quarantined_share from fct_quarantine_share"
                    " where table_name = 'time_entries'").fetchall() == [(False, 0.3)]
    assert conn.sql("select quarantine_share_alert from rpt_run_summary").fetchall() == [(None,)]
    conn.close()


def test_quarantine_share_is_not_judged_on_a_handful_of_rows(drop: Drop, build):
    """quarantine_share_min_rows = 20: 5 of 19 rows quarantined is no alert, 5 of 20 is."""
    folder = _share_drop(drop, bad=5, good=14)
    drop.write = lambda: folder
    conn = build(drop, "2026-02-10")
    assert conn.sql("select rows_delivered, over_limit from fct_quarantine_share"
                    " where table_name = 'time_entries'").fetchall() == [(19, False)]
    write_csv(folder / "time_entries_2.csv", [{"entry_id": "Z1", "patient_id": "P1", "staff_id": "CM1",
                                              "service_date": "2026-01-06", "minutes": 5, "activity": "follow_up"}])
    conn = build(drop, "2026-02-10")
    assert conn.sql("select rows_delivered, over_limit from fct_quarantine_share"
                    " where table_name = 'time_entries'").fetchall() == [(20, True)]


# ---------------------------------------------------------------------------------------------------
# Issue 12 item 6: no patient identifier in any message, log or stored reason


def test_exports_neutralise_cells_starting_with_tab_or_carriage_return(tmp_path):
    conn = duckdb.connect()
    target = tmp_path / "x.csv"
    export_csv(conn, "select '\t=1+1' as a, '\rcmd' as b, '=2' as c, 'ok' as d", target)
    row = list(csv.reader(target.open(newline="")))[1]
    assert row == ["'\t=1+1", "'\rcmd", "'=2", "ok"]


def test_bhi_run_never_echoes_patient_ids_in_messages_logs_or_reasons(drop: Drop, tmp_path, capfd, monkeypatch):
    secret = ["PATSECRET01", "PATSECRET02", "PATSECRET03", "PATOUTSIDE7"]
    home = tmp_path / "dagster_home"  # a persistent instance: its event log and compute logs are checked too
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    drop.enroll("PATSECRET01")
    drop.month("PATSECRET01", "2026-01", 40)
    drop.entries[0]["service_date"] = "2026-13-01"  # a bad date: quarantined, value not in the reason
    drop.entries[1]["documented_at"] = "PATSECRET01"  # a bad optional value: a field warning without it
    folder = drop.write()
    # an unterminated quote with a patient id after it
    _write_lines(folder / "time_entries_2.csv", [
        HEADER, 'E9,"PATSECRET02,CM1,2026-01-07,20,follow_up,,,,,', "E10,PATSECRET03,CM1,2026-01-08,20,follow_up,,,,,",
    ])
    # a headerless file: its first row holds a patient id
    (folder / "encounters_2.csv").write_text("V9,PATSECRET03,2026-01-05,BP1,99213\nV10,PATSECRET02,2026-01-06,BP1,99213\n")
    # a link to a file outside the drop
    outside = tmp_path / "elsewhere.csv"
    _write_lines(outside, [HEADER, "E20,PATOUTSIDE7,CM1,2026-01-05,20,follow_up,,,,,"])
    os.symlink(outside, folder / "time_entries_link.csv")
    out = tmp_path / "out"
    code = main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-02-10", "--verbose", "--allow-stale"])
    captured = capfd.readouterr()
    assert code == 1
    messages = captured.out + captured.err
    assert "encounters_2.csv: missing required column(s)" in messages
    assert "time_entries_link.csv: refused: a symbolic link to a file outside the extract folder" in messages
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        stored = conn.sql(
            "select string_agg(coalesce(detail, ''), ' ') from ingest_files"
            " union all select string_agg(error, ' ') from ingest_errors"
            " union all select string_agg(reason || columns, ' ') from quarantine"
            " union all select string_agg(reason || column_name, ' ') from field_warnings"
            " union all select coalesce(quarantine_share_alert, '') from rpt_run_summary"
        ).fetchall()
        # the malformed row is quarantined by row (its line only in the record); the row after it loaded
        assert conn.sql("select source_file, source_row from quarantine where columns = ''").fetchall() == [
            ("time_entries_2.csv", 2)
        ]
        assert conn.sql("select count(*) from raw_time_entries where patient_id = 'PATSECRET03'").fetchall() == [(1,)]
        records = " ".join(r for (r,) in conn.sql("select record from quarantine").fetchall())
    logs = b" ".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert logs, "the Dagster instance stored nothing: the event log check would prove nothing"
    for patient in secret:
        assert patient not in messages
        assert all(patient not in (text or "") for (text,) in stored)
        assert patient.encode() not in logs
    assert "PATOUTSIDE7" not in records  # the link target was never read
    assert (out / "field_warnings.csv").read_text().count("documented_at") == 1
