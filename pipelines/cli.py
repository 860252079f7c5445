"""`bhi`: the command line (run the pipeline, write the synthetic sample, benchmark)."""

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
        profile=args.profile,
        full_refresh=args.full_refresh,
    )
    if not outcome.success:
        print(f"bhi run failed: {outcome.error}", file=sys.stderr)
        return 1
    s = outcome.summary
    out = args.out
    b = outcome.build
    build = (
        f"incremental: {b['patients']:,} patients, {b['entries']:,} entry versions rebuilt"
        if b.get("mode") == "incremental"
        else f"full: {b.get('reason', '')}"
    )
    print(
        f"bhi run: as of {s['as_of']} (open month {s['open_month']:%Y-%m}) in {time.perf_counter() - started:.1f} s\n"
        f"  build                   {build}\n"
        f"  time entries ingested   {s['entries_ingested']:>12,}\n"
        f"  rows quarantined        {s['rows_quarantined']:>12,}   -> {out / 'quarantine.csv'}\n"
        f"  minutes counted         {s['minutes_counted']:>12,} of {s['minutes_ingested']:,} ingested"
        f" ({s['minutes_excluded']:,} excluded, {s['minutes_quarantined']:,} quarantined, each with a reason)\n"
        f"  claim lines (closed)    {s['claim_lines']:>12,}   -> {out / 'claims.csv'}\n"
        f"  expected revenue        ${s['expected_revenue']:>11,.2f}\n"
        f"  revenue left on table   ${s['revenue_left_on_table']:>11,.2f}   -> {out / 'revenue_gap.csv'}\n"
        f"  worklist (open month)   {out / 'near_threshold.csv'}\n"
        f"  evidence by month       {out / 'claim_evidence' / '<YYYY-MM>.csv'}\n"
        f"  dashboards              {out / 'dashboards' / 'index.html'}"
    )
    if outcome.file_errors:
        # the other files loaded and every output was written, but a file was skipped: not a clean run
        print(
            f"bhi run: {len(outcome.file_errors)} file(s) rejected and not loaded (fix or remove them; they are"
            " retried on the next run):\n" + "\n".join(f"  {e}" for e in outcome.file_errors),
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_close(args: argparse.Namespace) -> int:
    from pipelines.run import close_months_run

    last = args.through or args.month
    if last < args.month:
        print(f"bhi close: --through {last} is before --month {args.month}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    outcome = close_months_run(args.out, args.month, last, warehouse=args.warehouse, log_level="CRITICAL")
    if not outcome.success:
        print(f"bhi close failed: {outcome.error}", file=sys.stderr)
        return 1
    folder = args.out / "month_end"
    for month, lines, amount, as_of in outcome.summary["months"]:
        print(
            f"closed {month} as of {as_of}: {lines:,} claim lines, ${amount:,.2f}"
            f"  -> {folder / f'claims_{month}.csv'}, {folder / f'claim_evidence_{month}.csv'}"
        )
    _print_837(args, folder, args.month, last, started)
    return 0


def _print_837(args: argparse.Namespace, folder: Path, first: str, last: str, started: dt.datetime) -> None:
    """What the close sent as X12 837P (this close's interchanges) and what it held back."""
    import duckdb

    from pipelines.x12.claims_837 import X837_DIR

    with duckdb.connect(str(args.warehouse or args.out / "warehouse.duckdb"), read_only=True) as conn:
        sent = conn.execute(
            "select file_name, count(*), string_agg(distinct frequency_code, ',' order by frequency_code)"
            " from x12_claim_submissions where submitted_at >= ?"
            " and service_month between ?::date and ?::date group by 1 order by 1",
            [started, f"{first}-01", f"{last}-01"],
        ).fetchall()
        held = conn.execute(
            "select count(*) from fct_x12_claims_held where service_month between ?::date and ?::date",
            [f"{first}-01", f"{last}-01"],
        ).fetchall()[0][0]
    for file_name, claims, codes in sent:
        print(f"837P {claims:,} claims (frequency codes {codes}) -> {folder / X837_DIR / file_name}")
    if not sent:
        print("837P: nothing new, changed or removed since the last close: no file written")
    if held:
        print(f"837P: {held:,} claims held back for missing elements (table fct_x12_claims_held)")


def _cmd_sample(args: argparse.Namespace) -> int:
    from pipelines.sample import write_sample

    counts = write_sample(
        args.out, patients=args.patients, months=args.months, end_month=args.end_month, seed=args.seed
    )
    print(f"wrote a synthetic extract drop to {args.out}: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    if args.claims_loop_as_of:  # the claims loop: demographics for the 837P, 835s for the closed months
        from pipelines.x12.sample_835 import write_sample_claims_loop

        files = write_sample_claims_loop(args.out, args.claims_loop_as_of, args.seed)
        print(f"wrote the claims loop: {', '.join(p.name for p in files)}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from pipelines.bench import main as bench_main

    if args.entries < 1:
        print("bhi bench: --entries must be >= 1", file=sys.stderr)
        return 2
    print(bench_main(args.entries, args.workdir, args.threads, args.memory_limit))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from pipelines.explain import NotFound, explain

    if not args.warehouse.exists():
        print(f"bhi explain: no warehouse at {args.warehouse}", file=sys.stderr)
        return 1
    try:
        print(explain(args.warehouse, args.patient, args.month))
    except NotFound as exc:
        print(f"bhi explain: {exc}", file=sys.stderr)
        return 1
    return 0


def _month(value: str) -> str:
    try:
        dt.date.fromisoformat(f"{value}-01")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {value!r}") from exc
    return value


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
    run.add_argument(
        "--profile", help="source profile: a name from profiles/ or a YAML path (default: bhi-profile.yaml in the drop)"
    )
    run.add_argument(
        "--full-refresh", action="store_true", help="forget the file ledger and reload every file of the drop"
    )
    run.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=_cmd_run)

    why = sub.add_parser("explain", help="why a patient-month billed what it billed (the evidence trail)")
    why.add_argument("--warehouse", type=Path, required=True, help="DuckDB file written by bhi run")
    why.add_argument("--patient", required=True)
    why.add_argument("--month", type=_month, required=True, help="YYYY-MM")
    why.set_defaults(func=_cmd_explain)

    close = sub.add_parser(
        "close", help="month-end close: the claim file and evidence of closed months (a backfill over a range)"
    )
    close.add_argument("--out", type=Path, required=True, help="the output folder of `bhi run`")
    close.add_argument("--warehouse", type=Path, help="DuckDB file (default: <out>/warehouse.duckdb)")
    close.add_argument("--month", type=_month, required=True, help="first month to close, YYYY-MM")
    close.add_argument("--through", type=_month, help="last month to close, YYYY-MM (default: --month)")
    close.set_defaults(func=_cmd_close)

    sample = sub.add_parser("sample", help="write a synthetic extract drop")
    sample.add_argument("--out", type=Path, required=True)
    sample.add_argument("--patients", type=int, default=300)
    sample.add_argument("--months", type=int, default=6)
    sample.add_argument("--end-month", default="2026-10", help="last (open) month, YYYY-MM")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument(
        "--claims-loop-as-of", type=_date, default=None,
        help="YYYY-MM-DD: also write patients/providers/facility_billing and an X12 835 per payer and month"
        " closed as of this date (most paid, some denied or underpaid, a few unanswered)",
    )
    sample.set_defaults(func=_cmd_sample)

    bench = sub.add_parser("bench", help="time a full rebuild, a rerun and a bare DuckDB scan on ~N synthetic entries")
    bench.add_argument("--entries", type=int, default=1_000_000, help="time entries to generate (~25 per patient)")
    bench.add_argument("--workdir", type=Path, help="folder for the drop and warehouse (default: a temporary one)")
    bench.add_argument("--threads", type=int, default=None, help="DuckDB and polars threads (default: all cores)")
    bench.add_argument(
        "--memory-limit", default="2.5GB", help="DuckDB memory_limit (default 2.5GB: keeps the process under 3 GB RSS)"
    )
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
