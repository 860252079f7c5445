"""The one Dagster entry point. `bhi run` / `bhi close` call build_definitions with the paths they were
given; `dg dev` and the daemon load `defs`, which reads the deployment's BHI_* settings when Dagster
loads the code location (never at import)."""

import dagster as dg

from pipelines.defs.assets_ingest import claims_previous_run, extracts, reference_data, run_parameters
from pipelines.defs.assets_models import sql_models
from pipelines.defs.assets_month_end import month_end_definitions
from pipelines.defs.assets_outputs import dashboards, exports, publication
from pipelines.defs.assets_scope import build_state, run_scope
from pipelines.defs.checks import CHECKS
from pipelines.defs.deployment import Deployment
from pipelines.defs.resources import resources_for
from pipelines.defs.schedules import nightly_job, nightly_schedule
from pipelines.defs.sensors import extract_drop_sensor


def build_definitions(deployment: Deployment) -> dg.Definitions:
    month_end_claims, month_end_job, month_end_schedule = month_end_definitions(deployment)
    return dg.Definitions(
        assets=[
            reference_data,
            run_parameters,
            claims_previous_run,
            extracts,
            run_scope,
            sql_models,
            build_state,
            exports,
            dashboards,
            publication,
            month_end_claims,
        ],
        asset_checks=CHECKS,
        jobs=[nightly_job(deployment), month_end_job],
        schedules=[nightly_schedule(deployment), month_end_schedule],
        sensors=[extract_drop_sensor(deployment)],
        resources=resources_for(deployment),
        # one process per run, also for an ad-hoc "Materialize" in the UI: the run lock (defs/resources.py)
        # is taken when the run's resources are initialised and held until its last step ends
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location of `dg dev` / the daemon: settings from BHI_* (.env.example); with
    BHI_CLIENTS=clients.yaml also the clients' partitioned jobs (pipelines/clients/definitions.py)."""
    from pipelines.clients.definitions import definitions_from_environment

    single = build_definitions(Deployment.from_environment())
    clients = definitions_from_environment()
    return single if clients is None else dg.Definitions.merge(single, clients)
