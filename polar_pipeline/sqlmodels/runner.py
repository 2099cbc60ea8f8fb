"""Run SQL models against the warehouse: views recreated, one table slice replaced in one transaction.

A table model owns exactly the rows of its slice (the run's users × [first_day, last_day]): the slice is
deleted and re-inserted from the model's SELECT, filtered to the slice again here, so a run never touches
rows outside it and re-running a range reproduces the same rows. The model may read further back than the
slice (``$read_from`` = first_day − window_days) for its windows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from polar_pipeline.defs.transform.sql_models import MACRO_SCHEMA, ModelGraph, SqlModel, SqlModelError
from polar_pipeline.warehouse import transaction

PREVIEW_ROWS = 5
GRAIN_TYPES: Mapping[str, str] = {"user_id": "VARCHAR", "day": "DATE"}
REJECT_COLUMNS: tuple[str, ...] = ("user_id", "day", "raw_day", "record_key", "raw_payload", "reject_reason")
"""What a staging view exposes so a table model reading it can quarantine the rows it could not type."""


@dataclass(frozen=True)
class ModelRun:
    """What one table-model run did, for logs and Dagster metadata."""

    model: str
    relation: str
    users: tuple[str, ...]
    first_day: date
    last_day: date
    read_from: date
    rows_deleted: int
    rows_written: int
    rows_quarantined: int
    preview_markdown: str


def create_views(con: duckdb.DuckDBPyConnection, graph: ModelGraph) -> None:
    """Create every schema, (re)create every macro, then every view model in dependency order.

    Idempotent and cheap; the caller's transaction covers all of it, so views never see a half-replaced
    set of macros. Macros go first because DuckDB binds a view's macro calls when the view is created.
    """
    schemas = [*graph.schemas, *([MACRO_SCHEMA] if graph.macros else [])]
    for schema in dict.fromkeys(schemas):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for macro in graph.macros.values():
        con.execute(macro.sql)
    for view in graph.views:
        con.execute(f"CREATE OR REPLACE VIEW {view.relation} AS\n{view.sql}\n")


def run_table_model(
    con: duckdb.DuckDBPyConnection,
    graph: ModelGraph,
    name: str,
    users: Sequence[str],
    first_day: date,
    last_day: date,
    *,
    seen_at: datetime | None = None,
) -> ModelRun:
    """Replace ``name``'s rows for ``users`` × [first_day, last_day] in one transaction; say what it did."""
    model = graph[name]
    if model.materialized != "table":
        raise ValueError(f"{model.relation} is a view; only table models are run per slice")
    if not users:
        raise ValueError("a run needs at least one user")
    if first_day > last_day:
        raise ValueError(f"first_day {first_day} is after last_day {last_day}")
    read_from = first_day - timedelta(days=model.window_days)
    slice_params: dict[str, Any] = {"users": list(users), "first_day": first_day, "last_day": last_day}
    all_params = {**slice_params, "read_from": read_from}
    model_params = {key: all_params[key] for key in model.parameters}
    with transaction(con):
        create_views(con, graph)
        _ensure_table(con, model, model_params)
        deleted = _count(
            con.execute(
                f"DELETE FROM {model.relation} "
                "WHERE list_contains($users, user_id) AND day BETWEEN $first_day AND $last_day",
                slice_params,
            )
        )
        written = _count(
            con.execute(
                f"INSERT INTO {model.relation} BY NAME\nSELECT * FROM (\n{model.sql}\n) AS model\n"
                "WHERE list_contains($users, model.user_id) AND model.day BETWEEN $first_day AND $last_day",
                {**model_params, **slice_params},
            )
        )
        quarantined = _quarantine_rejects(con, graph, model, slice_params, seen_at or datetime.now(UTC))
        preview = _preview(con, model, slice_params)
    return ModelRun(
        model=model.name,
        relation=model.relation,
        users=tuple(users),
        first_day=first_day,
        last_day=last_day,
        read_from=read_from,
        rows_deleted=deleted,
        rows_written=written,
        rows_quarantined=quarantined,
        preview_markdown=preview,
    )


