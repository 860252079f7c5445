"""`bhi`: the command line (run the pipeline, close months, explain or export the evidence trail,
restore the warehouse, write the synthetic sample, benchmark)."""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import time
from pathlib import Path

# `bhi run` exits with this code when the extract is stale (fct_run_health.is_stale) and --allow-stale
# is not given; 1 stays "failed or a file rejected"
STALE_EXIT_CODE = 3
# `bhi evidence` writes here by default (<out>/evidence/): files a user asked for, not published outputs
EVIDENCE_DIR = "evidence"
# commands that run a Dagster job: SIGINT/SIGTERM stop them at a step boundary (pipelines/interrupts.py)
JOB_COMMANDS = ("run", "close")


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def _cmd_run(args: argparse.Namespace) -> int:
    from pipelines import interrupts
    from pipelines.preflight import first_load_problem
    from pipelines.safety import DropError, check_drop

    started = time.perf_counter()
    try:
        check_drop(args.extracts)  # before Dagster is even imported: a wrong path fails in a blink
    except DropError as exc:
        print(f"bhi run failed: {exc}", file=sys.stderr)
        return 1
    # a drop a new warehouse cannot load (a bad header, a missing table): one line, nothing written
    problem = first_load_problem(args.extracts, args.warehouse or args.out / "warehouse.duckdb", args.profile,
                                 args.full_refresh)
    if problem:
        print(f"bhi run failed: {problem}", file=sys.stderr)
        return 1
    from pipelines.run import run_pipeline  # the optional settings (DuckDB limits, ...) come from BHI_*

    interrupts.watch(args.out)
    outcome = run_pipeline(
        extracts=args.extracts,
        out=args.out,
        warehouse=args.warehouse,
        as_of=args.as_of,
        # quiet console: the failure is one line below, the steps' warnings are printed from the run log
        log_level="INFO" if args.verbose else "CRITICAL",
        profile=args.profile,
        full_refresh=args.full_refresh,
    )
    interrupts.stop_if_interrupted("the summary")  # a signal Dagster took while the job ran (main says it)
    if not args.verbose:
        for warning in outcome.warnings:
            if not any(e in warning for e in outcome.file_errors):  # those are listed below
                print(f"bhi run: warning: {warning}", file=sys.stderr)
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
        f"  covered period          {s.get('covered_period') or 'no enrolled facility'}"
        f" ({s.get('minutes_before_covered_period', 0):,} min dated before it excluded)\n"
        f"  rows quarantined        {s['rows_quarantined']:>12,}   -> {out / 'quarantine.csv'}\n"
        f"  field warnings          {s.get('field_warnings', 0):>12,}   -> {out / 'field_warnings.csv'}"
        " (rows loaded, an optional value left empty)\n"
        f"  minutes counted         {s['minutes_counted']:>12,} of {s['minutes_ingested']:,} ingested"
        f" ({s['minutes_excluded']:,} excluded, {s['minutes_quarantined']:,} quarantined, each with a reason)\n"
        f"  claim lines (closed)    {s['claim_lines']:>12,}   -> {out / 'claims.csv'}\n"
        f"  claim lines unpriced    {s['unpriced_claim_lines']:>12,}   -> {out / 'unpriced_claim_lines.csv'}\n"
        f"  claim lines scrub-held  {s.get('scrub_failed_lines', 0):>12,}   -> {out / 'scrub_findings.csv'}"
        " (NCCI PTP / MUE, add-on, APCM edits: held from the 837P)\n"
        f"  expected revenue        ${s['expected_revenue']:>11,.2f}\n"
        f"  revenue left on table   ${s['revenue_left_on_table']:>11,.2f}   -> {out / 'revenue_gap.csv'}\n"
        f"  worklist (open month)   {out / 'near_threshold.csv'}\n"
        f"  evidence trail          in the warehouse (table fct_claim_evidence): `bhi explain`, or a month's CSV"
        f" with `bhi evidence --out {out} --month YYYY-MM`\n"
        f"  remittances (835)       {_remittance_line(s, out)}\n"
        f"  dashboards              {out / 'dashboards' / 'index.html'}\n"
        f"  run health              {_health_line(s)}"
    )
    # a stale extract (the run-health line above says STALE either way) fails the run unless accepted
    stale = bool(s.get("is_stale")) and not args.allow_stale
    if stale:
        print(
            f"bhi run: stale extract: the newest time entry is {s.get('days_since_newest_entry', '?')} days before"
            f" the as-of date (more than stale_extract_days = {s.get('stale_extract_days')}); the worklist is not"
            " today's. Deliver a fresh extract, or pass --allow-stale to accept it.",
            file=sys.stderr,
        )
    # exit 1 (a rejected file, an unpriced line) wins over 3 (stale extract)
    status = STALE_EXIT_CODE if stale else 0
    if s.get("quarantine_share_alert"):
        # every output was written, but a large share of a table did not load: a broken extract
        print(f"bhi run: too many rows quarantined: {s['quarantine_share_alert']}", file=sys.stderr)
        status = 1
    if outcome.file_errors:
        # the other files loaded and every output was written, but a file was skipped: not a clean run
        print(
            f"bhi run: {len(outcome.file_errors)} file(s) rejected and not loaded (fix or remove them; they are"
            " retried on the next run):\n" + "\n".join(f"  {e}" for e in outcome.file_errors),
            file=sys.stderr,
        )
        status = 1
    if s.get("remittance_unbalanced_payments"):
        # the payer's total (BPR02) is not its claims less its provider-level adjustments (PLB)
        print(
            f"bhi run: {s['remittance_unbalanced_payments']:,} 835 payment(s) do not balance (BPR02 <> claims paid -"
            f" PLB, ${s['remittance_unbalanced_difference']:,.2f} in all); see the payments page and ask the payer",
            file=sys.stderr,
        )
        status = 1
    if outcome.unpriced:
        # every export was written, the unpriced lines marked; but claims without an amount: not a clean run
        print(_unpriced_message("bhi run", outcome.unpriced, out / "unpriced_claim_lines.csv"), file=sys.stderr)
        status = 1
    return status


