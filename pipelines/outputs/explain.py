"""`bhi explain`: why a patient-month billed what it billed, in plain language, from the evidence
trail in the warehouse (fct_patient_months, fct_claim_evidence, int_time_entries_classified)."""

from __future__ import annotations

from pathlib import Path

import duckdb


class NotFound(Exception):
    pass


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[dict]:
    rel = conn.execute(sql, params)
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, row)) for row in rel.fetchall()]


def explain(warehouse: Path, patient_id: str, month: str) -> str:
    """Plain-language account of one patient-month (YYYY-MM), every program the patient is in."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return explain_with(conn, patient_id, month, where=str(warehouse))


def explain_with(conn: duckdb.DuckDBPyConnection, patient_id: str, month: str, where: str = "the warehouse") -> str:
    """`explain` on an open connection. The patient id is matched as written, else ignoring case
    (`p000033` finds `P000033` when no other id differs from it only in case); a month without an
    enrolled patient-month names the patient's months that have one."""
    patient_id = _patient(conn, patient_id.strip())
    rows = next(iter(_fetch(conn, [(patient_id, month)]).values()), None)
    if rows is None:
        months = _month_ranges(conn, patient_id)
        known = f"; enrolled patient-months of {patient_id}: {months}" if months else f"; {patient_id} has none in any month"
        raise NotFound(f"no enrolled patient-month for patient {patient_id} in {month} in {where}{known}")
    return _account(patient_id, month, *rows)


def _patient(conn: duckdb.DuckDBPyConnection, typed: str) -> str:
    """The patient id as stored: `typed` itself when it has patient-months, else the one id equal to it
    ignoring case (several such ids: `typed` is left as it is, and the message says it was not found)."""
    ids = [r[0] for r in conn.execute(
        "select distinct patient_id from fct_patient_months where lower(patient_id) = lower(?) order by 1", [typed]
    ).fetchall()]
    return typed if typed in ids or len(ids) != 1 else ids[0]


def _month_ranges(conn: duckdb.DuckDBPyConnection, patient_id: str) -> str:
    """The patient's enrolled service months as runs of consecutive months: `2026-01..2026-04, 2026-07`."""
    runs = conn.execute(
        """
        with months as (
            select distinct service_month,
                   date_diff('month', date '2000-01-01', service_month) as n
            from fct_patient_months where patient_id = ?
        ), runs as (
            select service_month, n - row_number() over (order by service_month) as run from months
        )
        select strftime(min(service_month), '%Y-%m'), strftime(max(service_month), '%Y-%m')
        from runs group by run order by 1
        """,
        [patient_id],
    ).fetchall()
    return ", ".join(first if first == last else f"{first}..{last}" for first, last in runs)


