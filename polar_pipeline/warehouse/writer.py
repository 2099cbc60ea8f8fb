"""The single writer's rules: one read-write connection at a time, explicit transactions.

A failed or killed run leaves nothing half-written: every write happens inside one transaction, and
DuckDB's WAL replays or drops it whole on the next open.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

LOCK_RETRY_SECONDS = 120.0

_pause_before_commit_seconds = 0.0


def pause_before_every_commit(seconds: float) -> None:
    """Crash-test seam: hold every write transaction of this process open ``seconds`` before COMMIT.

    Set from ``Settings.debug_pause_before_commit`` by whoever opens the writer (the Dagster resource), so
    a test can kill a process while it is inside a transaction. 0 (the default) turns it off.
    """
    global _pause_before_commit_seconds
    _pause_before_commit_seconds = max(0.0, seconds)


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
    if _pause_before_commit_seconds > 0:
        print(
            f"polar-flow: pausing {_pause_before_commit_seconds} s before COMMIT", file=sys.stderr, flush=True
        )
        time.sleep(_pause_before_commit_seconds)
    con.execute("COMMIT")
