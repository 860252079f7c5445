"""Runs that cannot corrupt, mix or forget: a real `bhi run` killed (SIGKILL) at a step boundary and
mid-step, then rerun, leaves every output and table as an uninterrupted run would (claims_changes.csv
included); two runs on one warehouse never interleave; a full disk fails in one or two lines naming
the path and leaves the previous outputs as they were; a damaged warehouse is restored from a kept
copy; outputs are owner-only. Fault points: pipelines/safety.py `fault_point` (BHI_FAULT_POINT)."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from conftest import REPO_ROOT, Drop, write_csv
from pipelines.cli import main
from pipelines.outputs.publication import CURRENT, PUBLICATIONS
from pipelines.safety import FAULT_MARKER_ENV, FAULT_POINT_ENV

AS_OF = "2026-03-10"  # January and February closed, March open
RUN_NAMES = ("run_id", "finished_at", "mtime_ns")  # manifest columns that name the run, not the content


@pytest.fixture(autouse=True)
def _no_dagster_home(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("BHI_LOCK_WAIT_SECONDS", raising=False)
    monkeypatch.delenv("BHI_OUTPUT_MODE", raising=False)


def _first_night(drop: Drop) -> Path:
    """P1 (NC Medicaid): January 110 min = 99492 + 99494; February 30 min = G2214."""
    drop.enroll("P1", payer="nc_medicaid")
    drop.month("P1", "2026-01", 110)
    drop.month("P1", "2026-02", 30)
    return drop.write()


def _deliver_correction(folder: Path) -> None:
    """A late entry in closed February: 70 minutes, so G2214 becomes 99493 (claims_changes.csv)."""
    write_csv(folder / "time_entries_late.csv", [{
        "entry_id": "LATE1", "patient_id": "P1", "staff_id": "CM1", "service_date": "2026-02-20", "minutes": "40",
        "activity": "follow_up", "program": "", "start_time": "", "end_time": "", "documented_at": "", "encounter_id": "",
    }])


def _run(folder: Path, out: Path, as_of: str = AS_OF, *extra: str) -> int:
    return main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", as_of, "--allow-stale", *extra])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "BHI_LOCK_WAIT_SECONDS", FAULT_POINT_ENV)}
    return {**env, **extra}


def _start(folder: Path, out: Path, as_of: str = AS_OF, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", "--extracts", str(folder), "--out", str(out), "--as-of", as_of,
         "--allow-stale"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=_env(**env),
    )


def _wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    started = time.monotonic()
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before its fault point: {proc.stderr.read()[-2000:]}")
        assert time.monotonic() - started < timeout, "fault point not reached"
        time.sleep(0.1)


def _outputs(out: Path) -> dict[str, Path]:
    """Every published output file by its path under out (through the top-level links)."""
    files = {}
    for entry in sorted(out.iterdir()):
        if entry.name.startswith(("warehouse", ".")):
            continue
        paths = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
        files.update({str(p.relative_to(out)): p for p in paths})
    return files


def _manifest_content(path: Path) -> list[tuple]:
    with duckdb.connect() as conn:
        rel = conn.sql(f"select * exclude ({', '.join(RUN_NAMES)}) from read_csv('{path}', all_varchar = true)")
        return sorted(rel.fetchall())


def _assert_same_outputs(out: Path, ref: Path) -> None:
    mine, theirs = _outputs(out), _outputs(ref)
    assert sorted(mine) == sorted(theirs)
    for name, path in mine.items():
        if name == "manifest.csv":
            assert _manifest_content(path) == _manifest_content(theirs[name])
        elif not name.startswith("dashboards/"):  # pages embed random element ids: compared by name
            assert filecmp.cmp(path, theirs[name], shallow=False), name


def _tables(warehouse: Path) -> dict[str, list[str]]:
    """table -> its columns that do not depend on when or by which run it was written (run_scope and
    scope_* say which patients the last build redid, not what the warehouse holds: a rerun after a
    kill past the models redoes none)."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.sql(
            "select c.table_name, c.column_name, c.data_type from duckdb_columns() as c"
            " join duckdb_tables() as t using (database_name, schema_name, table_name)"
            " where c.schema_name = 'main' and c.database_name = current_database()"
            " order by c.table_name, c.column_index"
        ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column, ctype in rows:
        if table != "run_scope" and not table.startswith("scope_") and not ctype.startswith("TIMESTAMP") and column not in ("run_id", "seconds"):
            tables.setdefault(table, []).append(column)
    return tables


