"""The portfolio page: every client's published Parquet (client_summary and run_status at its output
URI, local or object storage) read with DuckDB, one row per client, for the billing company's
leadership. A client whose last run failed or never finished, that published with problems, whose
extract is stale or whose last publication is older than portfolio.stale_after_hours stands out,
with the reason. Nothing is rerun: `bhi portfolio --clients clients.yaml` reads what the runs published."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import jinja2

from pipelines.clients.config import ClientsFile
from pipelines.clients.storage import MARTS_DIR, STATUS_FILE, enable_remote, exists, join, sql_string
from pipelines.safety import output_umask

TEMPLATES = Path(__file__).parent / "templates"
PAGE = "index.html"

PORTFOLIO_QUERY = """
with
configured as (select * from configured_clients),
status as (select * from client_status),
summary as (select * from client_summaries),
joined as (
    select
        configured.position,
        configured.client_id,
        configured.client_name,
        coalesce(status.site_url, configured.site_url) as site_url,
        status.status,
        status.error,
        status.problems,
        status.started_at,
        summary.* exclude (client_id)
    from configured
    left join status on status.client_id = configured.client_id
    left join summary on summary.client_id = configured.client_id
)
select
    *,
    case
        when status is null then 'no run'
        when status = 'running' and started_at < $cutoff then 'did not finish'
        else status
    end as state,
    list_filter([
        case when status is null then 'no run recorded' end,
        case when status = 'failed' then 'last run failed: ' || coalesce(error, 'no reason recorded') end,
        case when status = 'running' and started_at < $cutoff
            then 'run started ' || strftime(started_at, '%Y-%m-%d %H:%M') || ' UTC never finished' end,
        case when status is not null and run_id is null then 'nothing published yet' end,
        case when status = 'published' then problems end,
        case when is_stale then 'stale extract: newest entry ' || days_since_newest_entry || ' days before as-of' end,
        case when published_at < $cutoff
            then 'last published ' || strftime(published_at, '%Y-%m-%d %H:%M') || ' UTC, more than '
                || $hours || ' h ago' end
    ], lambda x: x is not null) as flags
from joined
order by position
"""


@dataclass
class PortfolioPage:
    path: Path
    clients: int
    flagged: list[str]  # "client: reason; reason", one per client that stands out
    rows: list[dict]


def _files(conn: duckdb.DuckDBPyConnection, uris: list[str], unreachable: set[str]) -> list[str]:
    found = []
    for uri in uris:
        try:
            if exists(conn, uri):
                found.append(uri)
        except (duckdb.Error, OSError):  # object storage down or access denied: that client stands out
            unreachable.add(uri)
    return found


def _load(conn: duckdb.DuckDBPyConnection, view: str, uris: list[str], columns: str, unreachable: set[str]) -> None:
    found = _files(conn, uris, unreachable)
    if found:
        listing = ", ".join(sql_string(u) for u in found)
        conn.execute(f"create temp view {view} as select * from read_parquet([{listing}], union_by_name = true)")
    else:  # nothing published anywhere yet: an empty view of the columns the query reads
        conn.execute(f"create temp view {view} as select * from (select {columns}) where false")


@cache
def _environment() -> jinja2.Environment:
    from dashboards.render import environment

    return environment().overlay(loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(TEMPLATES), environment().loader]))


def read_portfolio(clients: ClientsFile, now: dt.datetime | None = None) -> list[dict]:
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    cutoff = now - dt.timedelta(hours=clients.portfolio.stale_after_hours)
    with duckdb.connect() as conn:
        for client in clients.clients:
            enable_remote(conn, clients.output_uri(client))
        conn.execute("create temp table configured_clients (position int, client_id varchar, client_name varchar, site_url varchar)")
        from pipelines.clients.runner import site_link

        conn.executemany(
            "insert into configured_clients values (?, ?, ?, ?)",
            [[i, c.id, c.name, site_link(clients, c)] for i, c in enumerate(clients.clients)],
        )
        outputs = [clients.output_uri(c) for c in clients.clients]
        unreachable: set[str] = set()
        _load(conn, "client_status", [join(o, STATUS_FILE) for o in outputs], unreachable=unreachable, columns=
              "null::varchar as client_id, null::varchar as status, null::varchar as error, null::varchar as problems,"
              " null::timestamp as started_at, null::varchar as site_url")
        _load(conn, "client_summaries", [join(o, MARTS_DIR, "client_summary.parquet") for o in outputs],
              unreachable=unreachable, columns=
              "null::varchar as client_id, null::varchar as run_id, null::timestamp as published_at, null::date as as_of,"
              " null::decimal(14,2) as expected, null::bigint as claims_submitted, null::decimal(14,2) as paid,"
              " null::decimal(14,2) as denied, null::decimal(14,2) as left_on_table, null::double as collection_rate,"
              " null::decimal(14,2) as worklist_in_reach, null::date as newest_entry_date,"
              " null::int as days_since_newest_entry, null::boolean as is_stale")
        rel = conn.execute(PORTFOLIO_QUERY, {"cutoff": cutoff, "hours": f"{clients.portfolio.stale_after_hours:g}"})
        columns = [d[0] for d in rel.description]
        rows = [dict(zip(columns, row)) for row in rel.fetchall()]
    for row, output in zip(rows, outputs, strict=True):  # the query keeps the file's order
        if any(u.startswith(output + "/") for u in unreachable):
            row["flags"] = [f"its output {output} could not be read", *row["flags"]]
    return rows


def build_portfolio(clients: ClientsFile, out: Path | None = None, now: dt.datetime | None = None) -> PortfolioPage:
    """Read every client's published Parquet and write <portfolio.out>/index.html."""
    rows = read_portfolio(clients, now)
    totals = {k: sum(float(r.get(k) or 0) for r in rows) for k in ("expected", "paid", "denied", "left_on_table", "worklist_in_reach")}
    flagged = [f"{r['client_name']} ({r['client_id']}): {'; '.join(r['flags'])}" for r in rows if r["flags"]]
    built_at = (now or dt.datetime.now(dt.UTC).replace(tzinfo=None)).strftime("%Y-%m-%d %H:%M")
    html = _environment().get_template("portfolio.html.j2").render(rows=rows, totals=totals, flagged=flagged, built_at=built_at)
    folder = out or clients.portfolio_dir()
    with output_umask():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{PAGE}.tmp"
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, folder / PAGE)
    return PortfolioPage(folder / PAGE, len(rows), flagged, rows)
