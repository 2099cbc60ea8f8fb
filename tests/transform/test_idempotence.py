"""Derived tables are recomputable: a re-run reproduces them exactly; a range run stays inside its slice."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from polar_pipeline.defs.analytics import assets as analytics_assets
from polar_pipeline.defs.analytics.assets import run_analytics_table
from polar_pipeline.defs.analytics.definitions import ALL_TABLES
from polar_pipeline.sqlmodels import ModelGraph, run_models, runner
from polar_pipeline.warehouse.slices import UserDaySlice
from polar_pipeline.warehouse.writer import connect_writer
from tests.transform.conftest import SimWarehouse


def checksums(con: duckdb.DuckDBPyConnection, graph: ModelGraph) -> dict[str, str]:
    digests = {}
    for model in graph.tables:
        rows = con.execute(f"SELECT * FROM {model.relation} ORDER BY ALL").fetchall()
        digests[model.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


def test_rerunning_the_full_range_gives_identical_tables(
    sim_marts: SimWarehouse, graph: ModelGraph, tmp_path: Path
) -> None:
    con = connect_writer(sim_marts.copy_to(tmp_path))
    try:
        before = checksums(con, graph)
        runs = run_models(con, graph, sim_marts.users, sim_marts.first_day, sim_marts.last_day)
        assert all(run.rows_deleted == run.rows_written > 0 for run in runs if run.model != "anomalies")
        assert checksums(con, graph) == before
    finally:
        con.close()


def test_a_sub_range_run_leaves_rows_outside_its_slice_untouched(
    sim_marts: SimWarehouse, graph: ModelGraph, tmp_path: Path
) -> None:
    user, other = sim_marts.users[0], sim_marts.users[1]
    first = sim_marts.first_day + timedelta(days=150)
    last = first + timedelta(days=30)
    con = connect_writer(sim_marts.copy_to(tmp_path))
    try:
        before = checksums(con, graph)
        # Mark columns no other mart reads, on rows just outside the slice and on one row inside it.
        marked = [
            (user, first - timedelta(days=1)),
            (user, last + timedelta(days=1)),
            (other, first),
            (user, first),
        ]
        for user_id, day in marked:
            con.execute(
                "UPDATE marts.daily_metrics SET total_calories = -1 WHERE user_id = ? AND day = ?",
                [user_id, day],
            )
            con.execute(
                "UPDATE marts.rolling_metrics SET coverage = -1 WHERE user_id = ? AND day = ?", [user_id, day]
            )
        runs = run_models(con, graph, [user], first, last)
        in_slice = {run.model: run.rows_written for run in runs}
        assert in_slice["daily_metrics"] == 31 and in_slice["rolling_metrics"] == 31 * 8 * 3
        still_marked = {
            (user_id, day)
            for user_id, day in con.execute(
                "SELECT user_id, day FROM marts.daily_metrics WHERE total_calories = -1"
            ).fetchall()
        }
        assert still_marked == set(marked[:3])
        assert con.execute("SELECT count(*) FROM marts.rolling_metrics WHERE coverage = -1").fetchone() == (
            3 * 24,
        )
        # Undo the marks outside the slice: everything else, the recomputed slice included, is as before.
        for user_id, day in marked[:3]:
            con.execute(
                "UPDATE marts.daily_metrics SET total_calories = ? WHERE user_id = ? AND day = ?",
                [_original(sim_marts.path, "daily_metrics", "total_calories", user_id, day), user_id, day],
            )
            con.execute(
                "UPDATE marts.rolling_metrics SET coverage = n / window_days WHERE user_id = ? AND day = ?",
                [user_id, day],
            )
        assert checksums(con, graph) == before
    finally:
        con.close()


def _original(path: Path, table: str, column: str, user_id: str, day: object) -> object:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            f"SELECT {column} FROM marts.{table} WHERE user_id = ? AND day = ?", [user_id, day]
        ).fetchone()
        assert row is not None
        return row[0]
    finally:
        con.close()


def test_a_long_slice_written_in_chunks_gives_the_rows_of_one_pass(
    sim_marts: SimWarehouse, graph: ModelGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import's years are replaced chunk by chunk (a transaction each, windows reading the committed
    chunks before); the rows must be those the whole slice gives in one statement (``sim_marts``)."""
    con = connect_writer(sim_marts.copy_to(tmp_path))
    try:
        one_pass = checksums(con, graph)
        days = (sim_marts.last_day - sim_marts.first_day).days + 1
        chunk_days = days // 6 + 1  # six chunks, of uneven windows
        monkeypatch.setattr(runner, "CHUNK_USER_DAYS", len(sim_marts.users) * chunk_days)
        runs = run_models(con, graph, sim_marts.users, sim_marts.first_day, sim_marts.last_day)
        assert all(run.rows_deleted == run.rows_written > 0 for run in runs if run.model != "anomalies")
        assert checksums(con, graph) == one_pass
    finally:
        con.close()


