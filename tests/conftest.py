"""Shared fixtures: tiny hand-written extract drops and a fast warehouse build through the real SQL."""

from __future__ import annotations

import atexit
import copy
import csv
import datetime as dt
import fcntl
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

from pipelines.ingest.load import load_drop
from pipelines.warehouse.models import MODELS, SqlModel, in_dependency_order, materialize
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR, seed_reference
from pipelines.warehouse.run_state import snapshot_claims, write_run_parameters
from pipelines.x12.remittance_835 import load_remittances

REPO_ROOT = Path(__file__).resolve().parents[1]

# Pipeline runs in tests skip the email PNGs (a headless browser, ~5 s a run): the session's sample run
# writes them (and checks they are there), test_dashboards tests the export itself.
os.environ.setdefault("BHI_LEADERSHIP_PNGS", "off")
# One DuckDB thread per pipeline run: test drops are tiny, and the suite runs a worker per core.
os.environ.setdefault("BHI_DUCKDB_THREADS", "1")
# The 837P control-number counters (one per submitter, shared by the warehouses of a machine): the
# session's own folder, not the user's state folder
os.environ.setdefault("BHI_X12_COUNTER_DIR", tempfile.mkdtemp(prefix="bhi-test-x12-counters-"))
SAMPLE_DIR = REPO_ROOT / "data" / "sample"


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or list(rows[0])
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