def _remittance_line(s: dict, out: Path) -> str:
    """One line of the 835 side (rpt_remittance_summary via rpt_run_summary): payments, unbalanced
    payments, unmatched answers and denied lines, with the files that list them."""
    if not s.get("remittance_payments"):
        return "no 835 payment loaded"
    unbalanced = s.get("remittance_unbalanced_payments") or 0
    return (
        f"{s['remittance_payments']:,} payments"
        + (f" ({unbalanced:,} NOT BALANCED, ${s['remittance_unbalanced_difference']:,.2f})" if unbalanced else ", all balanced")
        + f"; {s.get('remittance_unmatched_lines') or 0:,} unmatched lines"
        f" (${s.get('remittance_unmatched_paid') or 0:,.2f}) -> {out / 'remittance_unmatched.csv'};"
        f" {s.get('remittance_denied_lines') or 0:,} denied lines -> {out / 'denials.csv'}"
    )


def _unpriced_message(command: str, rows: list[tuple], listing: Path) -> str:
    from pipelines.defs.checks import UNPRICED_LIST_CAP, unpriced_summary

    lines = sum(r[3] for r in rows)
    return (
        f"{command}: {lines:,} claim line(s) unpriced (no fee_schedule.csv rate in force; marked unpriced in"
        f" claims.csv, listed in {listing}); load the rate for each payer/code/month:\n"
        + "\n".join(f"  {line}" for line in unpriced_summary(rows, UNPRICED_LIST_CAP))
    )


