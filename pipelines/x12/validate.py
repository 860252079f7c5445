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
    errors: list[str] = field(default_factory=list)
    ack: str = ""  # the 999 acknowledgment pyx12 generated


def _errors(node, out: list[str], where: str = "") -> None:
    if isinstance(node, dict):
        here = node.get("id") or node.get("seg_id") or where
        for key in ("errors", "ele_errors", "err"):
            for e in node.get(key, []) or []:
                if isinstance(e, dict):
                    code = e.get("err_cde") or e.get("code") or ""
                    msg = e.get("err_str") or e.get("msg") or ""
                    out.append(f"{here}: {code} {msg}".strip())
                else:
                    out.append(f"{here}: {e}")
        for value in node.values():
            if isinstance(value, (list, dict)):
                _errors(value, out, here)
    elif isinstance(node, list):
        for value in node:
            _errors(value, out, where)


def validate_x12(content: str) -> Verdict:
    """Run pyx12's validator on an interchange's text."""
    logging.getLogger("pyx12").setLevel(logging.CRITICAL)  # pyx12 logs segment contents at error level
    params = pyx12.params.params()
    ack, errs = io.StringIO(), io.StringIO()
    ok = pyx12.x12n_document.x12n_document(params, io.StringIO(content), ack, None, None, errs)
    out: list[str] = []
    try:
        _errors(json.loads(errs.getvalue() or "null"), out)
    except json.JSONDecodeError:
        out.append(errs.getvalue()[:500])
    return Verdict(bool(ok) and not out, out, ack.getvalue())
