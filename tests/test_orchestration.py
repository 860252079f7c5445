"""Orchestration: the schedule and the extract-drop sensor as the daemon evaluates them, one writer per
warehouse (run-queue limit in dagster.yaml, a clear error when the DuckDB file is locked)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest
import yaml

from conftest import REPO_ROOT, SAMPLE_DIR
from pipelines.definitions import build_definitions
from pipelines.defs.deployment import Deployment
from pipelines.defs.resources import (
    LOCK_ERROR_MARKER,
    WAREHOUSE_TAG,
    Warehouse,
    WarehouseLockedError,
    warehouse_tag,
)

AS_OF_PATH = ("ops", "run_parameters", "config", "as_of")


def _as_of(run_config: dict) -> str:
    value = run_config
    for key in AS_OF_PATH:
        value = value[key]
    return value


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    return build_definitions(Deployment())


# --------------------------------------------------------------------------------------------------
# definitions and schedule


def test_definitions_register_job_schedules_and_a_sensor_running_unless_automation_is_off(defs):
    job = defs.resolve_job_def("nightly")
    assert WAREHOUSE_TAG in job.tags  # every run of the job is under the run-queue limit
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.job_name == "nightly"
    sensor = defs.resolve_sensor_def("extract_drop_sensor")
    assert sensor.job_name == "nightly"
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING  # `make dev` and a daemon: on at once
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_schedule_def("month_end_close_schedule").default_status == dg.DefaultScheduleStatus.RUNNING
    assert sensor.minimum_interval_seconds == 60
    off = build_definitions(Deployment.from_environment({"BHI_AUTOMATION": "off"}))
    assert off.resolve_sensor_def("extract_drop_sensor").default_status == dg.DefaultSensorStatus.STOPPED
    assert {off.resolve_schedule_def(s).default_status for s in ("nightly_schedule", "month_end_close_schedule")} == {
        dg.DefaultScheduleStatus.STOPPED}


def test_schedule_request_has_run_key_as_of_config_and_warehouse_tag(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    schedule = build_definitions(Deployment(warehouse=str(warehouse))).resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    tz = ZoneInfo(schedule.execution_timezone)
    context = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 1, 2, 0, tzinfo=tz))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.run_key == "2026-11-01"
    assert _as_of(request.run_config) == "2026-11-01"  # the 1st: October closes
    assert request.tags["bhi/as_of"] == "2026-11-01"
    assert request.tags[WAREHOUSE_TAG] == warehouse_tag(str(warehouse))


def test_the_code_location_reads_its_settings_when_dagster_loads_it_not_at_import():
    """`dg dev` / the daemon: BHI_* are read when the @dg.definitions function is called; importing the
    module reads nothing (a bad value fails the load, naming the variable, not the import)."""
    code = textwrap.dedent(
        """
        import os
        os.environ["BHI_SENSOR_INTERVAL_SECONDS"] = "soon"
        import pipelines.definitions as d  # no environment read here
        os.environ["BHI_SENSOR_INTERVAL_SECONDS"] = "300"
        defs = d.defs()
        print(defs.resolve_schedule_def("nightly_schedule").execution_timezone)
        print(defs.resolve_schedule_def("month_end_close_schedule").execution_timezone)
        print(defs.resolve_sensor_def("extract_drop_sensor").minimum_interval_seconds)
        print(defs.resolve_job_def("month_end_close").partitions_def.get_partition_keys()[0])
        os.environ["BHI_SENSOR_INTERVAL_SECONDS"] = "soon"
        try:
            d.defs()
        except ValueError as exc:
            print(exc)
        """
    )
    env = {**os.environ, "BHI_TIMEZONE": "America/Chicago", "BHI_FIRST_MONTH": "2025-07"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "America/Chicago", "America/Chicago", "300", "2025-07",
        "BHI_SENSOR_INTERVAL_SECONDS must be a number, got 'soon'",
    ]


def test_warehouse_tag_is_one_value_per_file_and_a_valid_tag_value(tmp_path):
    a, b = tmp_path / "a" / "warehouse.duckdb", tmp_path / "b" / "warehouse.duckdb"
    assert warehouse_tag(str(a)) == warehouse_tag(str(a))
    assert warehouse_tag(str(a)) != warehouse_tag(str(b))  # same file name, different files
    assert warehouse_tag(str(a)).startswith("warehouse.duckdb-")
    from dagster._utils.tags import is_valid_strict_tag_value

    long_name = tmp_path / ("x" * 80 + " weird name!.duckdb")
    assert is_valid_strict_tag_value(warehouse_tag(str(long_name)))


# --------------------------------------------------------------------------------------------------
# the extract-drop sensor

HOUR_AGO = time.time() - 3600


def _write(path: Path, text: str, mtime: float = HOUR_AGO) -> Path:
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def drop(tmp_path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    _write(folder / "time_entries_2026-10.csv", "entry_id,patient_id\nE1,P1\n")
    _write(folder / "staff.csv", "staff_id,role\nCM1,care_manager\n")
    return folder


@pytest.fixture
def settings(drop, tmp_path) -> Deployment:
    return Deployment(
        extracts_dir=str(drop),
        warehouse=str(tmp_path / "warehouse.duckdb"),
        timezone="Pacific/Kiritimati",  # UTC+14: "today" differs from UTC's most of the day
        sensor_settle_seconds=0,
    )


def _tick(settings: Deployment, cursor: str | None):
    sensor = build_definitions(settings).resolve_sensor_def("extract_drop_sensor")
    return sensor.evaluate_tick(dg.build_sensor_context(cursor=cursor))


def test_sensor_first_tick_requests_a_nightly_run_for_today(settings, drop, tmp_path):
    before = dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    result = _tick(settings, None)
    after = dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date().isoformat()
    (request,) = result.run_requests
    assert result.cursor and request.run_key == f"drop-{result.cursor}"
    assert _as_of(request.run_config) in {before, after}
    assert request.tags["bhi/as_of"] == _as_of(request.run_config)
    assert request.tags[WAREHOUSE_TAG] == warehouse_tag(str(tmp_path / "warehouse.duckdb"))
    assert request.tags["bhi/drop_files"] == "2"


def test_sensor_skips_when_nothing_changed_and_ignores_other_files(settings, drop):
    first = _tick(settings, None)
    second = _tick(settings, first.cursor)
    assert not second.run_requests
    assert "no new or changed extract files" in second.skip_message
    assert str(drop) in second.skip_message
    # files ingest cannot read do not count: partial uploads, hidden and lock files, sub-folders
    _write(drop / "README.md", "notes")
    _write(drop / "time_entries_2026-11.csv.part", "half a file")
    _write(drop / "time_entries_2026-11.csv.tmp", "half a file")
    _write(drop / ".time_entries_2026-11.csv", "hidden")
    _write(drop / "~$staff.xlsx", "Excel's lock file")
    (drop / "archive").mkdir()
    _write(drop / "archive" / "time_entries_2026-01.csv", "moved away")
    third = _tick(settings, first.cursor)
    assert not third.run_requests and "no new or changed" in third.skip_message


def test_sensor_requests_a_new_run_with_a_new_run_key_for_each_change(settings, drop):
    keys = []
    cursor = None

    def tick_expecting_a_run():
        nonlocal cursor
        result = _tick(settings, cursor)
        assert len(result.run_requests) == 1, result.skip_message
        cursor = result.cursor
        keys.append(result.run_requests[0].run_key)

    tick_expecting_a_run()
    later = HOUR_AGO + 60
    os.utime(drop / "staff.csv", (later, later))  # touched (re-delivered with the same content)
    tick_expecting_a_run()
    _write(drop / "time_entries_2026-11.parquet", "new month")  # added
    tick_expecting_a_run()
    _write(drop / "bhi-profile.yaml", "source: athena\n")  # the source profile counts too
    tick_expecting_a_run()
    _write(drop / "Encounter_1.ndjson", "{}\n")  # FHIR Bulk Data export
    tick_expecting_a_run()
    _write(drop / "TimeLog 2026-11.TSV", "a\tb\n")  # a name only a profile pattern picks
    tick_expecting_a_run()
    _write(drop / "staff.csv", "staff_id,role\nCM1,care_manager\nCM2,care_manager\n", mtime=later)  # resized
    tick_expecting_a_run()
    (drop / "time_entries_2026-11.parquet").unlink()  # removed
    tick_expecting_a_run()
    assert len(set(keys)) == len(keys) == 8
    assert _tick(settings, cursor).run_requests == []


def test_sensor_run_key_is_derived_from_the_drop_state_only(settings, drop):
    """The same files give the same run_key even with a lost cursor, so Dagster's run-key dedupe
    never launches a second run for a drop it already ran."""
    first = _tick(settings, None)
    again = _tick(settings, None)
    assert again.run_requests[0].run_key == first.run_requests[0].run_key
    other_cursor = _tick(settings, "something-else")
    assert other_cursor.run_requests[0].run_key == first.run_requests[0].run_key


def test_sensor_waits_for_files_still_being_written(settings, drop, monkeypatch):
    first = _tick(settings, None)
    settings = replace(settings, sensor_settle_seconds=3600)
    _write(drop / "time_entries_2026-11.csv", "entry_id\nE2\n", mtime=time.time())  # just written
    waiting = _tick(settings, first.cursor)
    assert not waiting.run_requests
    assert "waiting for 1 file(s)" in waiting.skip_message
    assert "time_entries_2026-11.csv" in waiting.skip_message
    assert "BHI_SENSOR_SETTLE_SECONDS" in waiting.skip_message
    assert waiting.cursor in (None, first.cursor)  # the cursor does not move past a half-written drop
    # settled (here: a settle time of 0) -> picked up
    settings = replace(settings, sensor_settle_seconds=0)
    settled = _tick(settings, first.cursor)
    assert len(settled.run_requests) == 1
    assert settled.run_requests[0].run_key != first.run_requests[0].run_key


def test_sensor_default_settle_time_is_60_seconds(settings, drop):
    settings = replace(settings, sensor_settle_seconds=Deployment().sensor_settle_seconds)
    _write(drop / "encounters.csv", "encounter_id\nV1\n", mtime=time.time() - 30)
    assert "waiting for 1 file(s)" in _tick(settings, None).skip_message
    _write(drop / "encounters.csv", "encounter_id\nV1\n", mtime=time.time() - 90)
    assert len(_tick(settings, None).run_requests) == 1


def test_sensor_skips_with_a_reason_when_the_drop_is_missing_or_empty(tmp_path):
    assert "BHI_EXTRACTS_DIR is not set" in _tick(Deployment(), None).skip_message
    assert "does not exist" in _tick(Deployment(extracts_dir=str(tmp_path / "nowhere")), None).skip_message
    (tmp_path / "empty").mkdir()
    assert "no extract files" in _tick(Deployment(extracts_dir=str(tmp_path / "empty")), None).skip_message


def test_sensor_watches_every_suffix_the_readers_read():
    """The sensor must not miss a file ingest would load (kept in step with pipelines/ingest/readers.py)."""
    from pipelines.defs.sensors import EXTRACT_SUFFIXES
    from pipelines.ingest import readers

    readable = {s for name in dir(readers) if name.endswith("SUFFIXES") for s in getattr(readers, name)}
    assert readable and readable | {".ndjson"} <= set(EXTRACT_SUFFIXES)


def test_sensor_rejects_a_bad_settle_setting():
    with pytest.raises(ValueError, match="BHI_SENSOR_SETTLE_SECONDS must be a number, got 'a minute'"):
        Deployment.from_environment({"BHI_SENSOR_SETTLE_SECONDS": "a minute"})
    with pytest.raises(ValueError, match="BHI_SENSOR_SETTLE_SECONDS must be >= 0"):
        Deployment.from_environment({"BHI_SENSOR_SETTLE_SECONDS": "-5"})
    assert Deployment.from_environment({"BHI_SENSOR_SETTLE_SECONDS": " "}).sensor_settle_seconds == 60
    assert Deployment.from_environment({"BHI_LEADERSHIP_PNGS": "Off"}).leadership_pngs is False
    assert Deployment.from_environment({}).leadership_pngs is True
    with pytest.raises(ValueError, match="BHI_LEADERSHIP_PNGS must be on or off, got 'sometimes'"):
        Deployment.from_environment({"BHI_LEADERSHIP_PNGS": "sometimes"})


# --------------------------------------------------------------------------------------------------
# one writer: the run queue

def test_dagster_yaml_limits_each_warehouse_to_one_run_and_disables_telemetry(tmp_path):
    config = yaml.safe_load((REPO_ROOT / "config" / "dagster.yaml").read_text())
    assert config["telemetry"]["enabled"] is False
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    (limit,) = [lim for lim in limits if lim["key"] == WAREHOUSE_TAG]
    assert limit["limit"] == 1
    assert limit["value"] == {"applyLimitPerUniqueValue": True}

    # Dagster itself accepts it (a typo would make every `dg dev` / daemon start fail) ...
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "config" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert {"key": WAREHOUSE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in (
            queue.tag_concurrency_limits
        )
        # ... and its run queue holds back a second run on the same warehouse, not one on another.
        from dagster._utils.tags import TagConcurrencyLimitsCounter

        in_progress = SimpleNamespace(tags={WAREHOUSE_TAG: warehouse_tag("/srv/bhi/a/warehouse.duckdb")})
        counter = TagConcurrencyLimitsCounter(list(queue.tag_concurrency_limits), [in_progress])
        same = SimpleNamespace(tags={"bhi/as_of": "2026-11-01", WAREHOUSE_TAG: warehouse_tag("/srv/bhi/a/warehouse.duckdb")})
        other = SimpleNamespace(tags={"bhi/as_of": "2026-11-01", WAREHOUSE_TAG: warehouse_tag("/srv/bhi/b/warehouse.duckdb")})
        assert counter.is_blocked(same)
        assert not counter.is_blocked(other)


def test_make_dev_starts_dagster_with_dagster_yaml_in_its_home(tmp_path):
    """`make dev` starts `dg dev` with DAGSTER_HOME holding the repository's dagster.yaml (one run per
    warehouse, telemetry off) and the BHI_* paths of the bundled sample. Run on a copy of the
    Makefile whose setup is done, with a stand-in `dg` that records what it was started with."""
    (tmp_path / "config").mkdir()
    for name in ("Makefile", "config/dagster.yaml", "pyproject.toml", "uv.lock"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
        os.utime(tmp_path / name, (1_000_000_000, 1_000_000_000))  # older than .venv/.installed
    (tmp_path / ".uv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / ".installed").touch()
    scripts = {
        ".uv/bin/uv": "#!/bin/sh\nexit 1\n",  # setup must not run again
        ".venv/bin/dg": '#!/bin/sh\necho "$*" > dg-args.txt\nenv > dg-env.txt\n'
                        'cp "$DAGSTER_HOME/dagster.yaml" dg-saw-dagster.yaml\n',
    }
    for path, text in scripts.items():
        (tmp_path / path).write_text(text)
        (tmp_path / path).chmod(0o755)
    proc = subprocess.run(["make", "dev"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "dg-args.txt").read_text().split() == ["dev"]
    env = dict(line.split("=", 1) for line in (tmp_path / "dg-env.txt").read_text().splitlines() if "=" in line)
    root = tmp_path.resolve()
    assert Path(env["DAGSTER_HOME"]) == root / ".dagster_home"
    assert (tmp_path / "dg-saw-dagster.yaml").read_bytes() == (REPO_ROOT / "config" / "dagster.yaml").read_bytes()
    assert Path(env["BHI_EXTRACTS_DIR"]) == root / "data" / "sample"
    assert Path(env["BHI_WAREHOUSE"]) == root / "out" / "sample" / "warehouse.duckdb"
    assert Path(env["BHI_REFERENCE_DIR"]) == root / "data" / "reference"
    # schedules and sensor on, telemetry off; no dagster.yaml where dg starts (it would warn that the
    # file "will not be used", which is true of that copy only)
    assert env["BHI_AUTOMATION"] == "on" and env["DAGSTER_DISABLE_TELEMETRY"] == "yes"
    assert Path(env["VIRTUAL_ENV"]) == root / ".venv"  # else dg warns the active venv does not match the project's
    assert not (tmp_path / "dagster.yaml").exists() and not (REPO_ROOT / "dagster.yaml").exists()
    assert yaml.safe_load((tmp_path / "dg-saw-dagster.yaml").read_text())["nux"] == {"enabled": False}


# --------------------------------------------------------------------------------------------------
# one writer: a clear error when the file is locked

HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    conn = duckdb.connect(sys.argv[1])
    conn.execute("create table holder_table as select 42 as answer")
    print("ready", flush=True)
    if sys.argv[2] == "stdin":
        sys.stdin.read()          # hold the write lock until the test closes stdin
    else:
        time.sleep(float(sys.argv[2]))
    conn.close()
    """
)


