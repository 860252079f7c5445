"""Claims out: the closed months' claim lines as ASC X12 005010X222A1 837P interchanges.

One interchange per payer and service month (and per billing provider when the payer's payer_edi row
asks for it). Claim ids are stable (fct_x12_claim_lines), and a ledger in the warehouse
(x12_claim_submissions, x12_claim_submission_lines) remembers what was sent, so closing a month
again sends only what changed:

- a claim never sent (or voided before and billable again): an original, frequency code 1;
- a claim sent before whose content changed: a replacement, frequency code 7, with REF*F8 = the
  payer's claim control number (835 CLP07);
- a claim sent before that is no longer billable: a void, frequency code 8, repeating the lines sent,
  with REF*F8 likewise;
- a claim sent before and unchanged: nothing is sent.

REF*F8 carries only a payer's control number (005010X222A1 2300 REF*F8 "Payer Claim Control Number",
required when CLM05-3 is 7 or 8): a replacement or void of a claim no 835 has answered yet waits
(x12_claims_waiting, with the reason) and goes out at a close after the 835 came back. A claim whose
latest answer is a reversal (835 CLP02 = 22) with no later payment no longer exists at the payer: a
changed claim is sent as a new original (frequency 1, no REF*F8), a void of it is not sent (there
is nothing to void); a reversal followed by a corrected payment is referenced by the correction's
control number.

Control numbers (ISA13 = GS06 = ST02 = BHT03) come from a counter per submitter id
(`reserve_control_numbers`, a file under BHI_X12_COUNTER_DIR shared by every warehouse of that
submitter on the machine), never below the largest number this warehouse's ledger holds: a rerun, a
restored or a rebuilt warehouse, or a second warehouse of the same submitter never reuses one.
The ledger rows are also written outside the warehouse before any file is (pipelines/ledgers.py).

A claim with a missing required element is held back (fct_x12_claims_held) and never sent, and a
claim already sent that is now held is left alone (neither replaced nor voided). Every interchange is
validated by pyx12 against the implementation guide before it is written; the files are written
owner-readable only (0600). Nothing identifying goes to the log or an error message.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines import ledgers
from pipelines.warehouse.database import table_exists, transaction
from pipelines.x12.segments import amount, date8, isa, segment, text

X837_DIR = "837p"
IMPLEMENTATION = "005010X222A1"
COUNTER_DIR_ENV = "BHI_X12_COUNTER_DIR"
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is nine digits
REVERSAL = "22"  # 835 CLP02: reversal of previous payment
WAITING_DDL = (
    "create table if not exists x12_claims_waiting (service_month date, claim_id varchar, frequency_code varchar,"
    " reason varchar, decided_at timestamp)"
)

LEDGER_DDL = (
    "create table if not exists x12_claim_submissions (claim_id varchar, service_month date, payer_id varchar,"
    " facility_id varchar, patient_id varchar, frequency_code varchar, content_hash varchar,"
    " original_reference varchar, interchange_control_number bigint, file_name varchar, submitted_at timestamp)"
)


def ensure_ledger(conn: duckdb.DuckDBPyConnection) -> None:
    """The submission ledger's claim table (what was sent, when, in which interchange). Created
    empty so the remittance marts can read it before the first close; it survives --full-refresh (a
    claim once sent stays sent). The lines sent (x12_claim_submission_lines: every element, so a void
    can repeat them) are created by the first close, with the columns of fct_x12_claim_lines."""
    conn.execute(LEDGER_DDL)


def _ensure_line_ledger(conn: duckdb.DuckDBPyConnection) -> None:
    extra = "frequency_code varchar, original_reference varchar, interchange_control_number bigint, submitted_at timestamp"
    conn.execute(
        "create table if not exists x12_claim_submission_lines as select * from fct_x12_claim_lines where false"
    )
    have = {r[0] for r in conn.sql("select column_name from (describe x12_claim_submission_lines)").fetchall()}
    wanted = conn.sql("select column_name, column_type from (describe fct_x12_claim_lines)").fetchall()
    wanted += [tuple(c.split()) for c in extra.split(", ")]
    for name, typ in wanted:  # a later version of the model added a column: keep the old rows
        if name not in have:
            conn.execute(f"alter table x12_claim_submission_lines add column {name} {typ}")


def settings(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(conn.sql("select setting, value from ref_x12_settings").fetchall())


@dataclass
class Interchange:
    month: str
    payer_id: str
    facility_id: str | None
    control_number: int
    content: str
    claims: int
    lines: int
    frequency_codes: dict[str, int]

    @property
    def file_name(self) -> str:
        by = f"_{self.facility_id}" if self.facility_id else ""
        return f"837p_{self.month}_{self.payer_id}{by}_{self.control_number:09d}.x12"


# ---------------------------------------------------------------------------------------------------
# Which claims to send


def pending_claims(conn: duckdb.DuckDBPyConnection, month: str) -> pl.DataFrame:
    """Claims of one service month to send or to hold: (claim_id, frequency_code, content_hash,
    source_icn, original_reference, waiting_reason) where source_icn is the interchange whose lines
    a void repeats; a row with a waiting_reason is not sent (module docstring: REF*F8 rules)."""
    ensure_ledger(conn)
    has_remits = table_exists(conn, "stg_remittance_claims")
    order = "(payment_date, delivery_seq, trace_number, claim_index)"
    payer_ref = (
        # the payer's latest answer (on one payment date the latest delivery, then the later claim in
        # the 835: the rule of fct_claim_payments) and the control number of its latest answer that
        # is not a reversal
        f"(select claim_id, arg_max(claim_status, {order}) as last_status,"
        f" arg_max(payer_claim_control_number, {order}) filter (where payer_claim_control_number is not null"
        f" and claim_status is distinct from '{REVERSAL}') as icn"
        " from stg_remittance_claims where claim_id is not null group by claim_id)"
        if has_remits
        else "(select null::varchar as claim_id, null::varchar as last_status, null::varchar as icn where false)"
    )
    return conn.sql(
        f"""
        with cur as (
            select claim_id,
                   md5(string_agg(line_fingerprint, '|' order by line_number)) as content_hash,
                   bool_and(claim_missing_elements is null) as ready
            from fct_x12_claim_lines
            where service_month = '{month}-01'::date
            group by claim_id
        ),
        last as (
            select * from x12_claim_submissions
            where service_month = '{month}-01'::date
            qualify row_number() over (partition by claim_id order by interchange_control_number desc) = 1
        ),
        actions as (
            select coalesce(c.claim_id, l.claim_id) as claim_id,
                   case
                       when c.ready and (l.claim_id is null or l.frequency_code = '8') then '1'
                       when c.ready and l.content_hash <> c.content_hash then '7'
                       when c.claim_id is null and l.frequency_code in ('1', '7') then '8'
                   end as frequency_code,
                   c.content_hash,
                   l.interchange_control_number as source_icn
            from cur as c full join last as l using (claim_id)
        ),
        answered as (
            -- reversed: the payer's latest answer is a reversal, no corrected payment after it
            select a.*, r.icn, r.last_status = '{REVERSAL}' as reversed
            from actions as a left join {payer_ref} as r using (claim_id)
            where a.frequency_code is not null
        )
        select claim_id,
               -- a changed claim the payer reversed (and did not pay again) is sent as a new original
               case when frequency_code = '7' and coalesce(reversed, false) then '1' else frequency_code end
                   as frequency_code,
               content_hash, source_icn,
               case when frequency_code in ('7', '8') and not coalesce(reversed, false) then icn end
                   as original_reference,
               case
                   when frequency_code = '8' and coalesce(reversed, false)
                       then 'void not sent: the payer reversed the claim (835 CLP02 = 22), nothing to void'
                   when frequency_code in ('7', '8') and not coalesce(reversed, false) and icn is null
                       then 'waits for the payer''s claim control number (835 CLP07) for REF*F8'
               end as waiting_reason
        from answered
        order by claim_id
        """
    ).pl()


def counter_dir() -> Path:
    """Where the control-number counters live: BHI_X12_COUNTER_DIR, else the user's state folder
    ($XDG_STATE_HOME or ~/.local/state)/bhi-revenue/x12-control-numbers."""
    raw = os.environ.get(COUNTER_DIR_ENV, "").strip()
    if raw:
        return Path(raw)
    state = os.environ.get("XDG_STATE_HOME", "").strip() or str(Path.home() / ".local" / "state")
    return Path(state) / "bhi-revenue" / "x12-control-numbers"


def reserve_control_numbers(submitter_id: str, count: int, floor: int = 0) -> int:
    """Reserve `count` interchange control numbers for a submitter: returns the first; the counter
    file (one per submitter id, flock'ed, fsynced) then points past them, and never goes below
    `floor` + 1 (the largest number the warehouse's ledger holds). Numbers of a close that fails
    later are not reused: gaps, never repeats."""
    folder = counter_dir()
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", submitter_id.strip())[:40]
    path = folder / f"{safe}-{hashlib.sha256(submitter_id.strip().encode()).hexdigest()[:8]}.next"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text_ = os.pread(fd, 64, 0).decode().strip()
        first = max(int(text_) if text_.isdigit() else 1, floor + 1)
        if first + count - 1 > MAX_CONTROL_NUMBER:
            raise RuntimeError(f"interchange control numbers of submitter {safe} are used up ({path})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{first + count}\n".encode(), 0)
        os.fsync(fd)
    finally:
        os.close(fd)  # closing the descriptor releases the flock
    return first


def _lines(conn: duckdb.DuckDBPyConnection, month: str) -> pl.DataFrame:
    """The lines to write (reads the temp table _pending): current lines for originals and
    replacements, the lines last sent for voids."""
    return conn.sql(
        f"""
        select l.*, p.frequency_code, p.original_reference
        from fct_x12_claim_lines as l inner join _pending as p using (claim_id)
        where p.frequency_code in ('1', '7') and l.service_month = '{month}-01'::date
        union all by name
        select s.* exclude (frequency_code, original_reference, interchange_control_number, submitted_at),
               p.frequency_code, p.original_reference
        from _pending as p
        inner join x12_claim_submission_lines as s
            on s.claim_id = p.claim_id and s.interchange_control_number = p.source_icn
        where p.frequency_code = '8'
        order by payer_id, facility_id, patient_id, claim_id, line_number
        """
    ).pl()


# ---------------------------------------------------------------------------------------------------
# Writing one interchange


def build_interchange(lines: list[dict], cfg: dict[str, str], control_number: int, when: dt.datetime) -> str:
    """One ISA/GS/ST 837P interchange for the given claim lines (all of one payer), grouped into
    billing provider (2000A), subscriber (2000B; the patient is the subscriber) and claim (2300)
    loops. `lines` are rows of fct_x12_claim_lines plus frequency_code and original_reference."""
    icn = f"{control_number:09d}"  # ISA13, GS06, ST02 and BHT03: one number, unique per submitter
    body = [
        segment("BHT", "0019", "00", icn, date8(when), when.strftime("%H%M"), "CH"),
        segment("NM1", "41", "2", text(cfg["submitter_name"], 60, "submitter name"), "", "", "", "", "46",
                cfg["submitter_id"]),
        segment("PER", "IC", cfg["submitter_contact_name"], "TE", cfg["submitter_contact_phone"]),
        segment("NM1", "40", "2", text(cfg["receiver_name"], 60, "receiver name"), "", "", "", "", "46",
                cfg["receiver_id"]),
    ]
    hl = 0
    by_provider: dict[str, list[dict]] = {}
    for line in lines:
        by_provider.setdefault(line["facility_id"], []).append(line)
    for facility_lines in by_provider.values():
        first = facility_lines[0]
        hl += 1
        provider_hl = hl
        body += [
            segment("HL", provider_hl, "", "20", "1"),
            segment("PRV", "BI", "PXC", first["billing_taxonomy_code"]),
            segment("NM1", "85", "2", text(first["billing_name"], 60, "billing provider name"), "", "", "", "",
                    "XX", first["billing_npi"]),
            segment("N3", text(first["billing_address_line"], 55, "billing provider address")),
            segment("N4", text(first["billing_city"], 30, "billing provider city"), first["billing_state"],
                    first["billing_postal_code"]),
            segment("REF", "EI", first["billing_tin"]),
        ]
        by_patient: dict[str, list[dict]] = {}
        for line in facility_lines:
            by_patient.setdefault(line["patient_id"], []).append(line)
        for patient_lines in by_patient.values():
            p = patient_lines[0]
            hl += 1
            body += [
                segment("HL", hl, provider_hl, "22", "0"),
                segment("SBR", "P", "18", "", "", "", "", "", "", p["claim_filing_indicator"]),
                segment("NM1", "IL", "1", text(p["patient_last_name"], 60, "patient last name"),
                        text(p["patient_first_name"], 35, "patient first name"), "", "", "", "MI",
                        text(p["member_id"], 80, "member id")),
                segment("N3", text(p["patient_address_line"], 55, "patient address")),
                segment("N4", text(p["patient_city"], 30, "patient city"), p["patient_state"],
                        p["patient_postal_code"]),
                segment("DMG", "D8", date8(p["patient_birth_date"]), p["patient_sex"]),
                segment("NM1", "PR", "2", text(p["payer_name"], 60, "payer name"), "", "", "", "", "PI",
                        p["payer_edi_id"]),
            ]
            by_claim: dict[str, list[dict]] = {}
            for line in patient_lines:
                by_claim.setdefault(line["claim_id"], []).append(line)
            for claim_id, claim_lines in by_claim.items():
                c = claim_lines[0]
                total = sum(float(x["charge"]) for x in claim_lines)
                body.append(segment("CLM", claim_id, amount(total), "", "", (c["place_of_service"], "B",
                                    c["frequency_code"]), "Y", "A", "Y", "Y"))
                if c["frequency_code"] in ("7", "8"):
                    body.append(segment("REF", "F8", text(c["original_reference"], 50, "original reference")))
                body.append(segment("HI", ("ABK", c["diagnosis_code"])))
                body += [
                    segment("NM1", "82", "1", text(c["rendering_last_name"], 60, "rendering provider name"),
                            text(c["rendering_first_name"], 35, "rendering provider first name"), "", "", "",
                            "XX", c["rendering_npi"]),
                    segment("PRV", "PE", "PXC", c["rendering_taxonomy_code"]),
                ]
                for n, x in enumerate(claim_lines, start=1):
                    mods = [m for m in (x["modifiers"] or "").split(",") if m][:4]
                    body += [
                        segment("LX", n),
                        segment("SV1", ("HC", x["code"], *mods), amount(x["charge"]), "UN", x["units"], "", "",
                                ("1",)),
                        segment("DTP", "472", "D8", date8(x["date_of_service"])),
                        segment("REF", "6R", x["line_control_number"]),
                    ]
    st = [segment("ST", "837", icn, IMPLEMENTATION)]
    transaction = st + body
    transaction.append(segment("SE", len(transaction) + 1, icn))
    return "\n".join([
        isa(cfg["submitter_id"], cfg["receiver_id"], control_number, when, cfg["usage_indicator"]),
        segment("GS", "HC", cfg["submitter_id"], cfg["receiver_id"], date8(when), when.strftime("%H%M"),
                control_number, "X", IMPLEMENTATION),
        *transaction,
        segment("GE", "1", control_number),
        segment("IEA", "1", icn),
    ]) + "\n"


# ---------------------------------------------------------------------------------------------------
# The close: decide, write, validate, record


class InvalidInterchange(RuntimeError):
    """pyx12 rejected an interchange; nothing of that close was written or recorded."""


def _write_private(path: Path, content: str) -> None:
    """Write a file readable by its owner only (0600) as a new inode renamed into place: a published
    file (hard-linked into this run's folder) is never written in place."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def submit_month(
    conn: duckdb.DuckDBPyConnection, out_dir: Path, month: str, when: dt.datetime | None = None
) -> list[Interchange]:
    """Write the 837P interchanges of one closed service month (YYYY-MM) into <out>/month_end/837p/
    and record them in the ledger (in the warehouse, and outside it first: pipelines/ledgers.py).
    Replacements and voids that wait for a payer's control number are recorded in
    x12_claims_waiting. Returns the interchanges written (none when nothing changed)."""
    from pipelines.x12.validate import validate_x12

    when = when or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ledgers.restore_into(conn)  # a restored or rebuilt warehouse re-reads what was sent after its copy
    _ensure_line_ledger(conn)
    pending = pending_claims(conn, month)  # noqa: F841 (read by DuckDB)
    with transaction(conn):
        conn.execute(WAITING_DDL)
        conn.execute("delete from x12_claims_waiting where service_month = ?::date", [f"{month}-01"])
        conn.execute(
            "insert into x12_claims_waiting select ?::date, claim_id, frequency_code, waiting_reason, ?::timestamp"
            " from pending where waiting_reason is not null",
            [f"{month}-01", when],
        )
    conn.execute("create or replace temp table _pending as select * from pending where waiting_reason is null")
    lines = _lines(conn, month)
    cfg = settings(conn)
    if lines.is_empty():
        conn.execute("drop table if exists _pending")
        return []
    keys = lines.select(
        "payer_id",
        pl.when(pl.col("interchange_per_billing_provider")).then(pl.col("facility_id")).alias("split_facility"),
    )
    lines = lines.with_columns(split_facility=keys["split_facility"])
    groups = list(lines.group_by(["payer_id", "split_facility"], maintain_order=True))
    floor = conn.sql("select coalesce(max(interchange_control_number), 0) from x12_claim_submissions").fetchall()[0][0]
    first_icn = reserve_control_numbers(cfg["submitter_id"], len(groups), floor)
    written: list[Interchange] = []
    for (payer_id, split_facility), group in groups:
        rows = group.to_dicts()
        icn = first_icn + len(written)
        content = build_interchange(rows, cfg, icn, when)
        verdict = validate_x12(content)
        if not verdict.valid:
            # the validator's messages name segments and codes; no values
            raise InvalidInterchange(
                f"837P for payer {payer_id}, {month} failed validation: {'; '.join(verdict.safe[:5])}"
            )
        freq = group.unique("claim_id")["frequency_code"].value_counts()
        written.append(Interchange(month, payer_id, split_facility, icn, content, group["claim_id"].n_unique(),
                                   group.height, dict(zip(freq["frequency_code"], freq["count"]))))
    folder = Path(out_dir) / X837_DIR
    folder.mkdir(parents=True, exist_ok=True)
    files = pl.DataFrame(  # noqa: F841 (read by DuckDB)
        {"payer_id": [i.payer_id for i in written], "split_facility": [i.facility_id for i in written],
         "interchange_control_number": [i.control_number for i in written],
         "file_name": [i.file_name for i in written]},
        schema={"payer_id": pl.String, "split_facility": pl.String, "interchange_control_number": pl.Int64,
                "file_name": pl.String},
    )
    sent = lines  # noqa: F841 (read by DuckDB)
    icns = [i.control_number for i in written]
    try:
        with transaction(conn):
            conn.execute(
                """
                create or replace temp table _sent as
                select s.*, f.interchange_control_number, f.file_name, ?::timestamp as submitted_at
                from sent as s inner join files as f
                    on f.payer_id = s.payer_id and f.split_facility is not distinct from s.split_facility
                """,
                [when],
            )
            conn.execute(
                """
                insert into x12_claim_submissions
                select s.claim_id, any_value(s.service_month), any_value(s.payer_id), any_value(s.facility_id),
                       any_value(s.patient_id), any_value(s.frequency_code), any_value(p.content_hash),
                       any_value(s.original_reference), any_value(s.interchange_control_number),
                       any_value(s.file_name), any_value(s.submitted_at)
                from _sent as s inner join _pending as p using (claim_id)
                group by s.claim_id
                """
            )
            conn.execute(
                "insert into x12_claim_submission_lines by name"
                " select * exclude (split_facility, file_name) from _sent"
            )
            # outside the warehouse, before any file is written: a restore never forgets these
            ledgers.append(conn, ledgers.SUBMISSIONS,
                           "select * from x12_claim_submissions where interchange_control_number in"
                           " (select unnest(?::bigint[]))", [icns])
            ledgers.append(conn, ledgers.SUBMISSION_LINES,
                           "select * from x12_claim_submission_lines where interchange_control_number in"
                           " (select unnest(?::bigint[]))", [icns])
            for interchange in written:
                _write_private(folder / interchange.file_name, interchange.content)
    finally:
        conn.execute("drop table if exists _sent")
        conn.execute("drop table if exists _pending")
    return written
