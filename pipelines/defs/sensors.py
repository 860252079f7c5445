"""A sensor on the extract drop: request a `nightly` run when extract files arrive or change.

The drop is the deployment's extracts_dir (BHI_EXTRACTS_DIR). The files that count are every file ingest could read: canonical
`<table>*.csv|parquet|xlsx`, FHIR `<Resource>.ndjson`, and files a source profile's name patterns
pick (`.csv .tsv .txt .parquet .xlsx`), plus the drop's profile `bhi-profile.yaml`. Matching is by
suffix, a superset of what ingest assigns to a table (a stray `notes.txt` causes one harmless rerun;
a missed delivery would be worse). Hidden files, Office lock files (`~$...`), sub-folders and
in-progress uploads (`.part`, `.tmp`, `.filepart`, ...) are ignored.

- The cursor is a fingerprint of (name, size, mtime_ns) of those files. No change since the last
  run request -> a SkipReason; a new, replaced, touched or removed file -> a RunRequest.
- run_key = "drop-<fingerprint>": Dagster never launches two runs for the same drop state.
- A file modified less than BHI_SENSOR_SETTLE_SECONDS ago (default 60) may still be being
  written: the whole tick waits (SkipReason naming the files) and the cursor does not move, because
  the run would ingest every file of the folder, half-written ones included.
- as_of = today in BHI_TIMEZONE, passed like the schedule does; runs carry the `bhi/warehouse` tag.
- Evaluated every BHI_SENSOR_INTERVAL_SECONDS (default 60).
  Running by default once a daemon loads the definitions; BHI_AUTOMATION=off starts it stopped (then
  start it in the UI, Automation -> extract_drop_sensor, or with
  `dagster sensor start extract_drop_sensor -m pipelines.definitions`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from pipelines.defs.deployment import Deployment
from pipelines.defs.schedules import NIGHTLY_JOB, as_of_config, run_tags

# what ingest can read: shared with `bhi run`'s check of --extracts (which runs before Dagster is imported)
from pipelines.safety import EXTRACT_SUFFIXES, PROFILE_FILE, is_drop_file  # noqa: F401

SETTLE_ENV = "BHI_SENSOR_SETTLE_SECONDS"  # named in messages: where the setting comes from


@dataclass(frozen=True)
class DropState:
    settled: tuple[tuple[str, int, int], ...]  # (name, size, mtime_ns), sorted by name
    settling: tuple[str, ...]  # modified within the settle window: maybe still being written

    @property
    def fingerprint(self) -> str:
        payload = json.dumps(self.settled, separators=(",", ":")).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def scan_drop(folder: Path, settle: float, now_ns: int | None = None) -> DropState:
    """The drop's extract files split into settled (fingerprinted) and still settling."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    settle_ns = int(settle * 1_000_000_000)
    settled, settling = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not is_drop_file(entry.name):
            continue
        try:
            if not entry.is_file():
                continue
            stat = entry.stat()
        except FileNotFoundError:  # removed while we looked
            continue
        if now_ns - stat.st_mtime_ns < settle_ns:
            settling.append(entry.name)
        else:
            settled.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return DropState(tuple(settled), tuple(settling))


def today_in_timezone(timezone: str) -> str:
    return dt.datetime.now(ZoneInfo(timezone)).date().isoformat()


def evaluate_drop(deployment: Deployment, cursor: str | None) -> dg.RunRequest | dg.SkipReason:
    """One tick: a RunRequest (its run_key carries the new fingerprint) or a SkipReason saying why not."""
    if not deployment.extracts_dir:
        return dg.SkipReason("BHI_EXTRACTS_DIR is not set: the sensor does not know which drop folder to watch")
    folder = Path(deployment.extracts_dir)
    settle = deployment.sensor_settle_seconds
    if not folder.is_dir():
        return dg.SkipReason(f"extract drop {folder} does not exist or is not a folder")
    state = scan_drop(folder, settle)
    if state.settling:
        names = ", ".join(state.settling[:5]) + (f" and {len(state.settling) - 5} more" if len(state.settling) > 5 else "")
        return dg.SkipReason(
            f"waiting for {len(state.settling)} file(s) in {folder} modified less than {settle:g} s ago "
            f"({SETTLE_ENV}) to settle: {names}"
        )
    if not state.settled:
        return dg.SkipReason(
            f"no extract files in {folder} (expected {'|'.join('*' + x for x in EXTRACT_SUFFIXES)} or {PROFILE_FILE})"
        )
    fingerprint = state.fingerprint
    if fingerprint == cursor:
        return dg.SkipReason(
            f"no new or changed extract files in {folder} since the last run request "
            f"({len(state.settled)} files, fingerprint {fingerprint})"
        )
    as_of = today_in_timezone(deployment.timezone)
    return dg.RunRequest(
        run_key=f"drop-{fingerprint}",
        run_config=as_of_config(as_of),
        tags={**run_tags(as_of, deployment), "bhi/drop_fingerprint": fingerprint, "bhi/drop_files": str(len(state.settled))},
    )


def extract_drop_sensor(deployment: Deployment) -> dg.SensorDefinition:
    @dg.sensor(
        name="extract_drop_sensor",
        job_name=NIGHTLY_JOB,
        minimum_interval_seconds=deployment.sensor_interval_seconds,
        default_status=deployment.sensor_status(),
        description=(
            "Requests a nightly run when extract files in BHI_EXTRACTS_DIR are added, replaced or removed "
            f"(after they have been quiet for {SETTLE_ENV} seconds, default 60)."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext):
        result = evaluate_drop(deployment, context.cursor)
        if isinstance(result, dg.RunRequest):
            context.update_cursor(result.tags["bhi/drop_fingerprint"])
        return result

    return _sensor
