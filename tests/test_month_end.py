"""Month-end close as monthly Dagster partitions: one partition, a backfill over a month range in one
run (`bhi close`), idempotent reruns (delete-then-insert), a re-close after a late entry, and the
schedule that closes the previous month on the 1st."""

from __future__ import annotations

import csv
import datetime as dt

import dagster as dg
import duckdb
import pytest

from conftest import Drop, copy_first_run, write_csv
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.defs.assets_month_end import month_end_definitions
from pipelines.defs.deployment import Deployment
from pipelines.defs.resources import RunPaths, Warehouse


def _rows(out, sql: str) -> list[tuple]:
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        return conn.sql(sql).fetchall()


@pytest.fixture(scope="module")
def nightly_run(tmp_path_factory):
    """P1 bills every month January-March 2026; the nightly run as of 2026-04-10 closed them (once for
    this file's tests)."""
    root = tmp_path_factory.mktemp("month-end")
    drop = Drop(root / "drop")
    drop.enroll("P1")
    for month, minutes in (("2026-01", 40), ("2026-02", 35), ("2026-03", 31)):
        drop.month("P1", month, minutes)
    folder = drop.write()
    out = root / "out"
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-04-10", "--allow-stale"]) == 0
    return drop, out


@pytest.fixture
def closed_quarter(nightly_run, tmp_path):
    """A private copy of the nightly run's drop and out folder."""
    return copy_first_run(*nightly_run, tmp_path)


def test_close_a_month_range_writes_each_months_claims_and_evidence(closed_quarter, capsys):
    _, _, out = closed_quarter
    capsys.readouterr()
    assert main(["close", "--out", str(out), "--month", "2026-01", "--through", "2026-03"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed if not line.startswith("837P")] == [
        "closed 2026-01 as of 2026-04-10", "closed 2026-02 as of 2026-04-10", "closed 2026-03 as of 2026-04-10"
    ]
    # no demographics in this drop: the 837P holds every claim back and says so (docs/claims-and-remittances.md)
    assert [line for line in printed if line.startswith("837P")] == [
        "837P: nothing new, changed or removed since the last close: no file written",
        "837P: 3 claims held back for missing elements or claim scrub edits (table fct_x12_claims_held; scrub_findings.csv)",
    ]
    assert _rows(out, "select strftime(service_month, '%Y-%m'), code, units from month_end_claims order by 1") == [
        ("2026-01", "99492", 1), ("2026-02", "99493", 1), ("2026-03", "99493", 1)
    ]
    # each month's files hold that month only, and match the claims of the nightly run
    for month in ("2026-01", "2026-02", "2026-03"):
        with (out / "month_end" / f"claims_{month}.csv").open() as fh:
            lines = list(csv.DictReader(fh))
        assert [(r["service_month"], r["code"]) for r in lines] == [
            (month, c) for (c,) in _rows(out, f"select code from fct_claims where strftime(service_month, '%Y-%m') = '{month}'")
        ]
        with (out / "month_end" / f"claim_evidence_{month}.csv").open() as fh:
            evidence = list(csv.DictReader(fh))
        assert evidence and {r["service_month"] for r in evidence} == {month}
        # the close's evidence file is the one `bhi evidence` writes for the month (a nightly run writes none)
        assert main(["evidence", "--out", str(out), "--month", month, "--to", str(out.parent / "on-demand.csv")]) == 0
        assert (out.parent / "on-demand.csv").read_bytes() == (out / "month_end" / f"claim_evidence_{month}.csv").read_bytes()
    assert not (out / "claim_evidence").exists()


def test_closing_again_replaces_the_month_and_a_late_entry_reopens_it(closed_quarter):
    drop, folder, out = closed_quarter
    assert main(["close", "--out", str(out), "--month", "2026-01", "--through", "2026-03"]) == 0
    # a rerun of the same range: the same lines, no duplicates
    assert main(["close", "--out", str(out), "--month", "2026-01", "--through", "2026-03"]) == 0
    assert _rows(out, "select count(*) from month_end_claims") == [(3,)]
    first = _rows(out, "select strftime(service_month, '%Y-%m'), closed_at from month_end_close order by 1")
    # a late February entry (35 -> 80 min, 99493 + 99494) arrives; the nightly run and then the
    # re-close of February only
    write_csv(folder / "time_entries_2026-04-11.csv", [
        {"entry_id": "LATE1", "patient_id": "P1", "staff_id": "CM1", "service_date": "2026-02-20",
         "minutes": 45, "activity": "follow_up"},
    ])
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-04-11", "--allow-stale"]) == 0
    assert main(["close", "--out", str(out), "--month", "2026-02"]) == 0
    assert _rows(out, "select strftime(service_month, '%Y-%m'), code, units, closed_as_of from month_end_claims"
                      " order by 1, 2") == [
        ("2026-01", "99492", 1, dt.date(2026, 4, 10)),
        ("2026-02", "99493", 1, dt.date(2026, 4, 11)),
        ("2026-02", "99494", 1, dt.date(2026, 4, 11)),
        ("2026-03", "99493", 1, dt.date(2026, 4, 10)),
    ]
    after = dict(_rows(out, "select strftime(service_month, '%Y-%m'), closed_at from month_end_close"))
    assert after["2026-01"] == dict(first)["2026-01"]  # January was not touched
    assert after["2026-02"] > dict(first)["2026-02"]


def test_the_open_month_cannot_be_closed(closed_quarter, capsys):
    _, _, out = closed_quarter
    assert main(["close", "--out", str(out), "--month", "2026-03", "--through", "2026-04"]) == 1
    assert "month 2026-04 is not closed as of 2026-04-10" in capsys.readouterr().err
    assert not (out / "month_end" / "claims_2026-03.csv").exists()  # nothing written for the range


def test_one_partition_materializes_through_dagster(closed_quarter):
    _, folder, out = closed_quarter
    resources = {
        "warehouse": Warehouse(database=str(out / "warehouse.duckdb")),
        "paths": RunPaths(extracts_dir=str(folder), out_dir=str(out)),
    }
    month_end_claims, _, _ = month_end_definitions(Deployment())
    result = dg.materialize([month_end_claims], partition_key="2026-02", resources=resources)
    assert result.success
    assert _rows(out, "select strftime(service_month, '%Y-%m') from month_end_close") == [("2026-02",)]
    assert (out / "month_end" / "claims_2026-02.csv").exists()


def test_month_end_schedule_closes_the_previous_month_on_the_first():
    defs = build_definitions(Deployment())

    job = defs.resolve_job_def("month_end_close")
    assert job.partitions_def.get_partition_keys()[:2] == ["2024-01", "2024-02"]
    schedule = defs.resolve_schedule_def("month_end_close_schedule")
    assert schedule.cron_schedule == "0 3 1 * *"
    context = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 1, 3, 0, tzinfo=dt.UTC), repository_def=defs.get_repository_def()
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2026-10"
    # the nightly job leaves the monthly partitions to this job
    nightly = defs.resolve_job_def("nightly")
    assert dg.AssetKey("month_end_claims") not in nightly.asset_layer.executable_asset_keys
