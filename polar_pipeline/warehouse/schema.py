"""Raw-layer DDL: one table per AccessLink stream, payloads kept verbatim, keyed by natural key.

Raw tables are the only copy of data AccessLink has forgotten, so they are upserted and never truncated.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


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
            "    payload JSON NOT NULL,\n"
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


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema and tables if missing (idempotent, safe on every run)."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for table in RAW_TABLES.values():
        con.execute(table.ddl())
    con.execute(QUARANTINE_DDL)
