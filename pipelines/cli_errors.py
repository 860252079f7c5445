"""One line for errors the command line meets that are the user's to fix, not a bug: a folder it
cannot write (a read-only file system, no permission). No Dagster import."""

from __future__ import annotations

import errno
import re

# errno -> what the user reads; the same errors as DuckDB words them (it names the file in quotes)
UNWRITABLE = {
    errno.EROFS: "Read-only file system",
    errno.EACCES: "Permission denied",
    errno.EPERM: "Operation not permitted",
}


def unwritable(exc: BaseException | str, what: str = "") -> str | None:
    """`cannot write <path>: read-only file system ...` for an OSError (or DuckDB's IO error text) of
    a path that cannot be written; None for any other error."""
    text = str(exc)
    path = None
    if isinstance(exc, OSError) and exc.errno in UNWRITABLE:
        reason, path = UNWRITABLE[exc.errno], exc.filename
    else:
        reason = next((r for r in UNWRITABLE.values() if r in text), None)
        if reason is None:
            return None
        quoted = re.search(r"""(?:file|directory) ["']([^"']+)["']|: ['"]([^'"]+)['"]$""", text)
        path = quoted and (quoted.group(1) or quoted.group(2))
    where = f" {path}" if path else ""
    fix = (
        "the file system is mounted read-only: remount it read-write or choose a folder on a writable disk"
        if reason == UNWRITABLE[errno.EROFS]
        else "the user running bhi may not write there: fix the folder's owner or mode, or choose another folder"
    )
    return f"cannot write{where}{' (' + what + ')' if what else ''}: {reason.lower()}; {fix}"
