"""A separate reader process for concurrency checks: read the serving snapshot in a loop until told to stop.

``python -m polar_pipeline.warehouse.probe SNAPSHOTS_DIR QUERY`` prints ``ready`` on stderr once it starts,
then reads until SIGTERM (or a safety cap of ``MAX_SECONDS``) and prints one JSON line on stdout. Every read
runs ``QUERY`` (its distinct (generation, result) pairs are reported, so a test can check it only ever saw
whole states) and counts the rows of every table of that generation, so a half-copied snapshot fails too.
"Not published yet" is counted apart; a snapshot that cannot be opened, or any failing query, is an error.
Used by the tests and by ``make bench``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import duckdb

from polar_pipeline.warehouse.snapshot import SnapshotNotPublished, SnapshotReader

MAX_SECONDS = 600.0
"""A probe nobody stops still ends: bounded, so a broken test cannot leave it running."""

TABLES_QUERY = (
    "SELECT table_schema, table_name FROM information_schema.tables "
    "WHERE table_catalog = current_database() ORDER BY ALL"
)


def read_every_table(cursor: duckdb.DuckDBPyConnection) -> int:
    """Count the rows of every table and view of the snapshot; returns how many relations were read."""
    relations = cursor.execute(TABLES_QUERY).fetchall()
    for schema, table in relations:
        cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchall()
    return len(relations)


def main() -> None:
    snapshots_dir, query = Path(sys.argv[1]), sys.argv[2]
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # A flag, not an exception: DuckDB would turn an exception raised mid-query into its own error.
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    reader = SnapshotReader(snapshots_dir)
    reads, not_published, errors, seen, relations = 0, 0, [], set(), 0
    deadline = time.monotonic() + MAX_SECONDS
    print("ready", file=sys.stderr, flush=True)
    while not stopping and time.monotonic() < deadline:
        try:
            with reader.cursor() as (cursor, info):
                result = cursor.execute(query).fetchall()
                relations = max(relations, read_every_table(cursor))
            seen.add(json.dumps([info.generation, [list(map(str, row)) for row in result]]))
            reads += 1
        except SnapshotNotPublished:
            not_published += 1
            time.sleep(0.01)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    reader.close()
    report = {
        "reads": reads,
        "failed": len(errors),
        "not_published": not_published,
        "relations": relations,
        "stopped_by_signal": stopping,
        "errors": errors[:20],
    }
    print(json.dumps(report | {"seen": sorted(json.loads(s) for s in seen)}), flush=True)


if __name__ == "__main__":
    main()