def test_a_chunk_out_of_memory_is_rolled_back_and_redone_in_halves(
    sim_marts: SimWarehouse, graph: ModelGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's out-of-memory error in a chunk (here: any chunk longer than 5 days, raised after the chunk
    was really written) rolls that chunk back and redoes it in halves: the rows are those of one pass.
    A single day that still does not fit fails the model with DuckDB's error."""
    con = connect_writer(sim_marts.copy_to(tmp_path))
    real_replace = runner.replace_slice
    attempts: list[int] = []
    limit_days = 5

    def replace_within_limit(
        con: duckdb.DuckDBPyConnection, relation: str, part: UserDaySlice, *args: object
    ) -> object:
        written = real_replace(con, relation, part, *args)  # type: ignore[arg-type]
        days = (part.last_day - part.first_day).days + 1
        attempts.append(days)
        if days > limit_days:
            raise duckdb.OutOfMemoryException("Out of Memory Error: simulated")
        return written

    first, last = sim_marts.first_day + timedelta(days=30), sim_marts.first_day + timedelta(days=52)
    try:
        one_pass = checksums(con, graph)
        monkeypatch.setattr(runner, "replace_slice", replace_within_limit)
        run = runner.run_table_model(con, graph, "daily_metrics", sim_marts.users, first, last)
        assert run.rows_deleted == run.rows_written == len(sim_marts.users) * 23
        assert checksums(con, graph) == one_pass
        assert attempts[0] == 23 and max(attempts[1:]) <= 12 and min(attempts) <= limit_days  # halved
        assert sum(days for days in attempts if days <= limit_days) == 23  # each day written once, in the end
        limit_days = 0
        with pytest.raises(duckdb.OutOfMemoryException):
            runner.run_table_model(con, graph, "daily_metrics", sim_marts.users, first, last)
        assert checksums(con, graph) == one_pass  # every failed chunk rolled back
    finally:
        con.close()


def test_analytics_written_in_chunks_give_the_rows_of_one_pass(
    sim_marts: SimWarehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analytics tables go chunk by chunk too, each chunk reading its own lookback: same rows."""
    con = connect_writer(sim_marts.copy_to(tmp_path))
    whole = UserDaySlice(tuple(sim_marts.users), sim_marts.first_day, sim_marts.last_day)

    def analytics_checksums() -> dict[str, str]:
        for table in ALL_TABLES:
            run_analytics_table(con, table, whole)
        return {
            table.relation: hashlib.sha256(
                repr(con.execute(f"SELECT * FROM {table.relation} ORDER BY ALL").fetchall()).encode()
            ).hexdigest()
            for table in ALL_TABLES
        }

    try:
        monkeypatch.setattr(analytics_assets, "CHUNK_USER_DAYS", 10**6)
        one_pass = analytics_checksums()
        days = (sim_marts.last_day - sim_marts.first_day).days + 1
        monkeypatch.setattr(analytics_assets, "CHUNK_USER_DAYS", len(sim_marts.users) * (days // 5 + 1))
        assert analytics_checksums() == one_pass
    finally:
        con.close()
