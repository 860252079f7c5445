"""Validate an X12 interchange with pyx12 (HIPAA X12 validator; it ships the 005010X222A1 837P and
005010X221A1 835 implementation-guide maps). The verdict and the validator's own error list are
returned; errors name segments, elements and codes, never values."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field

import pyx12.params
import pyx12.x12n_document


@dataclass
class Verdict:
    valid: bool
    errors: list[str] = field(default_factory=list)  # pyx12's own messages: may quote values, never log them
    safe: list[str] = field(default_factory=list)  # element / segment and error code only: for logs and ledgers
    ack: str = ""  # the 999 acknowledgment pyx12 generated


def _walk(node, errors: list[str], safe: list[str], where: str = "transaction") -> None:
    """Collect pyx12's JSON error report: errors at interchange / group / transaction, segment and
    element level."""
    if isinstance(node, list):
        for value in node:
            _walk(value, errors, safe, where)
        return
    if not isinstance(node, dict):
        return
    if "seg_id" in node:
        where = node["seg_id"]
    if "ele_pos" in node and node.get("ele_pos") is not None:
        where = f"{where.split(' ')[0][:3]}{int(node['ele_pos']):02d}"
    for e in node.get("errors", []) or []:
        code = e.get("err_cde", "") if isinstance(e, dict) else ""
        msg = e.get("err_str", "") if isinstance(e, dict) else str(e)
        errors.append(f"{where}: {code} {msg}".strip())
        safe.append(f"{where} error {code}".strip())
    for key, value in node.items():
        if key != "errors" and isinstance(value, (list, dict)):
            _walk(value, errors, safe, where)


def validate_x12(content: str) -> Verdict:
    """Run pyx12's validator on an interchange's text."""
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)  # pyx12 logs segment contents at error level
    params = pyx12.params.params()
    ack, report = io.StringIO(), io.StringIO()
    ok = pyx12.x12n_document.x12n_document(params, io.StringIO(content), ack, None, None, report)
    errors: list[str] = []
    safe: list[str] = []
    try:
        _walk(json.loads(report.getvalue() or "null"), errors, safe)
    except json.JSONDecodeError:
        errors.append("unreadable validator report")
        safe.append("unreadable validator report")
    if not ok and not errors:
        errors.append("rejected by the validator")
        safe.append("rejected by the validator")
    return Verdict(bool(ok) and not errors, errors, safe, ack.getvalue())
