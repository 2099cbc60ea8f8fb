"""Run SQL models against the warehouse: views recreated, one table slice replaced in one transaction.

A table model owns exactly the rows of its slice (the run's users × [first_day, last_day]); the warehouse's
slice writer deletes the slice and re-inserts it from the model's SELECT, filtered to the slice, so a run
never touches rows outside it and re-running a range reproduces the same rows. The model may read further
back than the slice (``$read_from`` = first_day − window_days) for its windows. After the commit, the
model's declared data tests run over the slice (``evaluate_tests``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from polar_pipeline.sqlmodels.contracts import DataTest
from polar_pipeline.sqlmodels.graph import MACRO_SCHEMA, ModelGraph, SqlModel, SqlModelError
from polar_pipeline.warehouse.slices import TableShapeError, UserDaySlice, columns_of, replace_slice
from polar_pipeline.warehouse.writer import transaction

PREVIEW_ROWS = 5
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


@dataclass(frozen=True)
class TestOutcome:
    """One declared test over a slice: how many rows (or duplicated keys) break it, and a few of them."""

    test: DataTest
    failing: int
    sample_markdown: str

    @property
    def passed(self) -> bool:
        return self.failing == 0


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
        raise ValueError(
            f"{model.relation} is a {model.materialized} model; only table models are run per slice"
        )
    user_day_slice = UserDaySlice(tuple(users), first_day, last_day)
    read_from = first_day - timedelta(days=model.window_days)
    all_params = {**user_day_slice.params, "read_from": read_from}
    model_params = {key: all_params[key] for key in model.parameters}
    with transaction(con, model.relation):
        create_views(con, graph)
        try:
            written = replace_slice(con, model.relation, user_day_slice, model.sql, model_params)
        except TableShapeError as error:
            raise SqlModelError(f"{model.path}: {error}") from None
        quarantined = _quarantine_rejects(con, graph, model, user_day_slice, seen_at or datetime.now(UTC))
        preview = _preview(con, model, user_day_slice)
    return ModelRun(
        model=model.name,
        relation=model.relation,
        users=user_day_slice.users,
        first_day=first_day,
        last_day=last_day,
        read_from=read_from,
        rows_deleted=written.rows_deleted,
        rows_written=written.rows_written,
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


def evaluate_tests(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    tests: Sequence[DataTest],
    where: UserDaySlice | None = None,
) -> list[TestOutcome]:
    """Run each declared test over ``relation`` (or the slice ``where`` of it); read-only."""
    condition, params = ("TRUE", {}) if where is None else (UserDaySlice.SQL_FILTER, where.params)
    outcomes = []
    for test in tests:
        failing_sql = test.failing_rows_sql(relation, condition)
        bound = {**params, **test.params}
        count = con.execute(f"SELECT count(*) FROM ({failing_sql}) AS failing", bound).fetchone()
        failing = int(count[0]) if count else 0
        sample = ""
        if failing:
            cursor = con.execute(f"{failing_sql} LIMIT {PREVIEW_ROWS}", bound)
            sample = markdown_table([column for column, _ in columns_of(cursor)], cursor.fetchall())
        outcomes.append(TestOutcome(test=test, failing=failing, sample_markdown=sample))
    return outcomes


def _quarantine_rejects(
    con: duckdb.DuckDBPyConnection,
    graph: ModelGraph,
    model: SqlModel,
    user_day_slice: UserDaySlice,
    seen_at: datetime,
) -> int:
    """Copy the slice's untypable rows of the views this model reads into raw.quarantine, once each."""
    total = 0
    for view in graph.upstream(model):
        if view.materialized != "view":
            continue
        available = {name for name, _ in columns_of(con.execute(f"SELECT * FROM {view.relation} LIMIT 0"))}
        missing = [column for column in REJECT_COLUMNS if column not in available]
        if missing:
            raise SqlModelError(f"{view.path}: a staging view must expose {', '.join(missing)}")
        row = con.execute(
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
            {**user_day_slice.params, "stream": view.relation, "seen_at": seen_at},
        ).fetchone()
        total += int(row[0]) if row else 0
    return total


def _preview(con: duckdb.DuckDBPyConnection, model: SqlModel, user_day_slice: UserDaySlice) -> str:
    cursor = con.execute(
        f"SELECT * FROM {model.relation} WHERE {UserDaySlice.SQL_FILTER} ORDER BY ALL LIMIT {PREVIEW_ROWS}",
        user_day_slice.params,
    )
    return markdown_table([name for name, _ in columns_of(cursor)], cursor.fetchall())


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
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
