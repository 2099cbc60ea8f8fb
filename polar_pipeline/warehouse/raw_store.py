"""The single writer's rules: short connections, explicit transactions, natural-key upserts.

A failed or killed run leaves nothing half-written: every write happens inside one transaction, and
DuckDB's WAL replays or drops it whole on the next open.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from polar_pipeline.warehouse.schema import RawTable

LOCK_RETRY_SECONDS = 120.0
# Test seam for crash tests: hold every write transaction open this many seconds before COMMIT.
PAUSE_BEFORE_COMMIT_ENV = "POLAR_DEBUG_PAUSE_BEFORE_COMMIT"


@dataclass(frozen=True)
class RawRecord:
    """One source record as it will be stored: natural key, local day and the verbatim JSON text."""

    key: str
    day: date
    payload_json: str


@dataclass(frozen=True)
class QuarantineRecord:
    """A record that failed validation, kept with the reason so nothing is silently dropped."""

    stream: str
    day: date | None
    key: str | None
    payload: str
    reason: str


def connect_writer(path: Path, *, retry_seconds: float = LOCK_RETRY_SECONDS) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-write, waiting out another writer's lock instead of failing at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + retry_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, or ROLLBACK on any error, so readers of the next snapshot never see half a write."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    pause = float(os.environ.get(PAUSE_BEFORE_COMMIT_ENV) or 0)
    if pause > 0:
        print(f"polar-flow: pausing {pause} s before COMMIT", file=sys.stderr, flush=True)
        time.sleep(pause)
    con.execute("COMMIT")


def upsert_raw_records(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    user_id: str,
    records: Sequence[RawRecord],
    *,
    source: str,
    fetched_at: datetime,
) -> int:
    """Insert new records and replace changed ones; an unchanged payload keeps its row (and fetched_at).

    Returns the number of rows inserted or changed. Rows the source no longer serves are never touched.
    """
    if not records:
        return 0
    keyed_by_day = table.key_column == "day"
    columns: dict[str, list[object]] = {"user_id": [user_id] * len(records), "day": [r.day for r in records]}
    schema: dict[str, type[pl.DataType]] = {"user_id": pl.String, "day": pl.Date}
    if not keyed_by_day:
        columns[table.key_column] = [r.key for r in records]
        schema[table.key_column] = pl.String
    columns["payload"] = [r.payload_json for r in records]
    schema["payload"] = pl.String
    frame = pl.DataFrame(columns, schema=schema)
    # The key columns cannot be SET; a record whose local day was corrected moves with its payload.
    day_update = "" if keyed_by_day else "day = excluded.day, "
    con.register("incoming_raw_records", frame)
    try:
        row = con.execute(
            f"""
            INSERT INTO {table.qualified} BY NAME
            SELECT *, ?::VARCHAR AS source, ?::TIMESTAMPTZ AS fetched_at FROM incoming_raw_records
            ON CONFLICT (user_id, {table.key_column}) DO UPDATE
            SET {day_update}payload = excluded.payload, source = excluded.source,
                fetched_at = excluded.fetched_at
            WHERE {table.qualified}.payload::VARCHAR IS DISTINCT FROM excluded.payload::VARCHAR
            """,
            [source, fetched_at],
        ).fetchone()
    finally:
        con.unregister("incoming_raw_records")
    return int(row[0]) if row else 0


def quarantine_records(
    con: duckdb.DuckDBPyConnection, user_id: str, records: Sequence[QuarantineRecord], *, seen_at: datetime
) -> int:
    """Keep each rejected record once (by payload hash) with its reason; a re-run only refreshes seen_at."""
    if not records:
        return 0
    frame = pl.DataFrame(
        {
            "stream": [r.stream for r in records],
            "day": [r.day for r in records],
            "record_key": [r.key for r in records],
            "payload": [r.payload for r in records],
            "payload_sha256": [hashlib.sha256(r.payload.encode()).hexdigest() for r in records],
            "reason": [r.reason for r in records],
        },
        schema={
            "stream": pl.String,
            "day": pl.Date,
            "record_key": pl.String,
            "payload": pl.String,
            "payload_sha256": pl.String,
            "reason": pl.String,
        },
    ).unique(subset=["stream", "payload_sha256"], keep="first", maintain_order=True)
    con.register("incoming_quarantine", frame)
    try:
        result = con.execute(
            """
            INSERT INTO raw.quarantine
                (user_id, stream, day, record_key, payload, payload_sha256, reason, first_seen_at, seen_at)
            SELECT ?, stream, day, record_key, payload, payload_sha256, reason, ?, ?
            FROM incoming_quarantine
            ON CONFLICT (user_id, stream, payload_sha256) DO UPDATE
            SET seen_at = excluded.seen_at, reason = excluded.reason
            """,
            [user_id, seen_at, seen_at],
        )
        row = result.fetchone()
    finally:
        con.unregister("incoming_quarantine")
    return int(row[0]) if row else 0
