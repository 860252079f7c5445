"""Dagster definitions for a billing company's clients (clients.yaml): the client is a partition.

- `client_nightly`: partitioned by client (StaticPartitionsDefinition of the ids in clients.yaml);
  one run per client runs that client's nightly run (pipelines/clients/runner.py: the single-client
  `nightly` job on its own drop, warehouse, run lock and folders) and publishes its marts as Parquet.
  Job `clients_nightly`; every run is tagged bhi/client=<id> and bhi/warehouse=<its warehouse>, which
  the instance's run queue limits (deploy/dagster.yaml: N runs at once, one per client).
- `client_month_end`: partitioned by client x month (MultiPartitionsDefinition); job
  `clients_month_end` closes one client's month (`bhi close` for that client).
- `portfolio`: every client's published Parquet read with DuckDB into the portfolio page.
- Per client: schedule `nightly_<id>` at its nightly_time in its time zone, `close_<id>` an hour
  later on its close_day (the previous month), and sensor `drop_<id>` on its extract folder (the
  single-client sensor's rules, pipelines/defs/sensors.py). `portfolio_schedule` rebuilds the page hourly.

Loaded by `bhi run-all` (build_clients_definitions), by its own code location
(`dagster dev -m pipelines.clients.definitions`, BHI_CLIENTS=clients.yaml), and merged into the main
one (pipelines/definitions.py) when BHI_CLIENTS is set."""


import datetime as dt
import os

import dagster as dg

from pipelines.clients.config import CLIENTS_ENV, Client, ClientsFile, load_clients
from pipelines.defs.deployment import Deployment
from pipelines.defs.resources import WAREHOUSE_TAG, warehouse_tag

CLIENT_TAG = "bhi/client"
EXECUTOR_ENV = "BHI_CLIENTS_EXECUTOR"  # in_process (default), celery or k8s: where a client run's step executes
NIGHTLY_JOB, CLOSE_JOB, PORTFOLIO_JOB = "clients_nightly", "clients_month_end", "portfolio_job"
NIGHTLY_ASSET = "client_nightly"


class ClientRunConfig(dg.Config):
    as_of: str | None = None  # YYYY-MM-DD; default: today in the client's time zone


def name_of(client_id: str) -> str:
    """A Dagster name (schedules, sensors) from a client id."""
    return client_id.replace("-", "_")


def client_tags(clients: ClientsFile, client: Client) -> dict[str, str]:
    return {CLIENT_TAG: client.id, WAREHOUSE_TAG: warehouse_tag(str(clients.warehouse(client)))}


def nightly_run_config(as_of: str | None) -> dict:
    return {"ops": {NIGHTLY_ASSET: {"config": {"as_of": as_of}}}}


def _today(client: Client) -> str:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(client.timezone)).date().isoformat()


def run_executor(name: str | None = None):
    """The executor of the clients' jobs: in-process (the run's own process or pod: the K8sRunLauncher
    already gives each client run a pod), or the step sent to a Celery worker / a Kubernetes job. The
    optional packages are imported only when asked for."""
    name = (name if name is not None else os.environ.get(EXECUTOR_ENV, "")).strip() or "in_process"
    if name == "in_process":
        return dg.in_process_executor
    packages = {"celery": ("dagster_celery", "celery_executor"), "k8s": ("dagster_k8s", "k8s_job_executor")}
    if name not in packages:
        raise ValueError(f"{EXECUTOR_ENV} must be in_process, celery or k8s, got {name!r}")
    module, attribute = packages[name]
    try:
        return getattr(__import__(module), attribute)
    except ImportError:
        raise ValueError(f"{EXECUTOR_ENV}={name} needs the {module.replace('_', '-')} package installed where the runs execute") from None


