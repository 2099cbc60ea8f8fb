"""The DuckDB rules in one place: raw schema, the single writer's transactions, and the serving snapshot.

Only Dagster writes ``warehouse.duckdb``; everyone else reads a published, read-only snapshot.
"""

from polar_pipeline.warehouse.schema import RAW_TABLES, RawTable, ensure_raw_schema
from polar_pipeline.warehouse.snapshot import SnapshotInfo, SnapshotReader, publish_snapshot
from polar_pipeline.warehouse.writer import (
    QuarantineRecord,
    RawRecord,
    connect_writer,
    quarantine_records,
    transaction,
    upsert_raw_records,
)

__all__ = [
    "RAW_TABLES",
    "QuarantineRecord",
    "RawRecord",
    "RawTable",
    "SnapshotInfo",
    "SnapshotReader",
    "connect_writer",
    "ensure_raw_schema",
    "publish_snapshot",
    "quarantine_records",
    "transaction",
    "upsert_raw_records",
]
