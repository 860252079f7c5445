"""`bhi`: the command line (run the pipeline, write the synthetic sample)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines.run import run_pipeline

    started = time.perf_counter()
    outcome = run_pipeline(
        extracts=args.extracts,
        out=args.out,
        warehouse=args.warehouse,
        as_of=args.as_of,
        log_level="INFO" if args.verbose else "WARNING",
    )
    if not outcome.success:
        print(f"bhi run failed: {outcome.error}", file=sys.stderr)
        return 1
    s = outcome.summary
    out = args.out
    print(
        f"bhi run: as of {s['as_of']} (open month {s['open_month']:%Y-%m}) in {time.perf_counter() - started:.1f} s\n"
        f"  time entries ingested   {s['entries_ingested']:>12,}\n"
        f"  rows quarantined        {s['rows_quarantined']:>12,}   -> {out / 'quarantine.csv'}\n"
        f"  minutes counted         {s['minutes_counted']:>12,} of {s['minutes_ingested']:,} ingested"
        f" ({s['minutes_excluded']:,} excluded, {s['minutes_quarantined']:,} quarantined, each with a reason)\n"
        f"  claim lines (closed)    {s['claim_lines']:>12,}   -> {out / 'claims.csv'}\n"
        f"  expected revenue        ${s['expected_revenue']:>11,.2f}\n"
        f"  revenue left on table   ${s['revenue_left_on_table']:>11,.2f}   -> {out / 'revenue_gap.csv'}\n"
        f"  worklist (open month)   {out / 'near_threshold.csv'}\n"
        f"  dashboards              {out / 'dashboards' / 'index.html'}"
    )
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from pipelines.sample import write_sample

    counts = write_sample(
        args.out, patients=args.patients, months=args.months, end_month=args.end_month, seed=args.seed
    )
    print(f"wrote a synthetic extract drop to {args.out}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bhi", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="ingest an extract drop and produce claims, worklist and dashboards")
    run.add_argument("--extracts", type=Path, required=True, help="folder holding the extract files")
    run.add_argument("--out", type=Path, required=True, help="folder for exports and dashboards")
    run.add_argument("--warehouse", type=Path, help="DuckDB file (default: <out>/warehouse.duckdb)")
    run.add_argument(
        "--as-of", type=_date, default=None, help="YYYY-MM-DD (default today): its month is open, earlier months closed"
    )
    run.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=_cmd_run)

    sample = sub.add_parser("sample", help="write a synthetic extract drop")
    sample.add_argument("--out", type=Path, required=True)
    sample.add_argument("--patients", type=int, default=300)
    sample.add_argument("--months", type=int, default=6)
    sample.add_argument("--end-month", default="2026-10", help="last (open) month, YYYY-MM")
    sample.add_argument("--seed", type=int, default=7)
    sample.set_defaults(func=_cmd_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