def _health_line(s: dict) -> str:
    """One line of run health (fct_run_health via rpt_run_summary): freshness, rejected files,
    field warnings, unpriced lines and incomplete months."""
    newest = s.get("newest_entry_date")
    fresh = (
        "no time entries" if newest is None
        else f"newest entry {newest} ({s.get('days_since_newest_entry')} days before as-of"
        + (", STALE" if s.get("is_stale") else "") + ")"
    )
    warnings = s.get("field_warnings")
    return (
        f"{fresh}; {s.get('files_rejected', 0):,} files rejected; "
        f"{'—' if warnings is None else f'{warnings:,}'} field warnings; {s.get('unpriced_lines', 0):,} unpriced lines; "
        f"incomplete months: {s.get('incomplete_month_list') or 'none'}"
    )


def _cmd_close(args: argparse.Namespace) -> int:
    last = args.through or args.month
    if last < args.month:
        print(f"bhi close: --through {last} is before --month {args.month}", file=sys.stderr)
        return 2
    refused = _open_month_refusal(args.warehouse or args.out / "warehouse.duckdb", last)
    if refused:  # before Dagster starts: one line, in a blink
        print(f"bhi close: {refused}", file=sys.stderr)
        return 1
    from pipelines import interrupts
    from pipelines.run import close_months_run  # imports Dagster (seconds)

    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    interrupts.watch(args.out)
    outcome = close_months_run(args.out, args.month, last, warehouse=args.warehouse, log_level="CRITICAL")
    interrupts.stop_if_interrupted("the summary")
    if not outcome.success:
        print(f"bhi close failed: {outcome.error}", file=sys.stderr)
        return 1
    folder = args.out / "month_end"
    unpriced_months = []
    for month, lines, amount, as_of, unpriced in outcome.summary["months"]:
        print(
            f"closed {month} as of {as_of}: {lines:,} claim lines, ${amount:,.2f}"
            + (f" ({unpriced:,} unpriced, not in the amount)" if unpriced else "")
            + f"  -> {folder / f'claims_{month}.csv'}, {folder / f'claim_evidence_{month}.csv'}"
        )
        if unpriced:
            unpriced_months.append(f"{month} ({unpriced:,} line(s))")
    held = _print_837(args, folder, args.month, last, started)
    if unpriced_months:
        # the months are closed with the lines marked unpriced; the close is not clean until they are priced
        print(
            f"bhi close: unpriced claim lines in {', '.join(unpriced_months)}: marked unpriced (price_status) in"
            " the month's claims file; load the fee_schedule.csv rate, run `bhi run`, and close the month again",
            file=sys.stderr,
        )
        return 1
    return 1 if held else 0


def _open_month_refusal(warehouse: Path, last: str) -> str | None:
    """Why `bhi close ... --through last` cannot close (the month is not closed as of the warehouse's
    last run), read from the warehouse; None when it can, or when there is no as-of date to compare
    with (the close itself then says what is wrong)."""
    from pipelines.safety import reading_warehouse
    from pipelines.warehouse.database import table_exists

    if not warehouse.is_file():
        return None
    with reading_warehouse(warehouse, "bhi close"), _read_only(warehouse) as conn:
        if not table_exists(conn, "run_parameters"):
            return None
        as_of = conn.sql("select any_value(as_of) from run_parameters").fetchall()[0][0]
    if as_of is None or last < f"{as_of:%Y-%m}":
        return None
    return (
        f"month {last} is not closed as of {as_of} (the warehouse's last run): its month {as_of:%Y-%m} is open"
        f" and later months have not begun; close months up to {_month_before(as_of)}, or run `bhi run` with a"
        " later --as-of first. Nothing was written"
    )


def _month_before(day: dt.date) -> str:
    return f"{day.replace(day=1) - dt.timedelta(days=1):%Y-%m}"


