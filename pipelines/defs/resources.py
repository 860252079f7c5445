"""Resources: the DuckDB warehouse and the folders a run reads and writes, all from the environment
(see .env.example). `bhi run` sets these variables for its own process."""

import os
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from pipelines.reference import DEFAULT_REFERENCE_DIR


class RunPaths(dg.ConfigurableResource):
    """Where the extract drop is read from and where exports and dashboards are written."""

    extracts_dir: str
    out_dir: str
    reference_dir: str = str(DEFAULT_REFERENCE_DIR)

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


def _duckdb_config(config: dict) -> dict:
    """Add DuckDB `threads` / `memory_limit` from BHI_DUCKDB_THREADS / BHI_DUCKDB_MEMORY_LIMIT (e.g. 2,
    3GB) when they are set; otherwise DuckDB's defaults (all cores, 80% of RAM) apply."""
    threads = os.environ.get("BHI_DUCKDB_THREADS", "").strip()
    memory_limit = os.environ.get("BHI_DUCKDB_MEMORY_LIMIT", "").strip()
    if threads:
        config.setdefault("threads", int(threads))
    if memory_limit:
        config.setdefault("memory_limit", memory_limit)
    return config


class Warehouse(DuckDBResource):
    """DuckDBResource whose connection is closed even when the step fails: an open connection left
    behind by a failed step would keep the file locked for the rest of the process."""

    @contextmanager
    def get_connection(self):
        conn = duckdb.connect(self.database, read_only=False, config=_duckdb_config(dict(self.connection_config)))
        try:
            yield conn
        finally:
            conn.close()


RESOURCES = {
    "warehouse": Warehouse(database=dg.EnvVar("BHI_WAREHOUSE")),
    "paths": RunPaths(
        extracts_dir=dg.EnvVar("BHI_EXTRACTS_DIR"),
        out_dir=dg.EnvVar("BHI_OUT_DIR"),
        reference_dir=dg.EnvVar("BHI_REFERENCE_DIR"),
    ),
}
