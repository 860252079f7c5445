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
    "published": "boolean",
    "display_order": "integer",
    "index_above": "integer",
    "anchor_months": "integer",
    "window_from_days": "integer",
    "window_to_days": "integer",
    "response_reduction": "double",
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
    "add_on_codes": ("add_on_code", "primary_code"),
    "apcm_add_ons": ("payer_id", "month_type", "code"),
    "adjustment_groups": ("group_code",),
    "carc_codes": ("code",),
    "charge_master": ("code",),
    "code_thresholds": ("rule_set", "program", "month_type", "facility_type", "code"),
    "diagnosis_codes": ("code_prefix",),
    "encounter_codes": ("code",),
    "facility_types": ("facility_type",),
    "instruments": ("instrument",),
    "modifiers": ("payer_id", "code", "modifier"),
    "outcome_exclusions": ("exclusions", "code_prefix"),
    "outcome_instruments": ("code_prefix",),
    "outcome_measures": ("measure",),
    "payer_edi": ("payer_id",),
    "payers": ("payer_id",),
    "programs": ("program",),
    "rarc_codes": ("code",),
    "roles": ("role", "program"),
    "rule_sets": ("rule_set",),
    "settings": ("setting",),
    "x12_settings": ("setting",),
    "x12_835_warning_segments": ("segment",),
    "plb_reason_codes": ("code",),
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


# outcome_measures.csv `result_kind`: what a measure's window decides (docs/outcomes.md)
OUTCOME_RESULT_KINDS = ("follow_up", "response", "remission")


def validate_outcome_measures(conn: duckdb.DuckDBPyConnection) -> None:
    """Raise ReferenceDataError naming every outcome_measures.csv row a model could not judge as
    meant: an unknown result_kind, a response without response_reduction, a remission without
    remission_below, a window that ends before it starts, no index_above, or an instrument that is
    not an outcome measure of instruments.csv."""
    kinds = ", ".join(f"'{k}'" for k in OUTCOME_RESULT_KINDS)
    problems = [
        r[0]
        for r in conn.sql(
            f"""
            select coalesce(m.measure, '?') || ': ' || concat_ws('; ',
                case when m.result_kind is null or m.result_kind not in ({kinds})
                     then 'result_kind must be one of {", ".join(OUTCOME_RESULT_KINDS)}' end,
                case when m.result_kind = 'response' and m.response_reduction is null
                     then 'a response measure needs response_reduction' end,
                case when m.result_kind = 'remission' and m.remission_below is null
                     then 'a remission measure needs remission_below' end,
                case when m.window_from_days is null or m.window_to_days is null or m.anchor_months is null
                     then 'anchor_months, window_from_days and window_to_days are required'
                     when m.window_to_days < m.window_from_days then 'window_to_days is before window_from_days' end,
                case when m.index_above is null then 'index_above is required' end,
                case when i.instrument is null then 'instrument is not an outcome_measure of instruments.csv' end
            ) as problem
            from ref_outcome_measures as m
            left join ref_instruments as i on i.instrument = m.instrument and i.outcome_measure
            where m.result_kind is null or m.result_kind not in ({kinds})
               or (m.result_kind = 'response' and m.response_reduction is null)
               or (m.result_kind = 'remission' and m.remission_below is null)
               or m.window_from_days is null or m.window_to_days is null or m.anchor_months is null
               or m.window_to_days < m.window_from_days or m.index_above is null or i.instrument is null
            order by problem
            """
        ).fetchall()
    ]
    if problems:
        raise ReferenceDataError("outcome_measures.csv: " + "; ".join(_first_problems(problems)))


# NCCI edits (claim scrubbing, docs/billing-rules.md): the files CMS publishes each quarter, in CMS's own
# column layout, in <reference>/ncci/. A file is recognised by its header row (found below any
# copyright or notice lines above it), not by its name: the practitioner PTP files (ccipra-*.txt, tab
# separated) and the practitioner services MUE table (MCR_MUE_PractitionerServices_*.csv).
NCCI_DIR = "ncci"
NCCI_TABLES = ("ref_ncci_ptp", "ref_ncci_mue")
_NCCI_HEADER_LINES = 40  # how far down a file its header row may be
_NCCI_COLUMNS = {
    # kind: (what its header row says, column names in CMS's order)
    "ptp": ("Column 1 ... Column 2", ("column_1", "column_2", "in_existence_prior_1996", "effective_date", "deletion_date",
                         "modifier_indicator", "ptp_edit_rationale")),
    "mue": ("MUE Adjudication Indicator", ("code", "mue_value", "mue_adjudication_indicator", "mue_rationale")),
}


def _ncci_header(path: Path) -> tuple[str, int, str] | None:
    """(kind, lines before the data, delimiter) of a CMS NCCI file, or None if it is not one."""
    with path.open(encoding="utf-8", errors="replace") as f:
        for i, line in zip(range(_NCCI_HEADER_LINES), f):
            low = line.lower().replace('"', "")
            tight = low.replace(" ", "")
            if "column1" in tight and "column2" in tight and ("effective" in low or "modifier" in low):
                return "ptp", i + 1, "\t" if "\t" in line else ","
            if "mueadjudicationindicator" in tight:
                return "mue", i + 1, "\t" if "\t" in line else ","
    return None


