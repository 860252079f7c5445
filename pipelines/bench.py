"""`bhi bench`: time the real pipeline on a synthetic drop of ~N time entries (project issue 6).

Stages, in order:

1. generation (reported, not counted): `write_sample(patients=N/25, months=12, end_month=2026-10)`,
   ~25 time entries per patient over 12 months; the last (open) month runs to the 20th, so the
   as-of date of the first run is 2026-10-20, the last generated day.
2. full rebuild: `run_pipeline` (the Dagster `nightly` job in-process) on a fresh warehouse, as of
   2026-10-20; per-asset seconds come from the run's step events.
3. rerun after one more day: one more time-entry file (`time_entries_2026-10_2026-10-21.csv`, it
   sorts after the month file so it is the latest delivery) holding a copy of 2026-10-20's
   entries without an encounter link, re-dated 2026-10-21 with new entry ids; then the job again,
   as of 2026-10-21, on the same warehouse: the nightly incremental run (only the new file is read;
   only the patients and entry versions it can change are rebuilt, see pipelines/warehouse/scope.py).
4. floor: DuckDB alone reads the same time-entry CSV files (`read_csv`) and groups them by patient
   and month, with the same threads and memory limit; the ratio full rebuild / floor says how far
   the pipeline is from a bare scan. The ledger floor (`ledger_floor`) is the least any run that
   keeps a ledger does on the same files: land them typed with file and row number, keep the latest
   version of each entry, sum minutes by patient and month, in a warehouse file. Its ratio to the
   floor is a reference point the full rebuild is not expected to go below (docs/performance.md).

Each pipeline run happens in a fresh (spawned) Python process, like a nightly `bhi run`, so its
peak RSS (`getrusage(RUSAGE_SELF).ru_maxrss`) is its own and not the generator's. The bench samples
the run process's RSS every 50 ms from a helper process; each step's and each SQL model's peak is the
highest sample within its start and end in the run log (a spike shorter than 50 ms can be missed
there, never in the run's peak). The run's wall
time excludes that process's start-up and imports (reported separately). DuckDB gets the threads
and memory limit through the run's Deployment settings (pipelines/defs/deployment.py);
polars (used by ingest to read the files) gets the same thread count through POLARS_MAX_THREADS.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ENTRIES_PER_PATIENT = 25  # what write_sample produces on average over 12 months
MONTHS = 12
END_MONTH = "2026-10"
OPEN_DAY = 20
AS_OF = dt.date(2026, 10, OPEN_DAY)  # the last generated day
NEXT_DAY = AS_OF + dt.timedelta(days=1)
EXTRA_FILE = f"time_entries_{END_MONTH}_{NEXT_DAY.isoformat()}.csv"

RERUN_LABEL = "nightly incremental run after one more day"
FLOOR_LABEL = "floor: DuckDB read_csv + group by patient, month"
LEDGER_LABEL = "ledger floor: land typed rows with file and row, latest version, minutes by month"


@dataclass
class RunStats:
    seconds: float
    import_seconds: float
    peak_rss_mb: float
    step_seconds: dict[str, float] = field(default_factory=dict)
    model_seconds: dict[str, float] = field(default_factory=dict)
    entries_ingested: int = 0
    build: dict = field(default_factory=dict)  # run_scope of the run: mode, reason, patients, entries
    peak_rss_by_step: dict[str, float] = field(default_factory=dict)  # step or SQL model -> peak RSS MB sampled


@dataclass
class BenchResult:
    entries_requested: int
    patients: int
    entries_generated: int
    extra_entries: int
    csv_bytes: int
    threads: int
    memory_limit: str
    generation_seconds: float
    rebuild: RunStats
    rerun: RunStats
    floor_seconds: float
    floor_groups: int
    ledger_seconds: float  # ledger_floor: the least a pipeline that keeps a ledger does
    workdir: Path
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def ratio(self) -> float:
        return self.rebuild.seconds / self.floor_seconds


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# The sampler is a small process of its own: a thread of the measured process would wait for the
# GIL while a step runs C code that holds it, and miss that step. It writes to a file, not a pipe: a
# pipe nobody reads fills after ~2,000 lines (100 s) and stops it.
_SAMPLER = """
import os, sys, time
page_mb, path, interval = os.sysconf("SC_PAGE_SIZE") / 2**20, f"/proc/{sys.argv[1]}/statm", float(sys.argv[2])
with open(path) as statm, open(sys.argv[3], "w", buffering=1) as out:
    while True:
        statm.seek(0)
        out.write(f"{time.time()} {int(statm.read().split()[1]) * page_mb}\\n")
        time.sleep(interval)
