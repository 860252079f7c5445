"""Resources: the DuckDB warehouse and the folders a run reads and writes, built from a Deployment
(pipelines/defs/deployment.py) by resources_for."""

import hashlib
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from pipelines.defs.deployment import Deployment
from pipelines.interrupts import stop_if_interrupted
from pipelines.safety import (  # noqa: F401  (WarehouseLockedError, lock_wait_seconds: imported from here by tests)
    LOCK_WAIT_ENV,
    WarehouseLockedError,
    acquire_run_lock,
    copies_kept,
    disk_errors,
    keep_copy,
    lock_wait_seconds,
    release_run_lock,
)
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR


class RunPaths(dg.ConfigurableResource):
    """Where the extract drop is read from and where exports and dashboards are written."""

    extracts_dir: str
    out_dir: str
    reference_dir: str = str(DEFAULT_REFERENCE_DIR)
    leadership_pngs: bool = True  # write the email PNGs (dashboards/email/) with the site

    @property
    def extracts(self) -> Path:
        return Path(self.extracts_dir)

    @property
    def out(self) -> Path:
        path = Path(self.out_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def reference(self) -> Path:
        return Path(self.reference_dir)


# DuckDB 2.x, when another process holds the file open read-write:
#   IO Error: Could not set lock on file "/srv/bhi/out/warehouse.duckdb": Conflicting lock is held in
#   /usr/bin/python3.11 (PID 8892). See also https://duckdb.org/docs/current/connect/concurrency
LOCK_ERROR_MARKER = "Could not set lock on file"
WAREHOUSE_TAG = "bhi/warehouse"  # run-queue tag: dagster.yaml allows one run per value (= per warehouse file)


def lock_message(database: str, duckdb_message: str, waited: float) -> str:
    """The error a user sees when the warehouse is locked: who holds it and what to do."""
    holder = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", duckdb_message)
    who = f" (process {holder.group(2)}: {holder.group(1)})" if holder else ""
    waited_note = f" after waiting {waited:g} s ({LOCK_WAIT_ENV})" if waited > 0 else ""
    return (
        f"warehouse {database} is locked{waited_note}: another bhi run or Dagster run is writing it "
        f"(or another program has it open){who}. This step wrote nothing; try again when that run "
        f"finishes (or set {LOCK_WAIT_ENV} to wait for it). DuckDB said: {duckdb_message}"
    )


def connect_warehouse(database: str, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-write. If another process holds DuckDB's write lock, retry every second
    for up to BHI_LOCK_WAIT_SECONDS, then raise WarehouseLockedError with a message naming the holder."""
    wait = lock_wait_seconds()
    started = time.monotonic()
    while True:
        try:
            return duckdb.connect(database, read_only=False, config=dict(config or {}))
        except duckdb.IOException as exc:
            message = str(exc)
            if LOCK_ERROR_MARKER not in message:
                raise
            remaining = wait - (time.monotonic() - started)
            if remaining <= 0:
                # `from None`: the root cause a user sees (bhi run prints it) is this message, which
                # still quotes DuckDB's own text.
                raise WarehouseLockedError(lock_message(database, message, wait)) from None
            time.sleep(min(1.0, remaining))


def warehouse_tag(database: str) -> str:
    """Value of the `bhi/warehouse` run tag: one value per warehouse file (file name + a short hash of
    its absolute path), so the run queue allows one run per file and different files in parallel."""
    if not database:
        return "unset"
    path = os.path.abspath(os.path.expanduser(database))
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).name)[:40]
    return f"{stem}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"


def prepare_warehouse(database: str, holder: str = "", reference_dir: str | Path = DEFAULT_REFERENCE_DIR) -> bool:
    """Take the run lock of the warehouse for this process (pipelines/safety.py) and, when this call
    took it, keep a checkpointed copy of the warehouse as it was before the run writes. Returns True
    when this call took the lock (the caller releases it with release_run_lock)."""
    path = Path(database)
    took = acquire_run_lock(path, holder)
    if took:
        try:
            keep_copy(path, copies_kept(Path(reference_dir)), lambda db: connect_warehouse(db))
        except BaseException:
            release_run_lock(path)
            raise
    return took


class Warehouse(DuckDBResource):
    """DuckDBResource whose connection is closed even when the step fails (an open connection left
    behind by a failed step would keep the file locked for the rest of the process), and which turns
    DuckDB's lock error into a WarehouseLockedError that says who is writing the file.

    One run owns the warehouse from its first step to its last: Dagster initialises this resource
    once per run of an in-process job (setup_for_execution), which takes the run lock (and keeps a
    copy of the warehouse); teardown_after_execution, called when the run ends (failed or not),
    drops it. A process already holding the lock (`bhi run`, `bhi close`) keeps it."""

    reference_dir: str = str(DEFAULT_REFERENCE_DIR)  # its settings.csv says how many copies to keep
    _took_lock: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._took_lock = prepare_warehouse(
            self.database, f"Dagster run {context.run.run_id if context.run else ''}", self.reference_dir
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._took_lock:
            release_run_lock(Path(self.database))
            self._took_lock = False

    @contextmanager
    def get_connection(self):
        """A connection of the step's own, closed (and checkpointed) when the step ends. Keeping one
        database open for the whole run saved ~20 ms a step but kept DuckDB's buffer pool (up to its
        memory limit) alive under the Python-heavy steps: peak RSS 4.1-4.6 GB at 10M entries against
        2.9 GB (docs/performance.md)."""
        stop_if_interrupted("the next step")  # a Ctrl-C Dagster's own flag lost (pipelines/interrupts.py)
        with disk_errors(self.database, "writing the warehouse (its last committed state is kept)"):
            conn = connect_warehouse(self.database, dict(self.connection_config))
            try:
                yield conn
            finally:
                conn.close()


def resources_for(deployment: Deployment) -> dict:
    return {
        "warehouse": Warehouse(
            database=deployment.warehouse,
            reference_dir=deployment.reference_dir,
            connection_config=deployment.duckdb_config(),
        ),
        "paths": RunPaths(
            extracts_dir=deployment.extracts_dir,
            out_dir=deployment.out_dir,
            reference_dir=deployment.reference_dir,
            leadership_pngs=deployment.leadership_pngs,
        ),
    }