def run_models(
    con: duckdb.DuckDBPyConnection,
    graph: ModelGraph,
    users: Sequence[str],
    first_day: date,
    last_day: date,
    names: Sequence[str] | None = None,
) -> list[ModelRun]:
    """Run table models (all, or ``names``) over one slice in dependency order, one transaction each."""
    selected = set(names) if names is not None else {model.name for model in graph.tables}
    return [
        run_table_model(con, graph, model.name, users, first_day, last_day)
        for model in graph.tables
        if model.name in selected
    ]


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _columns(cursor: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [(str(column[0]), str(column[1])) for column in cursor.description or []]


def _ensure_table(con: duckdb.DuckDBPyConnection, model: SqlModel, model_params: dict[str, Any]) -> None:
    """Create the table from the model's result columns; refuse to write into a table of another shape."""
    expected = _columns(con.execute(f"SELECT * FROM (\n{model.sql}\n) AS model LIMIT 0", model_params))
    names = dict(expected)
    for column, column_type in GRAIN_TYPES.items():
        if names.get(column) != column_type:
            raise SqlModelError(
                f"{model.path}: a table model must return {column} {column_type} (got {names.get(column)})"
            )
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [model.schema, model.name],
    ).fetchone()
    if not exists or not exists[0]:
        columns = ",\n    ".join(f'"{column}" {column_type}' for column, column_type in expected)
        con.execute(f"CREATE TABLE {model.relation} (\n    {columns}\n)")
        return
    current = _columns(con.execute(f"SELECT * FROM {model.relation} LIMIT 0"))
    if current != expected:
        raise SqlModelError(
            f"{model.path}: {model.relation} has columns {current} but the model now returns {expected}; "
            f"derived tables are rebuildable: DROP TABLE {model.relation} and re-materialize its partitions"
        )


def _quarantine_rejects(
    con: duckdb.DuckDBPyConnection,
    graph: ModelGraph,
    model: SqlModel,
    slice_params: dict[str, Any],
    seen_at: datetime,
) -> int:
    """Copy the slice's untypable rows of the views this model reads into raw.quarantine, once each."""
    total = 0
    for ref in model.refs:
        view = graph[ref]
        if view.materialized != "view":
            continue
        available = {name for name, _ in _columns(con.execute(f"SELECT * FROM {view.relation} LIMIT 0"))}
        missing = [column for column in REJECT_COLUMNS if column not in available]
        if missing:
            raise SqlModelError(f"{view.path}: a staging view must expose {', '.join(missing)}")
        total += _count(
            con.execute(
                f"""
                INSERT INTO raw.quarantine (
                    user_id, stream, day, record_key, payload, payload_sha256, reason, first_seen_at, seen_at
                )
                SELECT user_id, $stream, day, record_key, raw_payload, sha256(raw_payload), reject_reason,
                    $seen_at, $seen_at
                FROM {view.relation}
                WHERE reject_reason IS NOT NULL
                    AND list_contains($users, user_id) AND day BETWEEN $first_day AND $last_day
                    AND raw_day BETWEEN CAST($first_day AS DATE) - 2 AND CAST($last_day AS DATE) + 2
                QUALIFY row_number() OVER (PARTITION BY user_id, sha256(raw_payload) ORDER BY record_key) = 1
                ON CONFLICT (user_id, stream, payload_sha256) DO UPDATE
                SET seen_at = excluded.seen_at, reason = excluded.reason
                """,
                {**slice_params, "stream": view.relation, "seen_at": seen_at},
            )
        )
    return total


def _preview(con: duckdb.DuckDBPyConnection, model: SqlModel, slice_params: dict[str, Any]) -> str:
    cursor = con.execute(
        f"SELECT * FROM {model.relation} "
        "WHERE list_contains($users, user_id) AND day BETWEEN $first_day AND $last_day "
        f"ORDER BY ALL LIMIT {PREVIEW_ROWS}",
        slice_params,
    )
    header = [name for name, _ in _columns(cursor)]
    rows = cursor.fetchall()
    return markdown_table(header, rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A small GitHub-style table; floats rounded for reading, NULL shown as an empty cell."""

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    if not rows:
        lines.append("| " + " | ".join("" for _ in header) + " |")
    return "\n".join(lines)
