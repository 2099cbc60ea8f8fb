"""The slice writer: replace a derived table's rows for a users × days slice, and only those rows.

Every derived table (SQL marts, Python analytics) is keyed by ``user_id`` and ``day`` and can be rebuilt
from raw. A run owns exactly its slice, the run's users × [first_day, last_day]: it deletes the slice and
inserts the new rows, inside the caller's transaction, so a reader of the next snapshot sees either the
old slice or the new one, and re-running a slice reproduces the same rows. Rows outside the slice are
never touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import polars as pl

from polar_pipeline.warehouse.pause import pause_point

GRAIN_TYPES: Mapping[str, str] = {"user_id": "VARCHAR", "day": "DATE"}
"""The two columns every slice table starts with, and their DuckDB types."""

_INCOMING = "incoming_slice_rows"


class TableShapeError(ValueError):
    """The rows to write do not fit the table (missing grain columns, or columns that changed)."""


@dataclass(frozen=True)
class UserDaySlice:
    """The users and the inclusive day range a run writes: the one shape every derived-row writer takes."""

    users: tuple[str, ...]
    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if not self.users:
            raise ValueError("a slice needs at least one user")
        if self.first_day > self.last_day:
            raise ValueError(f"first_day {self.first_day} is after last_day {self.last_day}")

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def params(self) -> dict[str, Any]:
        """The slice as the named parameters SQL uses: ``$users``, ``$first_day``, ``$last_day``."""
        return {"users": list(self.users), "first_day": self.first_day, "last_day": self.last_day}

    SQL_FILTER = "list_contains($users, user_id) AND day BETWEEN $first_day AND $last_day"
    """The WHERE clause that selects exactly this slice of a table (bind ``params``)."""


@dataclass(frozen=True)
class SliceWrite:
    """What one slice replacement did."""

    relation: str
    rows_deleted: int
    rows_written: int


def columns_of(cursor: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(name, DuckDB type) of a cursor's result columns."""
    return [(str(column[0]), str(column[1])) for column in cursor.description or []]


def existing_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]] | None:
    """(name, type) of the columns of the table ``relation``, or None when there is no such table."""
    schema, _, table = relation.partition(".")
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    if not exists or not exists[0]:
        return None
    return columns_of(con.execute(f"SELECT * FROM {relation} LIMIT 0"))


def ensure_table(con: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[tuple[str, str]]) -> None:
    """Create ``relation`` with ``columns`` if missing; refuse to write into a table of another shape.

    Derived tables are rebuildable, so a changed shape is not migrated in place: the error says to drop the
    table and re-materialize its partitions.
    """
    names = dict(columns)
    for column, column_type in GRAIN_TYPES.items():
        if names.get(column) != column_type:
            raise TableShapeError(
                f"{relation}: a slice table must have {column} {column_type} (got {names.get(column)})"
            )
    current = existing_columns(con, relation)
    if current is None:
        schema = relation.partition(".")[0]
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        body = ",\n    ".join(f'"{name}" {column_type}' for name, column_type in columns)
        con.execute(f"CREATE TABLE {relation} (\n    {body}\n)")
        return
    if current != list(columns):
        raise TableShapeError(
            f"{relation} has columns {current} but the new rows have {list(columns)}; derived tables are "
            f"rebuildable: DROP TABLE {relation} and re-materialize its partitions"
        )


def replace_slice(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    user_day_slice: UserDaySlice,
    rows: str | pl.DataFrame,
    params: Mapping[str, Any] | None = None,
) -> SliceWrite:
    """Delete ``relation``'s rows in the slice and insert ``rows``; call it inside ``transaction(con)``.

    ``rows`` is either a SELECT using the named ``params`` (which may include the slice's own ``$users``,
    ``$first_day`` and ``$last_day``; DuckDB refuses unused names, so pass exactly what it uses), whose rows
    outside the slice are filtered out (a model may read, and return, more than it owns), or a data frame,
    which must hold only rows of the slice (anything else is a bug in its producer and raises). The table
    is created from the rows' columns on first use.
    """
    own_params = dict(params or {})
    if isinstance(rows, pl.DataFrame):
        con.register(_INCOMING, rows)
        source = f"SELECT * FROM {_INCOMING}"
    else:
        source = rows
    try:
        columns = columns_of(con.execute(f"SELECT * FROM (\n{source}\n) AS incoming LIMIT 0", own_params))
        ensure_table(con, relation, columns)
        if isinstance(rows, pl.DataFrame):
            outside = _count(
                con.execute(
                    f"SELECT count(*) FROM {_INCOMING} WHERE NOT ({UserDaySlice.SQL_FILTER}) "
                    "OR user_id IS NULL OR day IS NULL",
                    user_day_slice.params,
                )
            )
            if outside:
                raise ValueError(f"{relation}: {outside} of the rows to write lie outside the run's slice")
        deleted = _count(
            con.execute(f"DELETE FROM {relation} WHERE {UserDaySlice.SQL_FILTER}", user_day_slice.params)
        )
        pause_point(f"replace:{relation}")  # crash tests: the slice deleted, its new rows not yet inserted
        written = _count(
            con.execute(
                f"INSERT INTO {relation} BY NAME\nSELECT * FROM (\n{source}\n) AS incoming\n"
                "WHERE list_contains($users, incoming.user_id) "
                "AND incoming.day BETWEEN $first_day AND $last_day",
                {**own_params, **user_day_slice.params},
            )
        )
    finally:
        if isinstance(rows, pl.DataFrame):
            con.unregister(_INCOMING)
    return SliceWrite(relation=relation, rows_deleted=deleted, rows_written=written)


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0