"""


class RssSampler:
    """Samples this process's resident set size every `interval` seconds from a helper process, while
    in a `with`."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (time.time(), MB)

    def __enter__(self) -> RssSampler:
        import subprocess

        fd, name = tempfile.mkstemp(prefix="bhi-rss-", suffix=".txt")
        os.close(fd)
        self._file = Path(name)
        self._proc = subprocess.Popen([sys.executable, "-c", _SAMPLER, str(os.getpid()), str(self.interval), name])
        started = time.monotonic()
        while not self._file.stat().st_size and self._proc.poll() is None and time.monotonic() - started < 10:
            time.sleep(0.01)  # sampling has started (or the helper could not: no samples)
        return self

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        self._proc.wait()
        lines = self._file.read_text().splitlines()
        self._file.unlink(missing_ok=True)
        fields = (line.split() for line in lines)
        self.samples = [(float(f[0]), float(f[1])) for f in fields if len(f) == 2]  # (a line cut by the stop)

    def peaks(self, windows: dict[str, tuple[float, float]]) -> dict[str, float]:
        """name -> highest sample within its (start, end), for the windows that hold a sample."""
        peaks = {}
        for name, (start, end) in windows.items():
            inside = [mb for t, mb in self.samples if start <= t <= end]
            if inside:
                peaks[name] = max(inside)
        return peaks


def _run_stage(extracts: str, out: str, as_of: str, threads: int, memory_limit: str) -> dict:
    """Runs in a fresh spawned process: one `run_pipeline`, timed; returns plain data."""
    started = time.perf_counter()
    os.environ["POLARS_MAX_THREADS"] = str(threads)  # polars reads it once, when it is first imported
    os.environ.pop("DAGSTER_HOME", None)  # ephemeral instance: no bench runs in the run history
    import pipelines.definitions  # noqa: F401  (imports are not part of the run's time)
    from pipelines.defs.deployment import Deployment
    from pipelines.run import run_pipeline

    import_seconds = time.perf_counter() - started
    with RssSampler() as rss:
        t0 = time.perf_counter()
        outcome = run_pipeline(
            Path(extracts), Path(out), as_of=dt.date.fromisoformat(as_of),
            settings=Deployment(duckdb_threads=threads, duckdb_memory_limit=memory_limit),
        )
        seconds = time.perf_counter() - t0
    if not outcome.success:
        raise RuntimeError(f"pipeline run failed: {outcome.error}")
    return {
        "seconds": seconds,
        "import_seconds": import_seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "step_seconds": dict(outcome.step_seconds),
        "model_seconds": dict(outcome.model_seconds),
        "entries_ingested": int(outcome.summary.get("entries_ingested") or 0),
        "build": dict(outcome.build),
        "peak_rss_by_step": rss.peaks(outcome.windows),
    }


def _run_in_fresh_process(**kwargs) -> RunStats:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return RunStats(**pool.submit(_run_stage, **kwargs).result())