def _assert_same_tables(warehouse: Path, ref: Path) -> None:
    tables = _tables(ref)
    assert _tables(warehouse) == tables
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        conn.execute(f"attach '{ref}' as ref (read_only)")
        for table, cols in tables.items():
            select = ", ".join(f'"{c}"' for c in cols)
            diff = conn.sql(
                f"select count(*) from ((select {select} from main.{table} except all select {select} from ref.{table})"
                f" union all (select {select} from ref.{table} except all select {select} from main.{table}))"
            ).fetchall()[0][0]
            assert diff == 0, table


def _changes(out: Path) -> list[str]:
    return sorted(line.split(",")[0] + ":" + line.split(",")[5] for line in (out / "claims_changes.csv").read_text().splitlines()[1:])


@pytest.fixture(scope="module")
def first_night(tmp_path_factory):
    """One published run as of AS_OF, then the correction delivered into the drop; and the reference:
    the second run, uninterrupted."""
    root = tmp_path_factory.mktemp("faults")
    folder = _first_night(Drop(root / "drop"))
    base = root / "base"
    with pytest.MonkeyPatch.context() as mp:
        for name in ("DAGSTER_HOME", "BHI_LOCK_WAIT_SECONDS", "BHI_OUTPUT_MODE"):
            mp.delenv(name, raising=False)
        assert _run(folder, base) == 0
        _deliver_correction(folder)
        ref = root / "ref"
        shutil.copytree(base, ref, symlinks=True)
        assert _run(folder, ref) == 0
    assert _changes(ref) == ["added:99493", "removed:G2214"]
    return folder, base, ref


