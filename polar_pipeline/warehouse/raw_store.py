"""Raw records in: natural-key upserts, quarantine for what failed validation, one transaction per batch.

Raw tables are the only copy of what AccessLink has forgotten (it serves ~28 days), so rows are upserted by
natural key and never deleted; a record that fails validation is kept in ``raw.quarantine`` with its reason.
Every source (the AccessLink sync, the account-export importer) writes through ``store_raw_batches``.
When two sources hold the same key (a day of activity, sleep or recharge both synced and imported), the
AccessLink record wins: it carries fields an export lacks (sleep heart rate, active calories), so an
import never replaces it, while a later sync does replace an imported one (``SOURCE_PRECEDENCE``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import duckdb

from polar_pipeline.warehouse.raw_counts import StoredCounts
from polar_pipeline.warehouse.schema import RAW_TABLES, RawTable
from polar_pipeline.warehouse.writer import transaction

if TYPE_CHECKING:  # imported where used: a rebuild, which writes no raw records, need not load it
    import pyarrow as pa

SOURCE_PRECEDENCE: dict[str, int] = {"accesslink": 2, "export": 1}
"""Which source's record a key keeps when both deliver one: the higher wins, equal ones replace."""


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


def upsert_raw_records(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    user_id: str,
    records: Sequence[RawRecord],
    *,
    source: str,
    fetched_at: datetime,
    changed_days: list[date] | None = None,
) -> int:
    """Insert new records and replace changed ones; an unchanged payload keeps its row (and fetched_at).

    Returns the number of rows inserted or changed (their days are appended to ``changed_days``). Rows the
    source no longer serves are never touched.
    """
    if not records:
        return 0
    import pyarrow as pa

    keyed_by_day = table.key_column == "day"
    columns: dict[str, pa.Array] = {
        "user_id": pa.array([user_id] * len(records), pa.string()),
        "day": pa.array([r.day for r in records], pa.date32()),
    }
    if not keyed_by_day:
        columns[table.key_column] = pa.array([r.key for r in records], pa.string())
    columns["payload"] = pa.array([r.payload_json for r in records], pa.string())
    frame = pa.table(columns)
    # The key columns cannot be SET; a record whose local day was corrected moves with its payload.
    day_update = "" if keyed_by_day else "day = excluded.day, "
    precedence = "{" + ", ".join(f"'{name}': {rank}" for name, rank in SOURCE_PRECEDENCE.items()) + "}"
    con.register("incoming_raw_records", frame)
    try:
        rows = con.execute(
            f"""
            INSERT INTO {table.qualified} BY NAME
            SELECT *, ?::VARCHAR AS source, ?::TIMESTAMPTZ AS fetched_at FROM incoming_raw_records
            ON CONFLICT (user_id, {table.key_column}) DO UPDATE
            SET {day_update}payload = excluded.payload, source = excluded.source,
                fetched_at = excluded.fetched_at
            WHERE {table.qualified}.payload::VARCHAR IS DISTINCT FROM excluded.payload::VARCHAR
                AND coalesce(map_extract_value(MAP {precedence}, {table.qualified}.source), 0)
                    <= coalesce(map_extract_value(MAP {precedence}, excluded.source), 0)
            RETURNING day
            """,
            [source, fetched_at],
        ).fetchall()
    finally:
        con.unregister("incoming_raw_records")
    if changed_days is not None:
        changed_days.extend(day for (day,) in rows)
    return len(rows)


def quarantine_records(
    con: duckdb.DuckDBPyConnection,
    user_id: str,
    records: Sequence[QuarantineRecord],
    *,
    seen_at: datetime,
    first_seen: list[str] | None = None,
) -> int:
    """Keep each rejected record once (by payload hash) with its reason; a re-run only refreshes seen_at.

    The reasons of records never quarantined before are appended to ``first_seen`` when it is given.
    """
    if not records:
        return 0
    import pyarrow as pa

    unique: dict[tuple[str, str], QuarantineRecord] = {}  # one row per stream and payload: the first
    for record in records:
        unique.setdefault((record.stream, hashlib.sha256(record.payload.encode()).hexdigest()), record)
    frame = pa.table(
        {
            "stream": pa.array([stream for stream, _ in unique], pa.string()),
            "day": pa.array([r.day for r in unique.values()], pa.date32()),
            "record_key": pa.array([r.key for r in unique.values()], pa.string()),
            "payload": pa.array([r.payload for r in unique.values()], pa.string()),
            "payload_sha256": pa.array([sha for _, sha in unique], pa.string()),
            "reason": pa.array([r.reason for r in unique.values()], pa.string()),
        }
    )
    con.register("incoming_quarantine", frame)
    try:
        if first_seen is not None:
            new_rows = con.execute(
                """
                SELECT reason FROM incoming_quarantine AS incoming
                WHERE NOT EXISTS (
                    SELECT 1 FROM raw.quarantine AS q
                    WHERE q.user_id = ? AND q.stream = incoming.stream
                        AND q.payload_sha256 = incoming.payload_sha256
                )
                """,
                [user_id],
            ).fetchall()
            first_seen.extend(f"{reason}" for (reason,) in new_rows)
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


@dataclass(frozen=True)
class RawBatch:
    """What one source delivered for one user: records to upsert, rejects to quarantine, requests spent."""

    records: Sequence[RawRecord] = ()
    rejects: Sequence[QuarantineRecord] = ()
    requests: int = 0


def store_raw_batches(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    batches: Mapping[str, RawBatch],
    *,
    source: str,
    fetched_at: datetime,
) -> StoredCounts:
    """Upsert every user's records into ``raw.<stream>`` and quarantine their rejects, in ONE transaction.

    Rejects are quarantined under the raw table's stream name, so quarantine rows join to ``raw.<stream>``.
    """
    table = RAW_TABLES[stream]
    changed = quarantined = 0
    first_quarantined: dict[str, list[str]] = {}
    changed_days: dict[str, list[date]] = {}
    with transaction(con, table.qualified):
        for user_id, batch in batches.items():
            days: list[date] = []
            changed += upsert_raw_records(
                con, table, user_id, batch.records, source=source, fetched_at=fetched_at, changed_days=days
            )
            if days:
                changed_days[user_id] = sorted(set(days))
            reasons: list[str] = []
            quarantined += quarantine_records(
                con, user_id, batch.rejects, seen_at=fetched_at, first_seen=reasons
            )
            if reasons:
                first_quarantined[user_id] = reasons
    return StoredCounts(
        received=sum(len(batch.records) for batch in batches.values()),
        changed=changed,
        quarantined=quarantined,
        requests=sum(batch.requests for batch in batches.values()),
        users=tuple(batches),
        first_quarantined=first_quarantined,
        changed_days=changed_days,
    )