def _run_in_this_process(**kwargs) -> RunStats:
    """For quick smoke tests: no process start-up, but peak RSS is this process's high-water mark."""
    names = ("POLARS_MAX_THREADS", "DAGSTER_HOME")
    saved = {k: os.environ.get(k) for k in names}
    try:
        return RunStats(**_run_stage(**kwargs))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _time_entry_files(drop: Path) -> list[Path]:
    return sorted(drop.glob("time_entries_*.csv"))


def append_next_day(drop: Path, total_entries: int) -> int:
    """Write EXTRA_FILE: AS_OF's unlinked entries copied to NEXT_DAY with new ids; return its rows."""
    import polars as pl

    month_file = drop / f"time_entries_{END_MONTH}.csv"
    df = pl.read_csv(month_file, infer_schema=False)
    day = AS_OF.isoformat()
    extra = df.filter((pl.col("service_date") == day) & pl.col("encounter_id").is_null())
    if extra.height == 0:  # tiny drops: take the open month's last logged day instead
        last = df.filter(pl.col("encounter_id").is_null())["service_date"].max()
        extra = df.filter((pl.col("service_date") == last) & pl.col("encounter_id").is_null())
    ids = pl.int_range(total_entries + 1, total_entries + 1 + extra.height, eager=True)
    extra = extra.with_columns(
        ("E" + ids.cast(pl.String).str.zfill(8)).alias("entry_id"),
        pl.lit(NEXT_DAY.isoformat()).alias("service_date"),
        pl.lit(NEXT_DAY.isoformat()).alias("documented_at"),
    )
    extra.write_csv(drop / EXTRA_FILE)
    return extra.height


def floor_scan(files: list[Path], threads: int, memory_limit: str) -> tuple[float, int]:
    """Seconds for DuckDB to read the CSV files and sum minutes by patient and month; groups."""
    import duckdb

    with duckdb.connect(":memory:", config={"threads": threads, "memory_limit": memory_limit}) as conn:
        t0 = time.perf_counter()
        conn.execute(
            """
            create table floor as
            select patient_id, substr(service_date, 1, 7) as service_month,
                   count(*) as entries, sum(try_cast(minutes as integer)) as minutes
            from read_csv(?, header = true, all_varchar = true)
            group by all
            """,
            [[str(f) for f in files]],
        )
        seconds = time.perf_counter() - t0
        groups = conn.sql("select count(*) from floor").fetchall()[0][0]
    return seconds, groups


def ledger_floor(files: list[Path], threads: int, memory_limit: str, database: Path) -> float:
    """Seconds (opening and closing a new warehouse file included) for the least work a run that keeps
    a ledger does: land the time entries typed, each file's rows numbered (what quarantine and
    corrections name), keep the latest version of each entry_id, sum minutes by patient and month;
    then checkpoint. No rule, no check, no output: a reference point the full rebuild, which does
    all of this and much more, is not expected to go below."""
    import duckdb

    database.unlink(missing_ok=True)
    t0 = time.perf_counter()
    with duckdb.connect(str(database), config={"threads": threads, "memory_limit": memory_limit}) as conn:
        # one select per file, each numbering its own rows, as ingest lands them (pipelines/ingest/load.py)
        per_file = [
            """(select entry_id, patient_id, staff_id, try_cast(service_date as date) as service_date,
                        try_cast(minutes as integer) as minutes, activity, program,
                        try_cast(start_time as time) as start_time, try_cast(end_time as time) as end_time,
                        try_cast(documented_at as date) as documented_at, encounter_id,
                        ? as source_file, row_number() over () + 1 as source_row
                 from read_csv(?, header = true, all_varchar = true))"""
            for _ in files
        ]
        conn.execute(
            "create table landed as " + " union all ".join(per_file), [v for f in files for v in (f.name, str(f))]
        )
        conn.execute(
            "create table latest as select * from landed"
            " qualify row_number() over (partition by entry_id order by source_file desc, source_row desc) = 1"
        )
        conn.execute(
            "create table minutes as select patient_id, date_trunc('month', service_date) as service_month,"
            " sum(minutes) as minutes from latest group by all"
        )
        conn.execute("checkpoint")
    seconds = time.perf_counter() - t0
    database.unlink(missing_ok=True)
    return seconds


