"""One client's nightly run: the single-client run (`pipelines/run.py` run_pipeline: the same
`nightly` job, run lock, publication and pages) on the client's own drop, warehouse, work folder and
layered reference data; then its report marts as Parquet and its run status at its output URI.

Whatever happens, the client's run status (run_status.parquet) says it: `running` when the run
starts (a run killed mid-way leaves it, with its start time), then `published` (with the problems a
published run can have: rejected files, unpriced lines, a stale extract, too much quarantined) or
`failed` with the one-line error. Nothing here reads another client's files."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.clients.config import Client, ClientsFile
from pipelines.clients.reference import OverrideError, layered_reference
from pipelines.clients.storage import MARTS_DIR, STATUS_FILE, join, sql_string, write_parquet
from pipelines.defs.deployment import Deployment
from pipelines.warehouse.models import REPO_ROOT

PORTFOLIO_SQL = REPO_ROOT / "sql" / "portfolio" / "client_summary.sql"
# the report marts a client run publishes as Parquet (no patient-level rows: they stay in its warehouse)
PUBLISHED_MARTS = (
    "rpt_run_summary", "fct_run_health", "rpt_payments_summary", "rpt_collection_rate",
    "rpt_revenue_gap_by_reason", "rpt_dashboard_headlines",
)
FAULT_CLIENT_ENV = "BHI_FAULT_CLIENT"  # tests only: BHI_FAULT_POINT applies to this client's run only
STATUS_RUNNING, STATUS_PUBLISHED, STATUS_FAILED = "running", "published", "failed"


@dataclass
class ClientResult:
    client_id: str
    status: str
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    seconds: float = 0.0
    peak_rss_mb: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_PUBLISHED and not self.problems

    def line(self) -> str:
        """The client's one line of the run-all summary (no patient data)."""
        s = self.summary
        head = f"{self.client_id:<16} {self.status:<9} {self.seconds:6.1f} s"
        if self.status != STATUS_PUBLISHED:
            return f"{head}  {self.error}"
        figures = (
            f"  as of {s.get('as_of')}: {s.get('claim_lines', 0):,} claim lines, ${s.get('expected_revenue', 0):,.2f}"
            f" expected, ${s.get('revenue_left_on_table', 0):,.2f} left on the table"
        )
        return head + figures + (f"; ATTENTION: {'; '.join(self.problems)}" if self.problems else "")


def problems_of(outcome) -> list[str]:
    """What a published run still needs someone to look at (the exit-1/3 reasons of `bhi run`)."""
    s = outcome.summary
    problems = []
    if outcome.file_errors:
        problems.append(f"{len(outcome.file_errors)} file(s) rejected")
    if outcome.unpriced:
        problems.append(f"{sum(r[3] for r in outcome.unpriced):,} unpriced claim line(s)")
    if s.get("is_stale"):
        problems.append(f"stale extract (newest entry {s.get('days_since_newest_entry')} days before as-of)")
    if s.get("quarantine_share_alert"):
        problems.append("too many rows quarantined")
    return problems


def deployment_for(clients: ClientsFile, client: Client, reference: Path) -> Deployment:
    work = clients.work_dir(client)
    return Deployment.from_environment(
        extracts_dir=str(clients.extracts_dir(client)),
        out_dir=str(work),
        warehouse=str(clients.warehouse(client)),
        reference_dir=str(reference),
        timezone=client.timezone,
        first_month=client.first_month,
        duckdb_threads=client.duckdb_threads or Deployment.from_environment().duckdb_threads,
        duckdb_memory_limit=client.duckdb_memory_limit or Deployment.from_environment().duckdb_memory_limit,
    )


def site_link(clients: ClientsFile, client: Client) -> str:
    return client.site_url or (clients.work_dir(client) / "dashboards" / "index.html").as_uri()


