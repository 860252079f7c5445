"""A client's output location: a local folder (a path or file:// URI) or object storage (s3://...),
written and read by DuckDB (its httpfs extension for S3-compatible storage; credentials from DuckDB's
credential chain: AWS_* variables, ~/.aws, an instance role). A local file is written beside its
target and renamed over it, so a reader never sees half a file; an object PUT is atomic by itself."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from pipelines.clients.config import is_remote
from pipelines.safety import output_umask

MARTS_DIR = "marts"
STATUS_FILE = "run_status.parquet"


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def enable_remote(conn: duckdb.DuckDBPyConnection, uri: str) -> None:
    """Load httpfs and a credential-chain secret when `uri` is object storage (no-op for a local path)."""
    if not is_remote(uri):
        return
    conn.execute("install httpfs; load httpfs")
    conn.execute("create secret if not exists bhi_storage (type s3, provider credential_chain)")


def write_parquet(conn: duckdb.DuckDBPyConnection, query: str, target: str) -> None:
    """COPY `query` to the Parquet file `target` (a local path or an object-storage URI)."""
    if is_remote(target):
        enable_remote(conn, target)
        conn.execute(f"copy ({query}) to {sql_string(target)} (format parquet)")
        return
    path = Path(target)
    with output_umask():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            conn.execute(f"copy ({query}) to {sql_string(str(tmp))} (format parquet)")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def exists(conn: duckdb.DuckDBPyConnection, target: str) -> bool:
    if not is_remote(target):
        return Path(target).is_file()
    enable_remote(conn, target)
    return bool(conn.execute("select count(*) from glob(?)", [target]).fetchall()[0][0])
