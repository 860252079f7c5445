"""Seed the shipped reference data (data/reference/*.csv: payers, thresholds, fees, ...) as ref_* tables.

Every file becomes `ref_<file stem>`; columns named effective_from / effective_to are dates, an empty
effective_to means "still in force". Editing a CSV row is how a rule or rate changes.
"""

from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[1]
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


def reference_tables(reference_dir: Path = DEFAULT_REFERENCE_DIR) -> list[str]:
    return sorted(f"ref_{p.stem}" for p in Path(reference_dir).glob("*.csv"))


def seed_reference(conn: duckdb.DuckDBPyConnection, reference_dir: Path = DEFAULT_REFERENCE_DIR) -> dict[str, int]:
    """(Re)create every ref_* table in one transaction; return row counts."""
    counts = {}
    conn.begin()
    try:
        for path in sorted(Path(reference_dir).glob("*.csv")):
            table = f"ref_{path.stem}"
            src = f"read_csv('{path.as_posix()}', header = true, all_varchar = true)"
            names = [r[0] for r in conn.sql(f"select column_name from (describe select * from {src})").fetchall()]
            cols = ", ".join(
                f"nullif(trim({n}), '')::{FORCED_TYPES.get(n, 'varchar')} as {n}" for n in names
            )
            conn.execute(f"create or replace table {table} as select {cols} from {src}")
            counts[table] = conn.sql(f"select count(*) from {table}").fetchall()[0][0]
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    return counts
