"""Run SQL models against the warehouse: views recreated, one table slice replaced in one transaction.

A table model owns exactly the rows of its slice (the run's users × [first_day, last_day]); the warehouse's
slice writer deletes the slice and re-inserts it from the model's SELECT, filtered to the slice, so a run
never touches rows outside it and re-running a range reproduces the same rows. The model may read further
back than the slice (``$read_from`` = first_day − window_days) for its windows. After the commit, the
model's declared data tests run over the slice (``evaluate_tests``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from polar_pipeline.sqlmodels.contracts import DataTest
from polar_pipeline.sqlmodels.graph import MACRO_SCHEMA, ModelGraph, SqlModel, SqlModelError
from polar_pipeline.warehouse.slices import TableShapeError, UserDaySlice, columns_of, replace_slice
from polar_pipeline.warehouse.writer import transaction

PREVIEW_ROWS = 5
CHUNK_USER_DAYS = 180
"""User-days one statement of a table model computes at most: a long slice (an import's five years) is
written oldest chunk first, in the same transaction, so its memory stays that of about a year."""
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
    failing_by_user: dict[str, int] = field(default_factory=dict)

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


def day_chunks(first_day: date, last_day: date, days: int) -> list[tuple[date, date]]:
    """[first_day, last_day] cut into consecutive ranges of at most ``days`` days, oldest first."""
    chunks = []
    start = first_day
    while start <= last_day:
        end = min(start + timedelta(days=days - 1), last_day)
        chunks.append((start, end))
        start = end + timedelta(days=1)
    return chunks


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
    """Replace ``name``'s rows for ``users`` × [first_day, last_day]; say what it did.

    A slice of at most ``CHUNK_USER_DAYS`` user-days is replaced in one transaction. A longer one (an
    import's years) is replaced chunk by chunk, oldest first, a transaction each: DuckDB keeps a
    transaction's writes in memory, and a chunk's windows read the chunks before it, already committed.
    A chunk that outgrows DuckDB's ``memory_limit`` (days of large payloads) is rolled back and redone in
    halves, so a low limit makes a rebuild slower, not failed, down to one day at a time.
    A failure midway leaves every chunk whole (old or new rows) and the run failed, so the partitions stay
    unmaterialized, nothing is published, and re-running the slice redoes it."""
    model = graph[name]
    if model.materialized != "table":
        raise ValueError(
            f"{model.relation} is a {model.materialized} model; only table models are run per slice"
        )
    user_day_slice = UserDaySlice(tuple(users), first_day, last_day)
    read_from = first_day - timedelta(days=model.window_days)
    deleted = inserted = quarantined = 0
    pending = day_chunks(first_day, last_day, max(1, CHUNK_USER_DAYS // max(1, len(users))))
    while pending:
        chunk = pending.pop(0)
        chunk_slice = UserDaySlice(tuple(users), *chunk)
        all_params = {**chunk_slice.params, "read_from": chunk[0] - timedelta(days=model.window_days)}
        model_params = {key: all_params[key] for key in model.parameters}
        try:
            with transaction(con, model.relation):
                create_views(con, graph)
                try:
                    written = replace_slice(con, model.relation, chunk_slice, model.sql, model_params)
                except TableShapeError as error:
                    raise SqlModelError(f"{model.path}: {error}") from None
                rejected = _quarantine_rejects(con, graph, model, chunk_slice, seen_at or datetime.now(UTC))
        except duckdb.OutOfMemoryException:
            days = (chunk[1] - chunk[0]).days + 1
            if days == 1:
                raise  # a single day that does not fit: the memory limit is too low for this data
            pending[:0] = day_chunks(*chunk, (days + 1) // 2)  # rolled back whole; redone in two halves
            continue
        deleted += written.rows_deleted
        inserted += written.rows_written
        quarantined += rejected
    preview = slice_preview(con, model.relation, user_day_slice)
    return ModelRun(
        model=model.name,
        relation=model.relation,
        users=user_day_slice.users,
        first_day=first_day,
        last_day=last_day,
        read_from=read_from,
        rows_deleted=deleted,
        rows_written=inserted,
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
        by_user: dict[str, int] = {}
        if failing:
            cursor = con.execute(f"{failing_sql} LIMIT {PREVIEW_ROWS}", bound)
            header = [column for column, _ in columns_of(cursor)]
            sample = markdown_table(header, cursor.fetchall())
            if "user_id" in header:
                grouped = f"SELECT user_id, count(*) FROM ({failing_sql}) AS failing GROUP BY user_id"
                by_user = {str(user): int(n) for user, n in con.execute(grouped, bound).fetchall()}
        outcomes.append(
            TestOutcome(test=test, failing=failing, sample_markdown=sample, failing_by_user=by_user)
        )
    return outcomes


@dataclass(frozen=True)
class NewRejects:
    """Rows of staging views quarantined for the first time by one call: per user, how many and why."""

    counts: dict[str, int]
    reasons: dict[str, list[str]]
    upserted: int

    def including(self, stream: str, first_quarantined: dict[str, list[str]]) -> NewRejects:
        """These and the records ``stream``'s parser rejected for the first time (per user, their reasons)."""
        counts, reasons = dict(self.counts), {user: list(found) for user, found in self.reasons.items()}
        for user_id, user_reasons in first_quarantined.items():
            counts[user_id] = counts.get(user_id, 0) + len(user_reasons)
            distinct = sorted(set(user_reasons))[:3]
            reasons.setdefault(user_id, []).extend(f"raw.{stream}: {reason}" for reason in distinct)
        return NewRejects(counts=counts, reasons=reasons, upserted=self.upserted)

    def describe(self, user_id: str) -> str:
        count = self.counts[user_id]
        return f"{count} record(s) quarantined on arrival: {'; '.join(self.reasons[user_id])}"


def quarantine_rejects(
    con: duckdb.DuckDBPyConnection,
    views: Sequence[SqlModel],
    user_day_slice: UserDaySlice,
    seen_at: datetime,
) -> NewRejects:
    """Copy the slice's rows of ``views`` that failed their checks into raw.quarantine, once each.

    Says which of them were not in quarantine before: the raw assets' blocking check fails on those.
    """
    counts: dict[str, int] = {}
    reasons: dict[str, list[str]] = {}
    upserted = 0
    for view in views:
        available = {name for name, _ in columns_of(con.execute(f"SELECT * FROM {view.relation} LIMIT 0"))}
        missing = [column for column in REJECT_COLUMNS if column not in available]
        if missing:
            raise SqlModelError(f"{view.path}: a staging view must expose {', '.join(missing)}")
        params = {**user_day_slice.params, "stream": view.relation, "seen_at": seen_at}
        rejects = f"""
            SELECT user_id, day, record_key, raw_payload, sha256(raw_payload) AS payload_sha256, reject_reason
            FROM {view.relation}
            WHERE reject_reason IS NOT NULL
                AND list_contains($users, user_id) AND day BETWEEN $first_day AND $last_day
                AND raw_day BETWEEN CAST($first_day AS DATE) - 2 AND CAST($last_day AS DATE) + 2
            QUALIFY row_number() OVER (PARTITION BY user_id, sha256(raw_payload) ORDER BY record_key) = 1
        """
        new_rows = con.execute(
            f"""
            SELECT user_id, count(*), list(DISTINCT reject_reason ORDER BY reject_reason)[1:3]
            FROM ({rejects}) AS reject
            WHERE NOT EXISTS (
                SELECT 1 FROM raw.quarantine AS q
                WHERE q.user_id = reject.user_id AND q.stream = $stream
                    AND q.payload_sha256 = reject.payload_sha256
            )
            GROUP BY user_id
            """,
            {key: value for key, value in params.items() if key != "seen_at"},
        ).fetchall()
        for user_id, count, user_reasons in new_rows:
            counts[user_id] = counts.get(user_id, 0) + int(count)
            reasons.setdefault(user_id, []).extend(f"{view.relation}: {reason}" for reason in user_reasons)
        row = con.execute(
            f"""
            INSERT INTO raw.quarantine (
                user_id, stream, day, record_key, payload, payload_sha256, reason, first_seen_at, seen_at
            )
            SELECT user_id, $stream, day, record_key, raw_payload, payload_sha256, reject_reason,
                $seen_at, $seen_at
            FROM ({rejects}) AS reject
            ON CONFLICT (user_id, stream, payload_sha256) DO UPDATE
            SET seen_at = excluded.seen_at, reason = excluded.reason
            """,
            params,
        ).fetchone()
        upserted += int(row[0]) if row else 0
    return NewRejects(counts=counts, reasons=reasons, upserted=upserted)


def _quarantine_rejects(
    con: duckdb.DuckDBPyConnection,
    graph: ModelGraph,
    model: SqlModel,
    user_day_slice: UserDaySlice,
    seen_at: datetime,
) -> int:
    """Quarantine the slice's untypable rows of the views this model reads (the raw assets did most)."""
    views = [view for view in graph.upstream(model) if view.materialized == "view"]
    return quarantine_rejects(con, views, user_day_slice, seen_at).upserted


def slice_preview(con: duckdb.DuckDBPyConnection, relation: str, user_day_slice: UserDaySlice) -> str:
    """A few rows of the slice as a markdown table: the preview beside a materialization in the UI."""
    cursor = con.execute(
        f"SELECT * FROM {relation} WHERE {UserDaySlice.SQL_FILTER} ORDER BY ALL LIMIT {PREVIEW_ROWS}",
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
