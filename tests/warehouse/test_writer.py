"""The single writer's rules: natural-key upserts, nothing deleted, quarantine kept once, atomic writes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from polar_pipeline.warehouse.raw_store import (
    QuarantineRecord,
    RawRecord,
    quarantine_records,
    upsert_raw_records,
)
from polar_pipeline.warehouse.schema import RAW_TABLES, ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer, transaction

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def nights(first: date, count: int, score: int = 80) -> list[RawRecord]:
    return [
        RawRecord(
            key=(first + timedelta(days=i)).isoformat(),
            day=first + timedelta(days=i),
            payload_json=json.dumps(
                {"date": (first + timedelta(days=i)).isoformat(), "sleep_score": score + i}
            ),
        )
        for i in range(count)
    ]


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = connect_writer(tmp_path / "warehouse.duckdb")
    ensure_raw_schema(connection)
    return connection


def table_rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[object, ...]]:
    return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def test_upsert_is_idempotent_and_keeps_fetched_at_of_unchanged_rows(con: duckdb.DuckDBPyConnection) -> None:
    table = RAW_TABLES["sleep"]
    assert upsert_raw_records(con, table, "u1", nights(date(2026, 1, 1), 10), source="t", fetched_at=T0) == 10
    first = table_rows(con, table.qualified)
    later = T0 + timedelta(hours=5)
    assert (
        upsert_raw_records(con, table, "u1", nights(date(2026, 1, 1), 10), source="t", fetched_at=later) == 0
    )
    assert table_rows(con, table.qualified) == first


def test_changed_payload_replaces_row_and_missing_days_stay(con: duckdb.DuckDBPyConnection) -> None:
    table = RAW_TABLES["sleep"]
    upsert_raw_records(con, table, "u1", nights(date(2026, 1, 1), 10), source="t", fetched_at=T0)
    # The source now serves only the last 3 days, one of them revised.
    revised = nights(date(2026, 1, 8), 3, score=50)
    changed = upsert_raw_records(con, table, "u1", revised, source="t", fetched_at=T0 + timedelta(days=1))
    assert changed == 3
    rows = con.execute("SELECT day, payload->>'sleep_score' FROM raw.sleep ORDER BY day").fetchall()
    assert len(rows) == 10
    assert rows[0] == (date(2026, 1, 1), "80")
    assert rows[7] == (date(2026, 1, 8), "50")


def test_exercises_keyed_by_id_and_users_isolated(con: duckdb.DuckDBPyConnection) -> None:
    table = RAW_TABLES["exercises"]
    record = RawRecord(key="abc123", day=date(2026, 1, 2), payload_json='{"id": "abc123"}')
    upsert_raw_records(con, table, "u1", [record], source="t", fetched_at=T0)
    upsert_raw_records(con, table, "u2", [record], source="t", fetched_at=T0)
    moved = RawRecord(key="abc123", day=date(2026, 1, 3), payload_json='{"id": "abc123", "v": 2}')
    upsert_raw_records(con, table, "u1", [moved], source="t", fetched_at=T0)
    rows = con.execute("SELECT user_id, exercise_id, day FROM raw.exercises ORDER BY user_id").fetchall()
    assert rows == [("u1", "abc123", date(2026, 1, 3)), ("u2", "abc123", date(2026, 1, 2))]


def test_quarantine_keeps_each_bad_record_once_with_reason(con: duckdb.DuckDBPyConnection) -> None:
    bad = QuarantineRecord(
        stream="sleep", day=date(2026, 1, 5), key="2026-01-05", payload='{"x": 1}', reason="r"
    )
    assert quarantine_records(con, "u1", [bad, bad], seen_at=T0) == 1
    quarantine_records(con, "u1", [bad], seen_at=T0 + timedelta(days=1))
    rows = con.execute(
        "SELECT stream, record_key, reason, first_seen_at, seen_at FROM raw.quarantine"
    ).fetchall()
    assert len(rows) == 1
    assert rows[0][:3] == ("sleep", "2026-01-05", "r")
    assert rows[0][3] < rows[0][4]


def test_transaction_rolls_back_on_error(con: duckdb.DuckDBPyConnection) -> None:
    table = RAW_TABLES["sleep"]
    upsert_raw_records(con, table, "u1", nights(date(2026, 1, 1), 2), source="t", fetched_at=T0)
    before = table_rows(con, table.qualified)
    with pytest.raises(RuntimeError), transaction(con):
        upsert_raw_records(con, table, "u1", nights(date(2026, 1, 1), 5, score=10), source="t", fetched_at=T0)
        raise RuntimeError("boom")
    assert table_rows(con, table.qualified) == before


def test_an_import_rebuild_gets_its_own_duckdb_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scheduled runs use POLAR_WAREHOUSE_*; an import's rebuild and publish use POLAR_IMPORT_* instead."""
    from polar_pipeline.orchestration.resources import build_resources
    from polar_pipeline.settings import Settings

    monkeypatch.setenv("POLAR_HOME", str(tmp_path))
    monkeypatch.setenv("POLAR_WAREHOUSE_MEMORY_LIMIT", "700MB")
    monkeypatch.setenv("POLAR_IMPORT_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("POLAR_IMPORT_THREADS", "1")
    settings = Settings()

    def limits(given: Settings) -> tuple[str, int]:
        warehouse = build_resources(given)["warehouse"]
        with warehouse.get_connection() as con:  # type: ignore[attr-defined]
            row = con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone()
        assert row is not None
        return str(row[0]), int(row[1])

    scheduled, imported = limits(settings), limits(settings.for_import())
    assert imported == ("286.1 MiB", 1)  # DuckDB shows 300 MB in MiB
    assert scheduled[0] == "667.5 MiB" and scheduled[1] >= 1
