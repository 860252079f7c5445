"""Incremental loads through `bhi run`: the file ledger, re-deliveries, corrections, voids,
rejected files, full refresh, and claims_changes.csv. Every scenario runs the real CLI twice on one
warehouse, the way the nightly run meets a drop folder that grows."""

from __future__ import annotations

import csv
import shutil

import duckdb
import pytest

from conftest import REPO_ROOT, Drop, build_warehouse, copy_first_run, write_csv
from pipelines.cli import main
from pipelines.ingest.load import ExtractError, load_drop
from pipelines.warehouse.reference import seed_reference

AS_OF = "2026-03-10"  # January and February closed, March open


def _run(folder, out, *extra) -> int:
    return main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", AS_OF, "--allow-stale", *extra])


def _sql(out, query: str) -> list[tuple]:
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        return conn.sql(query).fetchall()


def _changes(out) -> list[dict]:
    with (out / "claims_changes.csv").open() as fh:
        return list(csv.DictReader(fh))


def _claims(out) -> list[tuple]:
    return _sql(out, "select strftime(service_month, '%Y-%m'), code, units, expected_amount from fct_claims order by 1, 2")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """P1 (NC Medicaid: 99494 cap 4): January initial month 110 min = 99492 + 99494 x1; February 30 min =
    G2214. The first run loads it (once for this file's tests)."""
    root = tmp_path_factory.mktemp("ledger")
    drop = Drop(root / "drop")
    drop.enroll("P1", payer="nc_medicaid")
    drop.month("P1", "2026-01", 110)
    drop.month("P1", "2026-02", 30)
    folder = drop.write()
    out = root / "out"
    assert _run(folder, out) == 0
    assert _claims(out) == [
        ("2026-01", "99492", 1, pytest.approx(160.32)),  # 2026 example rates
        ("2026-01", "99494", 1, pytest.approx(61.46)),
        ("2026-02", "G2214", 1, pytest.approx(57.0, abs=5)),
    ]
    # the first run adds every claim
    assert sorted(c["change"] for c in _changes(out)) == ["added"] * 3
    return drop, out


@pytest.fixture
def nightly(first_run, tmp_path):
    """A private copy of the first run's drop folder and warehouse: the test delivers more files into
    the folder and runs again."""
    return copy_first_run(*first_run, tmp_path)


def _entry(drop: Drop, entry_id: str) -> dict:
    return next(dict(e) for e in drop.entries if e["entry_id"] == entry_id)


def _deliver(folder, name: str, rows: list[dict]) -> None:
    write_csv(folder / name, rows, [*rows[0]])


def test_rerun_of_the_same_drop_changes_nothing(nightly):
    _, folder, out = nightly
    ledger = _sql(out, "select source_file, delivery_seq, sha256, status, loaded_at from ingest_files order by 2")
    raw = _sql(out, "select count(*), sum(minutes) from raw_time_entries")
    claims = _claims(out)
    assert _run(folder, out) == 0
    assert _sql(out, "select source_file, delivery_seq, sha256, status, loaded_at from ingest_files order by 2") == ledger
    assert _sql(out, "select count(*), sum(minutes) from raw_time_entries") == raw
    assert _claims(out) == claims
    assert _changes(out) == []


def test_redelivered_file_under_another_name_is_recorded_and_never_counted_twice(nightly):
    _, folder, out = nightly
    raw = _sql(out, "select count(*), sum(minutes) from raw_time_entries")
    claims = _claims(out)
    shutil.copy(folder / "time_entries.csv", folder / "time_entries_redelivered.csv")
    assert _run(folder, out) == 0
    assert _sql(out, "select status, detail, rows_loaded from ingest_files where source_file = 'time_entries_redelivered.csv'") == [
        ("duplicate", "same content as time_entries.csv: not loaded again", 0)
    ]
    assert _sql(out, "select count(*), sum(minutes) from raw_time_entries") == raw
    assert _claims(out) == claims
    assert _changes(out) == []
    # and the third run does not record the copy again
    assert _run(folder, out) == 0
    assert _sql(out, "select count(*) from ingest_files where source_file = 'time_entries_redelivered.csv'") == [(1,)]


