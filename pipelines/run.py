"""Run the nightly job in-process (the same definitions the schedule runs) for `bhi run`."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.cli_errors import unwritable
from pipelines.defs.checks import UNPRICED_BY_PAYER_CODE_MONTH
from pipelines.defs.deployment import Deployment
from pipelines.safety import OPERATIONAL_ERRORS, OperationalError, check_drop, release_run_lock, secure
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR

# errors whose message says what, which file and what to do: shown without their class name
EXPECTED_ERRORS = OPERATIONAL_ERRORS | {"ExtractError", "Interrupted"}


@dataclass
class RunOutcome:
    success: bool
    summary: dict
    error: str | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)  # Dagster step key -> seconds, run order
    file_errors: list[str] = field(default_factory=list)  # files this run rejected (the others loaded)
    build: dict = field(default_factory=dict)  # run_scope: mode full|incremental, reason, patients, entries
    model_seconds: dict[str, float] = field(default_factory=dict)  # SQL model -> seconds (inside step sql_models)
    # claim lines without a fee-schedule amount: (payer, code, YYYY-MM, lines, reason) per payer/code/month
    unpriced: list[tuple] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the steps' warnings (first lines), for a quiet console
    # wall-clock (time.time) start and end of each step and of each SQL model, from the run log: `bhi
    # bench` finds each one's peak RSS in its memory samples
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)


def _root_cause(result: dg.ExecuteInProcessResult) -> str:
    # a blocking asset check that failed says why in its description (e.g. which fee rate is missing)
    failed_checks = [
        f"check {e.check_name} on {e.asset_key.to_user_string()} failed: {e.description}"
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.description and e.severity != dg.AssetCheckSeverity.WARN  # a warning fails nothing
    ]
    if failed_checks:
        return "\n".join(failed_checks)
    for event in result.all_events:
        error = None
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            error = event.step_failure_data.error
        elif event.is_failure and getattr(event.event_specific_data, "error", None) is not None:
            error = event.event_specific_data.error  # e.g. the run's resources could not be set up
        if error is None:
            continue
        chain = [error]
        while chain[-1].cause is not None:
            chain.append(chain[-1].cause)
        # an expected failure (pipelines/safety.py) says what, which file and what to do: show it,
        # not the exception that caused it
        ours = next((e for e in chain if e.cls_name in EXPECTED_ERRORS), None)
        err = ours or chain[-1]
        message = err.message.strip()
        if ours is not None:  # Dagster prefixes the qualified class name: the message says it all
            message = re.sub(rf"^[\w.]*{ours.cls_name}: ", "", message)
        return unwritable(message) or message
    return "run failed (see the Dagster logs)"


def _step_seconds(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Duration of every successful step (assets and asset checks), in execution order."""
    return {
        event.step_key: event.event_specific_data.duration_ms / 1000
        for event in result.all_events
        if event.is_step_success and event.step_key and event.event_specific_data is not None
    }


