"""Month-end close as monthly partitions: one partition per closed service month, a backfill over a
range of months in one run (delete-then-insert, so reruns are idempotent), and a schedule that
closes the previous month on the 1st at 03:00, after the 02:00 nightly run closed it.

The billing models themselves are not partitioned by month: episodes (initial or subsequent month,
six-month breaks) and the once-a-year 99492 rule read a patient's whole history, so the nightly
run rebuilds by patient instead (pipelines/warehouse/scope.py)."""

import datetime as dt
import warnings

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipelines.defs.deployment import Deployment
from pipelines.defs.resources import WAREHOUSE_TAG, RunPaths, warehouse_tag
from pipelines.interrupts import stop_if_interrupted
from pipelines.outputs.close import MONTH_END_DIR, close_months, send_claims
from pipelines.outputs.publication import publish, staging_folder
from pipelines.safety import disk_errors


def _close_partitions(context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: RunPaths) -> dg.MaterializeResult:
    first, last = context.partition_key_range.start, context.partition_key_range.end
    with warehouse.get_connection() as conn:
        # the month-end files (claims, evidence, 837P) join the published outputs: this run's folder
        # starts as links of them, gets the closed months' files, and is published in one swap
        staging = staging_folder(paths.out, context.run.run_id)
        with disk_errors(staging / MONTH_END_DIR, "writing the month-end files (the published outputs are unchanged)"):
            closed = close_months(conn, staging, first, last)
            sent = send_claims(conn, staging, first, last)
        held = conn.sql(
            f"select count(*) from fct_x12_claims_held where service_month between '{first}-01' and '{last}-01'"
        ).fetchall()[0][0]
        waiting = conn.execute(
            "select reason, count(*) from x12_claims_waiting where service_month between ?::date and ?::date"
            " group by 1 order by 1", [f"{first}-01", f"{last}-01"],
        ).fetchall()
        as_of = conn.sql("select any_value(as_of)::varchar from run_parameters").fetchall()[0][0]
        stop_if_interrupted("publishing the month-end files")  # never a publication after a Ctrl-C or SIGTERM
        publish(paths.out, context.run.run_id, as_of)
    for month, lines, amount, unpriced in closed:
        context.log.info(f"closed {month}: {lines} claim lines, ${amount:,.2f}")
        if unpriced:
            context.log.warning(
                f"closed {month} with {unpriced} unpriced claim line(s) (no fee-schedule rate in force):"
                f" marked unpriced in claims_{month}.csv; load the rate and close the month again"
            )
    for x in sent:  # counts only: no identifiers in the log
        context.log.info(f"837P {x.file_name}: {x.claims} claims, {x.lines} lines, frequency codes {x.frequency_codes}")
    if held:
        context.log.warning(f"{held} claims held back from the 837P for missing elements or claim scrub edits (fct_x12_claims_held)")
    for reason, n in waiting:  # counts and reasons only
        context.log.info(f"837P: {n} replacement(s)/void(s) not sent: {reason} (x12_claims_waiting)")
    return dg.MaterializeResult(
        metadata={
            "months": len(closed),
            "claim_lines": sum(lines for _, lines, _, _ in closed),
            "expected_amount": float(sum(amount for _, _, amount, _ in closed)),
            "unpriced_lines": sum(unpriced for *_, unpriced in closed),
            "x12_837p_files": len(sent),
            "x12_claims_sent": sum(x.claims for x in sent),
            "x12_claims_held": held,
            "x12_claims_waiting": sum(n for _, n in waiting),
        }
    )


def month_end_definitions(deployment: Deployment):
    """The month-end asset (one partition per service month from the deployment's first_month, in its
    time zone), its job and its schedule."""
    months = dg.MonthlyPartitionsDefinition(start_date=deployment.first_month, fmt="%Y-%m", timezone=deployment.timezone)

    def month_end_claims(
        context: dg.AssetExecutionContext, warehouse: DuckDBResource, paths: RunPaths
    ) -> dg.MaterializeResult:
        """The closed month's claim lines (month_end_claims, month_end_close) and
        <out>/month_end/claims_<YYYY-MM>.csv + claim_evidence_<YYYY-MM>.csv, for every month of the run's
        partition range."""
        return _close_partitions(context, warehouse, paths)

    with warnings.catch_warnings():  # backfill_policy (one run for a range of months) is beta in Dagster 1.13
        warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
        month_end_claims = dg.asset(
            partitions_def=months,
            backfill_policy=dg.BackfillPolicy.single_run(),
            deps=["fct_claims", "fct_claim_evidence", "run_parameters", "fct_x12_claim_lines", "fct_x12_claims_held"],
            group_name="month_end",
            kinds={"duckdb", "csv"},
        )(month_end_claims)

    month_end_job = dg.define_asset_job(
        "month_end_close",
        selection=[month_end_claims],
        executor_def=dg.in_process_executor,
        tags={WAREHOUSE_TAG: warehouse_tag(deployment.warehouse)},
        description="Close service months: the month's claim file and evidence, kept as of the close.",
    )

    @dg.schedule(
        job=month_end_job,
        cron_schedule="0 3 1 * *",
        execution_timezone=deployment.timezone,
        name="month_end_close_schedule",
        default_status=deployment.schedule_status(),
    )
    def month_end_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """On the 1st at 03:00 (after the 02:00 nightly run, whose as-of date closed the previous month):
        close the previous month."""
        first_of_month = context.scheduled_execution_time.date().replace(day=1)
        month = (first_of_month - dt.timedelta(days=1)).strftime("%Y-%m")
        return dg.RunRequest(run_key=f"close-{month}", partition_key=month, tags={WAREHOUSE_TAG: warehouse_tag(deployment.warehouse)})

    return month_end_claims, month_end_job, month_end_schedule
