"""Seed the shipped reference data (data/reference/*.csv: payers, thresholds, fees, ...) as ref_* tables.

Every file becomes `ref_<file stem>`; columns named effective_from / effective_to are dates, an empty
effective_to means "still in force". Editing a CSV row is how a rule or rate changes.

fee_schedule.csv is validated as it is seeded (`validate_fee_schedule`): every row says how its amount
was obtained (`basis`), and two rows of one payer and code never overlap in time, so the rate of a
month is never ambiguous. Every other file is checked against its key (`REFERENCE_KEYS`,
`validate_keys`): two rows of one key, or in a dated file two rows of one key in force on one day,
would leave a join to settle by row order. A broken reference stops the run with a message naming the rows.
"""

from pathlib import Path

import duckdb

from pipelines.warehouse.database import transaction

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REFERENCE_DIR = REPO_ROOT / "data" / "reference"

# Column types that auto-detection could get wrong on a short or empty file.
FORCED_TYPES = {
    "effective_from": "date",
    "effective_to": "date",
    "min_minutes": "integer",
    "max_minutes": "integer",
    "unit_minutes": "integer",
    "max_add_on_units": "integer",
    "episode_break_months": "integer",
    "amount": "decimal(12,2)",
    "count_consultant_time": "boolean",
    "counts": "boolean",
    "has_episodes": "boolean",
    "requires_consent": "boolean",
    "requires_psych_review": "boolean",
    "requires_initiating_visit": "boolean",
    "measurement_based_care": "boolean",
    "checks_outside_therapy": "boolean",
    "requires_bh_diagnosis": "boolean",
    "initiating_visit": "boolean",
    "separately_billed": "boolean",
    "max_initial_months_per_year": "integer",
    "measurement_based_care_gate": "boolean",
    "expected_denial_rate": "double",
    "patient_coinsurance_share": "double",
    "outcome_measure": "boolean",
    "remission_below": "integer",
}


# fee_schedule.csv `basis`: how a row's amount was obtained (docs/billing-rules.md, fee_schedule.csv).
# `no_rate` rows carry no amount (a code in force whose rate is not settled): their lines are unpriced.
FEE_BASES = ("published", "derived_cf_ratio", "crosswalk", "contracted", "modeling_default", "no_rate")


class ReferenceDataError(ValueError):
    """A shipped or user-edited reference file is inconsistent; the message names the rows."""


# What makes a row of each reference file one of a kind: the models join on these columns, so two
# rows with one key (or, in a dated file, two rows of one key in force on one day) would be a tie a
# join settles by row order. fee_schedule.csv has its own check (validate_fee_schedule).
REFERENCE_KEYS = {
    "activities": ("activity",),
    "adjustment_groups": ("group_code",),
    "carc_codes": ("code",),
    "charge_master": ("code",),
    "code_thresholds": ("rule_set", "program", "month_type", "facility_type", "code"),
    "diagnosis_codes": ("code_prefix",),
    "encounter_codes": ("code",),
    "facility_types": ("facility_type",),
    "instruments": ("instrument",),
    "modifiers": ("payer_id", "code", "modifier"),
    "payer_edi": ("payer_id",),
    "payers": ("payer_id",),
    "programs": ("program",),
    "rarc_codes": ("code",),
    "roles": ("role", "program"),
    "rule_sets": ("rule_set",),
    "settings": ("setting",),
    "x12_settings": ("setting",),
}
KEY_PROBLEMS_SHOWN = 20


def _first_problems(problems: list[str]) -> list[str]:
    """The first KEY_PROBLEMS_SHOWN problems, then how many more."""
    more = len(problems) - KEY_PROBLEMS_SHOWN
    return problems[:KEY_PROBLEMS_SHOWN] + ([f"... and {more} more"] if more > 0 else [])


def validate_keys(conn: duckdb.DuckDBPyConnection, stem: str, table: str) -> None:
    """Raise ReferenceDataError naming the rows of `<stem>.csv` that share its key (REFERENCE_KEYS);
    in a file with effective_from / effective_to, the rows of one key whose periods overlap (inclusive;
    an empty effective_to is open)."""
    key = REFERENCE_KEYS.get(stem)
    if not key:
        return
    columns = {r[0] for r in conn.sql(f"select column_name from (describe {table})").fetchall()}
    missing = [c for c in key if c not in columns]
    if missing:
        raise ReferenceDataError(f"{stem}.csv has no column {', '.join(missing)}")
    dated = {"effective_from", "effective_to"} <= columns
    named = " || ', ' || ".join(f"'{c}=' || coalesce(a.{c}::varchar, '')" for c in key)
    same = " and ".join(f"a.{c} is not distinct from b.{c}" for c in key)
    when = (
        " || ' (' || coalesce(a.effective_from::varchar, '?') || '..' || coalesce(a.effective_to::varchar, 'open')"
        " || ' and ' || coalesce(b.effective_from::varchar, '?') || '..' || coalesce(b.effective_to::varchar, 'open') || ')'"
        if dated else ""
    )
    overlap = (
        " and coalesce(a.effective_from, date '0001-01-01') <= coalesce(b.effective_to, date '9999-12-31')"
        " and coalesce(b.effective_from, date '0001-01-01') <= coalesce(a.effective_to, date '9999-12-31')"
        if dated else ""
    )
    problems = [
        r[0]
        for r in conn.sql(
            f"""
            with t as (select *, row_number() over (order by {", ".join(sorted(columns))}) as _k from {table})
            select distinct {named}{when} as problem
            from t as a inner join t as b on a._k < b._k and {same}{overlap}
            order by problem
            """
        ).fetchall()
    ]
    if problems:
        shown = _first_problems(problems)
        rule = "in force on one day" if dated else "at most"
        raise ReferenceDataError(
            f"{stem}.csv: two rows for " + "; ".join(shown) + f": one row per {'/'.join(key)} {rule}"
        )


