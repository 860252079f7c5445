"""`bhi sample --clients N`: N synthetic clients of a billing company, from the one-drop generator
(pipelines/sample.py write_sample) with different sizes, payers, layouts and time zones, plus their
clients.yaml. Three kinds, repeated when N > 3:

- a large client in the canonical layout with the generator's payer mix (New York time);
- a medium client whose commercial plans are its own payer (`<id>_health`), with its payer row and
  contracted fees as reference overrides on the shipped data (Chicago time, nightly 01:30);
- a small client whose registry exports tab-delimited text (profiles/registry.yaml), without the
  Blue Cross plan (Denver time, closes on the 2nd).

Every client's patient ids carry its own prefix (`<ID>-P000123`), so a row of one client in
another's outputs would show. The rewrites are DuckDB queries over the generated files."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from pipelines.clients.storage import sql_string

KINDS = (
    ("riverside", "Riverside Family Medicine", 1.0, "America/New_York", "02:00", 1),
    ("lakeshore", "Lakeshore Health Partners", 0.4, "America/Chicago", "01:30", 1),
    ("mesa", "Mesa Community Clinics", 0.2, "America/Denver", "02:30", 2),
)
# the registry profile's names for canonical columns (profiles/registry.yaml), per table and file name
REGISTRY = {
    "time_entries": ("TimeEntries_{suffix}.txt", {"entry_id": "Entry Id", "patient_id": "Patient Id", "staff_id": "Clinician Id",
                                                  "activity": "Activity", "program": "Program", "minutes": "Billable Minutes"}),
    "staff": ("Clinicians.txt", {"staff_id": "Clinician Id", "name": "Name", "role": "Role", "facility_id": "Clinic"}),
    "enrollments": ("Caseload.txt", {"patient_id": "Patient Id", "program": "Program", "payer_id": "Insurance",
                                     "facility_id": "Clinic", "billing_provider_id": "PCP Id", "enrolled_on": "Enrolled",
                                     "consent_on": "Consent Signed", "discharged_on": "Discharged", "diagnosis_code": "Primary Dx"}),
    "psych_reviews": ("CaseReviews.txt", {"review_id": "Review Id", "patient_id": "Patient Id", "review_date": "Reviewed On",
                                          "consultant_id": "Psychiatrist Id"}),
    "encounters": ("Visits.txt", {"encounter_id": "Visit Id", "patient_id": "Patient Id", "encounter_date": "Visit Date",
                                  "provider_id": "Provider Id", "cpt_code": "CPT"}),
    "assessments": ("Measures.txt", {"patient_id": "Patient Id", "assessment_date": "Measured On", "instrument": "Measure",
                                     "score": "Score"}),
}
REGISTRY_PAYERS = {"medicare": "Medicare", "nc_medicaid": "NC Medicaid", "acme_commercial": "Acme Health Plan"}


@dataclass(frozen=True)
class SampleClient:
    id: str
    name: str
    patients: int
    kind: int  # 0 canonical, 1 own payer (overrides), 2 registry profile
    timezone: str
    nightly_time: str
    close_day: int


def plan(count: int, patients: int) -> list[SampleClient]:
    """`count` clients cycling through the three kinds; the n-th repeat of a kind gets a suffix."""
    out = []
    for i in range(count):
        cid, name, scale, tz, at, close = KINDS[i % 3]
        rep = i // 3
        out.append(SampleClient(f"{cid}-{rep + 1}" if rep else cid, name + (f" {rep + 1}" if rep else ""),
                                max(5, round(patients * scale)), i % 3, tz, at, close))
    return out


def _csvs(drop: Path) -> list[Path]:
    return sorted(drop.glob("*.csv"))


def _columns(conn: duckdb.DuckDBPyConnection, src: str) -> list[str]:
    return [r[0] for r in conn.sql(f"select column_name from (describe select * from {src})").fetchall()]


def _read(path: Path) -> str:
    return f"read_csv({sql_string(str(path))}, header = true, all_varchar = true)"


def _rewrite(conn: duckdb.DuckDBPyConnection, path: Path, replace: dict[str, str]) -> None:
    """Rewrite columns of one CSV file in place (as text), by SQL expressions over its columns."""
    cols = _columns(conn, _read(path))
    exprs = ", ".join(f"{replace[c]} as {c}" if c in replace else c for c in cols)
    tmp = path.with_name(path.name + ".tmp")
    conn.execute(f"copy (select {exprs} from {_read(path)}) to {sql_string(str(tmp))} (header, format csv)")
    os.replace(tmp, path)


def _prefix_patients(conn: duckdb.DuckDBPyConnection, drop: Path, prefix: str) -> None:
    for path in _csvs(drop):
        if "patient_id" in _columns(conn, _read(path)):
            _rewrite(conn, path, {"patient_id": f"{sql_string(prefix)} || patient_id"})


def _own_payer(conn: duckdb.DuckDBPyConnection, drop: Path, overrides: Path, payer: str) -> None:
    """The commercial plans (Acme, Blue Cross) become the client's own payer; its payers.csv row and
    contracted fees (10% over the shipped all-payer rates in force) are the client's overrides."""
    from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR

    own = f"case when payer_id in ('bcbs_mi', 'acme_commercial') then {sql_string(payer)} else payer_id end"
    _rewrite(conn, drop / "enrollments.csv", {"payer_id": own})
    overrides.mkdir(parents=True, exist_ok=True)
    ref = DEFAULT_REFERENCE_DIR
    conn.execute(
        f"copy (select * replace ({sql_string(payer)} as payer_id, 'Client health plan (sample)' as name,"
        f" 'client-specific payer (synthetic sample)' as note) from {_read(ref / 'payers.csv')} where payer_id = 'bcbs_mi')"
        f" to {sql_string(str(overrides / 'payers.csv'))} (header, format csv)"
    )
    conn.execute(
        f"copy (select * replace ({sql_string(payer)} as payer_id, round(amount::decimal(12,2) * 1.10, 2)::varchar as amount,"
        " 'contracted' as basis, 'client contract: 110% of the all-payer rate (synthetic sample)' as source)"
        f" from {_read(ref / 'fee_schedule.csv')} where payer_id = '*' and amount is not null)"
        f" to {sql_string(str(overrides / 'fee_schedule.csv'))} (header, format csv)"
    )