def build_clients_definitions(clients: ClientsFile) -> dg.Definitions:
    from pipelines.clients.portfolio import build_portfolio
    from pipelines.clients.runner import STATUS_PUBLISHED, deployment_for, publish_marts, run_client

    by_id = {c.id: c for c in clients.clients}
    partitions = dg.StaticPartitionsDefinition(clients.ids)
    months = dg.MonthlyPartitionsDefinition(start_date=min(c.first_month for c in clients.clients), fmt="%Y-%m")
    client_months = dg.MultiPartitionsDefinition({"client": partitions, "month": months})

    @dg.asset(name=NIGHTLY_ASSET, partitions_def=partitions, group_name="clients", kinds={"duckdb", "parquet"})
    def client_nightly(context: dg.AssetExecutionContext, config: ClientRunConfig) -> dg.MaterializeResult:
        """One client's nightly run (its own warehouse, run lock, pages), then its report marts as
        Parquet and its run status at its output URI. Fails when the client's run did not publish."""
        client = by_id[context.partition_key]
        as_of = dt.date.fromisoformat(config.as_of or _today(client))
        result = run_client(clients, client, as_of)
        if result.status != STATUS_PUBLISHED:
            raise dg.Failure(description=f"client {client.id}: {result.error}")
        for problem in result.problems:
            context.log.warning(f"client {client.id}: {problem}")
        s = result.summary
        return dg.MaterializeResult(
            metadata={
                "as_of": str(s.get("as_of")),
                "claim_lines": int(s.get("claim_lines") or 0),
                "expected_revenue": float(s.get("expected_revenue") or 0),
                "problems": "; ".join(result.problems) or "none",
                "output": clients.output_uri(client),
            }
        )

    @dg.asset(partitions_def=client_months, group_name="clients", kinds={"duckdb", "csv"}, deps=[client_nightly])
    def client_month_end(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """One client's month-end close of one month (the `month_end_close` job on its warehouse)."""
        from pipelines.clients.reference import layered_reference
        from pipelines.run import close_months_run

        keys = context.partition_key.keys_by_dimension
        client, month = by_id[keys["client"]], keys["month"]
        reference = layered_reference(clients.overrides_dir(client), clients.work_dir(client) / "reference")
        outcome = close_months_run(
            clients.work_dir(client), month, month, warehouse=clients.warehouse(client), log_level="CRITICAL",
            settings=deployment_for(clients, client, reference),
        )
        if not outcome.success:
            raise dg.Failure(description=f"client {client.id}, {month}: {outcome.error}")
        publish_marts(clients, client)
        (_, lines, amount, _, unpriced), = outcome.summary["months"]
        return dg.MaterializeResult(metadata={"claim_lines": lines, "expected_amount": float(amount), "unpriced_lines": unpriced})

    @dg.asset(group_name="clients", kinds={"duckdb", "html"}, deps=[client_nightly])
    def portfolio(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """The portfolio page: every client's published Parquet (local or object storage), read with DuckDB."""
        page = build_portfolio(clients)
        for line in page.flagged:
            context.log.warning(f"portfolio: {line}")
        return dg.MaterializeResult(
            metadata={"page": dg.MetadataValue.path(str(page.path)), "clients": page.clients, "flagged": len(page.flagged)}
        )

    @dg.static_partitioned_config(partition_keys=clients.ids, tags_for_partition_key_fn=lambda key: client_tags(clients, by_id[key]))
    def nightly_config(partition_key: str) -> dict:
        return nightly_run_config(None)

    executor = run_executor()
    nightly_job = dg.define_asset_job(
        NIGHTLY_JOB, selection=[client_nightly], config=nightly_config, executor_def=executor,
        description="One client's nightly run (partition = client id).",
    )
    close_job = dg.define_asset_job(
        CLOSE_JOB, selection=[client_month_end], executor_def=executor,
        description="One client's month-end close (partition = client|month).",
    )
    portfolio_job = dg.define_asset_job(PORTFOLIO_JOB, selection=[portfolio], executor_def=dg.in_process_executor)

    schedules, sensors = [], []
    for client in clients.clients:
        schedules += client_schedules(clients, client, nightly_job, close_job)
        sensors.append(client_drop_sensor(clients, client, nightly_job))
    schedules.append(
        dg.ScheduleDefinition(name="portfolio_schedule", job=portfolio_job, cron_schedule="45 * * * *",
                              default_status=dg.DefaultScheduleStatus.STOPPED)
    )
    return dg.Definitions(
        assets=[client_nightly, client_month_end, portfolio],
        jobs=[nightly_job, close_job, portfolio_job],
        schedules=schedules,
        sensors=sensors,
    )


def client_schedules(clients: ClientsFile, client: Client, nightly_job, close_job) -> list[dg.ScheduleDefinition]:
    hour, minute = (int(x) for x in client.nightly_time.split(":"))
    close_hour, close_day = (hour + 1) % 24, client.close_day + (1 if hour == 23 else 0)
    tags = client_tags(clients, client)

    @dg.schedule(job=nightly_job, cron_schedule=f"{minute} {hour} * * *", execution_timezone=client.timezone,
                 name=f"nightly_{name_of(client.id)}")
    def nightly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        as_of = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=f"{client.id}-{as_of}", partition_key=client.id,
                             run_config=nightly_run_config(as_of), tags={**tags, "bhi/as_of": as_of})

    @dg.schedule(job=close_job, cron_schedule=f"{minute} {close_hour} {close_day} * *",
                 execution_timezone=client.timezone, name=f"close_{name_of(client.id)}")
    def close(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        month = (context.scheduled_execution_time.date().replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        return dg.RunRequest(run_key=f"{client.id}-close-{month}",
                             partition_key=dg.MultiPartitionKey({"client": client.id, "month": month}), tags=tags)

    return [nightly, close]


def client_drop_sensor(clients: ClientsFile, client: Client, nightly_job) -> dg.SensorDefinition:
    from pipelines.defs.sensors import evaluate_drop

    settings = Deployment.from_environment()
    deployment = Deployment(
        extracts_dir=str(clients.extracts_dir(client)), timezone=client.timezone,
        sensor_settle_seconds=settings.sensor_settle_seconds, sensor_interval_seconds=settings.sensor_interval_seconds,
    )

    @dg.sensor(name=f"drop_{name_of(client.id)}", job=nightly_job, minimum_interval_seconds=deployment.sensor_interval_seconds,
               default_status=dg.DefaultSensorStatus.STOPPED,
               description=f"Requests client {client.id}'s nightly run when files in its extract folder change.")
    def _sensor(context: dg.SensorEvaluationContext):
        result = evaluate_drop(deployment, context.cursor)
        if not isinstance(result, dg.RunRequest):
            return result
        fingerprint = result.tags["bhi/drop_fingerprint"]
        context.update_cursor(fingerprint)
        as_of = result.tags["bhi/as_of"]
        return dg.RunRequest(
            run_key=f"{client.id}-drop-{fingerprint}", partition_key=client.id, run_config=nightly_run_config(as_of),
            tags={**client_tags(clients, client), "bhi/as_of": as_of, "bhi/drop_fingerprint": fingerprint},
        )

    return _sensor


def definitions_from_environment() -> dg.Definitions | None:
    """The clients' definitions of BHI_CLIENTS (a clients.yaml), or None when it is not set."""
    path = (os.environ.get(CLIENTS_ENV) or "").strip()
    return build_clients_definitions(load_clients(path)) if path else None


@dg.definitions
def defs() -> dg.Definitions:
    """A code location of the clients alone: BHI_CLIENTS=clients.yaml dagster dev -m pipelines.clients.definitions"""
    found = definitions_from_environment()
    if found is None:
        raise ValueError(f"{CLIENTS_ENV} is not set: point it at the clients.yaml to load")
    return found
