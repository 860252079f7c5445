"""A client's reference data: the shipped data/reference/*.csv with the client's own rows layered on
top (its fee schedule, its payers, ...), written to <work>/reference/ before each of its runs.

An override file has the name of a shipped file and some or all of its columns. Its rows replace the
shipped rows with the same key (pipelines/warehouse/reference.py REFERENCE_KEYS, plus effective_from
in a dated file; fee_schedule.csv: payer_id, code, effective_from) and the others are added. The
merged file is then checked like any reference file when the run seeds it (two rows of one key in
force on one day stop the run with a message naming them). The merge is one DuckDB query per file."""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path

import duckdb

from pipelines.clients.storage import sql_string
from pipelines.warehouse.reference import DEFAULT_REFERENCE_DIR, REFERENCE_KEYS

FEE_SCHEDULE_KEY = ("payer_id", "code")


class OverrideError(ValueError):
    """A client's override file cannot be layered on the shipped one; the message names it."""


def _columns(conn: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    src = f"read_csv({sql_string(str(path))}, header = true, all_varchar = true)"
    return [r[0] for r in conn.sql(f"select column_name from (describe select * from {src})").fetchall()]


def _replace_if_changed(tmp: Path, target: Path) -> None:
    """Keep the file (and so the code version the incremental build compares) when nothing changed."""
    if target.is_file() and filecmp.cmp(tmp, target, shallow=False):
        tmp.unlink()
    else:
        os.replace(tmp, target)


def layered_reference(overrides: Path | None, target: Path, shipped: Path = DEFAULT_REFERENCE_DIR) -> Path:
    """The reference folder of a client's run: `shipped` itself without overrides, else `target`
    holding every shipped file with the override rows layered on."""
    if overrides is None:
        return shipped
    if not overrides.is_dir():
        raise OverrideError(f"reference_overrides {overrides} is not a folder")
    shipped_files = {p.name: p for p in sorted(shipped.glob("*.csv"))}
    override_files = sorted(overrides.glob("*.csv"))
    unknown = [p.name for p in override_files if p.name not in shipped_files]
    if unknown:
        raise OverrideError(
            f"reference_overrides {overrides}: {', '.join(unknown)} is not a shipped reference file"
            f" (one of {', '.join(shipped_files)})"
        )
    target.mkdir(parents=True, exist_ok=True)
    layered = {p.name: p for p in override_files}
    with duckdb.connect() as conn:
        for name, source in shipped_files.items():
            tmp = target / f".{name}.tmp"
            if name not in layered:
                shutil.copyfile(source, tmp)
                _replace_if_changed(tmp, target / name)
                continue
            override = layered[name]
            base_cols, over_cols = _columns(conn, source), _columns(conn, override)
            extra = [c for c in over_cols if c not in base_cols]
            if extra:
                raise OverrideError(f"reference_overrides {override}: column(s) {', '.join(extra)} are not in the shipped {name}")
            stem = source.stem
            key = list(FEE_SCHEDULE_KEY if stem == "fee_schedule" else REFERENCE_KEYS.get(stem, ()))
            if "effective_from" in base_cols:
                key.append("effective_from")
            missing = [c for c in key if c not in over_cols]
            if missing:
                raise OverrideError(f"reference_overrides {override}: key column(s) {', '.join(missing)} missing")
            read = "read_csv({}, header = true, all_varchar = true)"
            cols = ", ".join(f'"{c}"' for c in base_cols)
            matches = " and ".join(f'o."{c}" is not distinct from s."{c}"' for c in key) or "false"
            conn.execute(
                f"""copy (
                    select {cols} from (
                        select * from {read.format(sql_string(str(source)))} as s
                        where not exists (select 1 from {read.format(sql_string(str(override)))} as o where {matches})
                        union all by name
                        select * from {read.format(sql_string(str(override)))}
                    )
                ) to {sql_string(str(tmp))} (header, format csv)"""
            )
            _replace_if_changed(tmp, target / name)
    return target
