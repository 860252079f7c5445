"""The nightly job (the whole graph, one process so there is one DuckDB writer) and its schedule."""

import os

import dagster as dg

nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Ingest the extract drop and rebuild every model, export and dashboard.",
)


@dg.schedule(
    job=nightly_job,
    cron_schedule="0 2 * * *",
    execution_timezone=os.environ.get("BHI_TIMEZONE", "UTC"),
)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """02:00 every night; the as-of date is the scheduled day, so last month closes on the 1st."""
    as_of = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(
        run_key=as_of,
        run_config={"ops": {"run_parameters": {"config": {"as_of": as_of}}}},
        tags={"bhi/as_of": as_of},
    )
