"""Small helpers on a DuckDB connection used across stages: catalog look-ups and one transaction."""

from __future__ import annotations

import contextlib

import duckdb


def table_columns(conn: duckdb.DuckDBPyConnection, table: str, schema: str = "main", database: str | None = None) -> list[str]:
    """The columns of `table` in order; empty when the table does not exist."""
    return [name for name, _ in typed_columns(conn, table, schema, database)]


def typed_columns(
    conn: duckdb.DuckDBPyConnection, table: str, schema: str = "main", database: str | None = None
) -> list[tuple[str, str]]:
    """(column, lower-case type) of `table` in order; empty when the table does not exist."""
    return conn.execute(
        "select column_name, lower(data_type) from duckdb_columns() where table_name = ? and schema_name = ?"
        " and database_name = coalesce(?, current_database()) order by column_index",
        [table, schema, database],
    ).fetchall()


def table_exists(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(table_columns(conn, table))


@contextlib.contextmanager
def transaction(conn: duckdb.DuckDBPyConnection):
    """All of the block's writes or none: commit when it ends, roll back when it raises."""
    conn.begin()
    try:
        yield conn
    except BaseException:
        conn.rollback()
        raise
    conn.commit()
