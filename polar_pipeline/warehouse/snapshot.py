"""The serving snapshot: a read-only copy of what readers need, published atomically, read without locks.

DuckDB lets one process hold a file for writing and then no other process may open it, not even
read-only. So readers never touch ``warehouse.duckdb``: the writer copies the served relations (the marts,
the analytics, the quarantine, the users' time zones) into a new generation-numbered file, adds the
``samples`` views over the sample store (``samples.py``), and then atomically replaces a small pointer file
(``CURRENT.json``). Raw
payloads stay in the warehouse: copying them would make every publish grow with the history kept.
Readers follow the pointer, open that generation read-only, and keep using a generation they hold.
Old generations are unlinked once two newer ones exist; on POSIX a reader that still has one open keeps
reading it until it closes, and a reader that lost the race to a deleted file re-reads the pointer.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from polar_pipeline.warehouse.pause import pause_point
from polar_pipeline.warehouse.samples import sample_views_sql, sync_sample_store
from polar_pipeline.warehouse.serving_views import serving_views_sql

POINTER_NAME = "CURRENT.json"
SERVED_SCHEMAS: tuple[str, ...] = ("marts", "analytics")
"""Every table of these schemas is copied into each snapshot."""
SERVED_TABLES: tuple[str, ...] = ("raw.quarantine", "control.user_time_zones")
"""Single tables copied too: what could not be typed (with its reason) stays visible to readers, and each
user's time zone tells the API which local date is their "today"."""
GENERATION_PATTERN = re.compile(r"^serving-(\d{8})\.duckdb$")
GENERATIONS_KEPT = 3


@dataclass(frozen=True)
class SnapshotInfo:
    """Which generation is being served, where it is, and when it was published."""

    generation: int
    path: Path
    published_at: datetime

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(UTC)) - self.published_at).total_seconds()


def generation_file_name(generation: int) -> str:
    return f"serving-{generation:08d}.duckdb"


def _existing_generations(snapshots_dir: Path) -> list[int]:
    found = []
    for entry in snapshots_dir.iterdir() if snapshots_dir.exists() else []:
        match = GENERATION_PATTERN.match(entry.name)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_pointer(snapshots_dir: Path) -> SnapshotInfo | None:
    """The generation currently served, or None before the first publish."""
    try:
        data = json.loads((snapshots_dir / POINTER_NAME).read_text())
    except FileNotFoundError:
        return None
    return SnapshotInfo(
        generation=int(data["generation"]),
        path=snapshots_dir / str(data["file"]),
        published_at=datetime.fromisoformat(str(data["published_at"])),
    )


def publish_snapshot(
    con: duckdb.DuckDBPyConnection,
    snapshots_dir: Path,
    *,
    samples_dir: Path | None = None,
    schemas: Sequence[str] = SERVED_SCHEMAS,
    tables: Sequence[str] = SERVED_TABLES,
) -> SnapshotInfo:
    """Copy the served relations behind the writer connection ``con`` into a new generation; switch to it.

    Runs inside the writer (the DuckDB pool), so the copy is a consistent view of committed data. With a
    ``samples_dir``, the sample store is brought up to date first and the snapshot gets its views.
    """
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    existing = _existing_generations(snapshots_dir)
    current = read_pointer(snapshots_dir)
    generation = max([*existing, current.generation if current else 0]) + 1
    final_path = snapshots_dir / generation_file_name(generation)
    tmp_path = snapshots_dir / f".{final_path.name}.tmp"
    _remove_leftovers(snapshots_dir)

    if samples_dir is not None:
        sync_sample_store(con, samples_dir)
        pause_point("publish:samples-stored")
    served = _served_relations(con, schemas, tables)
    con.execute(f"ATTACH '{tmp_path.as_posix()}' AS serving_copy")
    try:
        for schema in sorted({schema for schema, _ in served}):
            con.execute(f'CREATE SCHEMA IF NOT EXISTS serving_copy."{schema}"')
        for index, (schema, table) in enumerate(served):
            con.execute(
                f'CREATE TABLE serving_copy."{schema}"."{table}" AS SELECT * FROM "{schema}"."{table}"'
            )
            if index == 0:
                pause_point("publish:copying")
        if samples_dir is not None:
            for statement in sample_views_sql(samples_dir, catalog="serving_copy"):
                con.execute(statement)
    finally:
        con.execute("DETACH serving_copy")
    snapshot = duckdb.connect(str(tmp_path))
    try:
        for statement in serving_views_sql({f"{schema}.{table}" for schema, table in served}):
            snapshot.execute(statement)
    finally:
        snapshot.close()
    pause_point("publish:copied")
    with open(tmp_path, "rb") as handle:
        os.fsync(handle.fileno())
    tmp_path.chmod(0o444)
    pause_point("publish:synced")
    os.replace(tmp_path, final_path)
    pause_point("publish:renamed")

    published_at = datetime.now(UTC)
    pointer_tmp = snapshots_dir / f".{POINTER_NAME}.tmp"
    pointer_tmp.write_text(
        json.dumps(
            {"generation": generation, "file": final_path.name, "published_at": published_at.isoformat()}
        )
    )
    with open(pointer_tmp, "rb") as handle:
        os.fsync(handle.fileno())
    pause_point("publish:pointer-written")
    os.replace(pointer_tmp, snapshots_dir / POINTER_NAME)
    _fsync_dir(snapshots_dir)
    pause_point("publish:switched")

    for old in _existing_generations(snapshots_dir)[:-GENERATIONS_KEPT]:
        (snapshots_dir / generation_file_name(old)).unlink(missing_ok=True)
    return SnapshotInfo(generation=generation, path=final_path, published_at=published_at)


