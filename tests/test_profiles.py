"""Source profiles: selection, validation (errors name the profile file and key), mappings applied to
hand-made files, the three shipped example drops through the ingest, and one real `bhi run`."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from conftest import REPO_ROOT, Drop
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.load import load_drop
from pipelines.ingest.profiles import PROFILES_DIR, available_profiles, load_profile, parse_profile, read_profile_file
from pipelines.ingest.readers import discover, read_parts
from pipelines.warehouse.reference import seed_reference

EXAMPLES = REPO_ROOT / "data" / "examples"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _ingest(tmp_path: Path, folder: Path, profile=None):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_reference(conn)
    return conn, load_drop(conn, folder, profile=profile)


# --- selection -------------------------------------------------------------------------------------


def test_shipped_profiles_are_valid_and_declare_full_refresh_tables():
    assert {"ehr_reporting", "registry", "tracker_xlsx"} <= set(available_profiles())
    for name in available_profiles():
        assert load_profile(name).name == name
    assert load_profile("ehr_reporting").full_refresh_tables == {"staff", "enrollments"}
    assert load_profile("registry").full_refresh_tables == {"staff"}


def test_profile_selection_argument_then_drop_file_then_canonical(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    assert load_profile(None, drop) is None  # canonical format
    _write(drop / "bhi-profile.yaml", "name: in_the_drop\n")
    assert load_profile(None, drop).name == "in_the_drop"
    assert load_profile("registry", drop).name == "registry"  # the argument wins
    own = _write(tmp_path / "mine.yaml", "name: mine\nfull_refresh: [payers]\ntables:\n  staff:\n    full_refresh: true\n")
    chosen = load_profile(str(own), drop)
    assert (chosen.name, chosen.full_refresh_tables) == ("mine", {"payers", "staff"})
    assert parse_profile({}, tmp_path / "empty.yaml").full_refresh_tables == frozenset()  # default: none


def test_unknown_profile_name_and_missing_path_are_clear(tmp_path):
    with pytest.raises(ExtractError, match=r"unknown profile 'epic': no file .*profiles/epic.yaml "
                                           r"\(profiles available: .*ehr_reporting.*\)"):
        load_profile("epic")
    with pytest.raises(ExtractError, match=r"profile .*nowhere.yaml: no such file"):
        load_profile(str(tmp_path / "nowhere.yaml"))


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("tabels: {}\n", "tabels", "unknown key (allowed: csv, description, formats, full_refresh, name, sheet, tables)"),
        ("tables:\n  timeentries: {}\n", "tables.timeentries", "unknown table 'timeentries'"),
        ("tables:\n  staff:\n    colums: {A: staff_id}\n", "tables.staff.colums", "unknown key"),
        ("tables:\n  staff:\n    columns: {A: staf_id}\n", "tables.staff.columns.A[0]", "'staf_id' is not a column of staff"),
        ("tables:\n  staff:\n    values:\n      role: {yes: care_manager}\n", "tables.staff.values.role.True",
         "keys must be text"),
        ("csv: {delimiter: ':'}\n", "csv.delimiter", "is not auto or one of"),
        ("csv: {encoding: klingon}\n", "csv.encoding", "unknown encoding 'klingon'"),
        ("formats: {date: '%m/%q/%Y'}\n", "formats.date[0]", "unknown directive %q"),
        ("formats: {date: 'MM/DD/YYYY'}\n", "formats.date[0]", "is not a strftime format"),
        ("tables:\n  staff:\n    formats: {fte: '%Y'}\n", "tables.staff.formats.fte", "not decimal"),
        ("tables:\n  time_entries:\n    minutes: {start: S}\n", "tables.time_entries.minutes", "give both start and end"),
        ("tables:\n  staff:\n    minutes: {duration: true}\n", "tables.staff.minutes", "only time_entries"),
        ("full_refresh: [staf]\n", "full_refresh[0]", "unknown table 'staf'"),
        ("tables:\n  staff:\n    full_refresh: yes please\n", "tables.staff.full_refresh", "must be true or false"),
        ("", "(top level)", "the file is empty"),
        ("csv: {encoding: utf-8, quote: x}\n", "csv.quote", "unknown key (allowed: delimiter, encoding)"),
        ("formats: {datetime: '%Y'}\n", "formats.datetime", "unknown key (allowed: date, month, time, timestamp)"),
        ("name: [a]\n", "name", "must be text, got ['a']"),
        ("tables:\n  staff: [a]\n", "tables.staff", "must be a mapping, got list"),
        ("tables:\n  staff:\n    files: []\n", "tables.staff.files", "must not be empty"),
        ("tables:\n  time_entries:\n    minutes: {}\n", "tables.time_entries.minutes", "give duration: true and/or"),
        ("tables:\n  time_entries:\n    minutes: {duration: true, format: '%Y'}\n", "tables.time_entries.minutes",
         "format is only used with start and end"),
        ("tables:\n  time_entries:\n    minutes: {duration: 'yes'}\n", "tables.time_entries.minutes.duration",
         "must be true or false, got 'yes'"),
    ],
)
def test_invalid_profile_names_file_and_key(tmp_path, text, key, problem):
    path = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(ExtractError) as err:
        read_profile_file(path)
    message = str(err.value)
    assert message.startswith(f"profile {path}: {key}: "), message
    assert problem in message


def test_every_problem_of_a_profile_is_named_on_one_line(tmp_path):
    path = _write(tmp_path / "bad.yaml", "tables:\n  staff:\n    colums: {}\n    values: {rol: {}}\ncsv: {encoding: x}\n")
    with pytest.raises(ExtractError) as err:
        read_profile_file(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"profile {path}: ")
    for problem in ["csv.encoding: unknown encoding 'x'", "tables.staff.colums: unknown key",
                    "tables.staff.values.rol: 'rol' is not a column of staff"]:
        assert problem in message, message


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = _write(tmp_path / "broken.yaml", "tables:\n  staff:\n   columns: [\n")
    with pytest.raises(ExtractError, match=r"profile .*broken.yaml: not valid YAML"):
        read_profile_file(path)
    # through the ingest: a broken bhi-profile.yaml in the drop stops the load with the same message
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "bhi-profile.yaml").write_text("tables: [\n")
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(ExtractError, match=r"bhi-profile.yaml: not valid YAML"):
        load_drop(conn, drop)


# --- discovery -------------------------------------------------------------------------------------


def test_file_patterns_assign_files_and_the_rest_keep_canonical_names(tmp_path):
    for name in ["LOG_2026-05.TXT", "log_2026-06.csv", "staff.csv", "enrollments.csv", "psych_reviews.csv",
                 "encounters.csv", "notes.pdf", "time_entries_old.csv"]:
        (tmp_path / name).write_text("x\n")
    profile = parse_profile({"tables": {"time_entries": {"files": ["log_*"]}}}, tmp_path / "p.yaml")
    found = discover(tmp_path, profile)
    # patterns are case-insensitive; a table with patterns no longer takes `<table>*` names
    assert [p.name for p in found["time_entries"]] == ["LOG_2026-05.TXT", "log_2026-06.csv"]
    assert [p.name for p in found["staff"]] == ["staff.csv"]
    ambiguous = parse_profile({"tables": {"time_entries": {"files": ["*.csv"]}, "staff": {"files": ["staff*"]}}},
                              tmp_path / "p.yaml")
    with pytest.raises(ExtractError, match=r"staff.csv: matches the file patterns of several tables "
                                           r"\(time_entries, staff\)"):
        discover(tmp_path, ambiguous)
    missing = parse_profile({"tables": {"time_entries": {"files": ["TIMELOG*.csv"]}}}, tmp_path / "p.yaml")
    with pytest.raises(ExtractError, match=r"no file for required table\(s\) time_entries .*"
                                           r"profile patterns time_entries: TIMELOG\*.csv"):
        discover(tmp_path, missing)


# --- mappings ----------------------------------------------------------------------------------------


PROFILE = """
formats:
  date: "%m/%d/%Y"