def run_bench(
    entries: int,
    workdir: Path,
    threads: int | None = None,
    memory_limit: str = "2.5GB",
    seed: int = 7,
    progress=None,
    isolate: bool = True,
) -> BenchResult:
    """isolate=True (the CLI): each pipeline run in a fresh spawned process, so its peak RSS is its own."""
    from pipelines.sample import write_sample

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    threads = threads or os.cpu_count() or 1
    load_before = os.getloadavg()
    patients = max(1, round(entries / ENTRIES_PER_PATIENT))
    drop, out = workdir / "drop", workdir / "out"
    for d in (drop, out):  # a fresh drop and a fresh warehouse every time
        shutil.rmtree(d, ignore_errors=True)

    t0 = time.perf_counter()
    counts = write_sample(drop, patients=patients, months=MONTHS, end_month=END_MONTH, seed=seed, open_day=OPEN_DAY)
    generation_seconds = time.perf_counter() - t0
    say(f"generated {counts['time_entries']:,} time entries in {generation_seconds:.1f} s")
    month_files = _time_entry_files(drop)
    csv_bytes = sum(f.stat().st_size for f in month_files)

    run = {"extracts": str(drop), "out": str(out), "threads": threads, "memory_limit": memory_limit}
    run_once = _run_in_fresh_process if isolate else _run_in_this_process
    rebuild = run_once(as_of=AS_OF.isoformat(), **run)
    say(f"full rebuild {rebuild.seconds:.1f} s, peak RSS {rebuild.peak_rss_mb:,.0f} MB")
    floor_seconds, floor_groups = floor_scan(month_files, threads, memory_limit)
    say(f"floor {floor_seconds:.2f} s")
    ledger_seconds = ledger_floor(month_files, threads, memory_limit, workdir / "ledger-floor.duckdb")
    say(f"ledger floor {ledger_seconds:.2f} s")
    extra = append_next_day(drop, counts["time_entries"])
    rerun = run_once(as_of=NEXT_DAY.isoformat(), **run)
    say(
        f"rerun {rerun.seconds:.1f} s, peak RSS {rerun.peak_rss_mb:,.0f} MB ({rerun.build.get('mode')} build:"
        f" {rerun.build.get('patients', 0):,} patients, {rerun.build.get('entries', 0):,} entry versions)"
    )

    return BenchResult(
        entries_requested=entries,
        patients=patients,
        entries_generated=counts["time_entries"],
        extra_entries=extra,
        csv_bytes=csv_bytes,
        threads=threads,
        memory_limit=memory_limit,
        generation_seconds=generation_seconds,
        rebuild=rebuild,
        rerun=rerun,
        floor_seconds=floor_seconds,
        floor_groups=floor_groups,
        ledger_seconds=ledger_seconds,
        workdir=workdir,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


def _time_table(r: BenchResult, full: dict[str, float], rerun: dict[str, float]) -> list[str]:
    """One line per step (or model), slowest in the full rebuild first: seconds, share of the rebuild,
    and the peak RSS sampled while it ran in each run ("-" when it ran under one sample)."""

    def cell(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = []
    for key in sorted({**full, **rerun}, key=lambda k: -full.get(k, 0.0)):
        a, b = full.get(key), rerun.get(key)
        share = None if a is None else a / r.rebuild.seconds
        lines.append(
            f"{key:<56} {cell(a, '.2f'):>12} {cell(b, '.2f'):>9} {cell(share, '.1%'):>7}"
            f" {cell(r.rebuild.peak_rss_by_step.get(key), '.0f'):>9} {cell(r.rerun.peak_rss_by_step.get(key), '.0f'):>9}"
        )
    return lines


def format_result(r: BenchResult) -> str:
    w = 84
    lines = [
        (f"bhi bench: {r.entries_generated:,} time entries generated for {r.entries_requested:,} requested "
        f"({r.patients:,} patients x {MONTHS} months, {r.csv_bytes / 1e6:,.1f} MB of time-entry CSV), "
        f"threads {r.threads}, DuckDB memory limit {r.memory_limit}"),
        f"workdir {r.workdir}; as of {AS_OF}, rerun as of {NEXT_DAY} with {r.extra_entries:,} more entries"
        f" ({r.rerun.build.get('mode')} build: {r.rerun.build.get('patients', 0):,} patients,"
        f" {r.rerun.build.get('entries', 0):,} entry versions rebuilt)",
        "load average (1/5/15 min) before " + "/".join(f"{x:.2f}" for x in r.load_before)
        + ", after " + "/".join(f"{x:.2f}" for x in r.load_after) + f" on {os.cpu_count()} cores",
        "",
        f"{'stage':<{w}} {'seconds':>9} {'peak RSS MB':>12}",
        f"{'generation (write_sample; not counted in the rebuild)':<{w}} {r.generation_seconds:>9.2f} {'':>12}",
        f"{'full rebuild (Dagster job nightly, in-process)':<{w}} {r.rebuild.seconds:>9.2f} {r.rebuild.peak_rss_mb:>12,.0f}",
        f"{RERUN_LABEL:<{w}} {r.rerun.seconds:>9.2f} {r.rerun.peak_rss_mb:>12,.0f}",
        f"{FLOOR_LABEL:<{w}} {r.floor_seconds:>9.2f} {'':>12}",
        f"{LEDGER_LABEL:<{w}} {r.ledger_seconds:>9.2f} {'':>12}",
        f"ratio full rebuild / floor: {r.ratio:.1f}x",
        f"ratio ledger floor / floor: {r.ledger_seconds / r.floor_seconds:.1f}x (the full rebuild does all of it and more)",
        "",
        f"{'per Dagster step (seconds)':<56} {'full rebuild':>12} {'rerun':>9} {'share':>7} {'MB full':>9} {'MB rerun':>9}",
    ]
    lines += _time_table(r, r.rebuild.step_seconds, r.rerun.step_seconds)
    sa, sb = sum(r.rebuild.step_seconds.values()), sum(r.rerun.step_seconds.values())
    lines += [
        f"{'steps total':<56} {sa:>12.2f} {sb:>9.2f} {sa / r.rebuild.seconds:>7.1%}",
        (f"{'orchestration (run wall - steps)':<56} {r.rebuild.seconds - sa:>12.2f} {r.rerun.seconds - sb:>9.2f} "
        f"{(r.rebuild.seconds - sa) / r.rebuild.seconds:>7.1%}"),
        f"{'process start + imports (not counted)':<56} {r.rebuild.import_seconds:>12.2f} {r.rerun.import_seconds:>9.2f}",
        "",
        f"{'SQL models inside step sql_models (seconds)':<56} {'full rebuild':>12} {'rerun':>9} {'share':>7} {'MB full':>9} {'MB rerun':>9}",
    ]
    lines += _time_table(r, r.rebuild.model_seconds, r.rerun.model_seconds)
    return "\n".join(lines)


def _progress(message: str) -> None:
    print(f"bhi bench: {message}", file=sys.stderr, flush=True)


def main(entries: int, workdir: Path | None, threads: int | None, memory_limit: str) -> str:
    """Run the bench and return the table; progress goes to stderr."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            text = format_result(run_bench(entries, Path(tmp), threads, memory_limit, progress=_progress))
            return text.replace(f"workdir {tmp};", f"workdir {tmp} (removed);")
    workdir.mkdir(parents=True, exist_ok=True)
    return format_result(run_bench(entries, workdir, threads, memory_limit, progress=_progress))
