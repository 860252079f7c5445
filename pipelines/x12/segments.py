"""A small X12 segment writer: elements joined by '*', components by ':', segments ended by '~'.

Values are upper-cased and stripped of the separator characters (an address with '*' or '~' would
otherwise break the interchange); a value too long for its element is an error, never cut silently.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

ELEMENT, COMPONENT, REPETITION, SEGMENT = "*", ":", "^", "~"
_SEPARATORS = re.compile(r"[*:^~\r\n]")


class X12ValueError(ValueError):
    """A value cannot be written (too long for its element); the message names the element only."""


def text(value: object, max_len: int | None = None, element: str = "") -> str:
    """A data element's text: upper case, separators removed, whitespace collapsed."""
    if value is None:
        return ""
    out = _SEPARATORS.sub(" ", str(value)).upper()
    out = " ".join(out.split())
    if max_len is not None and len(out) > max_len:
        raise X12ValueError(f"{element or 'element'} is longer than {max_len} characters")
    return out


def amount(value: object) -> str:
    """Money as X12 R: no trailing zeros ('150', '150.5', '-12.25')."""
    d = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def date8(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


def segment(seg_id: str, *elements: object) -> str:
    """'NM1', '85', '2', ... -> 'NM1*85*2...~' with trailing empty elements dropped. An element given
    as a tuple is a composite (components joined by ':', trailing empty components dropped)."""
    parts = []
    for e in elements:
        if isinstance(e, tuple):
            comps = [text(c) for c in e]
            while comps and comps[-1] == "":
                comps.pop()
            parts.append(COMPONENT.join(comps))
        else:
            parts.append(text(e))
    while parts and parts[-1] == "":
        parts.pop()
    return ELEMENT.join([seg_id, *parts]) + SEGMENT


def isa(sender_id: str, receiver_id: str, control_number: int, when: dt.datetime, usage: str) -> str:
    """The fixed-width interchange header (ISA fields are padded, not trimmed)."""
    fields = [
        "ISA", "00", " " * 10, "00", " " * 10,
        "ZZ", text(sender_id, 15, "ISA06").ljust(15),
        "ZZ", text(receiver_id, 15, "ISA08").ljust(15),
        when.strftime("%y%m%d"), when.strftime("%H%M"), REPETITION, "00501",
        f"{control_number:09d}", "0", text(usage, 1, "ISA15"), COMPONENT,
    ]
    return ELEMENT.join(fields) + SEGMENT
