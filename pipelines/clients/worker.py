"""The process of one client's run under `bhi run-all`: it executes the real `clients_nightly` job
(pipelines/clients/definitions.py) for that client's partition, as the daemon's run launcher would,
and leaves a small JSON file with the run id, success and the process's peak memory.

Imported by the fork server of `bhi run-all` before any client starts (the imports below), so each
client's process starts in milliseconds with Dagster and the pipeline already loaded, yet shares
nothing with another client's process: a crash, a kill or an out-of-memory ends that client only."""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import time
from pathlib import Path

import dagster as dg

import pipelines.clients.definitions as client_definitions
import pipelines.definitions  # noqa: F401  (preloaded: the client's nightly job builds from it)
import pipelines.run  # noqa: F401
from pipelines.clients.config import load_clients
from pipelines.clients.runner import STATUS_FAILED, _fault_scope, write_status


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_partition(clients_path: str, client_id: str, as_of: str | None, result_file: str, log_level: str = "CRITICAL",
                  run_id: str | None = None) -> None:
    started = time.perf_counter()
    clients = load_clients(clients_path)
    client = clients.client(client_id)
    _fault_scope(client)
    try:
        _execute(clients, client, as_of, result_file, log_level, run_id, started)
    except Exception as exc:  # not a failed run (Dagster records those) but this process failing to run it
        error = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
        write_status(clients, client, STATUS_FAILED, dt.datetime.now(dt.UTC).replace(tzinfo=None), error=error)
        Path(result_file).write_text(json.dumps({"run_id": run_id, "success": False, "error": error,
                                                 "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}))


def _execute(clients, client, as_of, result_file, log_level, run_id, started) -> None:
    client_id = client.id
    defs = client_definitions.build_clients_definitions(clients)
    job = defs.resolve_job_def(client_definitions.NIGHTLY_JOB)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    with instance:
        result = job.execute_in_process(
            partition_key=client_id, instance=instance, run_id=run_id,
            run_config={**client_definitions.nightly_run_config(as_of), "loggers": {"console": {"config": {"log_level": log_level}}}},
            tags=client_definitions.client_tags(clients, client), raise_on_error=False,
        )
    Path(result_file).write_text(json.dumps({
        "run_id": result.run_id, "success": result.success, "seconds": time.perf_counter() - started,
        "peak_rss_mb": peak_rss_mb(),
    }))


def report_crashed_run(run_id: str, how: str) -> None:
    """Mark the Dagster run of a client process that died as failed in the run history (what the
    daemon's run monitoring does for a run worker that disappeared); nothing without DAGSTER_HOME."""
    if not os.environ.get("DAGSTER_HOME"):
        return
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_failed(run, f"the run's process ended before the run finished ({how})")