def _cmd_restore(args: argparse.Namespace) -> int:
    from pipelines.ledgers import folder_of as ledger_folder
    from pipelines.safety import copies_dir, list_copies, restore

    warehouse = args.warehouse or args.out / "warehouse.duckdb"
    if args.list:
        copies = list_copies(warehouse)
        if not copies:
            print(f"no copies of {warehouse} are kept in {copies_dir(warehouse)}")
        for copy in copies:
            print(copy.label)
        return 0
    chosen, replaced = restore(warehouse, args.copy)
    kept = f"; the file it replaced is kept as {replaced}" if replaced else ""
    print(
        f"restored {warehouse} from {chosen.label}{kept}. The next `bhi run` loads again the files delivered"
        f" since the copy if the drop still holds them (the file ledger {ledger_folder(warehouse)} lists them;"
        " if it does not, the run names the files to re-deliver and stops), and reports their claim changes;"
        " the 837P submissions and closes made since are re-read from that ledger, so none is sent again."
    )
    return 0


def _print_837(args: argparse.Namespace, folder: Path, first: str, last: str, started: dt.datetime) -> int:
    """What the close sent as X12 837P (this close's interchanges); the claims it held back are
    named on stderr by their missing elements (never values). Returns the number held back once the
    837P is in use (a patients extract was delivered); before, every claim is held and that is said."""
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
            "select missing_elements, count(*) from fct_x12_claims_held where service_month between ?::date"
            " and ?::date group by 1 order by 2 desc, 1",
            [f"{first}-01", f"{last}-01"],
        ).fetchall()
        in_use = conn.sql("select count(*) > 0 from raw_patients").fetchall()[0][0]
        waiting = conn.execute(
            "select reason, count(*) from x12_claims_waiting where service_month between ?::date and ?::date"
            " group by 1 order by 1", [f"{first}-01", f"{last}-01"],
        ).fetchall() if conn.sql("select count(*) from duckdb_tables() where table_name = 'x12_claims_waiting'").fetchall()[0][0] else []
    for file_name, claims, codes in sent:
        print(f"837P {claims:,} claims (frequency codes {codes}) -> {folder / X837_DIR / file_name}")
    if not sent:
        print("837P: nothing new, changed or removed since the last close: no file written")
    if held:
        print(f"837P: {sum(n for _, n in held):,} claims held back for missing elements or claim scrub edits"
              " (table fct_x12_claims_held; scrub_findings.csv)")
    for reason, n in waiting:  # replacements and voids with no payer control number yet, voids of reversed claims
        print(f"837P: {n:,} replacement(s)/void(s) not sent: {reason} (table x12_claims_waiting)")
    if held and not in_use:  # the claims loop is not in use yet: the line above says so, not a failure
        return 0
    if held:
        print(
            f"bhi close: {sum(n for _, n in held):,} claim(s) held back from the 837P, not sent (table"
            " fct_x12_claims_held); fill in the source system and close again: "
            + "; ".join(f"{n:,} {'' if elements.startswith('claim scrub') else 'missing '}{elements}"
                        for elements, n in held[:10]),
            file=sys.stderr,
        )
    return sum(n for _, n in held)


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
    from pipelines.outputs.explain import NotFound, explain_with
    from pipelines.safety import reading_warehouse

    if args.out is None and args.warehouse is None:
        print("bhi explain: give --out (the output folder of `bhi run`) or --warehouse", file=sys.stderr)
        return 2
    warehouse = args.warehouse or args.out / "warehouse.duckdb"
    if not warehouse.is_file():
        print(f"bhi explain: no warehouse at {warehouse}: run `bhi run` first (or pass --warehouse)", file=sys.stderr)
        return 1
    try:
        with reading_warehouse(warehouse, "bhi explain"), _read_only(warehouse) as conn:
            text = explain_with(conn, args.patient, args.month, where=str(warehouse))
        print(text)
    except NotFound as exc:
        print(f"bhi explain: {exc}", file=sys.stderr)
        return 1
    return 0