@pytest.mark.parametrize(
    "point",
    [
        "exports:before",  # a step boundary: fct_claims and the checks are done, nothing published
        "exports:after-first-file",  # mid-step: some exports written into the run's folder
        "publication:after-swap",  # mid-step: the outputs are published, the claims baseline is not
    ],
)
def test_a_run_killed_at_any_point_then_rerun_equals_an_uninterrupted_run(first_night, tmp_path, point):
    folder, base, ref = first_night
    out = tmp_path / "out"
    shutil.copytree(base, out, symlinks=True)
    marker = tmp_path / "paused"
    proc = _start(folder, out, **{FAULT_POINT_ENV: point, FAULT_MARKER_ENV: str(marker)})
    _wait_for(marker, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    # killed: the out folder holds the complete outputs of one run, the first or (after the swap) the second
    _assert_same_outputs(out, ref if point == "publication:after-swap" else base)

    assert _run(folder, out) == 0
    _assert_same_outputs(out, ref)
    _assert_same_tables(out / "warehouse.duckdb", ref / "warehouse.duckdb")
    assert _changes(out) == ["added:99493", "removed:G2214"]  # the correction is never forgotten
    # one run folder, no leftovers of the killed run
    assert sorted(p.name for p in (out / PUBLICATIONS).iterdir()) == sorted([CURRENT, (out / PUBLICATIONS / CURRENT).readlink().name])
    assert not [p for p in out.rglob("*.tmp")]


# --------------------------------------------------------------------------------------------------
# two runs on one warehouse


def test_a_second_run_waits_or_refuses_and_the_first_keeps_its_as_of(tmp_path, capsys, monkeypatch):
    folder = _first_night(Drop(tmp_path / "drop"))
    out = tmp_path / "out"
    marker = tmp_path / "paused"
    first = _start(folder, out, AS_OF, **{FAULT_POINT_ENV: "exports:before", FAULT_MARKER_ENV: str(marker)})
    _wait_for(marker, first)  # the first run has written its as-of date and built its claims

    started = time.monotonic()
    monkeypatch.setenv("BHI_LOCK_WAIT_SECONDS", "0")
    capsys.readouterr()
    assert _run(folder, out, "2026-02-10") == 1  # (in this process: the first run is another one)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"warehouse {out / 'warehouse.duckdb'} is locked" in err and f"process {first.pid}" in err
    assert "try again when that run finishes" in err and "BHI_LOCK_WAIT_SECONDS" in err
    assert time.monotonic() - started < 60

    waiting = _start(folder, out, "2026-02-10", BHI_LOCK_WAIT_SECONDS="300")
    time.sleep(3)
    assert waiting.poll() is None  # waits for the first run
    marker.unlink()  # the first run goes on
    stdout, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert f"as of {AS_OF}" in stdout
    assert re.search(r"claim lines \(closed\)\s+3 ", stdout)  # January and February
    stdout, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert "as of 2026-02-10" in stdout
    assert re.search(r"claim lines \(closed\)\s+2 ", stdout)  # January only
    assert "2026-02-10" in (out / "manifest.csv").read_text()


HOLD_RUN_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipelines.safety import acquire_run_lock
    acquire_run_lock(Path(sys.argv[1]), "test holder")
    print("ready", flush=True)
    sys.stdin.read()
    """
)


def test_a_scheduled_or_sensor_run_refuses_a_warehouse_another_run_holds(tmp_path):
    """Daemon-launched runs (schedule, sensor, UI) execute the same job: its resource takes the lock."""
    from pipelines.definitions import build_definitions
    from pipelines.defs.deployment import Deployment
    from pipelines.defs.schedules import as_of_config

    warehouse = tmp_path / "out" / "warehouse.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_RUN_LOCK, str(warehouse)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready"
        defs = build_definitions(Deployment(
            extracts_dir=str(_first_night(Drop(tmp_path / "drop"))), out_dir=str(tmp_path / "out"),
            warehouse=str(warehouse), reference_dir=str(REPO_ROOT / "data" / "reference"),
        ))
        result = defs.resolve_job_def("nightly").execute_in_process(run_config=as_of_config(AS_OF), raise_on_error=False)
        assert not result.success
        from pipelines.run import _root_cause

        assert f"warehouse {warehouse} is locked" in _root_cause(result)
        assert f"process {holder.pid}: test holder" in _root_cause(result)
        assert not warehouse.exists()  # nothing written
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


# --------------------------------------------------------------------------------------------------
# a full disk, a damaged warehouse, modes


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_fails_in_two_lines_naming_the_path_and_keeps_the_outputs(tmp_path, small_disk, capsys):
    folder = _first_night(Drop(tmp_path / "drop"))
    out = small_disk / "out"
    warehouse = tmp_path / "warehouse.duckdb"
    assert _run(folder, out, AS_OF, "--warehouse", str(warehouse)) == 0
    before = {name: path.read_bytes() for name, path in _outputs(out).items()}
    _deliver_correction(folder)
    filler = _fill(small_disk)
    capsys.readouterr()

    assert _run(folder, out, AS_OF, "--warehouse", str(warehouse)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert 1 <= len(err) <= 2, err
    assert err[0].startswith("bhi run failed: disk full: no space left on the device holding ")
    assert str(out) in err[0] and "Free space there" in err[0]
    assert {name: path.read_bytes() for name, path in _outputs(out).items()} == before  # all there, unchanged

    filler.unlink()
    assert _run(folder, out, AS_OF, "--warehouse", str(warehouse)) == 0
    assert _changes(out) == ["added:99493", "removed:G2214"]


def _modes(out: Path) -> set[str]:
    current = (out / PUBLICATIONS / CURRENT).resolve()
    paths = [out, out / PUBLICATIONS, current, *current.rglob("*")]
    return {oct(p.stat().st_mode & 0o777) for p in paths if p.is_dir()} | {
        "file " + oct(p.stat().st_mode & 0o777) for p in paths if p.is_file()
    }


def test_a_damaged_warehouse_says_which_copy_to_restore_and_bhi_restore_brings_it_back(tmp_path, capsys, monkeypatch):
    folder = _first_night(Drop(tmp_path / "drop"))
    out = tmp_path / "out"
    warehouse = out / "warehouse.duckdb"
    assert _run(folder, out) == 0
    # owner only: the warehouse, its lock, the exports and the pages
    assert _modes(out) == {"0o700", "file 0o600"}
    assert oct(warehouse.stat().st_mode & 0o777) == "0o600"
    assert _run(folder, out, "2026-03-11") == 0  # keeps a copy of the published first run
    copies = sorted((out / "warehouse.duckdb.copies").iterdir())
    assert [p.name.endswith("-published.duckdb") for p in copies] == [True]
    assert oct(copies[0].stat().st_mode & 0o777) == "0o600"
    assert oct(copies[0].parent.stat().st_mode & 0o777) == "0o700"

    warehouse.write_bytes(os.urandom(50_000))  # damaged
    capsys.readouterr()
    started = time.monotonic()
    assert _run(folder, out, "2026-03-12") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert time.monotonic() - started < 60
    assert len(err) == 2, err
    assert err[0].startswith(f"bhi run failed: warehouse {warehouse} cannot be opened, it may be damaged")
    assert f"bhi restore --warehouse {warehouse}" in err[1] and str(copies[0]) in err[1]
    assert _changes(out) == []  # the second run's outputs stand

    assert main(["restore", "--warehouse", str(warehouse)]) == 0
    assert f"restored {warehouse} from {copies[0]}" in capsys.readouterr().out
    assert len(list((out / "warehouse.duckdb.copies").glob("warehouse-replaced-*.duckdb"))) == 1  # the damaged file
    monkeypatch.setenv("BHI_OUTPUT_MODE", "640")  # widened for a group that reads the outputs
    _deliver_correction(folder)
    assert _run(folder, out, "2026-03-12") == 0
    assert _changes(out) == ["added:99493", "removed:G2214"]
    assert _modes(out) == {"0o750", "file 0o640"}


@pytest.mark.parametrize("case", ["missing", "empty", "a file", "nothing readable"])
def test_a_wrong_extracts_folder_fails_in_one_line_before_dagster_starts(tmp_path, case):
    folder = tmp_path / "drop"
    if case == "empty":
        folder.mkdir()
    elif case == "a file":
        folder.write_text("x")
    elif case == "nothing readable":
        folder.mkdir()
        (folder / "notes.docx").write_text("x")
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--extracts", str(folder), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO_ROOT, env=_env(), timeout=60,
    )
    assert time.monotonic() - started < 2
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bhi run failed: ") and str(folder) in lines[0], lines
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------
# ledgers that outlive the warehouse: a restore never forgets a submission, a delivery or a correction


def _claims_drop(folder: Path) -> Path:
    from test_x12_837 import demographics, two_patients

    drop = Drop(folder)
    two_patients(drop)
    demographics(drop, ["P1", "P2"])
    return drop.write()


def test_restore_then_close_does_not_send_the_claims_again(tmp_path, capsys):
    """`bhi close` sends the claims (the close keeps a copy of the warehouse from before it), `bhi
    restore` brings that copy back: the next close re-reads the submission ledger kept beside the
    warehouse and sends nothing, and the published 837P (a hard link to it here) keeps its bytes."""
    folder = _claims_drop(tmp_path / "drop")
    out = tmp_path / "out"
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-03-15", "--allow-stale"]) == 0
    assert main(["close", "--out", str(out), "--month", "2026-01", "--through", "2026-02"]) == 0
    sent = sorted((out / "month_end" / "837p").glob("*.x12"))
    assert len(sent) == 2
    links = {}
    for path in sent:
        links[path.name] = (tmp_path / f"link-{path.name}", path.read_bytes())
        os.link(path.resolve(), links[path.name][0])

    capsys.readouterr()
    assert main(["restore", "--out", str(out)]) == 0
    said = capsys.readouterr().out  # (checked last: the message is the smaller fault)
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:  # the copy predates the close
        assert conn.sql("select count(*) from x12_claim_submissions").fetchall() == [(0,)]

    assert main(["close", "--out", str(out), "--month", "2026-01", "--through", "2026-02"]) == 0
    assert "837P: nothing new, changed or removed since the last close: no file written" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "month_end" / "837p").glob("*.x12")) == sorted(links)
    for link, content in links.values():
        assert link.read_bytes() == content
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.sql("select frequency_code, count(*) from x12_claim_submissions group by 1").fetchall() == [("1", 4)]
        assert conn.sql("select count(*) from month_end_close").fetchall() == [(2,)]
    # the restore no longer promises what it cannot do
    assert "loads again the files delivered since the copy if the drop still holds them" in said
    assert "the 837P submissions and closes made since are re-read" in said


def test_restore_then_run_with_a_tonight_only_drop_names_the_files_to_redeliver(tmp_path, capsys):
    """The drop holds only tonight's files. After a restore to a copy from before last night's
    correction, the run stops (exit 1) and names the file to re-deliver in one line; re-delivered,
    it loads and the correction is back."""
    first = _first_night(Drop(tmp_path / "night1"))
    out = tmp_path / "out"
    assert _run(first, out) == 0
    night2 = tmp_path / "night2"
    night2.mkdir()
    _deliver_correction(night2)  # time_entries_late.csv only
    assert _run(night2, out) == 0  # keeps a copy of the first night's warehouse
    assert _changes(out) == ["added:99493", "removed:G2214"]

    night3 = tmp_path / "night3"
    night3.mkdir()
    write_csv(night3 / "time_entries_night3.csv", [{
        "entry_id": "N3", "patient_id": "P1", "staff_id": "CM1", "service_date": "2026-03-09", "minutes": "5",
        "activity": "follow_up"}])
    assert main(["restore", "--out", str(out)]) == 0
    capsys.readouterr()
    assert _run(night3, out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("bhi run failed: 1 file(s) loaded before are neither in the warehouse")
    assert "re-deliver them into the drop" in err[0] and err[0].endswith("Files: time_entries_late.csv")
    assert "P1" not in err[0]

    shutil.copy(night2 / "time_entries_late.csv", night3 / "time_entries_late.csv")  # re-delivered
    assert _run(night3, out) == 0
    with duckdb.connect(str(out / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.sql("select code from fct_claims where service_month = '2026-02-01'").fetchall() == [("99493",)]
