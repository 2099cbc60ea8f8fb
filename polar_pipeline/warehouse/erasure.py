"""Erasing one user from the warehouse and the sample store, inside the single writer.

Every base table with a ``user_id`` column is found in the catalog, whatever its schema (raw, quarantine,
marts, analytics, control, and any table added later), and loses the user's rows in one transaction. The
sample store's Parquet segments are immutable for everybody else; erasure is the one exception: a segment
that holds the user is written again without them, to a hidden temporary name, fsynced, and renamed over the
original, so a reader sees either the old file or the new one, never half of one. A segment left with no
rows stays as an empty file with its columns (the snapshots' views glob the folder, and a reader that
listed it must still find the file). Its state row in ``raw.sample_segments`` keeps its name; only its row
count changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from polar_pipeline.warehouse.samples import STATE_TABLE, fsync_file, sql_path
from polar_pipeline.warehouse.writer import transaction

USER_COLUMN = "user_id"


@dataclass(frozen=True)
class SegmentRewrite:
    """A segment that held the user, and its rewritten copy waiting (hidden) beside it."""

    path: Path
    staged: Path
    removed: int


@dataclass(frozen=True)
class Erased:
    """Rows removed per table (``schema.table``, zeros included) and per sample segment (path)."""

    tables: dict[str, int]
    segments: dict[Path, int]


def user_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """``schema.table`` of every base table of the warehouse that has a ``user_id`` column."""
    rows = con.execute(
        "SELECT c.table_schema, c.table_name FROM information_schema.columns AS c "
        "JOIN information_schema.tables AS t USING (table_catalog, table_schema, table_name) "
        "WHERE c.table_catalog = current_database() AND t.table_type = 'BASE TABLE' "
        "AND c.column_name = $column ORDER BY ALL",
        {"column": USER_COLUMN},
    ).fetchall()
    return [f"{schema}.{table}" for schema, table in rows]


def quoted(table: str) -> str:
    """``schema.table`` as a quoted SQL name."""
    schema, _, name = table.partition(".")
    return f'"{schema}"."{name}"'


def erase_user(con: duckdb.DuckDBPyConnection, user_id: str, samples_dir: Path) -> Erased:
    """Delete ``user_id``'s rows from every user table and every sample segment, through writer ``con``.

    The segments are rewritten to hidden names first; the table rows and the segments' row counts go in one
    transaction, and the rewritten segments are renamed into place just before it commits. A crash in
    between leaves segments already without the user and tables still with them: running the erasure again
    finishes it (a rewrite finds nothing left to remove).
    """
    rewrites = _stage_segment_rewrites(con, samples_dir, user_id)
    try:
        with transaction(con, "erase-user"):
            tables: dict[str, int] = {}
            for table in user_tables(con):
                row = con.execute(
                    f"DELETE FROM {quoted(table)} WHERE CAST({USER_COLUMN} AS VARCHAR) = ?", [user_id]
                ).fetchone()
                tables[table] = int(row[0]) if row else 0
            if rewrites and _table_exists(con, STATE_TABLE):
                for rewrite in rewrites:
                    con.execute(
                        f"UPDATE {STATE_TABLE} SET rows = greatest(rows - ?, 0) "
                        "WHERE kind = ? AND segment = ?",
                        [rewrite.removed, rewrite.path.parent.name, rewrite.path.name],
                    )
            for rewrite in rewrites:
                os.replace(rewrite.staged, rewrite.path)
            for folder in {rewrite.path.parent for rewrite in rewrites}:
                _fsync_dir(folder)
    finally:
        for rewrite in rewrites:
            rewrite.staged.unlink(missing_ok=True)
    return Erased(tables=tables, segments={rewrite.path: rewrite.removed for rewrite in rewrites})


def _stage_segment_rewrites(
    con: duckdb.DuckDBPyConnection, samples_dir: Path, user_id: str
) -> list[SegmentRewrite]:
    """For each segment with rows of ``user_id``: a copy without them, fsynced under a hidden name."""
    rewrites: list[SegmentRewrite] = []
    segments = sorted(samples_dir.rglob("*.parquet")) if samples_dir.is_dir() else []
    try:
        for path in segments:
            if any(part.startswith(".") for part in path.relative_to(samples_dir).parts):
                continue  # half-written files, and an import's not yet committed ones
            source = f"read_parquet('{sql_path(path)}')"
            columns = {str(row[0]) for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            if USER_COLUMN not in columns:
                continue
            found = con.execute(
                f"SELECT count(*) FROM {source} WHERE CAST({USER_COLUMN} AS VARCHAR) = ?", [user_id]
            ).fetchone()
            removed = int(found[0]) if found else 0
            if not removed:
                continue
            staged = path.with_name(f".{path.name}.tmp")
            con.execute(
                f"COPY (SELECT * FROM {source} WHERE CAST({USER_COLUMN} AS VARCHAR) IS DISTINCT FROM $user) "
                f"TO '{sql_path(staged)}' (FORMAT parquet, COMPRESSION zstd)",
                {"user": user_id},
            )
            fsync_file(staged)
            rewrites.append(SegmentRewrite(path=path, staged=staged, removed=removed))
    except BaseException:
        for rewrite in rewrites:
            rewrite.staged.unlink(missing_ok=True)
        raise
    return rewrites


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, _, name = qualified.partition(".")
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
