"""A user's data health as the snapshot carries it: ``analytics.data_health`` and ``raw.quarantine``.

``analytics.data_health`` (``polar_pipeline.health``, docs/operations.md) has one row per user and local day,
written by the publish step just before it copies the snapshot, so the newest row says how things stood when
the snapshot was made: the state (``ok``, ``not_worn``, ``sync_failing`` …), freshness, the last sync and the
last new data. ``raw.quarantine`` keeps every record that failed validation with its reason; the payload
stays out of these answers (it can be large, and the reason says what was wrong with it).

A snapshot published before the table existed has none: the answer is then None, not an error.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
from pydantic import BaseModel

from polar_api.read.analytics_common import Finite, fetch_computed

QUARANTINE_LIMIT = 200
"""The newest quarantined records listed; ``quarantined_records`` on the health row counts them all."""


class DataHealth(BaseModel):
    """The newest ``analytics.data_health`` row of a user (the columns: docs/operations.md)."""

    day: date
    state: str
    freshness: str
    hours_without_new_data: Finite
    last_data_day: date | None
    last_new_data_at: datetime | None
    last_sync_at: datetime | None
    last_attempt_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    failed_checks: list[str]
    blocking_checks_failed: bool
    quarantined_records: int
    quarantined_last_7_days: int
    evaluated_at: datetime


class QuarantinedRecord(BaseModel):
    """One record kept out of the marts, and why."""

    stream: str
    day: date | None
    record_key: str | None
    reason: str
    first_seen_at: datetime
    seen_at: datetime


DATA_HEALTH_QUERY = """
SELECT day, state, freshness, hours_without_new_data, last_data_day, last_new_data_at, last_sync_at,
    last_attempt_at, consecutive_failures, last_error, failed_checks, blocking_checks_failed,
    quarantined_records, quarantined_last_7_days, evaluated_at
FROM analytics.data_health
WHERE user_id = $user_id
ORDER BY day DESC
LIMIT 1
"""

QUARANTINE_QUERY = """
SELECT stream, day, record_key, reason, first_seen_at, seen_at
FROM raw.quarantine
WHERE user_id = $user_id
ORDER BY seen_at DESC, stream, day DESC NULLS LAST, record_key
LIMIT $limit
"""


def data_health(cursor: duckdb.DuckDBPyConnection, user_id: str) -> DataHealth | None:
    """The user's newest data-health row; None when the snapshot has none."""
    rows = fetch_computed(cursor, DATA_HEALTH_QUERY, {"user_id": user_id})
    return DataHealth(**rows[0]) if rows else None


def quarantined_records(
    cursor: duckdb.DuckDBPyConnection, user_id: str, limit: int = QUARANTINE_LIMIT
) -> list[QuarantinedRecord]:
    """The user's quarantined records, most recently seen first, at most ``limit``."""
    rows = fetch_computed(cursor, QUARANTINE_QUERY, {"user_id": user_id, "limit": limit})
    return [QuarantinedRecord(**row) for row in rows]
