"""`bhi run-all --clients clients.yaml --parallel N`: every client's nightly run through Dagster, N
at a time, one process per client run (the real partitioned `clients_nightly` job, one run per
client partition, as the run queue of deploy/dagster.yaml would launch them). A client whose run
fails, or whose process dies (killed, out of memory), is recorded as failed in its run status;
the others go on. Then the portfolio page is rebuilt from what the runs published."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from pipelines.clients.config import ClientsConfigError, ClientsFile, load_clients
from pipelines.clients.runner import STATUS_FAILED, STATUS_RUNNING, write_status

WORKER_MODULE = "pipelines.clients.worker"
THREAD_SETTINGS = ("BHI_DUCKDB_THREADS", "POLARS_MAX_THREADS")


@dataclass
class ClientRun:
    client_id: str
    success: bool
    seconds: float
    run_id: str | None = None
    peak_rss_mb: float | None = None
    exit_code: int | None = None


def _context() -> mp.context.BaseContext:
    """A fork server that imported Dagster and the pipeline once: each client process forks from it
    (a clean process, not a fork of this one)."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([WORKER_MODULE])
    return ctx


def _entry(
    clients_path: str, client_id: str, as_of: str | None, result_file: str, log_level: str, run_id: str, threads: dict
) -> None:
    from pipelines.clients.worker import run_partition

    os.environ.update(threads)  # this process only (the fork server's environment is that of its start)
    run_partition(clients_path, client_id, as_of, result_file, log_level, run_id)


def run_all(
    clients_path: Path, parallel: int = 1, as_of: dt.date | None = None, only: list[str] | None = None,
    on_finish=None, log_level: str = "CRITICAL",
) -> list[ClientRun]:
    """Run the clients (all, or `only`), `parallel` at a time; return one ClientRun per client in the
    file's order. `on_finish(run)` is called as each client ends."""
    clients = load_clients(clients_path)
    unknown = sorted(set(only or ()) - set(clients.ids))
    if unknown:
        raise ClientsConfigError(f"no client {', '.join(unknown)} in {clients_path} (ids: {', '.join(clients.ids)})")
    ids = [i for i in clients.ids if not only or i in only]
    parallel = max(1, int(parallel))
    # each run gets its share of the cores unless the deployment says otherwise
    share = str(max(1, (os.cpu_count() or 1) // parallel))
    threads = {name: os.environ.get(name) or share for name in THREAD_SETTINGS}
    if os.environ.get("DAGSTER_HOME"):
        import dagster as dg

        with dg.DagsterInstance.get():  # create its storage once, before N processes open it at once
            pass
    ctx = _context()
    results: dict[str, ClientRun] = {}
    run_ids = {cid: str(uuid.uuid4()) for cid in ids}  # known before a run starts: a crashed one is marked failed
    with tempfile.TemporaryDirectory(prefix="bhi-run-all-") as tmp:
        pending = list(ids)
        running: dict[object, tuple[str, object, Path, float]] = {}
        while pending or running:
            while pending and len(running) < parallel:
                cid = pending.pop(0)
                result_file = Path(tmp) / f"{cid}.json"
                proc = ctx.Process(
                    target=_entry, name=f"bhi-client-{cid}",
                    args=(str(Path(clients_path).resolve()), cid, as_of.isoformat() if as_of else None, str(result_file),
                          log_level, run_ids[cid], threads),
                )
                proc.start()
                running[proc.sentinel] = (cid, proc, result_file, time.perf_counter())
            for sentinel in wait(list(running)):
                cid, proc, result_file, started = running.pop(sentinel)
                proc.join()
                run = _finished(clients, cid, proc.exitcode, result_file, time.perf_counter() - started, run_ids[cid])
                results[cid] = run
                if on_finish:
                    on_finish(run)
    return [results[i] for i in ids]


def _finished(
    clients: ClientsFile, cid: str, exit_code: int | None, result_file: Path, seconds: float, run_id: str
) -> ClientRun:
    if result_file.is_file():
        data = json.loads(result_file.read_text())
        return ClientRun(cid, bool(data["success"]), seconds, data.get("run_id"), data.get("peak_rss_mb"), exit_code)
    # the process died before its run ended: its status still says `running`; say what happened
    how = f"killed by signal {-exit_code}" if exit_code is not None and exit_code < 0 else f"exit code {exit_code}"
    client = clients.client(cid)
    started = _started_at(clients, cid) or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    write_status(clients, client, STATUS_FAILED, started,
                 error=f"the run's process ended before the run finished ({how}); nothing of it was published")
    from pipelines.clients.worker import report_crashed_run

    report_crashed_run(run_id, how)
    return ClientRun(cid, False, seconds, run_id, exit_code=exit_code)


def _started_at(clients: ClientsFile, cid: str) -> dt.datetime | None:
    import duckdb

    from pipelines.clients.storage import STATUS_FILE, exists, join, sql_string

    uri = join(clients.output_uri(clients.client(cid)), STATUS_FILE)
    with duckdb.connect() as conn:
        if not exists(conn, uri):
            return None
        rows = conn.sql(f"select started_at from read_parquet({sql_string(uri)}) where status = '{STATUS_RUNNING}'").fetchall()
    return rows[0][0] if rows else None
