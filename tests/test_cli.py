"""The command line as a user meets it: one-line errors (a bad header, the open month, a damaged
warehouse, a folder it cannot write), `bhi explain`'s options and matching, help on every option,
and paths holding quotes, semicolons, spaces and non-ASCII letters."""

from __future__ import annotations

import argparse
import errno
import pathlib
import shutil
import time

import pytest

from conftest import Drop
from pipelines.cli import build_parser, main
from pipelines.ingest.errors import ExtractError
from pipelines.ingest.readers import iter_parts

# every path option gets a name with a quote, a semicolon, spaces and non-ASCII letters
ODD = "o'dd; né é"


@pytest.fixture(scope="module")
def odd_run(tmp_path_factory):
    """One `bhi run` of a two-patient drop into an out folder whose path holds ODD: (drop, out)."""
    root = tmp_path_factory.mktemp("cli") / ODD
    drop = Drop(root / "drop")
    drop.enroll("P1")
    drop.month("P1", "2026-05", 45)
    drop.enroll("P2")
    drop.month("P2", "2026-06", 40)
    folder, out = drop.write(), root / "out"
    assert main(["run", "--extracts", str(folder), "--out", str(out), "--as-of", "2026-06-20", "--allow-stale"]) == 0
    return folder, out


def _err_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_first_run_of_a_drop_with_a_misnamed_header_fails_in_one_line_within_2_s(tmp_path, capsys):
    drop = Drop(tmp_path / "drop")
    drop.enroll("P1")
    drop.month("P1", "2026-05", 45)
    drop.write()
    for name in ("staff", "enrollments", "psych_reviews", "encounters"):  # the folder holds one CSV
        (drop.folder / f"{name}.csv").unlink()
    entries = drop.folder / "time_entries.csv"
    entries.write_text(entries.read_text().replace("minutes", "minuets", 1))
    out = tmp_path / "out"
    started = time.monotonic()
    assert main(["run", "--extracts", str(drop.folder), "--out", str(out), "--as-of", "2026-06-20"]) == 1
    took = time.monotonic() - started
    line = _err_line(capsys)
    print(f"{took:.2f} s: {line}")
    assert line.startswith(f"bhi run failed: {entries}: missing required column(s) minutes for table time_entries;"
                           " found minuets, which looks like minutes")
    assert "no file for required table(s) staff, enrollments, psych_reviews, encounters" in line
    assert "Error" not in line  # no Python class name
    assert not out.exists()  # no warehouse left behind (it was 5.5 MB)
    assert took < 2


def test_one_misnamed_column_is_named_not_counted_among_other_columns(drop, tmp_path):
    drop.enroll("P1")
    drop.month("P1", "2026-05", 20)
    entries = drop.write() / "time_entries.csv"
    entries.write_text(entries.read_text().replace("patient_id", "patientid", 1))
    with pytest.raises(ExtractError) as caught:
        next(iter_parts(entries, "time_entries"))
    message = str(caught.value)
    assert "missing required column(s) patient_id for table time_entries; found patientid, which looks like patient_id" in message
    assert "other column" not in message
    # a header name like no missing column is still not echoed (it could be a value of a header-less file)
    entries.write_text(entries.read_text().replace("patientid", "Jane Doe", 1))
    with pytest.raises(ExtractError) as caught:
        next(iter_parts(entries, "time_entries"))
    assert "Jane" not in str(caught.value) and "1 other column(s)" in str(caught.value)


def test_closing_the_open_month_is_one_line_before_dagster_starts(odd_run, capsys):
    _, out = odd_run
    capsys.readouterr()
    assert main(["close", "--out", str(out), "--month", "2026-05", "--through", "2026-06"]) == 1
    line = _err_line(capsys)
    assert line.startswith("bhi close: month 2026-06 is not closed as of 2026-06-20 (the warehouse's last run)")
    assert "close months up to 2026-05" in line and "ValueError" not in line
    assert not (out / "month_end").exists()