@pytest.fixture
def hold_lock():
    """hold_lock(path, until="stdin" | seconds) -> a process holding DuckDB's write lock on path."""
    procs: list[subprocess.Popen] = []

    def _hold(path: Path, until: str = "stdin") -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), until], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        return proc

    yield _hold
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _release(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0


def test_duckdb_lock_error_text_is_what_the_resource_matches(tmp_path, hold_lock):
    """Guards the string match against a DuckDB upgrade changing its message."""
    path = tmp_path / "w.duckdb"
    holder = hold_lock(path)
    with pytest.raises(duckdb.IOException) as info:
        duckdb.connect(str(path))
    message = str(info.value)
    assert LOCK_ERROR_MARKER in message
    assert f'"{path}"' in message
    assert f"(PID {holder.pid})" in message
    _release(holder)


def test_bhi_run_on_a_locked_warehouse_fails_clearly_and_changes_nothing(tmp_path, hold_lock):
    warehouse = tmp_path / "locked.duckdb"
    holder = hold_lock(warehouse)
    env = {k: v for k, v in os.environ.items() if k not in ("BHI_LOCK_WAIT_SECONDS", "DAGSTER_HOME")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--extracts", str(SAMPLE_DIR), "--out", str(tmp_path / "out"),
         "--warehouse", str(warehouse), "--as-of", "2026-10-20"],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO_ROOT,
    )
    assert proc.returncode == 1
    assert time.monotonic() - started < 120  # fails, does not hang
    failure = [line for line in proc.stderr.splitlines() if line.startswith("bhi run failed:")]
    assert len(failure) == 1, proc.stderr[-3000:]
    line = failure[0]
    assert f"warehouse {warehouse} is locked" in line
    assert "another bhi run or Dagster run is writing it" in line
    assert f"(process {holder.pid}:" in line
    assert "try again when that run finishes" in line
    assert "BHI_LOCK_WAIT_SECONDS" in line
    assert not (tmp_path / "out" / "claims.csv").exists()
    _release(holder)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.sql("select answer from holder_table").fetchall() == [(42,)]
        tables = {r[0] for r in conn.sql("select table_name from information_schema.tables").fetchall()}
    assert tables == {"holder_table"}  # the failed run wrote nothing


