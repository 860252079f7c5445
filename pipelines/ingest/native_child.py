"""Native readers run in a child process with a memory limit, so that a reader that allocates too
much, or crashes (a Rust panic, an abort), rejects one file and never takes the run down.

The child is a fresh interpreter (`python -m pipelines.ingest.native_child <MB>`: no thread of the
parent's polars or DuckDB is copied into it, and the parent's main module is not imported again). It
limits its own address space with RLIMIT_AS (setting native_reader_memory_mb) before it imports
polars, runs polars with one thread and sends its error output to /dev/null (a native reader's
abort message could quote a file's content). It reads one request a line on stdin (a workbook, its
sheets and a private folder) and answers one line on stdout; each sheet goes back as an Arrow IPC
file in that folder. It is kept for the next file of the load and stopped at its end (`stop`); a
child that died is replaced.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_child: subprocess.Popen | None = None
_child_mb: int | None = None


class ChildFailed(Exception):
    """The child died (out of memory under its limit, or a crash of the native reader)."""


def _read_sheets(path: str, sheets: list[str], folder: str) -> list[dict]:
    """Each sheet written to folder/<n>.arrow: (sheet, file or None, read as text, error type or
    None). A column mixing cell types (durations and numbers, dates and text) makes the sheet read
    as text."""
    import fastexcel
    import polars as pl

    out = []
    for n, sheet in enumerate(sheets):
        target = str(Path(folder) / f"{n}.arrow")
        try:
            try:
                df, as_text = pl.read_excel(path, sheet_name=sheet, raise_if_empty=False, infer_schema_length=None), False
            except fastexcel.UnsupportedColumnTypeCombinationError:
                df, as_text = pl.read_excel(path, sheet_name=sheet, raise_if_empty=False, infer_schema_length=0), True
            df.write_ipc(target)
            out.append({"sheet": sheet, "file": target, "as_text": as_text, "error": None})
        except Exception as exc:  # noqa: BLE001  (its type is reported, never its text)
            out.append({"sheet": sheet, "file": None, "as_text": False, "error": type(exc).__name__})
    return out


def _serve(memory_mb: int) -> None:
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    for line in sys.stdin:
        request = json.loads(line)
        answer = _read_sheets(request["path"], request["sheets"], request["folder"])
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def _start(memory_mb: int) -> subprocess.Popen:
    env = dict(os.environ, POLARS_MAX_THREADS="1")  # each thread reserves address space under RLIMIT_AS
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.ingest.native_child", str(memory_mb)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )


def read_workbook(path: Path, sheets: list[str], memory_mb: int):
    """[(sheet, DataFrame or None, read as text, error type or None)] of the workbook's sheets,
    read in the child; ChildFailed when the child died."""
    import polars as pl

    global _child, _child_mb
    if _child is None or _child_mb != memory_mb or _child.poll() is not None:
        stop()
        _child, _child_mb = _start(memory_mb), memory_mb
    folder = tempfile.mkdtemp(prefix="bhi-xlsx-")
    try:
        try:
            _child.stdin.write(json.dumps({"path": str(path), "sheets": sheets, "folder": folder}) + "\n")
            _child.stdin.flush()
            line = _child.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            stop()
            raise ChildFailed
        return [
            (a["sheet"], pl.read_ipc(a["file"]) if a["file"] else None, a["as_text"], a["error"])
            for a in json.loads(line)
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stop() -> None:
    """Stop the child (if one is running)."""
    global _child, _child_mb
    if _child is not None:
        try:
            _child.stdin.close()
            _child.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            _child.kill()
            _child.wait()
        _child.stdout.close()
    _child, _child_mb = None, None


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