tables:
  time_entries:
    files: ["log*.csv"]
    columns:
      ID: entry_id
      PAT: patient_id
      WHO: staff_id
      Kind: activity
      BILL MIN: minutes
    values:
      activity: {FU: follow_up, "Care Coord": care_coordination}
    defaults:
      program: cocm
    minutes:
      duration: true
      start: Began
      end: Ended
      format: "%m/%d/%Y %I:%M %p"
  staff:
    files: ["roster*.csv"]
    columns: {ID: staff_id, TYPE: role, SITE: facility_id, HIRED: name}
    values:
      role: {BHCM: care_manager, "7": therapist}
"""


def _mapped_drop(tmp_path: Path) -> Path:
    drop = Drop(tmp_path / "drop")
    drop.enroll("P1")
    folder = drop.write()
    (folder / "time_entries.csv").unlink()
    (folder / "staff.csv").unlink()
    _write(folder / "bhi-profile.yaml", PROFILE)
    _write(folder / "log_1.csv", "\n".join([
        "ID,PAT,WHO,Kind,BILL MIN,Began,Ended,program",
        "E1,P1,CM1,fu,0:25:00,01/05/2026 09:00 AM,01/05/2026 09:30 AM,",          # duration wins over start/end
        "E2,P1,CM1,CARE COORD,,01/06/2026 01:00 PM,01/06/2026 01:40 PM,bhi",      # minutes from start/end
        "E3,P1,CM1,FU,12,01/07/2026 10:00 AM,01/07/2026 09:50 AM,",               # plain number kept
        "E4,P1,CM1,golf,,01/08/2026 10:00 AM,01/08/2026 09:50 AM,",               # end before start
        "E5,P1,CM1,FU,,someday,01/09/2026 10:00 AM,",                            # unreadable start
        "E6,P1,CM1,FU,half an hour,01/10/2026 10:00 AM,01/10/2026 10:30 AM,",    # unreadable minutes
    ]) + "\n")
    _write(folder / "roster.csv", "ID,TYPE,SITE\nCM1, bhcm ,F1\nBP1,BILLING_PRACTITIONER,F1\nTH1,7,F1\nX1,nurse,F1\n")
    return folder


def test_mappings_give_canonical_text_and_pass_the_unconvertible_on(tmp_path):
    folder = _mapped_drop(tmp_path)
    profile = load_profile(None, folder)
    (part,) = read_parts(folder / "log_1.csv", "time_entries", profile)
    rows = part.data.select("entry_id", "activity", "program", "minutes", "service_date", "start_time",
                            "end_time").rows()
    assert rows == [
        ("E1", "follow_up", "cocm", "25", "2026-01-05", "09:00", "09:30"),
        ("E2", "care_coordination", "bhi", "40", "2026-01-06", "13:00", "13:40"),
        ("E3", "follow_up", "cocm", "12", "2026-01-07", "10:00", "09:50"),
        ("E4", "golf", "cocm", "-10", "2026-01-08", "10:00", "09:50"),
        ("E5", "follow_up", "cocm", "someday - 01/09/2026 10:00 AM", "someday", None, "10:00"),
        ("E6", "follow_up", "cocm", "half an hour", "2026-01-10", "10:00", "10:30"),
    ]


def test_mapped_drop_loads_and_quarantines_what_could_not_be_converted(tmp_path):
    folder = _mapped_drop(tmp_path)
    conn, result = _ingest(tmp_path, folder)
    assert result.file_errors == []
    assert conn.sql("select staff_id, role from raw_staff order by staff_id").fetchall() == [
        ("BP1", "billing_practitioner"), ("CM1", "care_manager"), ("TH1", "therapist")
    ]
    assert conn.sql("select entry_id, minutes, service_date::varchar from raw_time_entries order by 1").fetchall() == [
        ("E1", 25, "2026-01-05"), ("E2", 40, "2026-01-06"), ("E3", 12, "2026-01-07")
    ]
    reasons = conn.sql("select source_file, source_row, reason from quarantine order by source_file, source_row").fetchall()
    assert reasons == [
        ("log_1.csv", 5, "activity: unknown value 'golf'; minutes: minutes must be greater than 0"),
        ("log_1.csv", 6, "service_date: cannot read the value as a date (YYYY-MM-DD); "
                         "minutes: cannot read 'someday - 01/09/2026 10:00 AM' as a whole number"),
        ("log_1.csv", 7, "minutes: cannot read 'half an hour' as a whole number"),
        ("roster.csv", 5, "role: unknown value 'nurse'"),
    ]


def test_missing_mapped_column_names_file_and_source_columns(tmp_path):
    folder = _mapped_drop(tmp_path)
    _write(folder / "log_1.csv", "ID,PAT,WHO,BILL MIN,Began,Ended\nE1,P1,CM1,5,01/05/2026 09:00 AM,01/05/2026 09:30 AM\n")
    _write(folder / "log_2.csv", "ID,PAT,WHO,Kind,BILL MIN,Began\nE9,P1,CM1,FU,5,01/05/2026 09:00 AM\n")
    conn, result = _ingest(tmp_path, folder)
    assert sorted(result.file_errors) == [
        f"{folder / 'log_1.csv'}: missing required column(s) activity for table time_entries (after the column "
        f"mapping of profile bhi-profile); columns found: id, pat, who, bill_min, began, ended",
        f"{folder / 'log_2.csv'}: missing column ended (minutes.end of profile bhi-profile); "
        f"columns found: id, pat, who, kind, bill_min, began",
    ]


# --- the shipped examples ----------------------------------------------------------------------------


def test_example_ehr_reporting_lands_canonical_values(tmp_path):
    conn, result = _ingest(tmp_path, EXAMPLES / "ehr_reporting", "ehr_reporting")
    assert result.file_errors == [] and sum(result.rows_quarantined.values()) == 0
    assert result.rows_loaded["time_entries"] == 48
    # cp1252 names, role codes mapped
    assert conn.sql("select staff_id, role, name from raw_staff order by 1 limit 2").fetchall() == [
        ("S01", "care_manager", "Renée Dubois"), ("S02", "care_manager", "José Peña")
    ]
    # US dates, 12-hour times, activity codes, upper-case program
    assert conn.sql(
        "select entry_id, service_date::varchar, start_time::varchar, end_time::varchar, activity, program, minutes"
        " from raw_time_entries where entry_id = 'TL0002'"
    ).fetchall() == [("TL0002", "2026-05-04", "09:05:00", "09:28:00", "care_coordination", "cocm", 23)]
    assert conn.sql("select distinct payer_id from raw_enrollments order by 1").fetchall() == [
        ("acme_commercial",), ("medicare",), ("nc_medicaid",)
    ]
    assert conn.sql("select distinct instrument from raw_assessments order by 1").fetchall() == [("gad7",), ("phq9",)]


def test_example_registry_derives_minutes_from_start_and_end(tmp_path):
    conn, result = _ingest(tmp_path, EXAMPLES / "registry", "registry")
    assert result.file_errors == [] and sum(result.rows_quarantined.values()) == 0
    # E0001 has no billable minutes in the file: 08:00 -> 08:16 gives 16; E0002 has 23 in the file
    assert conn.sql(
        "select entry_id, service_date::varchar, start_time::varchar, end_time::varchar, minutes, activity"
        " from raw_time_entries where entry_id in ('E0001', 'E0002') order by 1"
    ).fetchall() == [
        ("E0001", "2026-05-01", "08:00:00", "08:16:00", 16, "assessment"),
        ("E0002", "2026-05-04", "09:05:00", "09:28:00", 23, "care_coordination"),
    ]
    assert conn.sql("select role from raw_staff where staff_id = 'S04'").fetchall() == [("psychiatric_consultant",)]
    assert conn.sql("select payer_id from raw_enrollments where patient_id = 'P003'").fetchall() == [("nc_medicaid",)]


def test_example_tracker_reads_monthly_sheets_and_durations(tmp_path):
    conn, result = _ingest(tmp_path, EXAMPLES / "tracker_xlsx", "tracker_xlsx")
    assert result.file_errors == [] and sum(result.rows_quarantined.values()) == 0
    # May holds Excel duration cells, June durations typed as text: both give whole minutes
    assert conn.sql(
        "select source_file, count(*), sum(minutes) from raw_time_entries group by 1 order by 1"
    ).fetchall() == [
        ("Caseload tracker 2026.xlsx[2026-05]", 24, 416),
        ("Caseload tracker 2026.xlsx[2026-06]", 24, 403),
    ]  # the same 819 minutes the other examples deliver
    assert conn.sql("select role, annual_cost from raw_staff where staff_id = 'S01'").fetchall() == [
        ("care_manager", 72000.0)
    ]
    assert conn.sql("select enrolled_on::varchar, consent_on from raw_enrollments where patient_id = 'P006'").fetchall() == [
        ("2026-05-18", None)
    ]


def test_bhi_run_on_an_example_with_its_profile(tmp_path):
    from pipelines.cli import main

    out = tmp_path / "out"
    assert main(["run", "--extracts", str(EXAMPLES / "ehr_reporting"), "--out", str(out), "--profile", "ehr_reporting",
                 "--as-of", "2026-07-10", "--allow-stale"]) == 0
    with (out / "claims.csv").open(newline="") as fh:
        claims = list(csv.DictReader(fh))
    assert {c["service_month"] for c in claims} == {"2026-05", "2026-06"}
    assert {c["patient_id"] for c in claims} >= {"MRN001", "MRN003", "MRN004"}
    assert {"99492", "99493", "99484"} <= {c["code"] for c in claims}
    assert not any(c["patient_id"] == "MRN006" for c in claims)  # no consent on file
    assert PROFILES_DIR.is_dir()


@pytest.mark.parametrize(
    "example, profile",
    [("registry", "registry"), ("tracker_xlsx", "tracker_xlsx"), ("fhir_bulk", None)],
)
def test_bhi_run_loads_every_example_drop(example, profile, tmp_path, capsys):
    from pipelines.cli import main

    args = ["run", "--extracts", str(EXAMPLES / example), "--out", str(tmp_path / "out"), "--as-of", "2026-07-10",
            "--allow-stale"]
    assert main(args + (["--profile", profile] if profile else [])) == 0
    out = capsys.readouterr().out
    # the same synthetic caseload in every shape: nothing quarantined, the same closed-month claims
    assert "rows quarantined                   0" in out
    assert "claim lines (closed)              10" in out
