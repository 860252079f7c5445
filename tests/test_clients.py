"""A billing company's clients (pipelines/clients/): clients.yaml validation, the clients' Dagster
definitions (partitions, schedules, sensors, instance configs), and one shared scenario: three
sample clients of different sizes, payers and layouts run in parallel by `bhi run-all` through the
real partitioned `clients_nightly` job, one of them with a rejected file and one killed mid-run
(the fault point of pipelines/safety.py, scoped to that client): the others publish, the portfolio
marks the two, and no client's outputs hold another client's patients."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from conftest import REPO_ROOT
from pipelines.clients.config import ClientsConfigError, load_clients, parse_clients
from pipelines.clients.definitions import CLIENT_TAG, NIGHTLY_JOB, build_clients_definitions
from pipelines.clients.portfolio import read_portfolio
from pipelines.clients.runner import FAULT_CLIENT_ENV
from pipelines.clients.sample import write_sample_clients
from pipelines.defs.resources import WAREHOUSE_TAG
from pipelines.safety import FAULT_MARKER_ENV, FAULT_POINT_ENV
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR

AS_OF = "2026-10-20"
# the own payer (reference overrides), the registry layout (profile), the largest
REJECTING, CRASHING, CLEAN = "lakeshore", "mesa", "riverside"


# ---- clients.yaml ------------------------------------------------------------------------------------


def _client(**kw) -> dict:
    return {"id": "a", "name": "A", "extracts": "drops/a", "output": "out/a", **kw}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"clients": [_client(id="North Side")]}, r"clients\[0\] \(id North Side\)\.id: String should match pattern"),
        ({"clients": [_client(timezone="Mars/Olympus")]}, r"clients\[0\] \(id a\)\.timezone: unknown time zone 'Mars/Olympus'"),
        ({"clients": [_client(nightly_time="25:00")]}, r"nightly_time: not a time HH:MM"),
        ({"clients": [_client(close_day=31)]}, r"close_day: Input should be less than or equal to 28"),
        ({"clients": [_client(output="s3://bucket/a")]}, r"output is object storage: set work"),
        ({"clients": [_client(extracts="s3://bucket/drop")]}, r"extracts must be a folder or file:// URI"),
        ({"clients": [_client(), _client(name="B")]}, r"client id 'a' is used twice"),
        ({"clients": [_client(colour="red")]}, r"colour: Extra inputs are not permitted"),
        ({"clients": []}, r"clients: List should have at least 1 item"),
        ({"defaults": {"timezone": "Nowhere/X"}, "clients": [_client()]}, r"timezone: unknown time zone"),
        (["a"], r"expected a mapping with a `clients:` list"),
    ],
)
def test_a_bad_clients_file_fails_in_one_line_naming_the_client_and_setting(data, message):
    with pytest.raises(ClientsConfigError, match=message) as exc:
        parse_clients(data, Path("/srv"))
    assert "\n" not in str(exc.value)


def test_run_all_and_portfolio_refuse_a_bad_clients_file_in_one_line_before_any_run(tmp_path, capsys):
    from pipelines.cli import main

    (tmp_path / "clients.yaml").write_text("clients:\n  - {id: a, name: A, extracts: d, output: o, close_day: 0}\n")
    assert main(["run-all", "--clients", str(tmp_path / "clients.yaml")]) == 1
    assert main(["portfolio", "--clients", str(tmp_path / "missing.yaml")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"bhi run-all failed: clients file {tmp_path / 'clients.yaml'}: clients[0] (id a).close_day: Input should be greater than or equal to 1",
        f"bhi portfolio failed: clients file {tmp_path / 'missing.yaml'} does not exist",
    ]
    assert not (tmp_path / "o").exists()


def test_clients_file_defaults_paths_and_uris(tmp_path):
    (tmp_path / "clients.yaml").write_text(
        "defaults:\n  timezone: America/Chicago\n  nightly_time: 01:30\n"  # unquoted 01:30 (YAML reads 90)
        "clients:\n"
        "  - {id: a, name: A, extracts: drops/a, output: out/a}\n"
        "  - {id: b, name: B, extracts: file:///srv/drop/b, output: s3://bucket/b, work: state/b, timezone: UTC}\n"
    )
    clients = load_clients(tmp_path / "clients.yaml")
    a, b = clients.clients
    assert (a.timezone, a.nightly_time, b.timezone) == ("America/Chicago", "01:30", "UTC")
    assert clients.extracts_dir(a) == tmp_path / "drops" / "a"
    assert clients.extracts_dir(b) == Path("/srv/drop/b")
    assert clients.output_uri(a) == str(tmp_path / "out" / "a")
    assert clients.output_uri(b) == "s3://bucket/b"
    assert clients.warehouse(b) == tmp_path / "state" / "b" / "warehouse.duckdb"
    with pytest.raises(ClientsConfigError, match="does not exist"):
        load_clients(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("clients: [\n")
    with pytest.raises(ClientsConfigError, match=r"is not valid YAML at line"):
        load_clients(tmp_path / "bad.yaml")


# ---- the Dagster definitions and instance configs --------------------------------------------------------


def test_definitions_partition_by_client_and_client_month_with_a_schedule_and_sensor_per_client(tmp_path):
    (tmp_path / "clients.yaml").write_text(
        "clients:\n"
        "  - {id: north-side, name: N, extracts: d/n, output: o/n, timezone: America/Chicago, nightly_time: '01:30', close_day: 2}\n"
        "  - {id: mesa, name: M, extracts: d/m, output: o/m, timezone: America/Denver, first_month: '2025-06'}\n"
    )
    clients = load_clients(tmp_path / "clients.yaml")
    defs = build_clients_definitions(clients)
    job = defs.resolve_job_def(NIGHTLY_JOB)
    assert job.partitions_def.get_partition_keys() == ["north-side", "mesa"]
    # every run of a partition carries the tags the run queue limits (deploy/dagster.yaml)
    tags = job.partitioned_config.get_tags_for_partition_key("mesa")
    assert tags[CLIENT_TAG] == "mesa" and tags[WAREHOUSE_TAG].startswith("warehouse.duckdb-")
    close = defs.resolve_assets_def("client_month_end").partitions_def
    assert isinstance(close, dg.MultiPartitionsDefinition)
    assert {d.name for d in close.partitions_defs} == {"client", "month"}
    assert "north-side|2025-06" in close.get_partition_keys()

    nightly = defs.resolve_schedule_def("nightly_north_side")
    assert (nightly.cron_schedule, nightly.execution_timezone) == ("30 1 * * *", "America/Chicago")
    repo = defs.get_repository_def()
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 3, 1, 30), repository_def=repo)
    request = nightly.evaluate_tick(ctx).run_requests[0]
    assert request.partition_key == "north-side"
    assert request.run_config["ops"]["client_nightly"]["config"]["as_of"] == "2026-11-03"
    close_schedule = defs.resolve_schedule_def("close_north_side")
    assert close_schedule.cron_schedule == "30 2 2 * *"
    request = close_schedule.evaluate_tick(
        dg.build_schedule_context(scheduled_execution_time=dt.datetime(2026, 11, 2, 2, 30), repository_def=repo)).run_requests[0]
    assert request.partition_key == "north-side|2026-10"

    # the sensor on the client's folder requests that client's partition
    drop = tmp_path / "d" / "m"
    drop.mkdir(parents=True)
    (drop / "time_entries.csv").write_text("entry_id\n")
    os.utime(drop / "time_entries.csv", (time.time() - 3600, time.time() - 3600))
    sensor = defs.resolve_sensor_def("drop_mesa")
    result = sensor.evaluate_tick(dg.build_sensor_context(cursor=None, repository_def=repo))
    (run,) = result.run_requests
    assert run.partition_key == "mesa" and run.tags[CLIENT_TAG] == "mesa"
    assert defs.resolve_sensor_def("drop_north_side").evaluate_tick(dg.build_sensor_context(repository_def=repo)).skip_message


def test_main_code_location_takes_the_clients_from_bhi_clients(tmp_path, monkeypatch):
    (tmp_path / "clients.yaml").write_text("clients:\n  - {id: a, name: A, extracts: d, output: o}\n")
    from pipelines.definitions import defs

    monkeypatch.delenv("BHI_CLIENTS", raising=False)
    plain = defs()
    assert not any(j.name == NIGHTLY_JOB for j in plain.resolve_all_job_defs())
    monkeypatch.setenv("BHI_CLIENTS", str(tmp_path / "clients.yaml"))
    merged = defs()
    names = {j.name for j in merged.resolve_all_job_defs()}
    assert {"nightly", "month_end_close", NIGHTLY_JOB, "clients_month_end"} <= names
    merged.resolve_schedule_def("nightly_a")


def test_deploy_instance_configs_load(tmp_path):
    """deploy/dagster.yaml is a working instance (queued run coordinator, N runs at once, one per
    client and warehouse); the k8s and Celery ones pass Dagster's instance-config schema (their
    launcher packages are installed in the image, not here)."""
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.run_coordinator import QueuedRunCoordinator

    deploy = REPO_ROOT / "deploy"
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(deploy / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        coordinator = instance.run_coordinator
        assert isinstance(coordinator, QueuedRunCoordinator)
        queue = instance.get_concurrency_config().run_queue_config
        limits = {lim["key"]: lim for lim in queue.tag_concurrency_limits}
        assert limits[CLIENT_TAG]["limit"] == 1 and limits[WAREHOUSE_TAG]["limit"] == 1
        assert limits[CLIENT_TAG]["value"] == {"applyLimitPerUniqueValue": True}
        assert queue.max_concurrent_runs == 2
    for name in ("dagster-k8s.yaml", "dagster-celery.yaml"):
        config, _ = dagster_instance_config(str(deploy), name)
        assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    k8s, _ = dagster_instance_config(str(deploy), "dagster-k8s.yaml")
    assert k8s["run_launcher"]["class"] == "K8sRunLauncher"


def test_dockerfile_lint():
    """No Docker engine here: the Dockerfile is checked for what would break a build or a run."""
    text = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    instructions = [line.split()[0] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
                    and not line.startswith((" ", "\t"))]
    assert instructions[0] in ("FROM", "ARG") and all(i.isupper() for i in instructions)
    assert re.search(r"^FROM python:3\.11[\w.-]* AS", text, re.M)  # a pinned base, the project's Python
    assert re.search(r"^USER (?!root)\w+", text, re.M)  # never run as root
    for sources in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+) \S+$", text, re.M):
        for path in sources.split():
            assert (REPO_ROOT / path).exists(), f"COPY {path}: not in the repository"
    assert "pipelines.clients.definitions" in text
    assert "uv sync --frozen" in text  # the locked versions


# ---- the scenario: three clients in parallel, one rejected file, one crash ------------------------------


def _wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 1200) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run-all ended before the fault point: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the crashing client never reached its fault point")
        time.sleep(0.2)
    time.sleep(0.2)  # the pid is written with the marker


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("clients")
    config = write_sample_clients(root, 3, patients=30, months=3)
    # a file of the rejecting client that cannot be read: rejected, its other files load
    (root / "drops" / REJECTING / "time_entries_broken.csv").write_text("entry_id,notes\nX1,hello\n")
    marker = root / "fault.marker"
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if k not in ("BHI_LOCK_WAIT_SECONDS",)}
    env.update({FAULT_POINT_ENV: "exports:before", FAULT_MARKER_ENV: str(marker), FAULT_CLIENT_ENV: CRASHING,
                "DAGSTER_HOME": str(home)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run-all", "--clients", str(config), "--parallel", "3", "--as-of", AS_OF],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _wait_for(marker, proc)
    os.kill(int(marker.read_text().strip()), signal.SIGKILL)  # the crashing client's run process, mid-run
    stdout, stderr = proc.communicate(timeout=1200)
    return {"root": root, "config": config, "code": proc.returncode, "stdout": stdout, "stderr": stderr, "home": home}


def _patient_ids(path: Path) -> set[str]:
    source = f"read_csv('{path}', all_varchar = true)"
    if "patient_id" not in duckdb.sql(f"select * from {source}").columns:
        return set()
    return {r[0] for r in duckdb.sql(f"select distinct patient_id from {source} where patient_id is not null").fetchall()}


def test_the_others_publish_and_the_run_all_summary_says_what_happened_to_each(scenario):
    out = scenario["stdout"]
    assert scenario["code"] == 1, scenario["stderr"]
    assert re.search(rf"{CLEAN}\s+published\s+as of {AS_OF}: [\d,]+ claim lines", out)
    assert re.search(rf"{REJECTING}\s+published\s+as of {AS_OF}", out)
    assert re.search(r"ATTENTION: 1 file\(s\) rejected", out)
    assert re.search(rf"{CRASHING}\s+failed\s+nothing published", out)
    assert "killed by signal 9" in out
    assert f"1 client run(s) failed: {CRASHING} (the others published)" in scenario["stderr"]
    root = scenario["root"] / "out"
    for cid in (CLEAN, REJECTING):
        assert (root / cid / "claims.csv").is_file() and (root / cid / "dashboards" / "index.html").is_file()
        assert (root / cid / "marts" / "client_summary.parquet").is_file()
    assert not (root / CRASHING / "claims.csv").exists() and not (root / CRASHING / "marts").exists()


def test_each_client_is_a_real_dagster_run_of_its_partition_and_they_ran_side_by_side(scenario):
    with dg.DagsterInstance.from_config(str(scenario["home"])) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name=NIGHTLY_JOB))
        by_client = {r.tags["dagster/partition"]: r for r in runs}
        assert set(by_client) == {CLEAN, REJECTING, CRASHING}
        assert {c: r.status for c, r in by_client.items()} == {
            CLEAN: dg.DagsterRunStatus.SUCCESS, REJECTING: dg.DagsterRunStatus.SUCCESS, CRASHING: dg.DagsterRunStatus.FAILURE,
        }
        assert all(r.tags[CLIENT_TAG] == c for c, r in by_client.items())
        records = {r.dagster_run.tags["dagster/partition"]: r for r in instance.get_run_records(dg.RunsFilter(job_name=NIGHTLY_JOB))}
        starts = [r.start_time for r in records.values()]
        ends = [r.end_time for c, r in records.items() if c != CRASHING]
        assert max(starts) < min(ends)  # all three were running at once (--parallel 3)


def test_no_client_output_holds_another_clients_patients(scenario):
    root = scenario["root"] / "out"
    seen = {}
    for cid in (CLEAN, REJECTING):
        prefix = cid.upper() + "-"
        ids: set[str] = set()
        for path in (root / cid).glob("*.csv"):
            ids |= _patient_ids(path)
        assert ids and all(i.startswith(prefix) for i in ids), cid
        seen[cid] = ids
        pages = "".join(p.read_text() for p in (root / cid / "dashboards").rglob("*.html"))
        for other in (CLEAN, REJECTING, CRASHING):
            if other != cid:
                assert f"{other.upper()}-P" not in pages
        for parquet in (root / cid / "marts").glob("*.parquet"):
            assert duckdb.sql(f"select distinct client_id from read_parquet('{parquet}')").fetchall() == [(cid,)]
    assert not seen[CLEAN] & seen[REJECTING]


def test_a_clients_own_payer_is_priced_from_its_reference_overrides(scenario):
    """The lakeshore client's own plan: its payers.csv row and contracted fees (110% of the shipped
    all-payer rate in force) are layered on the shipped reference data for its runs only."""
    claims = scenario["root"] / "out" / REJECTING / "claims.csv"  # the client with its own payer
    fees = DEFAULT_REFERENCE_DIR / "fee_schedule.csv"
    rows = duckdb.sql(
        f"""select c.code, c.unit_amount::decimal(12,2), round(f.amount::decimal(12,2) * 1.10, 2)
            from read_csv('{claims}', all_varchar = true) c
            join read_csv('{fees}', all_varchar = true) f
              on f.payer_id = '*' and f.code = c.code
             and c.date_of_service::date between f.effective_from::date and coalesce(f.effective_to::date, date '9999-12-31')
            where c.payer_id = '{REJECTING}_health'"""
    ).fetchall()
    assert rows, "the client's own payer billed nothing"
    assert all(unit == expected for _, unit, expected in rows)
    # the shipped reference data and the other clients do not know that payer
    assert f"{REJECTING}_health" not in (DEFAULT_REFERENCE_DIR / "payers.csv").read_text()
    assert f"{REJECTING}_health" not in (scenario["root"] / "out" / CLEAN / "claims.csv").read_text()


def test_the_portfolio_marks_the_failed_and_the_rejecting_client_and_links_every_site(scenario):
    clients = load_clients(scenario["config"])
    rows = {r["client_id"]: r for r in read_portfolio(clients)}
    assert rows[CLEAN]["flags"] == [] and rows[CLEAN]["state"] == "published"
    assert rows[REJECTING]["state"] == "published" and rows[REJECTING]["flags"][0].startswith("1 file(s) rejected")
    assert rows[CRASHING]["state"] == "failed"
    assert any("last run failed: the run's process ended before the run finished (killed by signal 9)" in f
               for f in rows[CRASHING]["flags"])
    page = (scenario["root"] / "portfolio" / "index.html").read_text()
    for cid in (CLEAN, REJECTING, CRASHING):
        row = re.search(rf'<tr id="client-{cid}"[^>]*>.*?</tr>', page, re.S).group(0)
        assert ('class="blocked"' in row) == (cid != CLEAN)
        assert f'href="{(scenario["root"] / "out" / cid / "dashboards" / "index.html").as_uri()}"' in row
    assert "2 client(s) need attention" in page
    # figures come from each client's own published marts
    summary = scenario["root"] / "out" / CLEAN / "marts" / "client_summary.parquet"
    expected = duckdb.sql(f"select expected from read_parquet('{summary}')").fetchall()[0][0]
    assert rows[CLEAN]["expected"] == expected and expected > 0

    # `bhi portfolio` builds the same page from what was published, reruns nothing, exits 1 (two flagged)
    from pipelines.cli import main

    again = scenario["root"] / "portfolio-again"
    assert main(["portfolio", "--clients", str(scenario["config"]), "--out", str(again)]) == 1
    assert re.search(rf'<tr id="client-{CRASHING}"[^>]*class="blocked"', (again / "index.html").read_text())

    # a stale client stands out without any rerun: its last publication is older than stale_after_hours
    later = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=clients.portfolio.stale_after_hours + 1)
    rows_later = {r["client_id"]: r for r in read_portfolio(clients, now=later)}
    assert any(f.startswith("last published ") for f in rows_later[CLEAN]["flags"])


def test_portfolio_of_clients_that_never_ran_or_never_finished(tmp_path):
    """No rerun and no published marts needed: a client without any run status is 'no run'; a run
    that started and wrote nothing since, longer ago than stale_after_hours, 'did not finish'."""
    from pipelines.clients.portfolio import build_portfolio
    from pipelines.clients.runner import STATUS_RUNNING, write_status

    (tmp_path / "clients.yaml").write_text(
        "portfolio: {stale_after_hours: 12}\n"
        "clients:\n  - {id: a, name: A, extracts: d/a, output: o/a}\n  - {id: b, name: B, extracts: d/b, output: o/b}\n"
    )
    clients = load_clients(tmp_path / "clients.yaml")
    started = dt.datetime(2026, 11, 2, 1, 0)
    write_status(clients, clients.client("b"), STATUS_RUNNING, started)
    during = {r["client_id"]: r for r in read_portfolio(clients, now=started + dt.timedelta(hours=1))}
    assert during["a"]["state"] == "no run" and during["a"]["flags"] == ["no run recorded"]
    assert during["b"]["state"] == "running" and during["b"]["flags"] == ["nothing published yet"]
    later = build_portfolio(clients, now=started + dt.timedelta(hours=13))
    b = {r["client_id"]: r for r in later.rows}["b"]
    assert b["state"] == "did not finish"
    assert "run started 2026-11-02 01:00 UTC never finished" in b["flags"]
    assert len(later.flagged) == 2 and later.path.read_text().count('class="blocked"') == 2


def test_a_clients_month_end_close_is_its_client_x_month_partition(scenario):
    """`clients_month_end` for partition <client>|<month> closes that month on that client's
    warehouse only: its month-end files join its published outputs, no other client's folder changes."""
    clients = load_clients(scenario["config"])
    job = build_clients_definitions(clients).resolve_job_def("clients_month_end")
    result = job.execute_in_process(partition_key=f"{CLEAN}|2026-09", instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    out = scenario["root"] / "out"
    closed = out / CLEAN / "month_end" / "claims_2026-09.csv"
    ids = _patient_ids(closed)
    assert ids and all(i.startswith(CLEAN.upper() + "-") for i in ids)
    assert not (out / REJECTING / "month_end").exists()
