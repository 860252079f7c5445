"""The many-clients commands of `bhi`: `run-all`, `portfolio`, and `--clients` of `sample` and
`bench` (added to their parsers here, so pipelines/cli.py only calls add_commands)."""

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


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {number}")
    return number


def _portfolio_lines(clients, rows) -> list[str]:
    lines = []
    for r in rows:
        figures = (
            f"as of {r['as_of']}: {r['claim_lines'] or 0:,} claim lines, ${float(r['expected'] or 0):,.2f} expected,"
            f" ${float(r['left_on_table'] or 0):,.2f} left on the table" if r.get("run_id") else "nothing published"
        )
        lines.append(f"  {r['client_id']:<16} {r['state']:<14} {figures}" + (f"\n    ATTENTION: {'; '.join(r['flags'])}" if r["flags"] else ""))
    return lines


def _cmd_run_all(args: argparse.Namespace) -> int:
    from pipelines.clients.config import load_clients
    from pipelines.clients.portfolio import build_portfolio
    from pipelines.clients.run_all import run_all

    clients = load_clients(args.clients)  # a bad file fails here, in one line, before any run starts
    started = time.perf_counter()

    def progress(run) -> None:
        state = "published" if run.success else "FAILED"
        print(f"bhi run-all: {run.client_id} {state} in {run.seconds:.1f} s", file=sys.stderr, flush=True)

    runs = run_all(args.clients, args.parallel, args.as_of, args.only, on_finish=progress,
                   log_level="INFO" if args.verbose else "CRITICAL")
    page = build_portfolio(clients)
    by_id = {r["client_id"]: r for r in page.rows}
    print(f"bhi run-all: {len(runs)} client(s), --parallel {args.parallel}, in {time.perf_counter() - started:.1f} s")
    print("\n".join(_portfolio_lines(clients, [by_id[r.client_id] for r in runs])))
    print(f"  portfolio               {page.path}")
    failed = [r.client_id for r in runs if not r.success]
    flagged = [r.client_id for r in runs if by_id[r.client_id]["flags"]]
    if failed:
        print(f"bhi run-all: {len(failed)} client run(s) failed: {', '.join(failed)} (the others published)", file=sys.stderr)
    if flagged:
        print(f"bhi run-all: {len(flagged)} client(s) need attention: {', '.join(flagged)}", file=sys.stderr)
    return 1 if failed or flagged else 0


def _cmd_portfolio(args: argparse.Namespace) -> int:
    from pipelines.clients.config import load_clients
    from pipelines.clients.portfolio import build_portfolio

    clients = load_clients(args.clients)
    page = build_portfolio(clients, args.out)
    print(f"portfolio of {page.clients} client(s) -> {page.path}")
    print("\n".join(_portfolio_lines(clients, page.rows)))
    if page.flagged:
        print(f"bhi portfolio: {len(page.flagged)} client(s) need attention", file=sys.stderr)
        return 1
    return 0


def _cmd_sample_clients(args: argparse.Namespace) -> int:
    from pipelines.clients.sample import write_sample_clients

    config = write_sample_clients(
        args.out, args.clients, patients=args.patients, months=args.months, end_month=args.end_month, seed=args.seed,
        claims_loop_as_of=args.claims_loop_as_of,
    )
    print(f"wrote {args.clients} synthetic clients to {args.out}: run them with `bhi run-all --clients {config}`")
    return 0


def _cmd_bench_clients(args: argparse.Namespace) -> int:
    from pipelines.clients.bench import bench_clients

    print(bench_clients(args.clients, args.entries, args.workdir, args.parallel or [1, 2]))
    return 0


def add_commands(sub, sample: argparse.ArgumentParser, bench: argparse.ArgumentParser) -> None:
    run_all = sub.add_parser("run-all", help="run every client of a clients.yaml through Dagster, N at a time, then the portfolio")
    run_all.add_argument("--clients", type=Path, required=True, help="the clients.yaml (docs/operations.md, Running many clients)")
    run_all.add_argument("--parallel", type=_positive, default=1, help="client runs at once (default 1)")
    run_all.add_argument("--as-of", type=_date, default=None, help="YYYY-MM-DD (default: today in each client's time zone)")
    run_all.add_argument("--only", nargs="+", metavar="ID", help="run only these client ids")
    run_all.add_argument("--verbose", action="store_true", help="show Dagster's logs of each client's run")
    run_all.set_defaults(func=_cmd_run_all)

    portfolio = sub.add_parser("portfolio", help="the portfolio page from every client's published outputs (reruns nothing)")
    portfolio.add_argument("--clients", type=Path, required=True, help="the clients.yaml")
    portfolio.add_argument("--out", type=Path, help="folder of the page (default: portfolio.out of clients.yaml)")
    portfolio.set_defaults(func=_cmd_portfolio)

    sample.add_argument("--clients", type=_positive, help="write N clients (drops, overrides, clients.yaml) instead of one drop")
    one_sample = sample.get_default("func")
    sample.set_defaults(func=lambda a: _cmd_sample_clients(a) if a.clients else one_sample(a))

    bench.add_argument("--clients", type=_positive, help="N clients of --entries in all, run with --parallel 1 and 2")
    bench.add_argument("--parallel", type=_positive, nargs="+", help="with --clients: the parallel settings to time (default 1 2)")
    one_bench = bench.get_default("func")
    bench.set_defaults(func=lambda a: _cmd_bench_clients(a) if a.clients else one_bench(a))