class Drop:
    """A tiny extract drop written by a test: one care manager, one consultant, one practitioner,
    patients added one line at a time."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.staff = [
            {"staff_id": "CM1", "role": "care_manager", "facility_id": "F1", "annual_cost": "72000", "fte": "1"},
            {"staff_id": "PC1", "role": "psychiatric_consultant", "facility_id": "F1", "annual_cost": "280000", "fte": "0.1"},
            {"staff_id": "BP1", "role": "billing_practitioner", "facility_id": "F1", "annual_cost": "220000", "fte": "1"},
            {"staff_id": "CS1", "role": "clinical_staff", "facility_id": "F1", "annual_cost": "50000", "fte": "1"},
            {"staff_id": "TH1", "role": "therapist", "facility_id": "F1", "annual_cost": "90000", "fte": "1"},
        ]
        self.enrollments: list[dict] = []
        self.entries: list[dict] = []
        self.reviews: list[dict] = []
        self.encounters: list[dict] = []
        self.payers: list[dict] = []
        self.assessments: list[dict] = []
        self.facilities: list[dict] = []  # written only when a test lists a facility type
        self._seq = 0

    def facility(self, facility_id: str, facility_type: str) -> None:
        """List a facility in the optional facilities extract (physician_office, fqhc, rhc)."""
        self.facilities.append({"facility_id": facility_id, "facility_type": facility_type})

    def add_staff(self, staff_id: str, role: str, facility_id: str = "F1") -> None:
        self.staff.append({"staff_id": staff_id, "role": role, "facility_id": facility_id,
                           "annual_cost": "90000", "fte": "1"})

    def enroll(self, patient: str, *, program="cocm", payer="medicare", enrolled_on="2026-01-01",
               consent_on: str | None = "2026-01-01", discharged_on="", initiating_visit: str | None = "same day",
               non_duplicative="", facility="F1", billing_provider="BP1", discharge_reason="",
               diagnosis="F32.1") -> None:
        """Enrol a patient; by default with an initiating E/M visit by the billing practitioner that day."""
        if initiating_visit:
            day = enrolled_on if initiating_visit == "same day" else initiating_visit
            self.encounter(patient, day, "99213", provider=billing_provider)
        self.enrollments.append({
            "patient_id": patient, "program": program, "payer_id": payer, "facility_id": facility,
            "billing_provider_id": billing_provider, "enrolled_on": enrolled_on, "consent_on": consent_on or "",
            "discharged_on": discharged_on, "diagnosis_code": diagnosis,
            "non_duplicative_care_documented": non_duplicative, "discharge_reason": discharge_reason,
        })

    def encounter(self, patient: str, day: str, cpt_code: str, provider: str = "BP1") -> str:
        encounter_id = f"V{len(self.encounters) + 1:05d}"
        self.encounters.append({"encounter_id": encounter_id, "patient_id": patient, "encounter_date": day,
                                "provider_id": provider, "cpt_code": cpt_code})
        return encounter_id

    def assess(self, patient: str, day: str, instrument: str = "phq9", score: int = 12) -> None:
        self.assessments.append({"patient_id": patient, "assessment_date": day, "instrument": instrument,
                                 "score": score})

    def log(self, patient: str, day: str, minutes, *, staff="CM1", activity="follow_up", program="",
            start: str = "", end: str = "", encounter_id: str = "") -> str:
        self._seq += 1
        entry_id = f"E{self._seq:05d}"
        self.entries.append({
            "entry_id": entry_id, "patient_id": patient, "staff_id": staff, "service_date": day,
            "minutes": minutes, "activity": activity, "program": program,
            "start_time": start, "end_time": end, "encounter_id": encounter_id,
        })
        return entry_id

    def review(self, patient: str, day: str) -> None:
        self.reviews.append({"review_id": f"R{len(self.reviews) + 1}", "patient_id": patient,
                             "review_date": day, "consultant_id": "PC1"})

    def month(self, patient: str, month: str, minutes: int, *, review=True, **kw) -> None:
        """Log `minutes` countable minutes in `month` (YYYY-MM) in bursts of at most 20."""
        day = 2
        while minutes > 0:
            burst = min(20, minutes)
            self.log(patient, f"{month}-{day:02d}", burst, **kw)
            minutes -= burst
            day += 1
        if review:
            self.review(patient, f"{month}-15")

    def write(self) -> Path:
        f = self.folder
        write_csv(f / "staff.csv", self.staff, ["staff_id", "role", "facility_id", "name", "annual_cost", "fte"])
        write_csv(f / "enrollments.csv", self.enrollments,
                  ["patient_id", "program", "payer_id", "facility_id", "billing_provider_id", "enrolled_on",
                   "consent_on", "discharged_on", "diagnosis_code", "non_duplicative_care_documented",
                   "discharge_reason"])
        write_csv(f / "time_entries.csv", self.entries,
                  ["entry_id", "patient_id", "staff_id", "service_date", "minutes", "activity", "program",
                   "start_time", "end_time", "documented_at", "encounter_id"])
        write_csv(f / "psych_reviews.csv", self.reviews, ["review_id", "patient_id", "review_date", "consultant_id"])
        write_csv(f / "encounters.csv", self.encounters,
                  ["encounter_id", "patient_id", "encounter_date", "provider_id", "cpt_code"])
        if self.payers:
            write_csv(f / "payers.csv", self.payers)
        if self.assessments:
            write_csv(f / "assessments.csv", self.assessments)
        if self.facilities:
            optional = ["covered_from"] if any("covered_from" in r for r in self.facilities) else []
            write_csv(f / "facilities.csv", self.facilities, ["facility_id", "facility_type", "name", *optional])
        return f


def copy_first_run(drop: Drop, out: Path, target: Path) -> tuple[Drop, Path, Path]:
    """A private copy of a drop and of the out folder a first `bhi run` of it wrote (warehouse, outputs;
    its links are relative), for a test that goes on from that run: tests of one file share one
    first run (a module-scoped fixture) instead of each running it again. -> (drop, folder, out)"""
    mine = copy.deepcopy(drop)
    mine.folder = target / "drop"
    shutil.copytree(drop.folder, mine.folder)
    shutil.copytree(out, target / "out", symlinks=True)
    return mine, mine.folder, target / "out"


MODELS_BY_NAME = {m.name: m for m in MODELS}
_WORD = re.compile(r"\b[a-z_][a-z0-9_]*\b")


def models_for(names) -> list[SqlModel]:
    """The named models and every model upstream of them, in dependency order."""
    needed: set[str] = set()
    todo = [n for n in names if n in MODELS_BY_NAME]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += [u for u in MODELS_BY_NAME[name].upstream if u in MODELS_BY_NAME]
    return [m for m in in_dependency_order(MODELS) if m.name in needed]


class Warehouse:
    """A connection to a test warehouse that builds a SQL model (with the models it reads) the first
    time a statement names it, instead of all of them up front: most tests read one or two marts.
    Everything else is the DuckDB connection's own (`conn.close()`, `conn.begin()`, ...)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn
        self.built: set[str] = set()

    def build(self, *names: str) -> Warehouse:
        """Build the named models (all of them when none is named) and their upstream models."""
        for model in models_for(names or MODELS_BY_NAME):
            if model.name not in self.built:
                materialize(self.conn, model)
                self.built.add(model.name)
        return self

    def _needs(self, query) -> None:
        if isinstance(query, str):
            missing = (set(_WORD.findall(query.lower())) & MODELS_BY_NAME.keys()) - self.built
            if missing:  # (build() with no names builds every model)
                self.build(*missing)

    def sql(self, query, *args, **kwargs):
        self._needs(query)
        return self.conn.sql(query, *args, **kwargs)

    def execute(self, query, *args, **kwargs):
        self._needs(query)
        self.conn.execute(query, *args, **kwargs)
        return self

    def executemany(self, query, *args, **kwargs):
        self._needs(query)
        self.conn.executemany(query, *args, **kwargs)
        return self

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.conn.close()


