"""Payments in: X12 005010X221A1 835 remittance files dropped with the extracts.

Discovery is by content: any file of the drop whose text starts with an ISA interchange header whose
functional group is a payment (GS01 HP) is read, whatever it is called (.835, .x12, .edi, .txt); a
file named *.835 that holds something else is refused with a line saying what it is.

Separators come from each ISA segment as the 005010X221A1 guide (appendix B, the ISA) defines them:
element separator = the character after "ISA", repetition separator = ISA11, component separator =
ISA16, segment terminator = the character after ISA16; newlines after the terminator (or none) and a
byte-order mark are tolerated, and a file may hold several interchanges (each with its own
separators) and several transactions per functional group. Only 835 transactions of version
005010X221A1 are read: a 4010 835 or an 837P is refused, naming what it is.

Each interchange is validated with pyx12 and parsed with pyx12's X12ContextReader (the maintained
HIPAA X12 library that also validates our 837P; it walks the 835 implementation-guide map, so loops
2100 claim / 2110 service line come out as trees). A validator finding on the contacts and
addresses (ref_x12_835_warning_segments) is a warning on the file; any other finding rejects the
file, recorded with the findings in words (segment / element and what is wrong, never a value).

Rows land in raw_remittance_payments / _claims / _lines / _adjustments / _provider_adjustments
through the same typing and quarantine checks as every extract table (pipelines.ingest.load._load_table),
and each file gets a row in the ingest ledger (`ingest_files`, table_name 'remittance_835', sha256):
a re-delivered copy is recorded as a duplicate and never counted twice; a later delivery of the
same payment (payer + trace number) wins in staging. `write_835` builds an 835 from claim lines
with known outcomes (the sample and the tests).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from dataclasses import dataclass, field
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
REMIT_TABLES = ("remittance_payments", "remittance_claims", "remittance_lines", "remittance_adjustments",
                "remittance_provider_adjustments")
NAMED_835 = ".835"  # a file with this suffix is an 835 by name: refused with a reason when it is not one
TABULAR = (".csv", ".tsv", ".parquet", ".xlsx", ".ndjson", ".json", ".gz", ".zip")  # extracts, never X12
HEAD_BYTES = 4096  # enough for the ISA (106 characters) and the GS of the first interchange
ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)  # ISA01..ISA16, fixed width
_BLANK = " \t\r\n\x00\x1a"  # whitespace, NUL padding and DOS end-of-file marks between interchanges
TRANSACTION_NAMES = {  # ST01 -> what the file is, for the line that refuses it
    "837": "an 837 claim", "835": "an 835 remittance", "999": "a 999 acknowledgment", "997": "a 997 acknowledgment",
    "277": "a 277 claim status", "276": "a 276 claim status request", "270": "a 270 eligibility inquiry",
    "271": "a 271 eligibility response", "834": "an 834 enrollment", "820": "an 820 premium payment",
    "TA1": "a TA1 interchange acknowledgment",
}
SUPPORTED_VERSION = "005010X221"  # GS08 005010X221A1 (and the A1 errata's own spelling)


class X12FileError(ValueError):
    """A file that is not a readable 005010X221A1 835: the message says what it is, never a value."""


@dataclass
class Interchange:
    """One ISA..IEA interchange of a file, its segments re-joined with its own separators (what pyx12 reads)."""
    content: str
    element: str
    component: str
    repetition: str | None
    terminator: str
    version: str  # ISA12
    groups: list[tuple[str, str]] = field(default_factory=list)  # (GS01, GS08)
    transactions: list[str] = field(default_factory=list)  # ST01


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8-sig", errors="replace").lstrip("\ufeff" + _BLANK)


def _isa(rest: str) -> tuple[str, str, str, str | None, list[str]]:
    """(element, component, terminator, repetition, ISA fields) of the ISA at the start of `rest`."""
    if len(rest) < 16 or not rest.startswith("ISA"):
        raise X12FileError("not an X12 interchange: no ISA header")
    element = rest[3]
    fields = rest.split(element, 16)
    if len(fields) < 17 or len(fields[16]) < 2:
        raise X12FileError("not an X12 interchange: the ISA header has fewer than 16 elements")
    component, terminator = fields[16][0], fields[16][1]
    version = fields[12].strip()
    repetition = fields[11] if version >= "00402" and len(fields[11]) == 1 else None
    return element, component, terminator, repetition, fields[:16] + [component]


def interchanges(raw: bytes) -> list[Interchange]:
    """The interchanges of a file, each with the separators of its own ISA. Raises X12FileError when
    the file is not X12 or an interchange has no end (IEA)."""
    rest = _decode(raw)
    found: list[Interchange] = []
    while rest:
        element, component, terminator, repetition, isa_fields = _isa(rest)
        segments: list[str] = []
        pos = 0
        while True:
            end = rest.find(terminator, pos)
            if end < 0:
                raise X12FileError(f"interchange {len(found) + 1} has no end (IEA segment)")
            seg = rest[pos:end].strip("\r\n")
            pos = end + 1
            if seg:
                segments.append(seg)
            if seg.startswith("IEA" + element):
                break
        # the ISA at its fixed widths (a sender that trims its padding still gives pyx12 106 characters)
        segments[0] = element.join(
            [isa_fields[0], *(v.ljust(w) if len(v) < w else v for v, w in zip(isa_fields[1:], ISA_WIDTHS))])
        one = Interchange("".join(s + terminator + ("\n" if terminator not in "\r\n" else "") for s in segments),
                          element, component, repetition, terminator, isa_fields[12].strip())
        for seg in segments:
            parts = seg.split(element)
            if parts[0] == "GS":
                one.groups.append((parts[1] if len(parts) > 1 else "", parts[8] if len(parts) > 8 else ""))
            elif parts[0] == "ST":
                one.transactions.append(parts[1] if len(parts) > 1 else "")
        found.append(one)
        rest = rest[pos:].lstrip(_BLANK)
    return found


def refusal(found: list[Interchange]) -> str | None:
    """Why a file of interchanges is not read as 005010X221A1 835 remittances (None: it is)."""
    for n, ic in enumerate(found, start=1):
        where = f" (interchange {n} of {len(found)})" if len(found) > 1 else ""
        others = sorted({t for t in ic.transactions if t != "835"})
        if others or any(g != "HP" for g, _ in ic.groups) or not ic.transactions:
            kinds = ", ".join(TRANSACTION_NAMES.get(t, f"an X12 {t}") for t in others) or "no 835 transaction"
            groups = ", ".join(sorted({f"GS01 {g}, version {v}" for g, v in ic.groups}))
            return f"{kinds} file ({groups}){where}, not an 835 remittance (GS01 HP): not read"
        old = sorted({v for _, v in ic.groups if not v.startswith(SUPPORTED_VERSION)})
        if old:
            release = "4010" if any(v.startswith("004010") for v in old) else ", ".join(old)
            return (f"an 835 remittance of version {', '.join(old)} ({release}){where}: only 005010X221A1 is read;"
                    " ask the payer or clearinghouse for the 5010 file")
    return None


def _payment_head(raw: bytes) -> bool:
    """The start of a file is an ISA header whose first functional group is a payment (GS01 HP)."""
    text_ = _decode(raw)
    try:
        element, _, terminator, _, _ = _isa(text_)
    except X12FileError:
        return False
    after = text_.split(terminator, 1)[1].lstrip(_BLANK) if terminator in text_ else ""
    return after.startswith(f"GS{element}HP{element}")


def discover_835(drop_dir: Path) -> list[Path]:
    """The drop's remittance files, in delivery order (by name): every file holding an X12 payment
    group (GS01 HP), whatever its name, and every *.835 file (one that is not a 5010 835 is refused
    with the reason when loaded). Extract files (CSV, Parquet, XLSX, FHIR) are not opened."""
    found = []
    for path in sorted(p for p in Path(drop_dir).iterdir() if p.is_file()):
        suffix = path.suffix.lower()
        if suffix == NAMED_835:
            found.append(path)
        elif suffix not in TABULAR:
            with path.open("rb") as fh:
                if _payment_head(fh.read(HEAD_BYTES)):
                    found.append(path)
    return found


def _date(value: str | None) -> str | None:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if value and len(value) == 8 else None


def parse_835(content: str, label: str) -> dict[str, list[dict]]:
    """The rows of one 835 interchange (as `interchanges` gives it): payments (BPR, TRN, payer),
    claims (CLP), service lines (SVC), adjustments (CAS group and reason at claim and line level;
    remark codes from LQ, MOA and MIA as kind 'rarc') and provider-level adjustments (PLB). A payment
    is identified by the payer (TRN03, else the payer's N1*PR id, else REF*2U) and the trace number
    (TRN02). Values are kept as text; typing happens in the shared checks."""
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)
    reader = pyx12.x12context.X12ContextReader(
        pyx12.params.params(), pyx12.error_handler.errh_null(), io.StringIO(content)
    )
    rows: dict[str, list[dict]] = {t: [] for t in REMIT_TABLES}
    payment: dict = {}
    claim_index = plb_index = 0

    def new_payment() -> None:
        nonlocal claim_index, plb_index
        claim_index = plb_index = 0
        payment.clear()

    def key() -> dict:
        """The payment's identity: the payer (TRN03, else N1*PR N104, else REF*2U) and TRN02."""
        payer = payment.get("trn03") or payment.get("n1_pr_id") or payment.get("ref_2u") or ""
        return {"payer_identifier": payer, "trace_number": payment.get("trace")}

    def flush_payment() -> None:
        if "trace" in payment:
            rows["remittance_payments"].append({
                **key(), "payer_edi_id": payment.get("ref_2u") or payment.get("n1_pr_id"),
                "payer_name": payment.get("payer_name"), "payment_date": payment.get("date"),
                "payment_amount": payment.get("amount"), "credit_debit": payment.get("credit_debit"),
                "payment_method": payment.get("method"), "source_row": len(rows["remittance_payments"]) + 1,
            })

    for node in reader.iter_segments("2100"):
        if node.id != "2100":
            seg = node.get_value
            if node.id == "ST":
                new_payment()
            elif node.id == "BPR":
                payment.update(amount=seg("BPR02"), credit_debit=seg("BPR03"), method=seg("BPR04"),
                               date=_date(seg("BPR16")))
            elif node.id == "TRN":
                payment.update(trace=seg("TRN02"), trn03=seg("TRN03"))
            elif node.id == "N1" and seg("N101") == "PR":
                payment.update(payer_name=seg("N102"), n1_pr_id=seg("N104"))
            elif node.id == "REF" and seg("REF01") == "2U":
                payment["ref_2u"] = seg("REF02")
            elif node.id == "PLB":
                for k in range(6):  # up to six reason / amount pairs per PLB
                    reason = seg(f"PLB{3 + 2 * k:02d}-1")
                    if not reason:
                        continue
                    plb_index += 1
                    rows["remittance_provider_adjustments"].append({
                        **key(), "adjustment_index": str(plb_index), "provider_id": seg("PLB01"),
                        "fiscal_period_date": _date(seg("PLB02")), "reason_code": reason,
                        "reference_id": seg(f"PLB{3 + 2 * k:02d}-2"), "amount": seg(f"PLB{4 + 2 * k:02d}"),
                        "source_row": plb_index,
                    })
            elif node.id == "SE":
                flush_payment()
            continue
        claim_index += 1
        member = node.first("NM1")
        rows["remittance_claims"].append({
            **key(), "claim_index": str(claim_index), "payer_edi_id": payment.get("ref_2u") or payment.get("n1_pr_id"),
            "payment_date": payment.get("date"), "claim_id": node.get_value("CLP01"),
            "claim_status": node.get_value("CLP02"), "charge": node.get_value("CLP03"),
            "paid": node.get_value("CLP04"), "patient_responsibility": node.get_value("CLP05"),
            "payer_claim_control_number": node.get_value("CLP07"),
            "member_id": member.get_value("NM109") if member is not None else None,
            "source_row": claim_index,
        })
        adj = 0

        def remark(code: str | None, line_index: str | None) -> None:
            nonlocal adj
            if code:
                adj += 1
                rows["remittance_adjustments"].append({
                    **key(), "claim_index": str(claim_index), "line_index": line_index,
                    "adjustment_index": str(adj), "kind": "rarc", "group_code": None, "reason_code": code,
                    "amount": None, "quantity": None, "source_row": claim_index * 1000 + adj,
                })

        def adjustments(parent, line_index: str | None) -> None:
            nonlocal adj
            for cas in parent.select("CAS"):
                group = cas.get_value("CAS01")
                for k in range(6):  # up to six reason / amount / quantity triplets per CAS
                    reason = cas.get_value(f"CAS{2 + 3 * k:02d}")
                    if not reason:
                        continue
                    adj += 1
                    rows["remittance_adjustments"].append({
                        **key(), "claim_index": str(claim_index), "line_index": line_index,
                        "adjustment_index": str(adj), "kind": "carc", "group_code": group, "reason_code": reason,
                        "amount": cas.get_value(f"CAS{3 + 3 * k:02d}"), "quantity": cas.get_value(f"CAS{4 + 3 * k:02d}"),
                        "source_row": claim_index * 1000 + adj,
                    })
            for lq in parent.select("LQ"):
                remark(lq.get_value("LQ02"), line_index)

        adjustments(node, None)
        for moa in node.select("MOA"):  # outpatient adjudication: remark codes MOA03..MOA07
            for k in range(3, 8):
                remark(moa.get_value(f"MOA{k:02d}"), None)
        for mia in node.select("MIA"):  # inpatient adjudication: remark codes MIA05, MIA20..MIA23
            for k in (5, 20, 21, 22, 23):
                remark(mia.get_value(f"MIA{k:02d}"), None)
        for line_index, svc in enumerate(node.select("2110"), start=1):
            ref = next((r for r in svc.select("REF") if r.get_value("REF01") == "6R"), None)
            dtm = svc.first("DTM")
            rows["remittance_lines"].append({
                **key(), "claim_index": str(claim_index), "line_index": str(line_index),
                "code": svc.get_value("SVC01-2"),
                "modifiers": ",".join(m for m in (svc.get_value(f"SVC01-{k}") for k in range(3, 7)) if m),
                "charge": svc.get_value("SVC02"), "paid": svc.get_value("SVC03"),
                "units": svc.get_value("SVC05") or "1",
                "service_date": _date(dtm.get_value("DTM02")) if dtm is not None else None,
                "line_control_number": ref.get_value("REF02") if ref is not None else None,
                "original_code": svc.get_value("SVC06-2"),
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


def load_remittances(conn: duckdb.DuckDBPyConnection, drop_dir: Path) -> dict:
    """Load the drop's 835 files that are new since the last load (ledger by sha256); returns counts
    (files, loaded, duplicates, rejected, payments, claims, lines, ...) and `warnings` (one line per file
    loaded with validator warnings). Runs after pipelines.ingest.load.load_drop, in one
    transaction."""
    from pipelines.ingest.load import _load_table, create_ingest_tables  # the shared typing and quarantine checks
    from pipelines.x12.claims_837 import ensure_ledger

    ensure_ledger(conn)  # the remittance marts read the submission ledger, empty until the first close
    create_ingest_tables(conn)  # the ledger, quarantine, field warnings and raw tables of pipelines.ingest
    counts: dict = {"files": 0, "loaded": 0, "duplicates": 0, "rejected": 0, "claims": 0, "lines": 0, "warnings": []}
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
    # validator findings on these segments (contacts, addresses) are warnings, not a rejected payment
    warning_segments = {r[0] for r in conn.sql("select segment from ref_x12_835_warning_segments").fetchall()}
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
        try:
            found = interchanges(raw)
            why = refusal(found)
        except X12FileError as exc:
            found, why = [], str(exc)
        verdicts = [validate_x12(ic.content, warning_segments) for ic in found] if why is None else []
        findings = [f"interchange {n}: {e}" if len(found) > 1 else e
                    for n, v in enumerate(verdicts, start=1) for e in v.safe]
        if why is None and findings:
            why = f"not a valid 005010X221A1 835: {'; '.join(findings[:5])}" + (
                f" (and {len(findings) - 5} more)" if len(findings) > 5 else "")
        if why is not None:
            counts["rejected"] += 1
            records.append({**base, "delivery_seq": None, "status": "rejected", "detail": f"{path}: {why}"})
            continue
        seq += 1
        loaded_sha.add(sha)
        n = 0
        for ic in found:
            parsed = parse_835(ic.content, path.name)
            for t in REMIT_TABLES:
                for r in parsed[t]:
                    landing[t].append({**r, "delivery_seq": seq, "source_row": len(landing[t]) + 1})
                n += len(parsed[t])
        warnings = [w for v in verdicts for w in v.warnings]
        detail = None
        if warnings:
            detail = (f"loaded with {len(warnings)} validator warning(s) on contacts or addresses (not the money):"
                      f" {'; '.join(warnings[:5])}" + (f" (and {len(warnings) - 5} more)" if len(warnings) > 5 else ""))
            counts["warnings"].append(f"{path.name}: {detail}")
        counts["loaded"] += 1
        records.append({**base, "delivery_seq": seq, "status": "loaded", "detail": detail, "rows_read": n})
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
            counts[t.removeprefix("remittance_")] = loaded
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
