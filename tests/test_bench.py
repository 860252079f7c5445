"""`bhi bench` at a tiny size: every stage, every Dagster step of the nightly job and every SQL model
is measured and printed, and the printed figures agree with each other (totals, shares, the ratio
to the floor). No timing thresholds: performance is never judged by a timed test."""

from __future__ import annotations

import re

from pipelines.bench import FLOOR_LABEL, LEDGER_LABEL, RERUN_LABEL, RssSampler, format_result, run_bench
from pipelines.cli import build_parser, main
from pipelines.definitions import build_definitions
from pipelines.defs.deployment import Deployment
from pipelines.warehouse.models import MODELS


def test_bench_command_line():
    args = build_parser().parse_args(["bench", "--entries", "3000", "--threads", "1", "--memory-limit", "1GB"])
    assert (args.entries, args.threads, args.memory_limit, args.workdir, args.clients) == (3000, 1, "1GB", None, None)
    many = build_parser().parse_args(["bench", "--entries", "3000", "--clients", "3", "--parallel", "1", "2"])
    assert (many.clients, many.parallel) == (3, [1, 2])
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
    ledger = row(LEDGER_LABEL)
    assert len(ledger) == 1 and ledger[0] > 0
    ledger_ratio = re.search(r"^ratio ledger floor / floor: ([0-9.]+)x \(the full rebuild does all of it and more\)$", out, re.MULTILINE)
    assert ledger_ratio  # consistent with the printed seconds (rounded to 0.01 s)
    assert (ledger[0] - 0.005) / (floor[0] + 0.005) - 0.1 <= float(ledger_ratio.group(1)) <= (ledger[0] + 0.005) / (floor[0] - 0.005) + 0.1
    assert not list(tmp_path.glob("ledger-floor.duckdb*"))  # its warehouse is removed
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
        line = next(line for line in lines if line.startswith(step + " "))
        cells = [float(c.rstrip("%")) for c in line.split()[1:4]]
        assert len(cells) == 3 and cells[0] > 0 and cells[1] > 0, step  # rebuild s, rerun s, share %
    # the rerun is the nightly incremental run: it rebuilds only the patients the new day touches
    scope = re.search(
        r"rerun as of 2026-10-21 with [1-9][0-9,]* more entries \(incremental build: ([0-9,]+) patients, ([0-9,]+) entry",
        out,
    )
    assert scope and 0 < int(scope.group(1).replace(",", "")) < 3000 / 25
    assert (tmp_path / "drop" / "time_entries_2026-10_2026-10-21.csv").exists()

    # the step table: one row per step of the nightly job (rebuild s, rerun s, share of the rebuild),
    # then their totals and the rest of the run's wall time, all within rounding (0.005 s a cell)
    steps_header = lines.index(next(line for line in lines if line.startswith("per Dagster step (seconds)")))
    total_at = lines.index(next(line for line in lines if line.startswith("steps total ")))
    step_rows = {line.split()[0]: line.split()[1:] for line in lines[steps_header + 1 : total_at]}
    job = build_definitions(Deployment()).resolve_job_def("nightly")
    assert set(step_rows) == {node.name for node in job.graph.node_defs}
    assert all(len(row) == 5 for row in step_rows.values())
    cells = [[float(c.rstrip("%")) for c in row[:3]] for row in step_rows.values()]
    # the peak RSS sampled (every 50 ms) while a step ran, in each run: a step of 0.3 s or more holds
    # samples, and none is above the run's peak
    for name, row_cells in step_rows.items():
        for seconds, mb, run_peak in ((row_cells[0], row_cells[3], rebuild[1]), (row_cells[1], row_cells[4], rerun[1])):
            if float(seconds) >= 0.3:
                assert mb != "-" and 0 < float(mb) <= run_peak, (name, row_cells)
    total = row("steps total")
    for column in (0, 1):
        assert abs(sum(c[column] for c in cells) - total[column]) <= 0.005 * (len(cells) + 1)
    orchestration = row("orchestration (run wall - steps)")
    assert abs(rebuild[0] - total[0] - orchestration[0]) <= 0.02
    assert abs(rerun[0] - total[1] - orchestration[1]) <= 0.02
    for c in cells:  # share = step seconds / rebuild seconds, rounded to 0.1 %
        assert abs(c[2] - 100 * c[0] / rebuild[0]) <= 0.05 + 100 * 0.005 / rebuild[0] * 2
    # the SQL model table: every model of sql/, timed in the rebuild, and together inside sql_models
    models_at = lines.index(next(line for line in lines if line.startswith("SQL models inside step sql_models")))
    model_rows = {line.split()[0]: line.split()[1:] for line in lines[models_at + 1 :] if line.strip()}
    assert set(model_rows) == {m.name for m in MODELS}
    model_total = sum(float(c[0]) for c in model_rows.values())
    assert model_total <= float(step_rows["sql_models"][0]) + 0.005 * len(model_rows)


def test_the_rss_sampler_keeps_sampling_to_the_end_of_a_long_run():
    # as fast as it can for 2 s: far more lines than a pipe nobody reads holds (~2,000), which once
    # stopped the sampler 100 s into a 7-minute run
    import time

    with RssSampler(interval=0) as rss:
        entered = time.time()
        time.sleep(2)
        left = time.time()
    assert len(rss.samples) > 5000
    assert rss.samples[0][0] - entered < 0.2 and left - rss.samples[-1][0] < 0.2
    assert all(mb > 10 for _, mb in rss.samples)  # this Python process's resident MB