def test_correction_of_a_closed_month_changes_its_claim_and_keeps_history(nightly):
    drop, folder, out = nightly
    # the source system corrects one January entry from 20 to 26 minutes: 116 min -> 99494 x2
    corrected = _entry(drop, "E00001") | {"minutes": 26}
    _deliver(folder, "time_entries_2026-03-09.csv", [corrected])
    assert _run(folder, out) == 0
    changes = _changes(out)
    assert [(c["change"], c["service_month"], c["code"], c["units_before"], c["units_after"]) for c in changes] == [
        ("changed", "2026-01", "99494", "1", "2")
    ]
    assert float(changes[0]["amount_difference"]) == pytest.approx(61.46)
    assert changes[0]["entries_delivered_this_run"] == "1"
    # history kept: both versions are in raw, the older one excluded as superseded
    assert _sql(out, "select minutes, source_file from raw_time_entries where entry_id = 'E00001' order by delivery_seq") == [
        (20, "time_entries.csv"),
        (26, "time_entries_2026-03-09.csv"),
    ]
    assert _sql(
        out,
        "select exclusion_reason, minutes from int_time_entries_classified where entry_id = 'E00001' order by delivery_seq",
    ) == [("superseded_by_later_delivery", 20), (None, 26)]


def test_late_entry_for_a_closed_month_reopens_it_and_adds_the_claim(nightly):
    drop, folder, out = nightly
    late = _entry(drop, "E00007") | {"entry_id": "LATE1", "service_date": "2026-02-27", "minutes": 5}
    _deliver(folder, "time_entries_2026-03-10.csv", [late])
    assert _run(folder, out) == 0
    changes = sorted((c["change"], c["service_month"], c["code"]) for c in _changes(out))
    # February: 35 min, G2214 -> 99493
    assert changes == [("added", "2026-02", "99493"), ("removed", "2026-02", "G2214")]


def test_void_in_a_later_delivery_removes_the_minutes_and_the_claim(nightly):
    drop, folder, out = nightly
    february = [e for e in drop.entries if e["service_date"].startswith("2026-02")]
    _deliver(folder, "time_entries_void.csv", [february[0] | {"deleted": "true"}])
    assert _run(folder, out) == 0
    assert [(c["change"], c["service_month"], c["code"]) for c in _changes(out)] == [("removed", "2026-02", "G2214")]
    assert _sql(
        out, "select minutes from fct_minutes_reconciliation where reason = 'voided_in_source'"
    ) == [(20,)]
    # still every minute accounted for: the voided version is excluded, not lost
    assert _sql(out, "select minutes_ingested = minutes_counted + minutes_excluded + minutes_quarantined from rpt_run_summary") == [(True,)]


def test_rejected_file_is_skipped_the_others_load_and_the_run_exits_non_zero(nightly, capsys):
    drop, folder, out = nightly
    late = _entry(drop, "E00007") | {"entry_id": "LATE1", "service_date": "2026-02-27", "minutes": 5}
    _deliver(folder, "time_entries_2026-03-10.csv", [late])
    (folder / "time_entries_broken.csv").write_text("entry_id,patient_id\nX1,P1\n")
    capsys.readouterr()
    assert _run(folder, out) == 1
    captured = capsys.readouterr()
    assert "bhi run: as of 2026-03-10" in captured.out  # the summary is still printed
    assert "1 file(s) rejected" in captured.err
    assert "time_entries_broken.csv: missing required column(s) staff_id, service_date, minutes, activity" in captured.err
    # the good file loaded and its claim changed; the broken one is in the ledger as rejected
    assert ("added", "2026-02", "99493") in [(c["change"], c["service_month"], c["code"]) for c in _changes(out)]
    assert _sql(out, "select status from ingest_files where source_file = 'time_entries_broken.csv'") == [("rejected",)]
    # fixed by removing it: the next run is clean and changes nothing more
    (folder / "time_entries_broken.csv").unlink()
    assert _run(folder, out) == 0
    assert _changes(out) == []