def write_status(
    clients: ClientsFile, client: Client, status: str, started_at: dt.datetime, error: str | None = None,
    problems: list[str] | None = None, run_id: str | None = None, as_of: dt.date | None = None,
) -> None:
    """The client's run_status.parquet: one row, replaced on every attempt."""
    finished = None if status == STATUS_RUNNING else dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with duckdb.connect() as conn:
        conn.execute(
            "create temp table status as select ?::varchar as client_id, ?::varchar as client_name, ?::varchar as status,"
            " ?::varchar as error, ?::varchar as problems, ?::varchar as run_id, ?::date as as_of,"
            " ?::timestamp as started_at, ?::timestamp as finished_at, ?::varchar as site_url",
            [client.id, client.name, status, error, "; ".join(problems or []) or None, run_id, as_of,
             started_at, finished, site_link(clients, client)],
        )
        write_parquet(conn, "select * from status", join(clients.output_uri(client), STATUS_FILE))


def publish_marts(clients: ClientsFile, client: Client) -> dict:
    """The report marts of the client's last published run as Parquet at <output>/marts/, each row
    with the client id; returns the portfolio summary row."""
    output = clients.output_uri(client)
    with duckdb.connect(str(clients.warehouse(client)), read_only=True) as conn:
        conn.execute(f"create temp view client_summary as {PORTFOLIO_SQL.read_text()}")
        cid = sql_string(client.id)
        for table in ("client_summary", *PUBLISHED_MARTS):
            write_parquet(conn, f"select {cid} as client_id, * from {table}", join(output, MARTS_DIR, f"{table}.parquet"))
        rel = conn.sql("select * from client_summary")
        return dict(zip(rel.columns, rel.fetchall()[0]))


def _fault_scope(client: Client) -> None:
    """Tests only: with BHI_FAULT_CLIENT set, the fault point (pipelines/safety.py) fires in that
    client's run only (this process runs one client)."""
    only = os.environ.get(FAULT_CLIENT_ENV)
    if only and only != client.id:
        os.environ.pop("BHI_FAULT_POINT", None)


def run_client(clients: ClientsFile, client: Client, as_of: dt.date | None = None, log_level: str = "CRITICAL") -> ClientResult:
    """Run one client's nightly job and publish its marts; never raises for a failed run."""
    from pipelines.run import run_pipeline  # imported late: it imports dagster

    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    _fault_scope(client)
    work = clients.work_dir(client)
    write_status(clients, client, STATUS_RUNNING, started_at, as_of=as_of)
    try:
        reference = layered_reference(clients.overrides_dir(client), work / "reference")
    except (OverrideError, duckdb.Error) as exc:
        error = str(exc).splitlines()[0]
        write_status(clients, client, STATUS_FAILED, started_at, error=error, as_of=as_of)
        return ClientResult(client.id, STATUS_FAILED, error, seconds=time.perf_counter() - started)
    outcome = run_pipeline(
        extracts=clients.extracts_dir(client), out=work, warehouse=clients.warehouse(client), as_of=as_of,
        reference=reference, log_level=log_level, profile=clients.profile(client),
        settings=deployment_for(clients, client, reference),
    )
    if not outcome.success:
        error = (outcome.error or "run failed").strip().splitlines()[0]
        write_status(clients, client, STATUS_FAILED, started_at, error=error, as_of=as_of)
        return ClientResult(client.id, STATUS_FAILED, error, seconds=time.perf_counter() - started)
    problems = problems_of(outcome)
    summary = dict(outcome.summary)
    try:
        published = publish_marts(clients, client)
    except (duckdb.Error, OSError) as exc:  # the pages are published; the marts could not be written
        error = f"published, but its marts could not be written to {clients.output_uri(client)}: {str(exc).splitlines()[0]}"
        write_status(clients, client, STATUS_FAILED, started_at, error=error, as_of=summary.get("as_of"))
        return ClientResult(client.id, STATUS_FAILED, error, problems, summary, time.perf_counter() - started)
    write_status(
        clients, client, STATUS_PUBLISHED, started_at, problems=problems, run_id=published.get("run_id"),
        as_of=summary.get("as_of"),
    )
    return ClientResult(client.id, STATUS_PUBLISHED, None, problems, summary, time.perf_counter() - started)
