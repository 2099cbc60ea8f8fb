"""Query results as dicts keyed by column name, the shape the read layer's pydantic models are built from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb


def fetch_dicts(
    cursor: duckdb.DuckDBPyConnection, query: str, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Every row of ``query`` as {column alias: value}: a query's aliases are its model's field names."""
    result = cursor.execute(query, dict(params))
    columns = [column[0] for column in result.description or []]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def fetch_dict(
    cursor: duckdb.DuckDBPyConnection, query: str, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The first row of ``query`` as a dict, or None when there is none."""
    rows = fetch_dicts(cursor, query, params)
    return rows[0] if rows else None
