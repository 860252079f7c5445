"""`bhi bench --clients N --entries E`: N synthetic clients holding ~E time entries in all (three
kinds of client, sizes 1 : 0.4 : 0.2, pipelines/clients/sample.py), each run as a first full build by
`bhi run-all` with every --parallel setting asked (default 1 and 2, each on fresh output folders);
prints the wall time of all clients, the speed-up over the first setting and the peak memory (RSS)
of each client's run process. Leadership PNGs are off unless BHI_LEADERSHIP_PNGS says otherwise."""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pipelines.bench import AS_OF, END_MONTH, ENTRIES_PER_PATIENT, MONTHS
from pipelines.clients.sample import KINDS


def _patients_for(count: int, entries: int) -> int:
    """The generator's `patients` (the size of a large client) that gives ~`entries` over `count` clients."""
    scale = sum(KINDS[i % 3][2] for i in range(count))
    return max(5, round(entries / ENTRIES_PER_PATIENT / scale))


def bench_clients(count: int, entries: int, workdir: Path | None = None, parallels: list[int] | None = None) -> str:
    from pipelines.clients.config import load_clients
    from pipelines.clients.run_all import run_all
    from pipelines.clients.sample import write_sample_clients

    parallels = parallels or [1, 2]
    os.environ.setdefault("BHI_LEADERSHIP_PNGS", "off")
    with tempfile.TemporaryDirectory(prefix="bhi-bench-clients-") as tmp:
        root = Path(workdir or tmp)
        started = time.perf_counter()
        config = write_sample_clients(root, count, patients=_patients_for(count, entries), months=MONTHS, end_month=END_MONTH)
        generated = time.perf_counter() - started
        clients = load_clients(config)
        lines = [
            f"bhi bench --clients {count}: ~{entries:,} time entries in all, {os.cpu_count()} cores, "
            f"generated in {generated:.1f} s (not counted); as of {AS_OF}, first full build of every client",
            f"  {'parallel':>8}  {'wall s':>8}  {'speed-up':>8}  {'failed':>6}  {'peak RSS per run MB (median / max)':>36}",
        ]
        first = None
        for parallel in parallels:
            for client in clients.clients:  # a fresh start: every client's first run
                shutil.rmtree(clients.work_dir(client), ignore_errors=True)
                shutil.rmtree(clients.output_uri(client), ignore_errors=True)
            started = time.perf_counter()
            runs = run_all(config, parallel, AS_OF)
            wall = time.perf_counter() - started
            first = first or wall
            rss = [r.peak_rss_mb for r in runs if r.peak_rss_mb]
            memory = f"{statistics.median(rss):,.0f} / {max(rss):,.0f}" if rss else "—"
            failed = sum(not r.success for r in runs)
            load = os.getloadavg()[0]  # other work on the machine makes the speed-up meaningless
            lines.append(f"  {parallel:>8}  {wall:>8.1f}  {first / wall:>7.2f}x  {failed:>6}  {memory:>36}   load average {load:.1f}")
        lines.append("  (speed-up: wall time of the first setting / this one; goal on 2 cores: >= 1.7x at --parallel 2)")
        return "\n".join(lines)
