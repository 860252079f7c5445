"""Validate an X12 interchange with pyx12 (HIPAA X12 validator; it ships the 005010X222A1 837P and
005010X221A1 835 implementation-guide maps). The verdict lists the validator's findings in words:
where (segment or element, with its name in the implementation guide) and what (the X12 999
acknowledgment's error code, spelled out), never the values, so they can go to logs and ledgers.

A finding on a segment named in `warning_segments` (the 835's contacts and addresses: PER, N3, N4,
settings in data/reference/x12_835_warning_segments.csv) does not touch the money: it is a warning,
the interchange is still valid."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field

import pyx12.params
import pyx12.x12n_document

# X12 999 acknowledgment error codes (005010X231A1: IK304 segment syntax error codes, IK403 element
# syntax error codes, IK502 / AK905 transaction and group codes); pyx12 reports the same numbers
SEGMENT_ERRORS = {
    "1": "unrecognized segment", "2": "unexpected segment", "3": "required segment missing",
    "4": "loop occurs more often than allowed", "5": "segment occurs more often than allowed",
    "6": "segment not in the transaction set", "7": "segment out of sequence",
    "8": "segment has element errors", "I4": "segment not used in this implementation",
    "I6": "implementation dependent segment missing", "I7": "loop occurs fewer times than required",
    "I8": "segment occurs fewer times than required", "I9": "implementation dependent segment missing",
}
ELEMENT_ERRORS = {
    "1": "required element missing", "2": "conditional required element missing", "3": "too many elements",
    "4": "value too short", "5": "value too long", "6": "invalid character", "7": "invalid code value",
    "8": "invalid date", "9": "invalid time", "10": "exclusion condition violated",
    "12": "too many repetitions", "13": "too many components", "I6": "code value not used in this implementation",
    "I9": "implementation dependent element missing", "I10": "implementation pattern not matched",
    "I11": "element not used in this implementation", "I12": "implementation pattern not matched",
    "I13": "implementation dependent element missing",
}
TRANSACTION_ERRORS = {  # IK502
    "1": "transaction set not supported", "2": "transaction set trailer (SE) missing",
    "3": "transaction set control numbers (ST02 / SE02) do not match",
    "4": "number of segments in SE01 does not match the segments sent",
    "5": "one or more segments in error", "6": "missing or invalid transaction set identifier",
    "7": "missing or invalid transaction set control number", "23": "transaction set control number not unique",
}
GROUP_ERRORS = {  # IK905 / AK905
    "1": "functional group not supported", "2": "functional group version not supported",
    "3": "functional group trailer (GE) missing", "4": "group control numbers (GS06 / GE02) do not match",
    "5": "number of transaction sets in GE01 does not match", "6": "group control number not unique",
}
INTERCHANGE_ERRORS = {  # TA105
    "001": "interchange control numbers (ISA13 / IEA02) do not match",
    "021": "number of functional groups in IEA01 does not match", "023": "interchange trailer (IEA) missing",
    "024": "invalid interchange content", "025": "duplicate interchange control number",
}
# pyx12's own checks on HL and LX numbering and empty segments
SEGMENT_ERRORS |= {"HL1": "HL numbering out of sequence", "HL2": "HL parent id not found",
                   "LX": "LX numbering out of sequence", "SEG1": "empty or malformed segment"}


@dataclass
class Finding:
    level: str  # interchange, group, transaction, segment, element
    segment: str  # segment id ('' above segment level)
    where: str  # 'N402 (Payer State Code)', 'PER (Payer Technical Contact Information)', 'transaction'
    code: str  # pyx12 / 999 error code
    words: str  # what is wrong, in words

    def __str__(self) -> str:
        return f"{self.where}: {self.words} (error {self.code})"


@dataclass
class Verdict:
    valid: bool
    errors: list[str] = field(default_factory=list)  # pyx12's own messages: may quote values, never log them
    safe: list[str] = field(default_factory=list)  # the findings that reject, in words, no values: logs, ledgers
    ack: str = ""  # the 999 acknowledgment pyx12 generated
    warnings: list[str] = field(default_factory=list)  # findings on non-financial segments, in words, no values


def _findings(report: object) -> tuple[list[Finding], list[str]]:
    """pyx12's JSON error report -> findings in words, and pyx12's own messages (may quote values)."""
    found: list[Finding] = []
    raw: list[str] = []

    def add(level: str, seg: str, where: str, errors, table: dict[str, str]) -> None:
        for e in errors or []:
            code = str(e.get("err_cde", "")) if isinstance(e, dict) else ""
            raw.append(f"{where}: {code} {e.get('err_str', '') if isinstance(e, dict) else e}".strip())
            found.append(Finding(level, seg, where, code, table.get(code, "rejected by the validator")))

    for isa in report.get("interchanges", []) if isinstance(report, dict) else []:
        add("interchange", "ISA", "interchange envelope (ISA/IEA)", isa.get("errors"), INTERCHANGE_ERRORS)
        for gs in isa.get("groups", []) or []:
            add("group", "GS", "functional group (GS/GE)", gs.get("errors"), GROUP_ERRORS)
            for st in gs.get("transactions", []) or []:
                add("transaction", "ST", "transaction set (ST/SE)", st.get("errors"), TRANSACTION_ERRORS)
                for seg in st.get("segments", []) or []:
                    sid = seg.get("seg_id") or "?"
                    name = seg.get("name")
                    add("segment", sid, f"{sid} ({name})" if name else sid, seg.get("errors"), SEGMENT_ERRORS)
                    for ele in seg.get("elements", []) or []:
                        pos = ele.get("ele_pos")
                        ref = f"{sid}{int(pos):02d}" if pos is not None else sid
                        if ele.get("subele_pos") is not None:
                            ref += f"-{ele['subele_pos']}"
                        name = ele.get("name")
                        add("element", sid, f"{ref} ({name})" if name else ref, ele.get("errors"), ELEMENT_ERRORS)
    return found, raw


def validate_x12(content: str, warning_segments: frozenset[str] | set[str] = frozenset()) -> Verdict:
    """Run pyx12's validator on an interchange's text. Findings on segments in `warning_segments`
    are warnings (the interchange stays valid); any other finding rejects it."""
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)  # pyx12 logs segment contents at error level
    params = pyx12.params.params()
    ack, report = io.StringIO(), io.StringIO()
    try:
        ok = pyx12.x12n_document.x12n_document(params, io.StringIO(content), ack, None, None, report)
    except Exception as exc:  # noqa: BLE001 pyx12 raises its own errors on an unreadable envelope
        name = type(exc).__name__
        return Verdict(False, [name], ["the interchange envelope (ISA) cannot be read"])
    try:
        findings, raw = _findings(json.loads(report.getvalue() or "null"))
    except json.JSONDecodeError:
        findings, raw = [], ["unreadable validator report"]
    errors = [f for f in findings if f.segment not in warning_segments]
    warnings = [f for f in findings if f.segment in warning_segments]
    safe = [str(f) for f in errors]
    if not ok and not errors and not warnings:
        safe.append("rejected by the validator (no finding reported)")
    return Verdict(not safe, raw, safe, ack.getvalue(), [str(f) for f in warnings])