def explain_many(conn: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """`explain` for many (patient_id, YYYY-MM) pairs, reading each table once for all of them (the
    dashboards' drill-down pages); a pair without an enrolled patient-month is left out."""
    return {key: _account(*key, *rows) for key, rows in _fetch(conn, pairs).items()}


# The pairs asked for, as a table the queries join (two lists of the same length, zipped by unnest).
_KEYS = "(select unnest(?::varchar[]) as patient_id, unnest(?::date[]) as service_month)"


def _fetch(conn: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """The evidence trail of each (patient_id, YYYY-MM) pair with an enrolled patient-month: its
    patient-months, evidence items, excluded minutes and overlap collisions, one query per table
    for all pairs, grouped by pair in the order the queries return them."""
    params = [[p for p, _ in pairs], [f"{m}-01" for _, m in pairs]]
    months = _rows(
        conn,
        f"select * from fct_patient_months where (patient_id, service_month) in {_KEYS} "
        "order by patient_id, service_month, program",
        params,
    )
    evidence = _rows(
        conn,
        f"select * from fct_claim_evidence where (patient_id, service_month) in {_KEYS} "
        "order by patient_id, service_month, sort_order, item",
        params,
    )
    excluded = _rows(
        conn,
        f"""
        select patient_id, service_month, program, coalesce(exclusion_reason, overlap_reason) as reason,
               sum(case when exclusion_reason is not null then minutes else overlap_minutes end)::int as minutes,
               string_agg(entry_id, ', ' order by service_date, entry_id) as entries
        from int_time_entries_classified
        where (patient_id, service_month) in {_KEYS}
          and (exclusion_reason is not null or overlap_minutes > 0)
        group by all order by patient_id, service_month, minutes desc, program, reason
        """,
        params,
    )
    # each overlapped entry of the month with its clock time and the entries it collided with:
    # the same person's entries (any patient) and the patient's entries in the program by others;
    # another patient's entry is named by its id only
    collisions = _rows(
        conn,
        f"""
        select
            m.patient_id,
            m.service_month,
            m.program,
            m.entry_id,
            strftime(m.starts_at, '%Y-%m-%d %H:%M') || '-' || strftime(m.ends_at, '%H:%M') as clock,
            m.activity,
            m.staff_id,
            m.overlap_minutes,
            m.overlap_reason,
            string_agg(
                case
                    when o.patient_id = m.patient_id then
                        o.entry_id || ' (' || o.activity || ' by ' || o.staff_id || ' '
                        || strftime(o.starts_at, '%H:%M') || '-' || strftime(o.ends_at, '%H:%M') || ')'
                    else 'entry ' || o.entry_id || ' of another patient'
                end,
                '; ' order by o.starts_at, o.entry_id
            ) as collided_with
        from int_time_entries_classified as m
        inner join int_time_entries_classified as o
            on o.starts_at < m.ends_at and o.ends_at > m.starts_at
            and not (o.entry_id = m.entry_id and o.delivery_seq = m.delivery_seq and o.source_row = m.source_row)
            and (o.staff_id = m.staff_id or (o.patient_id = m.patient_id and o.program = m.program))
            and (o.blocks_countable_time or o.counts_if_consented)
        where (m.patient_id, m.service_month) in {_KEYS} and m.overlap_minutes > 0
        group by all
        order by m.patient_id, m.service_month, clock, m.entry_id
        """,
        params,
    )
    found: dict[tuple[str, str], tuple] = {}
    for row in months:
        key = (row["patient_id"], row["service_month"].strftime("%Y-%m"))
        found.setdefault(key, ([], [], [], []))[0].append(row)
    for i, rows in enumerate((evidence, excluded, collisions), start=1):
        for row in rows:
            key = (row["patient_id"], row["service_month"].strftime("%Y-%m"))
            if key in found:
                found[key][i].append(row)
    return found


def _account(patient_id: str, month: str, months: list[dict], evidence: list[dict], excluded: list[dict],
             collisions: list[dict]) -> str:
    """The plain-language account of one patient-month from its rows (see `_fetch`)."""
    lines = [f"Patient {patient_id}, {month}"]
    for m in months:
        program = m["program"]
        lines.append(
            f"\n{program.upper()} ({m['payer_id']}, rule set {m['rule_set']}): {m['month_status']} "
            f"{m['month_type']} month, {m['countable_minutes']} countable of {m['logged_minutes']} logged minutes"
        )
        thresholds = [e for e in evidence if e["program"] == program and e["section"] == "threshold"]
        for t in thresholds:
            lines.append(f"  {t['item']} {t['status']} with {m['countable_minutes']} countable min ({t['detail']})")
        if m["blocked_reason"] and m["current_codes"]:
            lines.append(
                f"  NOT BILLED: {m['current_codes']} = ${m['current_amount']:,.2f} blocked by "
                f"{m['blocked_reason'].replace('_', ' ')}"
            )
        elif m["blocked_reason"]:
            lines.append(f"  nothing billable; also blocked by {m['blocked_reason'].replace('_', ' ')}")
        elif m["current_codes"]:
            verb = "bills" if m["month_status"] == "closed" else "earned so far"
            lines.append(f"  {verb}: {m['current_codes']} = ${m['current_amount']:,.2f}")
        else:
            lines.append("  nothing billable")
        if m["next_codes"] and m["minutes_needed"]:
            lines.append(
                f"  next: {m['next_codes']} at {m['next_target_minutes']} min "
                f"({m['minutes_needed']} more, +${m['dollars_gained']:,.2f})"
            )
        ex = [x for x in excluded if x["program"] in (program, None)]
        if ex:
            total = sum(x["minutes"] for x in ex)
            parts = "; ".join(f"{x['reason'].replace('_', ' ')} {x['minutes']} min (entries {x['entries']})" for x in ex)
            lines.append(f"  {total} min excluded: {parts}")
        for c in (c for c in collisions if c["program"] == program):
            lines.append(
                f"  overlap: {c['entry_id']} {c['clock']} {c['activity']} by {c['staff_id']}: "
                f"{c['overlap_minutes']} min {c['overlap_reason'].replace('_', ' ')}, collided with {c['collided_with']}"
            )
        for f in (e for e in evidence if e["program"] == program and e["section"] == "scrub"):
            lines.append(f"  CLAIM SCRUB: {f['item']}: {f['detail']}")
        for g in (e for e in evidence if e["program"] == program and e["section"] == "gate"):
            lines.append(f"  gate {g['item'].replace('_', ' ')}: {g['status']} ({g['detail']})")
        if m["warnings"]:
            lines.append(f"  warnings: {m['warnings']}")
        lines.append("  entries:")
        for e in (e for e in evidence if e["program"] == program and e["section"] == "entry"):
            lines.append(f"    {e['item']} {e['status']}: {e['detail']}")
    return "\n".join(lines)
