"""Payments in: X12 005010X221A1 835 remittance files dropped with the extracts.

Files named `*.835` or `*.x12` (holding an 835) in the drop folder are parsed with pyx12's
X12ContextReader (the maintained HIPAA X12 library that also validates our 837P; it walks the 835
implementation-guide map, so loops 2100 claim / 2110 service line come out as trees, no hand-written
segment splitting). Each file is validated first; a file pyx12 rejects is recorded as rejected with
the validator's message (segment and code only), the other files load.

Rows land in raw_remittance_claims / raw_remittance_lines / raw_remittance_adjustments through the
same typing and quarantine checks as every extract table (pipelines.ingest.load._load_table: required
columns, types, a key delivered twice in one file), and each file gets a row in the ingest ledger
(`ingest_files`, table_name 'remittance_835', sha256): a re-delivered copy is recorded as a
duplicate and never counted twice; a later delivery of the same payment (trace number) wins in
staging. `write_835` builds an 835 from claim lines with known outcomes (the sample and the tests).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from pathlib import Path

import duckdb
import polars as pl
import pyx12.error_handler
import pyx12.params
import pyx12.x12context

from pipelines.ingest.extract_format import TABLES
from pipelines.warehouse.database import transaction
from pipelines.x12.segments import amount, date8, isa, segment, text
from pipelines.x12.validate import validate_x12

LEDGER_TABLE = "remittance_835"
REMIT_TABLES = ("remittance_claims", "remittance_lines", "remittance_adjustments")
SUFFIXES = (".835", ".x12", ".edi")


def discover_835(drop_dir: Path) -> list[Path]:
    """The drop's remittance files, in delivery order (by name); an .x12/.edi file counts only when
    its functional group is a payment (GS01 HP), so 837P files next to them are left alone."""
    found = []
    for path in sorted(p for p in Path(drop_dir).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES):
        head = path.read_text(errors="replace")[:400]
        if path.suffix.lower() == ".835" or "~GS*HP*" in head.replace("\n", "").replace("\r", ""):
            found.append(path)
    return found


def _amount(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _date(value: str | None) -> str | None:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if value and len(value) == 8 else None


def parse_835(content: str, label: str) -> dict[str, list[dict]]:
    """The rows of one 835 interchange: claims (CLP), service lines (SVC) and adjustments (CAS group
    and reason, LQ remark codes). Values are kept as text; typing happens in the shared checks."""
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    reader = pyx12.x12context.X12ContextReader(
        pyx12.params.params(), pyx12.error_handler.errh_null(), io.StringIO(content)
    )
    rows: dict[str, list[dict]] = {t: [] for t in REMIT_TABLES}
    trace = payer_id = payment_date = None
    claim_index = 0
    seg_no = 0
    for node in reader.iter_segments("2100"):
        seg_no += 1
        if node.id != "2100":
            seg = node.get_value
            if node.id == "TRN":
                trace, claim_index = seg("TRN02"), 0
            elif node.id == "BPR":
                payment_date = _date(seg("BPR16"))
            elif node.id == "REF" and seg("REF01") == "2U":
                payer_id = seg("REF02")
            continue
        claim_index += 1
        member = node.first("NM1")
        rows["remittance_claims"].append({
            "trace_number": trace, "claim_index": str(claim_index), "payer_edi_id": payer_id,
            "payment_date": payment_date, "claim_id": node.get_value("CLP01"),
            "claim_status": node.get_value("CLP02"), "charge": node.get_value("CLP03"),
            "paid": node.get_value("CLP04"), "patient_responsibility": node.get_value("CLP05"),
            "payer_claim_control_number": node.get_value("CLP07"),
            "member_id": member.get_value("NM109") if member is not None else None,
            "source_row": claim_index,
        })
        adj = 0

        def adjustments(parent, line_index):
            nonlocal adj
            for cas in parent.select("CAS"):
                group = cas.get_value("CAS01")
                for k in range(6):  # up to six reason / amount / quantity triplets per CAS
                    reason = cas.get_value(f"CAS{2 + 3 * k:02d}")
                    if not reason:
                        continue
                    adj += 1
                    rows["remittance_adjustments"].append({
                        "trace_number": trace, "claim_index": str(claim_index), "line_index": line_index,
                        "adjustment_index": str(adj), "kind": "carc", "group_code": group, "reason_code": reason,
                        "amount": cas.get_value(f"CAS{3 + 3 * k:02d}"), "quantity": cas.get_value(f"CAS{4 + 3 * k:02d}"),
                        "source_row": claim_index * 1000 + adj,
                    })
            for lq in parent.select("LQ"):
                adj += 1
                rows["remittance_adjustments"].append({
                    "trace_number": trace, "claim_index": str(claim_index), "line_index": line_index,
                    "adjustment_index": str(adj), "kind": "rarc", "group_code": None,
                    "reason_code": lq.get_value("LQ02"), "amount": None, "quantity": None,
                    "source_row": claim_index * 1000 + adj,
                })

        adjustments(node, None)
        for line_index, svc in enumerate(node.select("2110"), start=1):
            proc = (svc.get_value("SVC01") or "").split(":")
            ref = svc.first("REF")
            dtm = svc.first("DTM")
            rows["remittance_lines"].append({
                "trace_number": trace, "claim_index": str(claim_index), "line_index": str(line_index),
                "code": proc[1] if len(proc) > 1 else None, "modifiers": ",".join(m for m in proc[2:] if m),
                "charge": svc.get_value("SVC02"), "paid": svc.get_value("SVC03"),
                "units": svc.get_value("SVC05") or "1",
                "service_date": _date(dtm.get_value("DTM02")) if dtm is not None else None,
                "line_control_number": ref.get_value("REF02") if ref is not None and ref.get_value("REF01") == "6R" else None,
                "source_row": claim_index * 1000 + line_index,
            })
            adjustments(svc, str(line_index))
    reader.close()
    for table in REMIT_TABLES:
        for r in rows[table]:
            r["source_file"] = label
    return rows


# ---------------------------------------------------------------------------------------------------
# Writing an 835 (sample drops and tests)


def write_835(claims: list[dict], cfg: dict[str, str], control_number: int, payment_date: dt.date,
              trace_number: str) -> str:
    """An 835 paying `claims`: each {claim_id, status, payer_name, payer_edi_id, member_id, last_name,
    first_name, payer_claim_control_number, lines: [{code, modifiers, charge, paid, units,
    service_date, line_control_number, adjustments: [(group, reason, amount)], remarks: [code]}]}.
    Line adjustments must balance: charge - sum(adjustments) = paid."""
    first = claims[0]
    body = [
        segment("BPR", "I" if sum(float(ln["paid"]) for c in claims for ln in c["lines"]) > 0 else "H",
                amount(sum(float(ln["paid"]) for c in claims for ln in c["lines"])), "C",
                "CHK" if sum(float(ln["paid"]) for c in claims for ln in c["lines"]) > 0 else "NON",
                "", "", "", "", "", "", "", "", "", "", "", date8(payment_date)),
        segment("TRN", "1", trace_number, "1" + "999999999"),
        segment("N1", "PR", text(first["payer_name"], 60, "payer name")),
        segment("N3", "PO BOX 1"),
        segment("N4", "DURHAM", "NC", "27701"),
        segment("REF", "2U", first["payer_edi_id"]),
        segment("PER", "BL", "PROVIDER SERVICES", "TE", "5555550199"),
        segment("N1", "PE", text(cfg["payee_name"], 60, "payee name"), "XX", cfg["payee_npi"]),
        segment("LX", "1"),
    ]
    for c in claims:
        charge = sum(float(ln["charge"]) for ln in c["lines"])
        paid = sum(float(ln["paid"]) for ln in c["lines"])
        patient = sum(float(a[2]) for ln in c["lines"] for a in ln["adjustments"] if a[0] == "PR")
        body += [
            segment("CLP", c["claim_id"], c["status"], amount(charge), amount(paid), amount(patient) if patient else "",
                    c.get("claim_filing_indicator", "MB"), c["payer_claim_control_number"], "11", "1"),
            segment("NM1", "QC", "1", text(c["last_name"], 60, "patient last name"),
                    text(c["first_name"], 35, "patient first name"), "", "", "", "MI", c["member_id"]),
        ]
        for ln in c["lines"]:
            mods = [m for m in (ln.get("modifiers") or "").split(",") if m]
            body += [
                segment("SVC", ("HC", ln["code"], *mods), amount(ln["charge"]), amount(ln["paid"]), "",
                        ln["units"]),
                segment("DTM", "472", date8(ln["service_date"])),
            ]
            by_group: dict[str, list] = {}
            for group, reason, amt in ln["adjustments"]:
                by_group.setdefault(group, []).append((reason, amount(amt)))
            for group, items in by_group.items():
                flat = [v for reason, amt in items[:6] for v in (reason, amt, "")]
                body.append(segment("CAS", group, *flat))
            body.append(segment("REF", "6R", ln["line_control_number"]))
            allowed = float(ln["paid"]) + sum(float(a[2]) for a in ln["adjustments"] if a[0] == "PR")
            body.append(segment("AMT", "B6", amount(allowed)))
            for remark in ln.get("remarks", []):
                body.append(segment("LQ", "HE", remark))
    transaction = [segment("ST", "835", "0001"), *body]
    transaction.append(segment("SE", len(transaction) + 1, "0001"))
    when = dt.datetime.combine(payment_date, dt.time(12, 0))
    return "\n".join([
        isa(cfg["receiver_id"], cfg["submitter_id"], control_number, when, cfg["usage_indicator"]),
        segment("GS", "HP", cfg["receiver_id"], cfg["submitter_id"], date8(when), "1200", control_number, "X",
                "005010X221A1"),
        *transaction,
        segment("GE", "1", control_number),
        segment("IEA", "1", f"{control_number:09d}"),
    ]) + "\n"


# ---------------------------------------------------------------------------------------------------
# Loading the drop's 835 files


def load_remittances(conn: duckdb.DuckDBPyConnection, drop_dir: Path) -> dict[str, int]:
    """Load the drop's 835 files that are new since the last load (ledger by sha256); returns counts
    (files, loaded, duplicates, rejected, claims, lines). Runs after pipelines.ingest.load.load_drop, in one
    transaction."""
    from pipelines.ingest.load import _load_table, create_ingest_tables  # the shared typing and quarantine checks
    from pipelines.x12.claims_837 import ensure_ledger

    ensure_ledger(conn)  # the remittance marts read the submission ledger, empty until the first close
    create_ingest_tables(conn)  # the ledger, quarantine, field warnings and raw tables of pipelines.ingest
    counts = {"files": 0, "loaded": 0, "duplicates": 0, "rejected": 0, "claims": 0, "lines": 0}
    files = discover_835(drop_dir) if Path(drop_dir).is_dir() else []
    if not files:
        return counts
    ledger = conn.execute(
        "select source_file, sha256, status from ingest_files where table_name = ?", [LEDGER_TABLE]
    ).fetchall()
    # a rejected file is read again on every run until it is fixed or removed (as the other extracts)
    seen_files = {(f, s) for f, s, st in ledger if st != "rejected"}
    loaded_sha = {s for _, s, st in ledger if st == "loaded"}
    seq = conn.sql("select coalesce(max(delivery_seq), 0) from ingest_files").fetchall()[0][0]
    landing = {t: [] for t in REMIT_TABLES}
    records = []
    for path in files:
        counts["files"] += 1
        raw = path.read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        if (path.name, sha) in seen_files:
            continue  # this very file was loaded (or recorded) before
        base = {"source_file": path.name, "path": str(path), "table_name": LEDGER_TABLE, "sha256": sha,
                "bytes": len(raw), "rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0}
        if sha in loaded_sha:
            counts["duplicates"] += 1
            records.append({**base, "delivery_seq": None, "status": "duplicate",
                            "detail": "same content as a remittance loaded before: not loaded again"})
            continue
        content = raw.decode("utf-8", errors="replace")
        verdict = validate_x12(content)
        if not verdict.valid:
            counts["rejected"] += 1
            records.append({**base, "delivery_seq": None, "status": "rejected",
                            "detail": f"{path}: not a valid 005010X221A1 835: {'; '.join(verdict.safe[:5])}"})
            continue
        seq += 1
        loaded_sha.add(sha)
        parsed = parse_835(content, path.name)
        n = 0
        for t in REMIT_TABLES:
            for r in parsed[t]:
                landing[t].append({**r, "delivery_seq": seq})
            n += len(parsed[t])
        counts["loaded"] += 1
        records.append({**base, "delivery_seq": seq, "status": "loaded", "detail": None, "rows_read": n})
    with transaction(conn):
        quarantined_before = conn.sql("select count(*) from quarantine").fetchall()[0][0]
        for t in REMIT_TABLES:
            spec = TABLES[t]
            cols = [c.name for c in spec.columns]
            frame = pl.DataFrame(  # noqa: F841 (read by DuckDB)
                [{c: (None if r.get(c) in (None, "") else str(r[c])) for c in cols}
                 | {"source_file": r["source_file"], "source_row": r["source_row"], "delivery_seq": r["delivery_seq"]}
                 for r in landing[t]],
                schema={**{c: pl.String for c in cols}, "source_file": pl.String, "source_row": pl.Int64,
                        "delivery_seq": pl.Int64},
            )
            # the landing layout of pipelines.ingest: no row here was malformed (pyx12 parsed the file)
            conn.execute(f"create or replace temp table _landing_{t} as"
                         " select *, null::varchar as _malformed, null::varchar as _line from frame")
            loaded, *_ = _load_table(conn, spec)
            counts["claims" if t == "remittance_claims" else "lines" if t == "remittance_lines" else "adjustments"] = loaded
            conn.execute(f"drop table _landing_{t}")
        ledger_rows = pl.DataFrame(  # noqa: F841 (read by DuckDB)
            records,
            schema={"source_file": pl.String, "path": pl.String, "table_name": pl.String, "delivery_seq": pl.Int64,
                    "sha256": pl.String, "bytes": pl.Int64, "status": pl.String, "detail": pl.String,
                    "rows_read": pl.Int64, "rows_loaded": pl.Int64, "rows_quarantined": pl.Int64},
        )
        conn.execute(
            """
            insert into ingest_files by name
            select l.* exclude (rows_loaded, rows_quarantined),
                   l.rows_read - coalesce(q.n, 0) as rows_loaded, coalesce(q.n, 0) as rows_quarantined,
                   current_timestamp as loaded_at
            from ledger_rows as l
            left join (select delivery_seq, count(*) as n from quarantine
                       where table_name like 'remittance_%' group by all) as q using (delivery_seq)
            """
        )
        # a rejected remittance fails the run like any rejected extract file (`bhi run` exits 1 and names it)
        conn.execute("create table if not exists ingest_errors"
                     " (source_file varchar, path varchar, table_name varchar, error varchar)")
        conn.execute("insert into ingest_errors select source_file, path, table_name, detail"
                     " from ledger_rows where status = 'rejected'")
        counts["quarantined"] = conn.sql("select count(*) from quarantine").fetchall()[0][0] - quarantined_before
    return counts
