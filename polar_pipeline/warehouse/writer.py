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

from polar_pipeline.warehouse.pause import pause_point

LOCK_RETRY_SECONDS = 120.0


def connect_writer(
    path: Path,
    *,
    retry_seconds: float = LOCK_RETRY_SECONDS,
    memory_limit: str | None = None,
    threads: int = 0,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse read-write, waiting out another process's lock instead of failing at once.

    DuckDB lets one process open a file read-write, and none while another has it open (even read-only).
    Dagster runs of one DAGSTER_HOME already take turns through the ``duckdb`` pool; this wait covers every
    other holder (a run of another Dagster instance, ``make bench``, a DuckDB shell on the file). Waiting
    is said once on stderr, and so are getting the lock after a wait and giving up (DuckDB's error is
    re-raised then). ``memory_limit`` (``Settings.warehouse_memory_limit``) bounds DuckDB's memory: past it
    DuckDB spills to a temporary folder beside the file instead of growing; ``threads`` (0: one per core)
    is ``Settings.warehouse_threads``. The allocator's background
    threads hand memory a finished query freed back to the system within about a second: without them a
    long run keeps the peak of its heaviest query (a 180-day JSON parse, ~150 MB) for the rest of the run.
    """
    path.parent.mkdir(parents=True, exist_ok=True)

    def say(message: str) -> None:
        print(f"polar-flow: {message}", file=sys.stderr, flush=True)

    started = time.monotonic()
    deadline = started + retry_seconds
    delay = 0.05
    waiting = False
    while True:
        try:
            con = duckdb.connect(str(path), config=_writer_config(memory_limit, threads))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            # DuckDB names the holder: "Conflicting lock is held in /usr/bin/python3 (PID 123). See also …"
            holder = str(exc).partition("lock is held in ")[2].partition(". ")[0]
            locked = f"the warehouse {path} is locked by another process" + (f": {holder}" if holder else "")
            if time.monotonic() >= deadline:
                say(f"gave up after {retry_seconds:g} s: {locked}")
                raise
            if not waiting:
                say(f"{locked}; waiting up to {retry_seconds:g} s")
                waiting = True
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, 2.0)
        else:
            if waiting:
                say(f"got the warehouse after waiting {time.monotonic() - started:.1f} s")
            return con


DuckDBConfig = dict[str, str | bool | int | float | list[str]]


def _writer_config(memory_limit: str | None, threads: int) -> DuckDBConfig:
    config: DuckDBConfig = {"allocator_background_threads": True}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    return config


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, name: str = "") -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, or ROLLBACK on any error, so readers of the next snapshot never see half a write.

    ``name`` (the relation written) only names the crash-test point ``commit:<name>``.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    pause_point(f"commit:{name}")
    con.execute("COMMIT")
