"""A deployment's settings: where the drop, outputs, warehouse and reference data are, the time zone of
the schedules, the first month the close partitions, DuckDB limits and the sensor's timing.

They travel explicitly: `bhi run` / `bhi close` build a Deployment from their arguments and hand it to
pipelines/definitions.py's build_definitions, which passes each value to the resource, schedule,
partition or sensor that needs it. Only a long-running code location (`dg dev`, the daemon) reads
them from BHI_* environment variables (.env.example), once, when Dagster loads the definitions:
nothing reads the environment at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR

ENV_PREFIX = "BHI_"
BOOLEANS = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class Deployment:
    extracts_dir: str = ""  # BHI_EXTRACTS_DIR: the drop folder
    out_dir: str = ""  # BHI_OUT_DIR: exports and dashboards
    warehouse: str = ""  # BHI_WAREHOUSE: the DuckDB file
    reference_dir: str = str(DEFAULT_REFERENCE_DIR)  # BHI_REFERENCE_DIR: the rules as data
    timezone: str = "UTC"  # BHI_TIMEZONE: schedules, partitions, the sensor's as-of date
    first_month: str = "2024-01"  # BHI_FIRST_MONTH: the first month-end partition (YYYY-MM)
    duckdb_threads: int | None = None  # BHI_DUCKDB_THREADS: DuckDB's default (all cores) when unset
    duckdb_memory_limit: str | None = None  # BHI_DUCKDB_MEMORY_LIMIT, e.g. 3GB: DuckDB's default (80% of RAM)
    sensor_settle_seconds: float = 60.0  # BHI_SENSOR_SETTLE_SECONDS: a file this recent may be half-written
    sensor_interval_seconds: int = 60  # BHI_SENSOR_INTERVAL_SECONDS: how often the sensor looks
    leadership_pngs: bool = True  # BHI_LEADERSHIP_PNGS=off: no email PNGs (a headless browser; e.g. in tests)
    # BHI_AUTOMATION=off: the schedules and the extract-drop sensor start stopped (turn them on in the UI);
    # on (default): running as soon as a daemon loads the definitions. A toggle in the UI wins over it
    automation: bool = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, **overrides) -> Deployment:
        """Settings from BHI_* variables (blank or unset: the default), then `overrides`. A value that
        is not a number where one is expected fails in one line naming the variable."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = (environ.get(name) or "").strip()
            if not raw:
                continue
            kind = str(f.type)
            if kind == "bool":
                if raw.lower() not in BOOLEANS:
                    raise ValueError(f"{name} must be on or off, got {raw!r}")
                values[f.name] = BOOLEANS[raw.lower()]
                continue
            try:
                if kind.startswith("int"):
                    values[f.name] = int(raw)
                elif kind.startswith("float"):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                raise ValueError(f"{name} must be a number, got {raw!r}") from None
            if kind.startswith(("int", "float")) and values[f.name] < 0:
                raise ValueError(f"{name} must be >= 0, got {raw!r}")
        return replace(cls(**values), **overrides)

    def schedule_status(self):
        """The schedules' status before anyone toggles them (BHI_AUTOMATION)."""
        import dagster as dg  # here: the rest of this module needs no Dagster

        return dg.DefaultScheduleStatus.RUNNING if self.automation else dg.DefaultScheduleStatus.STOPPED

    def sensor_status(self):
        """The extract-drop sensor's status before anyone toggles it (BHI_AUTOMATION)."""
        import dagster as dg

        return dg.DefaultSensorStatus.RUNNING if self.automation else dg.DefaultSensorStatus.STOPPED

    def duckdb_config(self) -> dict:
        """DuckDB connection settings: threads / memory_limit when set, else DuckDB's defaults."""
        config: dict = {}
        if self.duckdb_threads:
            config["threads"] = self.duckdb_threads
        if self.duckdb_memory_limit:
            config["memory_limit"] = self.duckdb_memory_limit
        return config