def ncci_files(reference_dir: Path) -> dict[str, list[Path]]:
    """The NCCI files of `reference_dir`/ncci by kind. The shipped excerpt of a kind (a name with
    EXCERPT in it) is used only while no other file of that kind is there: the quarter a user loads
    replaces it."""
    found: dict[str, list[Path]] = {"ptp": [], "mue": []}
    folder = Path(reference_dir) / NCCI_DIR
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.suffix.lower() not in (".txt", ".csv"):
            continue
        head = _ncci_header(path)
        if head is None:  # never ignored silently: a file put here is meant to be applied
            raise ReferenceDataError(
                f"{NCCI_DIR}/{path.name}: not a CMS practitioner PTP or MUE file (no header row naming Column 1 and"
                f" Column 2, or MUE Adjudication Indicator, in its first {_NCCI_HEADER_LINES} lines)"
            )
        found[head[0]].append(path)
    for kind, paths in found.items():
        full = [p for p in paths if "excerpt" not in p.name.lower()]
        found[kind] = full or paths
    return found


def seed_ncci(conn: duckdb.DuckDBPyConnection, reference_dir: Path) -> dict[str, int]:
    """ref_ncci_ptp and ref_ncci_mue from the NCCI files (`ncci_files`): CMS's columns, typed, one row
    per edit, with the file each came from (source_file). Lines that are not edits (notices, a
    header split over two lines) are skipped; an edit row with an unreadable date, indicator or
    value stops the run naming the file."""
    parts: dict[str, list[str]] = {"ptp": [], "mue": []}
    for kind, paths in ncci_files(reference_dir).items():
        names = _NCCI_COLUMNS[kind][1]
        for path in paths:
            _, skip, delim = _ncci_header(path)
            cols = "{" + ", ".join(f"'{n}': 'varchar'" for n in names) + "}"
            parts[kind].append(
                f"select *, '{path.name.replace(chr(39), chr(39) * 2)}' as source_file from read_csv("
                f"'{path.as_posix().replace(chr(39), chr(39) * 2)}', header = false, skip = {skip}, delim = '{delim}',"
                f" quote = '\"', columns = {cols}, null_padding = true, auto_detect = false)"
            )
    code = "regexp_full_match(trim({c}), '[0-9A-Z][0-9]{{3}}[0-9A-Z]')"
    ptp = " union all ".join(parts["ptp"]) or (
        "select " + ", ".join(f"null::varchar as {n}" for n in _NCCI_COLUMNS["ptp"][1]) + ", null as source_file where false")
    mue = " union all ".join(parts["mue"]) or (
        "select " + ", ".join(f"null::varchar as {n}" for n in _NCCI_COLUMNS["mue"][1]) + ", null as source_file where false")
    conn.execute(f"create or replace temp table _ncci_ptp as select * from ({ptp}) where {code.format(c='column_1')}")
    conn.execute(f"create or replace temp table _ncci_mue as select * from ({mue}) where {code.format(c='code')}")
    bad = conn.sql(
        """
        select source_file, count(*) from _ncci_ptp
        where try_strptime(trim(effective_date), '%Y%m%d') is null
           or (nullif(trim(deletion_date), '*') is not null and try_strptime(trim(deletion_date), '%Y%m%d') is null)
           or trim(modifier_indicator) not in ('0', '1', '9')
           or not regexp_full_match(trim(column_2), '[0-9A-Z][0-9]{3}[0-9A-Z]')
        group by all
        union all
        select source_file, count(*) from _ncci_mue
        where try_cast(trim(mue_value) as integer) is null or left(trim(mue_adjudication_indicator), 1) not in ('1', '2', '3')
        group by all
        order by 1
        """
    ).fetchall()
    if bad:
        raise ReferenceDataError(
            "NCCI file(s) with unreadable edit rows (a date, modifier indicator, MUE value or adjudication"
            " indicator): " + "; ".join(f"{name}: {n} row(s)" for name, n in bad)
        )
    conn.execute(
        """
        create or replace table ref_ncci_ptp as
        select distinct
            trim(column_1) as column_1,
            trim(column_2) as column_2,
            nullif(trim(in_existence_prior_1996), '') as in_existence_prior_1996,
            strptime(trim(effective_date), '%Y%m%d')::date as effective_date,
            -- '*' (no data): the edit is in force; a deletion date is the first day it no longer applies
            try_strptime(nullif(trim(deletion_date), '*'), '%Y%m%d')::date as deletion_date,
            trim(modifier_indicator) as modifier_indicator,
            trim(ptp_edit_rationale) as ptp_edit_rationale,
            source_file
        from _ncci_ptp
        """
    )
    conn.execute(
        """
        create or replace table ref_ncci_mue as
        select
            trim(code) as code,
            trim(mue_value)::integer as mue_value,
            left(trim(mue_adjudication_indicator), 1)::integer as mue_adjudication_indicator,
            trim(mue_adjudication_indicator) as mue_adjudication_text,
            trim(mue_rationale) as mue_rationale,
            source_file
        from _ncci_mue
        -- one value per code: the file named last (by name) wins if two quarters were left in the folder
        qualify row_number() over (partition by trim(code) order by source_file desc) = 1
        """
    )
    conn.execute("drop table _ncci_ptp")
    conn.execute("drop table _ncci_mue")
    return {t: conn.sql(f"select count(*) from {t}").fetchall()[0][0] for t in NCCI_TABLES}


def reference_tables(reference_dir: Path = DEFAULT_REFERENCE_DIR) -> list[str]:
    return sorted([*(f"ref_{p.stem}" for p in Path(reference_dir).glob("*.csv")), *NCCI_TABLES])


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
        if "ref_outcome_measures" in counts and "ref_instruments" in counts:
            validate_outcome_measures(conn)
        counts.update(seed_ncci(conn, reference_dir))
    return counts

REFERENCE_TABLES = reference_tables()