def test_full_refresh_reloads_every_file_and_gives_the_same_claims(nightly):
    drop, folder, out = nightly
    _deliver(folder, "time_entries_2026-03-09.csv", [_entry(drop, "E00001") | {"minutes": 26}])
    assert _run(folder, out) == 0
    claims = _claims(out)
    assert _run(folder, out, "--full-refresh") == 0
    assert _claims(out) == claims
    assert _changes(out) == []
    assert _sql(out, "select count(*), min(delivery_seq), max(delivery_seq) from ingest_files") == [(6, 1, 6)]


def test_minutes_read_equal_counted_plus_excluded_plus_quarantined_after_corrections(nightly):
    drop, folder, out = nightly
    _deliver(folder, "time_entries_2026-03-09.csv", [_entry(drop, "E00001") | {"minutes": 26},
                                                     _entry(drop, "E00002") | {"minutes": "abc"}])
    assert _run(folder, out) == 0
    (read, counted, excluded, quarantined), = _sql(
        out, "select minutes_ingested, minutes_counted, minutes_excluded, minutes_quarantined from rpt_run_summary"
    )
    raw = _sql(out, "select sum(minutes) from raw_time_entries")[0][0]
    assert read == counted + excluded + quarantined
    assert counted + excluded == raw  # quarantined 'abc' counts 0 minutes
    assert _sql(out, "select count(*) from quarantine where source_file = 'time_entries_2026-03-09.csv'") == [(1,)]


def test_full_refresh_table_is_replaced_by_its_new_delivery(drop: Drop, tmp_path):
    drop.enroll("P1")
    drop.month("P1", "2026-01", 40, staff="CS1")
    folder = drop.write()
    conn = build_warehouse(tmp_path / "w.duckdb", folder, AS_OF, every_model=True)  # handed to load_drop
    assert conn.sql("select count(*) from raw_staff").fetchall() == [(5,)]
    # tonight's roster no longer lists CS1: with staff declared full-refresh, CS1 is gone
    _deliver(folder, "staff_2026-03-10.csv", [s for s in drop.staff if s["staff_id"] != "CS1"])
    load_drop(conn, folder, full_refresh_tables=frozenset({"staff"}))
    assert conn.sql("select count(*) from raw_staff").fetchall() == [(4,)]
    assert conn.sql(
        "select source_file, status from ingest_files where table_name = 'staff' order by delivery_seq"
    ).fetchall() == [("staff.csv", "replaced"), ("staff_2026-03-10.csv", "loaded")]
    # appended (the default), the earlier roster would still be there
    conn.close()


def test_entry_over_the_maximum_minutes_is_quarantined_with_the_setting_named(drop: Drop, tmp_path):
    drop.enroll("P1")
    drop.log("P1", "2026-01-05", 240)
    drop.log("P1", "2026-01-06", 241)
    conn = build_warehouse(tmp_path / "w.duckdb", drop.write(), AS_OF)
    assert conn.sql("select source_row, columns, reason from quarantine").fetchall() == [
        (3, "minutes", "minutes: minutes 241 over the maximum of 240 per entry (setting max_minutes_per_entry)")
    ]
    conn.close()


def test_a_profile_full_refresh_table_is_replaced_through_bhi_run(tmp_path):
    # the registry profile declares its staff roster a full-refresh table
    folder = tmp_path / "drop"
    shutil.copytree(REPO_ROOT / "data" / "examples" / "registry", folder)
    out = tmp_path / "out"
    args = ["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-07-10", "--profile", "registry",
            "--allow-stale"]
    assert main(args) == 0
    assert _sql(out, "select count(*) from raw_staff") == [(5,)]
    claims = _claims(out)
    # tonight's roster drops the medical assistant (S05): the table is replaced, not appended to
    roster = (folder / "Clinicians.txt").read_text(encoding="utf-8-sig").splitlines()
    (folder / "Clinicians_2026-07-10.txt").write_text("\n".join(line for line in roster if not line.startswith("S05")) + "\n")
    assert main(args) == 0
    assert _sql(out, "select staff_id from raw_staff order by 1") == [("S01",), ("S02",), ("S03",), ("S04",)]
    assert _sql(out, "select source_file, status from ingest_files where table_name = 'staff' order by source_file") == [
        ("Clinicians.txt", "replaced"),
        ("Clinicians_2026-07-10.txt", "loaded"),
    ]
    # the medical assistant's minutes are now unknown staff (decided again each run), and the claims
    # they carried are reported as removed
    assert _sql(out, "select distinct exclusion_reason from int_time_entries_classified where staff_id = 'S05'") == [
        ("unknown_staff",)
    ]
    removed = [c for c in _changes(out) if c["change"] == "removed"]
    assert removed and len(_claims(out)) == len(claims) - len(removed)


