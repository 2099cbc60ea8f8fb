"""Raw-layer DDL: one table per AccessLink stream, payloads kept verbatim, keyed by natural key.

Raw tables are the only copy of data AccessLink has forgotten, so they are upserted and never truncated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from polar_pipeline.warehouse.writer import connect_writer, transaction

PAYLOAD_COMPRESSION = "USING COMPRESSION uncompressed"
"""How raw payloads are stored. DuckDB would pick ZSTD for these long strings, which compresses a whole vector
(2,048 payloads) as one frame: reading one day's payload then decompresses every payload of the vector, and
each slice of a rebuild pays that (60 MB per scan for five years of 24/7 heart rate, 30 KB a day).
Uncompressed, a slice reads its own rows, several times faster, for about 4× the disk of those payloads.
Tables created before this kept DuckDB's choice."""


@dataclass(frozen=True)
class RawTable:
    """A raw stream table and the column that, with ``user_id``, is its natural key."""

    stream: str
    name: str
    key_column: str
    key_type: str

    @property
    def qualified(self) -> str:
        return f"raw.{self.name}"

    def ddl(self) -> str:
        day_column = "" if self.key_column == "day" else "    day DATE NOT NULL,\n"
        return (
            f"CREATE TABLE IF NOT EXISTS {self.qualified} (\n"
            "    user_id VARCHAR NOT NULL,\n"
            f"    {self.key_column} {self.key_type} NOT NULL,\n"
            f"{day_column}"
            f"    payload JSON {PAYLOAD_COMPRESSION} NOT NULL,\n"
            "    source VARCHAR NOT NULL,\n"
            "    fetched_at TIMESTAMPTZ NOT NULL,\n"
            f"    PRIMARY KEY (user_id, {self.key_column})\n"
            ")"
        )


RAW_TABLES: dict[str, RawTable] = {
    "sleep": RawTable("sleep", "sleep", "day", "DATE"),
    "nightly_recharge": RawTable("nightly_recharge", "nightly_recharge", "day", "DATE"),
    "activity": RawTable("activity", "activity", "day", "DATE"),
    "exercises": RawTable("exercises", "exercises", "exercise_id", "VARCHAR"),
    "continuous_heart_rate": RawTable("continuous_heart_rate", "continuous_heart_rate", "day", "DATE"),
    "cardio_load": RawTable("cardio_load", "cardio_load", "day", "DATE"),
}

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw.quarantine (
    user_id VARCHAR NOT NULL,
    stream VARCHAR NOT NULL,
    day DATE,
    record_key VARCHAR,
    payload VARCHAR NOT NULL,
    payload_sha256 VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, stream, payload_sha256)
)
"""


USER_TIME_ZONES_TABLE = "control.user_time_zones"
USER_TIME_ZONES_DDL = f"""
CREATE TABLE IF NOT EXISTS {USER_TIME_ZONES_TABLE} (
    user_id VARCHAR PRIMARY KEY,
    time_zone VARCHAR NOT NULL,
    source VARCHAR NOT NULL
)
"""
"""The control store's users' IANA zones (source ``records`` or ``user``), copied here so a serving snapshot
carries them to readers; ``user_zones.record_time_zones`` writes it (docs/time-zones.md)."""


CHECK_FAILURES_TABLE = "control.check_failures"
CHECK_FAILURES_DDL = f"""
CREATE TABLE IF NOT EXISTS {CHECK_FAILURES_TABLE} (
    user_id VARCHAR NOT NULL,
    check_name VARCHAR NOT NULL,
    asset VARCHAR NOT NULL,
    blocking BOOLEAN NOT NULL,
    failing_rows BIGINT NOT NULL,
    first_day DATE NOT NULL,
    last_day DATE NOT NULL,
    evaluated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, check_name)
)
"""
"""Which data checks currently fail for which user: a row per (user, check) while the check's last evaluation
over a slice with that user failed on their rows, deleted when it passes again. ``analytics.data_health``,
``polar-flow status`` and the alerts read it; Dagster's own check history says the same per run."""


@contextmanager
def raw_writer(
    path: Path, *, memory_limit: str | None = None, threads: int = 0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse opened by the single writer (``connect_writer``), raw schema ensured, closed on exit."""
    con = connect_writer(path, memory_limit=memory_limit, threads=threads)
    try:
        ensure_raw_schema(con)
        yield con
    finally:
        con.close()


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and tables, and the user time-zone table, if missing (idempotent, every run)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in RAW_TABLES.values():
        con.execute(table.ddl())
    con.execute(QUARANTINE_DDL)
    con.execute("CREATE SCHEMA IF NOT EXISTS control")
    con.execute(USER_TIME_ZONES_DDL)
    con.execute(CHECK_FAILURES_DDL)


def raw_extent(con: duckdb.DuckDBPyConnection) -> tuple[tuple[str, ...], date | None, date | None]:
    """Every user with a raw record, and the first and last raw day (None, None when there is none).

    Reads only the raw tables that exist, so it also answers for a warehouse that has never been written.
    """
    present = {
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'"
        ).fetchall()
    }
    tables = [table.qualified for table in RAW_TABLES.values() if table.name in present]
    if not tables:
        return (), None, None
    days = " UNION ALL ".join(f"SELECT user_id, day FROM {table}" for table in tables)
    users = tuple(
        user for (user,) in con.execute(f"SELECT DISTINCT user_id FROM ({days}) ORDER BY 1").fetchall()
    )
    row = con.execute(f"SELECT min(day), max(day) FROM ({days})").fetchone()
    return users, (row[0] if row else None), (row[1] if row else None)


_NEWEST_OFFSET_ROWS = """
WITH newest_sleep AS (
    SELECT user_id, max(day) AS day FROM raw.sleep WHERE list_contains($users, user_id) GROUP BY user_id
),
newest_exercise AS (
    SELECT user_id, max(day) AS day FROM raw.exercises WHERE list_contains($users, user_id) GROUP BY user_id
)
SELECT sleep.user_id, sleep.payload ->> 'sleep_end_time', NULL
FROM raw.sleep AS sleep
JOIN newest_sleep ON sleep.user_id = newest_sleep.user_id AND sleep.day >= newest_sleep.day - 1
UNION ALL
SELECT exercise.user_id, exercise.payload ->> 'start_time', exercise.payload ->> 'start_time_utc_offset'
FROM raw.exercises AS exercise
JOIN newest_exercise ON exercise.user_id = newest_exercise.user_id AND exercise.day >= newest_exercise.day - 1
"""


def newest_offset_rows(
    con: duckdb.DuckDBPyConnection, users: Sequence[str]
) -> list[tuple[str, str | None, str | None]]:
    """``(user_id, time text, offset text)`` of each user's last two days of nights (their ``sleep_end_time``)
    and exercises (``start_time``, ``start_time_utc_offset``): where their newest UTC offset is written."""
    rows = con.execute(_NEWEST_OFFSET_ROWS, {"users": list(users)}).fetchall()
    return [(str(user), time_text, offset_text) for user, time_text, offset_text in rows]


def replace_user_time_zones(con: duckdb.DuckDBPyConnection, zones: Sequence[tuple[str, str, str]]) -> None:
    """Make ``control.user_time_zones`` exactly ``(user_id, time_zone, source)`` rows, in one transaction."""
    with transaction(con, USER_TIME_ZONES_TABLE):
        con.execute(f"DELETE FROM {USER_TIME_ZONES_TABLE}")
        if zones:
            con.executemany(
                f"INSERT INTO {USER_TIME_ZONES_TABLE} (user_id, time_zone, source) VALUES (?, ?, ?)",
                list(zones),
            )