@functools.cache
def _seeded_template() -> Path:
    """A warehouse file with the shipped reference data seeded, once per test process: each test
    warehouse starts as a copy of it (a file copy costs far less than seeding)."""
    folder = Path(tempfile.mkdtemp(prefix="bhi-test-reference-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "reference.duckdb"
    with duckdb.connect(str(path)) as conn:
        seed_reference(conn, DEFAULT_REFERENCE_DIR)
    return path


def seeded_warehouse(path: Path) -> duckdb.DuckDBPyConnection:
    """A new warehouse file at `path` with the shipped reference data (a copy of the seeded template)."""
    shutil.copyfile(_seeded_template(), path)
    conn = duckdb.connect(str(path))
    conn.execute("set threads = 1")  # tiny data, a worker per core
    return conn


def build_warehouse(path: Path, drop_dir: Path, as_of: str | dt.date, reference_dir: Path = DEFAULT_REFERENCE_DIR,
                    *, every_model: bool = False) -> Warehouse | duckdb.DuckDBPyConnection:
    """Seed, ingest, then run the SQL models in dependency order (the same functions the assets
    call). every_model=True: all of them, and the plain DuckDB connection is returned (for a test
    that hands the warehouse to pipeline code: DuckDB finds a Python variable named in a query only
    in its caller's frame, so that code must not be called through `Warehouse`). Otherwise each
    model is built the first time a query names it."""
    if Path(reference_dir) == DEFAULT_REFERENCE_DIR:
        conn = seeded_warehouse(path)
    else:
        conn = duckdb.connect(str(path))
        conn.execute("set threads = 1")
        seed_reference(conn, reference_dir)
    write_run_parameters(conn, as_of)
    snapshot_claims(conn)
    load_drop(conn, drop_dir)
    load_remittances(conn, drop_dir)  # X12 835 files of the drop, as the extracts asset does
    warehouse = Warehouse(conn)
    return warehouse.build().conn if every_model else warehouse


@pytest.fixture
def drop(tmp_path: Path) -> Drop:
    return Drop(tmp_path / "drop")


@pytest.fixture
def build(tmp_path: Path):
    """build(drop, as_of) -> a freshly built warehouse file (see build_warehouse)."""
    conns = []

    def _build(d: Drop, as_of: str = "2026-06-15", reference_dir: Path = DEFAULT_REFERENCE_DIR, *,
               every_model: bool = False):
        conn = build_warehouse(tmp_path / f"w{len(conns)}.duckdb", d.write(), as_of, reference_dir,
                               every_model=every_model)
        conns.append(conn)
        return conn

    yield _build
    for conn in conns:
        conn.close()


SAMPLE_AS_OF = "2026-10-20"


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory, worker_id) -> tuple[Path, str]:
    """One `bhi run` of the bundled sample as of SAMPLE_AS_OF for the whole session, shared by the
    xdist workers (the first to take the lock runs it): (output folder, printed summary). Tests only
    read it; a test that changes it works on a copy (`copy_sample_run`)."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # the base temp folder every worker's own folder is in
    folder = root / "sample-run"
    with (root / "sample-run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "stdout.txt").exists():
            shutil.rmtree(folder, ignore_errors=True)
            proc = subprocess.run(
                [sys.executable, "-m", "pipelines.cli", "run", "--extracts", str(SAMPLE_DIR), "--out",
                 str(folder / "out"), "--as-of", SAMPLE_AS_OF],
                capture_output=True, text=True, timeout=600, env={**os.environ, "BHI_LEADERSHIP_PNGS": "on"},
            )
            assert proc.returncode == 0, proc.stderr
            assert len(list((folder / "out" / "dashboards" / "email").glob("*.png"))) == 3
            (folder / "stdout.txt").write_text(proc.stdout)
    return folder / "out", (folder / "stdout.txt").read_text()


def copy_sample_run(sample_run: tuple[Path, str], target: Path) -> Path:
    """A private copy of the sample run's output folder (its links are relative) for a test that
    writes into it."""
    shutil.copytree(sample_run[0], target, symlinks=True)
    return target