def test_a_drop_with_only_tonights_files_loads_on_top_of_the_earlier_ones(nightly, tmp_path):
    drop, _, out = nightly
    tonight = tmp_path / "tonight"
    tonight.mkdir()
    late = _entry(drop, "E00007") | {"entry_id": "LATE1", "service_date": "2026-02-27", "minutes": 5}
    _deliver(tonight, "time_entries_2026-03-10.csv", [late])
    # no staff, enrollments, psych_reviews or encounters file tonight: they were loaded before
    assert _run(tonight, out) == 0
    assert sorted((c["change"], c["code"]) for c in _changes(out)) == [("added", "99493"), ("removed", "G2214")]
    # on an empty warehouse the same folder is still an error naming what is missing
    with pytest.raises(ExtractError, match=r"no file for required table\(s\) staff, enrollments, psych_reviews, encounters"):
        load_drop(duckdb.connect(str(tmp_path / "empty.duckdb")), tonight)


def test_a_changed_fhir_coverage_file_re_reads_the_enrollments(tmp_path):
    folder = tmp_path / "fhir"
    shutil.copytree(REPO_ROOT / "data" / "examples" / "fhir_bulk", folder)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    seed_reference(conn)
    load_drop(conn, folder)
    assert conn.sql("select payer_id from raw_enrollments where patient_id = 'P003'").fetchall() == [("nc_medicaid",)]
    coverage = folder / "Coverage.ndjson"
    coverage.write_text(coverage.read_text().replace("Organization/nc_medicaid", "Organization/medicare"))
    result = load_drop(conn, folder)
    assert result.files_loaded == 1  # EpisodeOfCare.ndjson again, with the new payer as its latest delivery
    latest = conn.sql(
        "select payer_id from raw_enrollments where patient_id = 'P003' order by delivery_seq desc limit 1"
    ).fetchall()
    assert latest == [("medicare",)]
    conn.close()


def test_a_correction_put_back_to_earlier_bytes_is_a_new_delivery_and_its_rows_win(nightly):
    """A file's identity is its name and content: a correction changed under the same name, then put
    back to its first bytes, is delivered again (a new ledger row), and the claims follow the bytes
    put back, not the superseded version."""
    drop, folder, out = nightly
    name = "time_entries_2026-03-09.csv"
    _deliver(folder, name, [_entry(drop, "E00001") | {"minutes": 26}])  # January 116 min: 99494 x2
    first_bytes = (folder / name).read_bytes()
    assert _run(folder, out) == 0
    assert ("2026-01", "99494", 2, pytest.approx(122.92)) in _claims(out)
    _deliver(folder, name, [_entry(drop, "E00001") | {"minutes": 21}])  # changed under the same name: 111 min
    assert _run(folder, out) == 0
    (folder / name).write_bytes(first_bytes)  # put back
    assert _run(folder, out) == 0
    rows = _sql(out, f"select status, detail from ingest_files where source_file = '{name}' order by loaded_at, delivery_seq")
    assert [r[0] for r in rows] == ["loaded", "loaded", "loaded"]
    assert rows[2][1].startswith("put back to the content of an earlier delivery")
    assert _sql(out, "select minutes from int_time_entries_classified where entry_id = 'E00001'"
                     " and exclusion_reason is null") == [(26,)]  # the bytes put back are the latest version
    assert ("2026-01", "99494", 2, pytest.approx(122.92)) in _claims(out)
    assert _run(folder, out) == 0  # and the next night it is unchanged: not delivered a fourth time
    assert _sql(out, f"select count(*) from ingest_files where source_file = '{name}'") == [(3,)]