def test_explain_takes_out_matches_ids_ignoring_case_and_names_the_months_it_has(odd_run, capsys):
    _, out = odd_run
    capsys.readouterr()
    assert main(["explain", "--out", str(out), "--patient", "p1", "--month", "2026-05"]) == 0
    assert capsys.readouterr().out.startswith("Patient P1, 2026-05\n")
    assert main(["explain", "--warehouse", str(out / "warehouse.duckdb"), "--patient", "P1", "--month", "2026-05"]) == 0
    capsys.readouterr()
    assert main(["explain", "--out", str(out), "--patient", "P1", "--month", "2026-09"]) == 1
    assert _err_line(capsys) == (
        f"bhi explain: no enrolled patient-month for patient P1 in 2026-09 in {out / 'warehouse.duckdb'};"
        " enrolled patient-months of P1: 2026-05..2026-06"
    )
    assert main(["explain", "--out", str(out), "--patient", "P7", "--month", "2026-05"]) == 1
    assert _err_line(capsys).endswith("; P7 has none in any month")


def test_explain_on_a_damaged_warehouse_is_one_line(tmp_path, capsys):
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(b"not a database" * 1000)
    for command in (["explain", "--warehouse", str(warehouse), "--patient", "P1", "--month", "2026-05"],
                    ["evidence", "--out", str(tmp_path), "--month", "2026-05"]):
        assert main(command) == 1
        line = _err_line(capsys)
        assert f"warehouse {warehouse} cannot be opened, it may be damaged: nothing was read;" in line, line
        assert "IOException" not in line and "IO Error" not in line


def test_a_read_only_out_folder_is_one_line(odd_run, tmp_path, monkeypatch, capsys):
    folder, out = odd_run
    readonly = tmp_path / "ro"
    real_mkdir = pathlib.Path.mkdir

    def mkdir(self, *args, **kwargs):  # a read-only mount, as root sees it (chmod would not stop root)
        if self == readonly or readonly in self.parents:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
    capsys.readouterr()
    for command in (["run", "--extracts", str(folder), "--out", str(readonly / "out"), "--as-of", "2026-06-20"],
                    ["evidence", "--out", str(out), "--month", "2026-05", "--to", str(readonly / "e" / "x.csv")]):
        assert main(command) == 1
        line = _err_line(capsys)
        assert f"cannot write {readonly}" in line and "read-only file system" in line, line
        assert "OSError" not in line and "Errno" not in line


def test_every_path_option_takes_quotes_semicolons_spaces_and_non_ascii(odd_run, tmp_path, capsys):
    _, out = odd_run  # `bhi run --out` with ODD in the path wrote its CSVs (DuckDB COPY ... TO)
    assert "o'dd; né é" in str(out) and (out / "claims.csv").is_file()
    target = tmp_path / ODD / f"{ODD}.csv"
    assert main(["evidence", "--out", str(out), "--month", "2026-05", "--to", str(target)]) == 0
    assert target.read_text().count("\n") > 1
    closing = tmp_path / ODD / "closing"
    shutil.copytree(out, closing, symlinks=True)
    assert main(["close", "--out", str(closing), "--warehouse", str(closing / "warehouse.duckdb"),
                 "--month", "2026-05"]) == 0
    assert (closing / "month_end" / "claims_2026-05.csv").read_text().count("\n") == 2  # header + one line
    capsys.readouterr()


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = [
        f"bhi {name} {'/'.join(action.option_strings)}"
        for name, sub in commands.items()
        for action in sub._actions
        if action.option_strings and action.help in (None, "") and not isinstance(action, argparse._HelpAction)
    ]
    assert missing == []


@pytest.mark.parametrize("error", [TimeoutError(), RuntimeError("Browser not found. You can use get_chrome()")])
def test_the_png_export_says_why_it_failed(error, tmp_path, monkeypatch):
    import plotly.graph_objects as go
    import plotly.io as pio

    from dashboards import pngs

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(pio, "write_images", fail)
    with pytest.raises(RuntimeError) as caught:
        pngs._render([(go.Figure(), tmp_path / "a.png")], 800, 1)
    message = str(caught.value)
    assert message.startswith("PNG export failed: ") and message != "PNG export failed: "
    assert "install Debian's chromium" in message and "BROWSER_PATH" in message, message