def _model_seconds(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Seconds of each SQL model, from its materialization's `seconds` metadata (the models share one
    step, `sql_models`), in execution order."""
    seconds = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        value = materialization.metadata.get("seconds") if materialization else None
        if value is not None:
            seconds[materialization.asset_key.to_user_string()] = float(value.value)
    return seconds


def _execute(job: str, deployment: Deployment, run_config: dict, tags: dict | None = None) -> dg.ExecuteInProcessResult:
    """Run one job of the definitions built for `deployment` in this process (the run history of
    DAGSTER_HOME when it is set, else an ephemeral instance)."""
    from pipelines.definitions import build_definitions  # imported late: it imports every asset

    defs = build_definitions(deployment)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    with instance:
        result = defs.resolve_job_def(job).execute_in_process(
            run_config=run_config, instance=instance, tags=tags, raise_on_error=False
        )
        # the steps' warnings, first line only, from the run log (whatever the console's level)
        entries = instance.all_logs(result.run_id)
        result.bhi_warnings = [
            entry.user_message.strip().splitlines()[0]
            for entry in entries
            if entry.level == logging.WARNING and not entry.is_dagster_event and entry.user_message.strip()
        ]
        result.bhi_windows = _windows(entries)
        return result


def _windows(entries) -> dict[str, tuple[float, float]]:
    """Step key or SQL model -> (start, end) wall-clock time: a step from its start event to its success
    or failure, a model from its materialization less its `seconds` metadata."""
    started: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        if event.is_step_start and event.step_key:
            started[event.step_key] = entry.timestamp
        elif (event.is_step_success or event.is_step_failure) and event.step_key in started:
            windows[event.step_key] = (started[event.step_key], entry.timestamp)
        elif event.is_step_materialization:
            materialization = event.event_specific_data.materialization
            seconds = materialization.metadata.get("seconds")
            if seconds is not None:
                windows[materialization.asset_key.to_user_string()] = (entry.timestamp - float(seconds.value), entry.timestamp)
    return windows


def run_pipeline(
    extracts: Path,
    out: Path,
    warehouse: Path | None = None,
    as_of: dt.date | None = None,
    reference: Path = DEFAULT_REFERENCE_DIR,
    log_level: str = "WARNING",
    profile: str | None = None,
    full_refresh: bool = False,
    settings: Deployment | None = None,
) -> RunOutcome:
    """Materialize the whole asset graph; return the run summary (rpt_run_summary) or the error.
    `settings` carries the rest of the deployment's settings (DuckDB limits, time zone, PNGs; default:
    the BHI_* environment, as for `bhi run`); the paths given here replace its own. The run lock of the warehouse is held from before the first step
    until the summary is read, so another run (another `bhi run`, the schedule, the sensor) waits or
    refuses (pipelines/safety.py)."""
    warehouse = warehouse or out / "warehouse.duckdb"
    deployment = replace(
        settings or Deployment.from_environment(),
        extracts_dir=str(extracts), out_dir=str(out), warehouse=str(warehouse), reference_dir=str(reference),
    )
    try:
        check_drop(Path(extracts))
        out.mkdir(parents=True, exist_ok=True)
        secure(out)
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        took = _prepare(deployment, "bhi run")
    except OperationalError as exc:
        return RunOutcome(False, {}, str(exc))
    try:
        return _run_nightly(deployment, as_of, log_level, profile, full_refresh)
    finally:
        if took:
            release_run_lock(warehouse)


def _prepare(deployment: Deployment, holder: str) -> bool:
    from pipelines.defs.resources import prepare_warehouse  # imported late: it imports dagster

    return prepare_warehouse(deployment.warehouse, holder, deployment.reference_dir)


def _run_nightly(deployment: Deployment, as_of, log_level, profile, full_refresh) -> RunOutcome:
    run_config = {
        "ops": {
            "run_parameters": {"config": {"as_of": (as_of or dt.date.today()).isoformat()}},
            "extracts": {"config": {"profile": profile, "full_refresh": full_refresh}},
        },
        "loggers": {"console": {"config": {"log_level": log_level}}},
    }
    result = _execute("nightly", deployment, run_config)
    warehouse = deployment.warehouse
    step_seconds = _step_seconds(result)
    if not result.success:
        return RunOutcome(False, {}, _root_cause(result), step_seconds, warnings=result.bhi_warnings)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        (run_id,), = conn.sql("select run_id from run_parameters").fetchall()
        if run_id != result.run_id:  # cannot happen while the run lock is held; never print another run's numbers
            return RunOutcome(False, {}, f"warehouse {warehouse} holds the parameters of run {run_id}, not of this"
                              f" run {result.run_id}: another run wrote it; run again")
        cols = [c[0] for c in conn.sql("describe rpt_run_summary").fetchall()]
        row = conn.sql("select * from rpt_run_summary").fetchall()[0]
        file_errors = [r[0] for r in conn.sql("select error from ingest_errors order by source_file").fetchall()]
        scope = conn.sql("select * from run_scope")
        build = dict(zip(scope.columns, scope.fetchall()[0]))
        unpriced = conn.sql(UNPRICED_BY_PAYER_CODE_MONTH).fetchall()
    return RunOutcome(
        True, dict(zip(cols, row)), step_seconds=step_seconds, file_errors=file_errors, build=build,
        model_seconds=_model_seconds(result), unpriced=unpriced, warnings=result.bhi_warnings,
        windows=result.bhi_windows,
    )


def close_months_run(
    out: Path, first: str, last: str, warehouse: Path | None = None, log_level: str = "WARNING",
    settings: Deployment | None = None,
) -> RunOutcome:
    """Run the `month_end_close` job for the months first..last (YYYY-MM) in one run (a backfill of
    the monthly partitions), on the warehouse a nightly run wrote."""
    warehouse = warehouse or out / "warehouse.duckdb"
    if not warehouse.exists():
        return RunOutcome(False, {}, f"no warehouse at {warehouse}: run `bhi run` first")
    # the close reads no extracts
    deployment = replace(settings or Deployment.from_environment(), extracts_dir=str(out), out_dir=str(out), warehouse=str(warehouse))
    try:
        took = _prepare(deployment, "bhi close")
    except OperationalError as exc:
        return RunOutcome(False, {}, str(exc))
    try:
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        result = _execute(
            "month_end_close",
            deployment,
            {"loggers": {"console": {"config": {"log_level": log_level}}}},
            tags,
        )
        if not result.success:
            return RunOutcome(False, {}, _root_cause(result), _step_seconds(result))
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            rows = conn.execute(
                "select strftime(service_month, '%Y-%m') as month, claim_lines, expected_amount, closed_as_of,"
                " coalesce(unpriced_lines, 0)"
                " from month_end_close where service_month between ?::date and ?::date order by 1",
                [f"{first}-01", f"{last}-01"],
            ).fetchall()
        return RunOutcome(True, {"months": rows}, step_seconds=_step_seconds(result))
    finally:
        if took:
            release_run_lock(warehouse)

