"""The nightly job (the whole graph, one process so there is one DuckDB writer) and its schedule.

Every run of the job carries the `bhi/warehouse` tag (one value per warehouse file); dagster.yaml
limits the run queue to one in-progress run per value, so the daemon never starts a second writer.
Whatever launches it (schedule, sensor, UI, `bhi run`), the run holds the warehouse's run lock from
its first step to its last (the Warehouse resource, pipelines/safety.py): another run waits or refuses."""

import dagster as dg

from pipelines.defs.deployment import Deployment
from pipelines.defs.resources import WAREHOUSE_TAG, warehouse_tag

NIGHTLY_JOB = "nightly"


def nightly_job(deployment: Deployment):
    return dg.define_asset_job(
        NIGHTLY_JOB,
        # every asset except the monthly partitions of the month-end close (their own job and schedule)
        # and the clients' partitioned assets (pipelines/clients/definitions.py, with BHI_CLIENTS)
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups("month_end", "clients"),
        executor_def=dg.in_process_executor,
        description="Ingest the new extract files and rebuild what they change: models, exports, dashboards.",
        tags={WAREHOUSE_TAG: warehouse_tag(deployment.warehouse)},
    )


def run_tags(as_of: str, deployment: Deployment) -> dict[str, str]:
    """Tags of a scheduled or sensor-requested run: its as-of date and the run-queue warehouse tag."""
    return {"bhi/as_of": as_of, WAREHOUSE_TAG: warehouse_tag(deployment.warehouse)}


def as_of_config(as_of: str) -> dict:
    return {"ops": {"run_parameters": {"config": {"as_of": as_of}}}}


def nightly_schedule(deployment: Deployment) -> dg.ScheduleDefinition:
    @dg.schedule(
        job_name=NIGHTLY_JOB,
        cron_schedule="0 2 * * *",
        execution_timezone=deployment.timezone,
        name="nightly_schedule",
        default_status=deployment.schedule_status(),
    )
    def _nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """02:00 every night; the as-of date is the scheduled day, so last month closes on the 1st."""
        as_of = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=as_of, run_config=as_of_config(as_of), tags=run_tags(as_of, deployment))

    return _nightly