def _fee_row(alias: str) -> str:
    """SQL text naming one fee_schedule.csv row by its content (reference data, no patient data)."""
    return (
        f"{alias}.payer_id || ' ' || {alias}.code || ' ' || coalesce({alias}.effective_from::varchar, '?') || '..'"
        f" || coalesce({alias}.effective_to::varchar, 'open') || ' ('"
        f" || coalesce('$' || {alias}.amount::varchar, 'no amount') || ', ' || coalesce({alias}.basis, 'no basis') || ')'"
    )


def validate_fee_schedule(conn: duckdb.DuckDBPyConnection, table: str = "ref_fee_schedule") -> None:
    """Raise ReferenceDataError naming every fee_schedule.csv row that is incomplete or that overlaps
    another row of the same payer and code (periods are inclusive; an empty effective_to is open)."""
    columns = {r[0] for r in conn.sql(f"select column_name from (describe {table})").fetchall()}
    missing = [c for c in ("payer_id", "code", "effective_from", "effective_to", "amount", "basis", "source")
               if c not in columns]
    if missing:
        raise ReferenceDataError(f"fee_schedule.csv has no column {', '.join(missing)}")
    bases = ", ".join(f"'{b}'" for b in FEE_BASES)
    problems = [
        row[0]
        for row in conn.sql(
            f"""
            with fees as (select *, row_number() over (
                order by payer_id, code, effective_from, effective_to, amount, basis, source) as k from {table}),
            bad as (
                select k, {_fee_row('f')} || ': ' || concat_ws('; ',
                    case when f.payer_id is null or f.code is null then 'payer_id and code are required' end,
                    case when f.effective_from is null then 'effective_from is required' end,
                    case when f.effective_to < f.effective_from then 'effective_to is before effective_from' end,
                    case when f.basis is null or f.basis not in ({bases})
                         then 'basis must be one of {", ".join(FEE_BASES)}' end,
                    case when f.basis = 'no_rate' and f.amount is not null then 'a no_rate row has no amount' end,
                    case when f.basis <> 'no_rate' and f.amount is null then 'amount is required (or basis no_rate)' end,
                    case when f.amount < 0 then 'amount is negative' end
                ) as problem
                from fees as f
                where f.payer_id is null or f.code is null or f.effective_from is null
                   or f.effective_to < f.effective_from or f.basis is null or f.basis not in ({bases})
                   or (f.basis = 'no_rate') = (f.amount is not null) or f.amount < 0
            ),
            overlapping as (
                select a.k, {_fee_row('a')} || ' overlaps ' || {_fee_row('b')}
                    || ': one row per payer and code in force on any day' as problem
                from fees as a
                inner join fees as b
                    on a.payer_id = b.payer_id and a.code = b.code and a.k < b.k
                    and a.effective_from <= coalesce(b.effective_to, date '9999-12-31')
                    and b.effective_from <= coalesce(a.effective_to, date '9999-12-31')
            )
            select problem from (select * from bad union all select * from overlapping) order by k, problem
            """
        ).fetchall()
    ]
    if problems:
        raise ReferenceDataError("fee_schedule.csv: " + "; ".join(_first_problems(problems)))


def reference_tables(reference_dir: Path = DEFAULT_REFERENCE_DIR) -> list[str]:
    return sorted(f"ref_{p.stem}" for p in Path(reference_dir).glob("*.csv"))


def seed_reference(conn: duckdb.DuckDBPyConnection, reference_dir: Path = DEFAULT_REFERENCE_DIR) -> dict[str, int]:
    """(Re)create every ref_* table in one transaction; return row counts."""
    counts = {}
    with transaction(conn):
        for path in sorted(Path(reference_dir).glob("*.csv")):
            table = f"ref_{path.stem}"
            src = "read_csv(?, header = true, all_varchar = true)"  # the path as a parameter, never SQL text
            names = [r[0] for r in conn.execute(f"select column_name from (describe select * from {src})",
                                                [path.as_posix()]).fetchall()]
            cols = ", ".join(
                f"nullif(trim({n}), '')::{FORCED_TYPES.get(n, 'varchar')} as {n}" for n in names
            )
            conn.execute(f"create or replace table {table} as select {cols} from {src}", [path.as_posix()])
            counts[table] = conn.sql(f"select count(*) from {table}").fetchall()[0][0]
            validate_keys(conn, path.stem, table)
        if "ref_fee_schedule" in counts:
            validate_fee_schedule(conn)
    return counts

REFERENCE_TABLES = reference_tables()