def test_lock_wait_retries_until_the_other_writer_finishes(tmp_path, hold_lock, monkeypatch):
    path = tmp_path / "w.duckdb"
    monkeypatch.setenv("BHI_LOCK_WAIT_SECONDS", "60")
    started = time.monotonic()
    hold_lock(path, until="2")
    with Warehouse(database=str(path)).get_connection() as conn:
        waited = time.monotonic() - started
        assert conn.sql("select answer from holder_table").fetchall() == [(42,)]
        conn.execute("create table after_wait as select 1 as x")
    assert 1.0 <= waited < 60


def test_lock_wait_gives_up_after_the_configured_time(tmp_path, hold_lock, monkeypatch):
    path = tmp_path / "w.duckdb"
    holder = hold_lock(path)
    monkeypatch.setenv("BHI_LOCK_WAIT_SECONDS", "1.5")
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError, match=r"is locked after waiting 1\.5 s \(BHI_LOCK_WAIT_SECONDS\)"):
        with Warehouse(database=str(path)).get_connection():
            pass
    assert 1.5 <= time.monotonic() - started < 30
    monkeypatch.setenv("BHI_LOCK_WAIT_SECONDS", "0")
    with pytest.raises(WarehouseLockedError, match=rf"\(process {holder.pid}: "):
        with Warehouse(database=str(path)).get_connection():
            pass
    _release(holder)


def test_other_io_errors_are_not_reported_as_a_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("BHI_LOCK_WAIT_SECONDS", "30")
    started = time.monotonic()
    with pytest.raises(duckdb.IOException) as info:
        with Warehouse(database=str(tmp_path / "no" / "such" / "dir" / "w.duckdb")).get_connection():
            pass
    assert LOCK_ERROR_MARKER not in str(info.value)
    assert time.monotonic() - started < 10  # no retrying on errors that are not a lock
