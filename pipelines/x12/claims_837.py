"""Claims out: the closed months' claim lines as ASC X12 005010X222A1 837P interchanges.

One interchange per payer and service month (and per billing provider when the payer's payer_edi row
asks for it). Claim ids are stable (fct_x12_claim_lines), and a ledger in the warehouse
(x12_claim_submissions, x12_claim_submission_lines) remembers what was sent, so closing a month
again sends only what changed:

- a claim never sent (or voided before and billable again): an original, frequency code 1;
- a claim sent before whose content changed: a replacement, frequency code 7, referencing it;
- a claim sent before that is no longer billable: a void, frequency code 8, repeating the lines sent;
- a claim sent before and unchanged: nothing is sent.

A claim with a missing required element is held back (fct_x12_claims_held) and never sent, and a
claim already sent that is now held is left alone (neither replaced nor voided). Every interchange is
validated by pyx12 against the implementation guide before it is written; the files are written
owner-readable only (0600). Nothing identifying goes to the log or an error message.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipelines.warehouse.database import table_exists, transaction
from pipelines.x12.segments import amount, date8, isa, segment, text

X837_DIR = "837p"
IMPLEMENTATION = "005010X222A1"

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
    """Claims of one service month to send: (claim_id, frequency_code, original_reference,
    source_icn) where source_icn is the interchange whose lines a void repeats."""
    ensure_ledger(conn)
    has_remits = table_exists(conn, "stg_remittance_claims")
    payer_ref = (
        # the payer's control number of the latest payment: on one payment date the latest delivery,
        # then the later claim in the 835 (the rule of fct_claim_payments; payment_date alone took either)
        "(select claim_id, arg_max(payer_claim_control_number, (payment_date, delivery_seq, trace_number, claim_index))"
        " as icn from stg_remittance_claims where payer_claim_control_number is not null group by claim_id)"
        if has_remits
        else "(select null::varchar as claim_id, null::varchar as icn where false)"
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
        )
        select a.claim_id, a.frequency_code, a.content_hash, a.source_icn,
               case when a.frequency_code in ('7', '8') then coalesce(r.icn, a.claim_id) end as original_reference
        from actions as a left join {payer_ref} as r using (claim_id)
        where a.frequency_code is not null
        order by a.claim_id
        """
    ).pl()


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
    icn = f"{control_number:09d}"
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
    st = [segment("ST", "837", "0001", IMPLEMENTATION)]
    transaction = st + body
    transaction.append(segment("SE", len(transaction) + 1, "0001"))
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
    """Write a file readable by its owner only (0600), also when it existed with other modes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", newline="") as fh:
        fh.write(content)
    os.chmod(path, 0o600)


def submit_month(
    conn: duckdb.DuckDBPyConnection, out_dir: Path, month: str, when: dt.datetime | None = None
) -> list[Interchange]:
    """Write the 837P interchanges of one closed service month (YYYY-MM) into <out>/month_end/837p/
    and record them in the ledger. Returns the interchanges written (none when nothing changed)."""
    from pipelines.x12.validate import validate_x12

    when = when or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ensure_ledger(conn)
    _ensure_line_ledger(conn)
    pending = pending_claims(conn, month)  # noqa: F841 (read by DuckDB)
    conn.execute("create or replace temp table _pending as select * from pending")
    lines = _lines(conn, month)
    cfg = settings(conn)
    next_icn = conn.sql("select coalesce(max(interchange_control_number), 0) + 1 from x12_claim_submissions").fetchall()[0][0]
    if lines.is_empty():
        return []
    keys = lines.select(
        "payer_id",
        pl.when(pl.col("interchange_per_billing_provider")).then(pl.col("facility_id")).alias("split_facility"),
    )
    lines = lines.with_columns(split_facility=keys["split_facility"])
    written: list[Interchange] = []
    for (payer_id, split_facility), group in lines.group_by(["payer_id", "split_facility"], maintain_order=True):
        rows = group.to_dicts()
        icn = next_icn + len(written)
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
            for interchange in written:
                _write_private(folder / interchange.file_name, interchange.content)
    finally:
        conn.execute("drop table if exists _sent")
        conn.execute("drop table if exists _pending")
    return written