def remove_generations_before(snapshots_dir: Path, generation: int) -> list[int]:
    """Unlink every generation older than ``generation`` (after deleting data they still hold).

    The same unlink a publish does when it prunes: a reader that has one of them open keeps reading it until
    it closes it, and readers that start now follow ``CURRENT.json`` to a newer one.
    """
    removed = [old for old in _existing_generations(snapshots_dir) if old < generation]
    for old in removed:
        (snapshots_dir / generation_file_name(old)).unlink(missing_ok=True)
    if removed:
        _fsync_dir(snapshots_dir)
    return removed


def _remove_leftovers(snapshots_dir: Path) -> None:
    """Delete what a killed publish left: hidden temporary files (a copy, its WAL, a pointer) nobody reads.

    Only the writer publishes (it holds the warehouse), so no other publish can be using them.
    """
    for entry in snapshots_dir.iterdir():
        if entry.name.startswith(".") and ".tmp" in entry.name:
            entry.unlink(missing_ok=True)


def _served_relations(
    con: duckdb.DuckDBPyConnection, schemas: Sequence[str], tables: Sequence[str]
) -> list[tuple[str, str]]:
    """(schema, table) of the writer's base tables that a snapshot serves, in a stable order."""
    rows = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' "
        "AND (list_contains($schemas, table_schema) "
        "OR list_contains($tables, table_schema || '.' || table_name)) "
        "ORDER BY ALL",
        {"schemas": list(schemas), "tables": list(tables)},
    ).fetchall()
    return [(str(schema), str(table)) for schema, table in rows]


class SnapshotUnavailable(RuntimeError):
    """No snapshot can be read: none published yet (``SnapshotNotPublished``) or it cannot be opened."""


class SnapshotNotPublished(SnapshotUnavailable):
    """Nothing has been published yet: a state, not a failure."""


class SnapshotOpenFailed(SnapshotUnavailable):
    """The pointer names a generation that could not be opened, even after re-reading the pointer."""


class _OpenGeneration:
    def __init__(self, info: SnapshotInfo) -> None:
        self.info = info
        self.connection = duckdb.connect(str(info.path), read_only=True)
        self.borrowed = 0
        self.memo: dict[str, Any] = {}


_lent: dict[int, _OpenGeneration] = {}
"""id(cursor) -> its generation, while a ``SnapshotReader`` lends the cursor out."""


def generation_memo(cursor: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """A dict that lives as long as the generation ``cursor`` reads (None for a cursor no reader lent).

    A generation never changes, so whatever is derived from it once (the known users, their zones) can be
    kept here and reused by every later request on that generation, and dropped with it.
    """
    handle = _lent.get(id(cursor))
    return None if handle is None else handle.memo


class SnapshotReader:
    """Thread-safe read access to the current snapshot for long-lived processes (API, MCP).

    One read-only connection per generation; each caller gets its own cursor. A generation is closed
    once a newer one is current and nobody is using it any more.
    """

    def __init__(self, snapshots_dir: Path) -> None:
        self.snapshots_dir = snapshots_dir
        self._lock = threading.Lock()
        self._open: dict[int, _OpenGeneration] = {}
        self._latest: int | None = None

    def current(self) -> SnapshotInfo | None:
        return read_pointer(self.snapshots_dir)

    def _acquire(self) -> _OpenGeneration:
        last_error: Exception | None = None
        for _ in range(5):
            info = read_pointer(self.snapshots_dir)
            if info is None:
                raise SnapshotNotPublished("no serving snapshot has been published yet")
            with self._lock:
                handle = self._open.get(info.generation)
                if handle is None:
                    try:
                        handle = _OpenGeneration(info)
                    except (duckdb.IOException, duckdb.CatalogException, FileNotFoundError) as exc:
                        last_error = exc  # published and replaced between pointer read and open
                        continue
                    self._open[info.generation] = handle
                handle.borrowed += 1
                self._latest = max(self._latest or 0, info.generation)
                return handle
        raise SnapshotOpenFailed(f"could not open the current snapshot: {last_error}")

    def _release(self, handle: _OpenGeneration) -> None:
        with self._lock:
            handle.borrowed -= 1
            stale = [
                generation
                for generation, other in self._open.items()
                if other.borrowed == 0 and self._latest is not None and generation < self._latest
            ]
            for generation in stale:
                self._open.pop(generation).connection.close()

    @contextmanager
    def cursor(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, SnapshotInfo]]:
        """A private cursor on the current generation, and which generation it is."""
        handle = self._acquire()
        cursor = handle.connection.cursor()
        _lent[id(cursor)] = handle
        try:
            yield cursor, handle.info
        finally:
            _lent.pop(id(cursor), None)
            cursor.close()
            self._release(handle)

    def close(self) -> None:
        with self._lock:
            for handle in self._open.values():
                handle.connection.close()
            self._open.clear()
