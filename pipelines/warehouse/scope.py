"""What a run must recompute: everything (a full build) or only the patients and time entries that
new deliveries or the advancing as-of date can change (an incremental build).

The unit of incremental work is the patient, not the month: episodes (initial or subsequent month,
six-month breaks) and the once-a-year 99492 rule read a patient's whole history, so a late entry in a
closed month can change later months of the same patient, never another patient's. Overlapping
time is the one rule that crosses patients (one staff member's entries for two patients on one
day), so the entries to reclassify are closed over staff-days and patient-days.

`compute_scope` writes:
- run_scope (one row): mode `full` or `incremental`, why, and the sizes below;
- scope_entries: time-entry versions whose classification is rebuilt (entry_id, delivery_seq,
  source_row), and scope_entry_inputs: the versions their overlap windows need to see;
- scope_patients: patients whose patient-grained rows (months, codes, claims, evidence) are rebuilt.
`record_build` stores what the finished build covered (build_state), the baseline of the next run.

A full build is needed when there is no earlier build, `--full-refresh` was asked for, the SQL
models or the reference data changed, the as-of date moved to another month or backwards, or a
delivery changes rules for everyone (staff roster, payers, facilities) or the 837P elements of
every claim of a provider (providers, facility billing), or replaced a full-refresh
table, or the covered period of a facility moved (int_covered_periods, derived from the bulk of the
data: int_episodes starts every enrollment's months there).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipelines.warehouse.database import table_exists, transaction

# A new delivery of one of these tables can change any patient: the build is full.
# providers and facility_billing: every claim line of their billing / rendering providers (fct_x12_claim_lines)
# apcm: which codes a patient-month bills (and a correction may move a month to another patient)
TABLES_FORCING_FULL = ("staff", "payers", "facilities", "providers", "facility_billing", "apcm")


@dataclass(frozen=True)
class Scope:
    mode: str  # full | incremental
    reason: str
    patients: int = 0
    entries: int = 0


def _why_full(conn: duckdb.DuckDBPyConnection, code_version: str, model_tables: list[str]) -> str | None:
    if not table_exists(conn, "build_state"):
        return "no earlier build in this warehouse (first run, --full-refresh, or a new warehouse layout)"
    if "coverage_start" not in {c for (c,) in conn.sql("select column_name from (describe build_state)").fetchall()}:
        return "the last build was written by an earlier version (no coverage start recorded)"
    (last_seq, last_as_of, last_version, _coverage_start), = conn.sql(
        "select last_delivery_seq, as_of, code_version, coverage_start from build_state"
    ).fetchall()
    as_of = conn.sql("select as_of from run_parameters").fetchall()[0][0]
    if last_version != code_version:
        return "the SQL models or the reference data changed since the last build"
    if (as_of.year, as_of.month) != (last_as_of.year, last_as_of.month):
        return f"the as-of month changed ({last_as_of:%Y-%m} -> {as_of:%Y-%m}): months closed or opened"
    if as_of < last_as_of:
        return f"the as-of date moved back ({last_as_of} -> {as_of})"
    missing = [t for t in model_tables if not table_exists(conn, t)]
    if missing:
        return f"model table(s) missing: {', '.join(missing[:3])}"
    # the covered period of a facility (int_covered_periods: where int_episodes starts every
    # enrollment's months, before which entries are excluded) is derived from the bulk of the data:
    # recomputed here on the raw tables as the next build will see them; if any facility's changes,
    # every patient of it can change
    changed = _covered_periods_changed(conn)
    if changed:
        return f"the covered period of a facility changed ({changed})"
    tables = ", ".join(f"'{t}'" for t in TABLES_FORCING_FULL)
    # a full-refresh table's new file replaced (deleted) earlier rows: no diff to follow
    forcing = conn.sql(
        f"""
        select distinct table_name from ingest_files
        where status = 'loaded' and delivery_seq > {int(last_seq)}
          and (table_name in ({tables})
               or table_name in (select table_name from ingest_files where status = 'replaced'))
        order by 1
        """
    ).fetchall()
    if forcing:
        return f"new delivery of {', '.join(t for (t,) in forcing)} (changes every patient's rules)"
    return None


def _model_body(name: str) -> str:
    from pipelines.warehouse.models import SQL_DIR, strip_comments

    (path,) = SQL_DIR.glob(f"*/{name}.sql")
    return strip_comments(path.read_text()).strip().rstrip(";")


def _covered_periods_changed(conn: duckdb.DuckDBPyConnection) -> str | None:
    """The first facility (by id) whose covered period the current raw data moves, as
    'covered from YYYY-MM -> YYYY-MM', else None. The model's own SQL runs over its staging inputs
    computed from the raw tables (the same SQL files), so the rule lives in one place."""
    if not table_exists(conn, "int_covered_periods"):
        return "no covered periods recorded"
    shadows = ", ".join(
        f"{name} as ({_model_body(name)})" for name in ("stg_time_entries", "stg_enrollments", "stg_facilities")
    )
    rows = conn.sql(
        f"""
        with {shadows}, _now as ({_model_body('int_covered_periods')})
        select coalesce(strftime(b.covered_from, '%Y-%m'), 'none'), coalesce(strftime(n.covered_from, '%Y-%m'), 'none')
        from _now as n
        full outer join main.int_covered_periods as b using (facility_id)
        where n.covered_from is distinct from b.covered_from
        order by coalesce(n.facility_id, b.facility_id)
        limit 1
        """
    ).fetchall()
    return f"covered from {rows[0][0]} -> {rows[0][1]}" if rows else None


def compute_scope(
    conn: duckdb.DuckDBPyConnection, code_version: str, model_tables: list[str]
) -> Scope:
    """Decide full or incremental and write the scope tables (one transaction)."""
    reason = _why_full(conn, code_version, model_tables)
    with transaction(conn):
        if reason:
            for table in ("scope_entries", "scope_entry_inputs"):
                conn.execute(
                    f"create or replace table {table} (entry_id varchar, delivery_seq bigint, source_row bigint)"
                )
            conn.execute("create or replace table scope_patients (patient_id varchar)")
            scope = Scope("full", reason)
        else:
            _incremental_scope(conn)
            patients = conn.sql("select count(*) from scope_patients").fetchall()[0][0]
            entries = conn.sql("select count(*) from scope_entries").fetchall()[0][0]
            scope = Scope("incremental", "only what the new deliveries and the as-of date change", patients, entries)
        conn.execute(
            "create or replace table run_scope as select ? as mode, ? as reason, ?::bigint as patients,"
            " ?::bigint as entries",
            [scope.mode, scope.reason, scope.patients, scope.entries],
        )
    return scope


def _sharing_a_day(rows: str) -> str:
    """The entry versions that share a staff-day or a patient-day with the rows of relation `rows`
    (relation with staff_id, patient_id, service_date, start_time, end_time)."""
    # an entry crossing midnight (end before start) overlaps the next day's entries too: its next day
    # is one of its days, and an entry of the day before that crosses midnight shares the day
    days = f"""(select staff_id, patient_id, service_date from {rows}
                   union all
                   select staff_id, patient_id, service_date + 1 from {rows} where end_time < start_time)"""
    return f"""
        select r.entry_id, r.delivery_seq, r.source_row
        from raw_time_entries as r
        where (r.staff_id, r.service_date) in (select (staff_id, service_date) from {days})
           or (r.patient_id, r.service_date) in (select (patient_id, service_date) from {days})
           or (r.end_time < r.start_time and (
                (r.staff_id, r.service_date + 1) in (select (staff_id, service_date) from {days})
                or (r.patient_id, r.service_date + 1) in (select (patient_id, service_date) from {days})))
        """


def _incremental_scope(conn: duckdb.DuckDBPyConnection) -> None:
    """Entries and patients the deliveries since the last build (and the days since its as-of date)
    can change. Every set below is computed from the raw tables with set operations in DuckDB."""
    conn.execute(
        """
        create or replace temp table _since as
        select b.last_delivery_seq as last_seq, b.as_of as last_as_of, p.as_of
        from build_state as b cross join run_parameters as p
        """
    )
    # R: versions whose own classification can change: every version of a delivered entry_id (the
    # older ones become superseded), entries of patients with a new enrollment row, entries linked
    # to a newly delivered encounter, entries dated after the last as-of date up to this one
    conn.execute(
        """
        create or replace temp table _changed as
        with since as (select * from _since),
        new_ids as (select distinct entry_id from raw_time_entries where delivery_seq > (select last_seq from since)),
        new_enrolled as (
            select distinct patient_id from raw_enrollments where delivery_seq > (select last_seq from since)
        ),
        new_encounters as (
            select distinct encounter_id from raw_encounters where delivery_seq > (select last_seq from since)
        )
        select entry_id, delivery_seq, source_row, patient_id, staff_id, service_date, start_time, end_time
        from raw_time_entries
        where entry_id in (select entry_id from new_ids)
           or patient_id in (select patient_id from new_enrolled)
           or encounter_id in (select encounter_id from new_encounters)
           or (service_date > (select last_as_of from since) and service_date <= (select as_of from since))
        """
    )
    # the overlap rules compare entries of one staff member on one day and of one patient on one
    # day: every entry sharing a staff-day or a patient-day with a changed one is reclassified, and
    # its windows read every entry of its own staff-day and patient-day
    conn.execute(f"create or replace table scope_entries as {_sharing_a_day('_changed')}")
    conn.execute(
        "create or replace table scope_entry_inputs as with rescoped as ("
        " select r.* from raw_time_entries as r semi join scope_entries using (entry_id, delivery_seq, source_row))"
        f" {_sharing_a_day('rescoped')}"
    )
    # patients whose months, codes, claims and evidence are rebuilt: those of the reclassified
    # entries, and those with any other new delivery or an enrollment that started since last time
    conn.execute(
        """
        create or replace table scope_patients as
        with since as (select * from _since)
        select patient_id from raw_time_entries
        semi join scope_entries using (entry_id, delivery_seq, source_row)
        -- every version of a re-delivered review or encounter: a correction may move it to another patient
        union
        select patient_id from raw_psych_reviews where review_id in (
            select review_id from raw_psych_reviews where delivery_seq > (select last_seq from since))
        union
        select patient_id from raw_assessments where delivery_seq > (select last_seq from since)
        -- demographics and member ids: the patient's 837P claim lines (fct_x12_claim_lines)
        union
        select patient_id from raw_patients where delivery_seq > (select last_seq from since)
        union
        select patient_id from raw_encounters where encounter_id in (
            select encounter_id from raw_encounters where delivery_seq > (select last_seq from since))
        union
        select patient_id from raw_enrollments
        where delivery_seq > (select last_seq from since)
           or (enrolled_on > (select last_as_of from since) and enrolled_on <= (select as_of from since))
        """
    )
    conn.execute("drop table _changed")
    conn.execute("drop table _since")


def record_build(conn: duckdb.DuckDBPyConnection, code_version: str) -> None:
    """The build finished: the next run starts from these deliveries and this as-of date."""
    conn.execute(
        """
        create or replace table build_state as
        select
            (select coalesce(max(delivery_seq), 0) from ingest_files where status = 'loaded') as last_delivery_seq,
            (select as_of from run_parameters) as as_of,
            ? as code_version,
            -- the first month the extracts cover for any facility (int_covered_periods; informative:
            -- _why_full compares every facility's covered period)
            (select min(covered_from) from int_covered_periods) as coverage_start,
            current_timestamp as built_at
        """,
        [code_version],
    )
