"""`bhi bench` at a tiny size: every stage is measured and printed with positive numbers."""

from __future__ import annotations

import re

from pipelines.bench import FLOOR_LABEL, RERUN_LABEL, format_result, run_bench
from pipelines.cli import _cmd_bench, build_parser, main


def test_bench_command_line():
    args = build_parser().parse_args(["bench", "--entries", "3000", "--threads", "1", "--memory-limit", "1GB"])
    assert (args.func, args.entries, args.threads, args.memory_limit, args.workdir) == (_cmd_bench, 3000, 1, "1GB", None)
    assert main(["bench", "--entries", "0"]) == 2


def test_bench_prints_every_stage(tmp_path):
    # the runs stay in this process (no spawn) to keep the test fast; `bhi bench` spawns one per run
    out = format_result(run_bench(3000, tmp_path, threads=2, memory_limit="1GB", isolate=False))
    lines = out.splitlines()

    def row(label: str) -> list[float]:
        line = next(line for line in lines if line.startswith(label + " "))
        return [float(x.replace(",", "").rstrip("%")) for x in line[len(label) :].split()]

    generation = row("generation (write_sample; not counted in the rebuild)")
    rebuild = row("full rebuild (Dagster job nightly, in-process)")
    rerun = row(RERUN_LABEL)
    floor = row(FLOOR_LABEL)
    assert len(generation) == 1 and generation[0] > 0
    assert len(rebuild) == 2 and all(x > 0 for x in rebuild)  # seconds, peak RSS MB
    assert len(rerun) == 2 and all(x > 0 for x in rerun)
    assert len(floor) == 1 and floor[0] > 0

    ratio = re.search(r"^ratio full rebuild / floor: ([0-9.]+)x$", out, re.MULTILINE)
    assert ratio and float(ratio.group(1)) > 0
    # consistent with the printed seconds (rounded to 0.01 s)
    assert rebuild[0] / (floor[0] + 0.005) - 0.1 <= float(ratio.group(1)) <= rebuild[0] / (floor[0] - 0.005) + 0.1

    # per-asset timings from the Dagster run, for both runs
    for step in ("extracts", "sql_models", "stg_time_entries", "int_time_entries_classified", "fct_claims", "dashboards"):
        cells = row(step)
        assert len(cells) == 3 and cells[0] > 0 and cells[1] > 0, step  # rebuild s, rerun s, share %
    # the rerun is the nightly incremental run: it rebuilds only the patients the new day touches
    scope = re.search(
        r"rerun as of 2026-10-21 with [1-9][0-9,]* more entries \(incremental build: ([0-9,]+) patients, ([0-9,]+) entry",
        out,
    )
    assert scope and 0 < int(scope.group(1).replace(",", "")) < 3000 / 25
    assert (tmp_path / "drop" / "time_entries_2026-10_2026-10-21.csv").exists()