def _read_only(warehouse: Path):
    """The warehouse opened read-only; a file DuckDB cannot open is one line naming it and the copy
    `bhi restore` would bring back (pipelines/safety.py), not DuckDB's IOException."""
    import duckdb

    from pipelines.safety import OperationalError, restore_hint

    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error as exc:
        if "lock" in str(exc).lower():
            raise
        raise OperationalError(
            f"warehouse {warehouse} cannot be opened, it may be damaged: nothing was read; {restore_hint(warehouse)}"
        ) from exc


def _cmd_evidence(args: argparse.Namespace) -> int:
    """One service month's evidence trail from the warehouse (read-only) as CSV, like the close's file."""

    from pipelines.outputs.exports import NoEvidence, write_evidence_month
    from pipelines.safety import last_run_published, output_umask, reading_warehouse
    from pipelines.warehouse.database import table_exists

    warehouse = args.warehouse or args.out / "warehouse.duckdb"
    if not warehouse.is_file():
        print(f"bhi evidence: no warehouse at {warehouse}: run `bhi run` first (or pass --warehouse)", file=sys.stderr)
        return 1
    with reading_warehouse(warehouse, "bhi evidence"), _read_only(warehouse) as conn:
        as_of = None
        if table_exists(conn, "fct_claim_evidence") and table_exists(conn, "run_parameters"):
            as_of = conn.sql("select any_value(as_of) from run_parameters").fetchall()[0][0]
        if as_of is None:
            print(f"bhi evidence: {warehouse} holds no evidence trail: no `bhi run` finished on it", file=sys.stderr)
            return 1
        if not last_run_published(conn):  # a failed or killed run: its tables are not the published outputs'
            print(
                f"bhi evidence: the last run on {warehouse} (as of {as_of}) did not publish (it failed or was"
                " killed): its evidence is not that of the published claims; nothing written. Run `bhi run`"
                " again (or `bhi restore`)",
                file=sys.stderr,
            )
            return 1
        target = args.to or args.out / EVIDENCE_DIR / f"claim_evidence_{args.month}_as_of_{as_of}.csv"
        try:
            with output_umask():  # owner-only, like every output of a run
                target.parent.mkdir(parents=True, exist_ok=True)
                rows = write_evidence_month(conn, args.month, target)
        except NoEvidence:
            print(
                f"bhi evidence: no evidence for {args.month} in {warehouse} (as of {as_of}): no enrolled patient-month"
                " in that service month; nothing written",
                file=sys.stderr,
            )
            return 1
    state = "open month, to date" if args.month >= f"{as_of:%Y-%m}" else "closed month"
    print(f"evidence {args.month} ({state}, warehouse as of {as_of}): {rows:,} rows -> {target}")
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
    run.add_argument(
        "--allow-stale",
        action="store_true",
        help="exit 0 even when the newest time entry is more than stale_extract_days (settings) before the as-of date",
    )
    run.add_argument("--verbose", action="store_true", help="show Dagster's step logs")
    run.set_defaults(func=_cmd_run)

    why = sub.add_parser("explain", help="why a patient-month billed what it billed (the evidence trail)")
    why.add_argument("--out", type=Path, help="the output folder of `bhi run` (warehouse <out>/warehouse.duckdb)")
    why.add_argument("--warehouse", type=Path, help="DuckDB file written by bhi run (default: <out>/warehouse.duckdb)")
    why.add_argument("--patient", required=True, help="patient id as in the extracts (case does not matter)")
    why.add_argument("--month", type=_month, required=True, help="service month, YYYY-MM")
    why.set_defaults(func=_cmd_explain)

    evidence = sub.add_parser(
        "evidence",
        help="one service month's evidence trail as CSV, from the warehouse (a nightly run writes no evidence file)",
    )
    evidence.add_argument("--out", type=Path, required=True, help="the output folder of `bhi run`")
    evidence.add_argument("--warehouse", type=Path, help="DuckDB file (default: <out>/warehouse.duckdb)")
    evidence.add_argument("--month", type=_month, required=True, help="service month, YYYY-MM")
    evidence.add_argument(
        "--to", type=Path,
        help=f"CSV file to write (default: <out>/{EVIDENCE_DIR}/claim_evidence_<YYYY-MM>_as_of_<as-of date>.csv)",
    )
    evidence.set_defaults(func=_cmd_evidence)

    close = sub.add_parser(
        "close", help="month-end close: the claim file and evidence of closed months (a backfill over a range)"
    )
    close.add_argument("--out", type=Path, required=True, help="the output folder of `bhi run`")
    close.add_argument("--warehouse", type=Path, help="DuckDB file (default: <out>/warehouse.duckdb)")
    close.add_argument("--month", type=_month, required=True, help="first month to close, YYYY-MM")
    close.add_argument("--through", type=_month, help="last month to close, YYYY-MM (default: --month)")
    close.set_defaults(func=_cmd_close)

    restore = sub.add_parser(
        "restore", help="put back a kept copy of the warehouse (the newest one taken after a published run)"
    )
    where = restore.add_mutually_exclusive_group(required=True)
    where.add_argument("--warehouse", type=Path, help="the DuckDB file to restore")
    where.add_argument("--out", type=Path, help="the output folder of `bhi run` (warehouse <out>/warehouse.duckdb)")
    restore.add_argument("--copy", type=Path, help="one of the copies listed by --list (default: the last good one)")
    restore.add_argument("--list", action="store_true", help="list the kept copies, newest first, and restore nothing")
    restore.set_defaults(func=_cmd_restore)

    sample = sub.add_parser("sample", help="write a synthetic extract drop")
    sample.add_argument("--out", type=Path, required=True, help="folder to write the extract files into")
    sample.add_argument("--patients", type=int, default=300, help="enrolled patients (default 300)")
    sample.add_argument("--months", type=int, default=6, help="service months of time entries (default 6)")
    sample.add_argument("--end-month", default="2026-10", help="last (open) month, YYYY-MM")
    sample.add_argument("--seed", type=int, default=7, help="random seed: the same seed writes the same files (default 7)")
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

    from pipelines.clients.cli import add_commands  # run-all, portfolio, sample/bench --clients

    add_commands(sub, sample, bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. An expected failure (pipelines/safety.py: a locked or damaged warehouse, a
    full disk, a wrong --extracts) and any other error print one line, `bhi <command> failed: ...`,
    and exit 1; the stack trace only with --verbose."""
    from pipelines import interrupts

    args = build_parser().parse_args(argv)
    if args.command in JOB_COMMANDS and argv is None:  # the console command (a test calling main() keeps its handlers)
        interrupts.install()
    try:
        return args.func(args)
    except (KeyboardInterrupt, interrupts.Interrupted):
        # Ctrl-C or SIGTERM: the run stopped at a step boundary and published nothing after the signal
        signum = interrupts.received() or signal.SIGINT
        print(interrupts.message(f"bhi {args.command}", signum), file=sys.stderr)
        return interrupts.EXIT_CODES[signum]
    except Exception as exc:
        if getattr(args, "verbose", False):
            raise
        from pipelines.cli_errors import unwritable
        from pipelines.safety import OperationalError

        if isinstance(exc, OperationalError):
            text = str(exc)
        elif unwritable(exc):  # a read-only or foreign out folder: the user's to fix, no class name
            text = unwritable(exc)
        else:
            first = (str(exc).strip().splitlines() or [""])[0]
            text = f"{type(exc).__name__}: {first}" + (" (--verbose shows the stack trace)" if "verbose" in vars(args) else "")
        print(f"bhi {args.command} failed: {text}", file=sys.stderr)
        return 1
    finally:
        interrupts.finish()  # a signal after this point does not change the outcome printed


if __name__ == "__main__":
    sys.exit(main())
