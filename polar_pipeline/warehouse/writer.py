"""The single writer's rules: one read-write connection at a time, explicit transactions.

A failed or killed run leaves nothing half-written: every write happens inside one transaction, and
DuckDB's WAL replays or drops it whole on the next open.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path

import duckdb

LOCK_RETRY_SECONDS = 120.0

_armed_points: tuple[str, ...] = ()
_pause_seconds = 0.0


def arm_pause_points(patterns: Iterable[str], seconds: float) -> None:
    """Crash-test seam: stop this process ``seconds`` at every named point matching one of ``patterns``.

    Points (``fnmatch`` patterns match them): ``commit:<relation>`` just before a write transaction's
    COMMIT (``commit:*`` for all), ``model:<relation>`` before a mart's transaction begins, and the phases
    of a publish (``publish:*``, see ``snapshot.py``). A test arms them through ``POLAR_DEBUG_PAUSE_AT``,
    waits for the announcement on stderr and kills the process there. No patterns (the default): no pauses.
    """
    global _armed_points, _pause_seconds
    _armed_points = tuple(pattern for pattern in patterns if pattern)
    _pause_seconds = max(0.0, seconds)


def pause_point(name: str) -> None:
    """Announce ``name`` on stderr and sleep, if a crash test armed it; otherwise do nothing."""
    if _pause_seconds > 0 and any(fnmatchcase(name, pattern) for pattern in _armed_points):
        print(f"polar-flow: paused at {name} for {_pause_seconds:g} s", file=sys.stderr, flush=True)
        time.sleep(_pause_seconds)


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