def _registry_layout(conn: duckdb.DuckDBPyConnection, drop: Path) -> None:
    """The canonical files of REGISTRY rewritten as the registry's tab-delimited exports."""
    for table, (pattern, names) in REGISTRY.items():
        for path in sorted(drop.glob(f"{table}*.csv")):
            cols = _columns(conn, _read(path))
            exprs = []
            for c in cols:
                if table == "time_entries" and c in ("service_date", "start_time", "end_time"):
                    continue  # the registry has start and end date-times instead
                value = c
                if table == "enrollments" and c == "payer_id":
                    value = "case payer_id " + " ".join(f"when '{k}' then '{v}'" for k, v in REGISTRY_PAYERS.items()) + " else payer_id end"
                exprs.append(f'{value} as "{names.get(c, c)}"')
            if table == "time_entries":
                for col, at in (("Start", "start_time"), ("End", "end_time")):
                    exprs.append(f"strftime(try_strptime(service_date || ' ' || {at}, '%Y-%m-%d %H:%M'), '%m/%d/%Y %H:%M') as \"{col}\"")
            suffix = path.stem.removeprefix(table).strip("_") or "all"
            target = drop / pattern.format(suffix=suffix)
            conn.execute(
                f"copy (select {', '.join(exprs)} from {_read(path)}) to {sql_string(str(target))} (header, delimiter '\t')"
            )
            path.unlink()
    for path in sorted(drop.glob("*.csv")):  # the other exports of that system: tab-delimited too
        conn.execute(
            f"copy (select * from {_read(path)}) to {sql_string(str(path.with_suffix('.txt')))} (header, delimiter '\t')"
        )
        path.unlink()


def write_sample_clients(
    root: Path, count: int = 3, patients: int = 300, months: int = 6, end_month: str = "2026-10", seed: int = 7,
    claims_loop_as_of: dt.date | None = None,
) -> Path:
    """Write <root>/drops/<id>/, <root>/overrides/<id>/ and <root>/clients.yaml; return the yaml's path."""
    from pipelines.sample import write_sample

    root = Path(root)
    entries = []
    with duckdb.connect() as conn:
        for i, c in enumerate(plan(count, patients)):
            drop = root / "drops" / c.id
            write_sample(drop, patients=c.patients, months=months, end_month=end_month, seed=seed + i)
            _prefix_patients(conn, drop, c.id.upper() + "-")
            entry = {"id": c.id, "name": c.name, "extracts": f"drops/{c.id}", "output": f"out/{c.id}",
                     "timezone": c.timezone, "nightly_time": c.nightly_time, "close_day": c.close_day}
            if c.kind == 1:
                _own_payer(conn, drop, root / "overrides" / c.id, f"{c.id.replace('-', '_')}_health")
                entry["reference_overrides"] = f"overrides/{c.id}"
            elif c.kind == 2:
                _rewrite(conn, drop / "enrollments.csv",
                         {"payer_id": "case payer_id when 'bcbs_mi' then 'acme_commercial' else payer_id end"})
            if claims_loop_as_of is not None:
                from pipelines.x12.sample_835 import write_sample_claims_loop

                write_sample_claims_loop(drop, claims_loop_as_of, seed + i)
            if c.kind == 2:
                _registry_layout(conn, drop)
                entry["profile"] = "registry"
            entries.append(entry)
    config = root / "clients.yaml"
    header = "# Synthetic clients written by `bhi sample --clients` (no real patients). docs/operations.md\n"
    config.write_text(header + yaml.safe_dump({"portfolio": {"out": "portfolio"}, "clients": entries}, sort_keys=False))
    return config
