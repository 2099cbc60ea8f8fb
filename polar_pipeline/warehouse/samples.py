"""The sample store: per-sample arrays kept once, in immutable Parquet segments beside the warehouse.

Exercise samples (heart rate, speed, … per second), exercise routes and the nightly hypnogram and heart-rate
series are most of the bytes AccessLink sends. Readers need them rarely and whole (one workout's heart rate),
so they are not copied into every serving snapshot. Instead each publish extracts the series of the raw
records that are new or changed since the previous publish into one Parquet segment per series kind
(``$POLAR_HOME/samples/<kind>/through-<timestamp>.parquet``), written once and never rewritten; the snapshot
gets a view per kind over the segments (``samples.exercise_samples`` …) that keeps, for each record, the
version with the latest ``fetched_at``. A publish therefore costs what is new, not the whole history.

The raw payloads stay in the warehouse verbatim (nothing is lost); the segments are derived from them, so
they can be rebuilt by deleting the folder and its state rows. An unchanged payload keeps its ``fetched_at``
(raw upserts touch only changed payloads), so re-running a partition adds no segment.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from polar_pipeline.warehouse.pause import pause_point

STATE_TABLE = "raw.sample_segments"
EXPORT_SEGMENT_PREFIX = "export-"
"""Segments an account-export import wrote (``polar_export.samples``): kept and served like the others, but
they never move a kind's watermark, which only publish's own ``through-`` segments set."""
STATE_DDL = f"""
CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
    kind VARCHAR NOT NULL,
    segment VARCHAR NOT NULL,
    through_fetched_at TIMESTAMPTZ NOT NULL,
    rows BIGINT NOT NULL,
    PRIMARY KEY (kind, segment)
)
"""


@dataclass(frozen=True)
class SampleKind:
    """One kind of series: the raw table it comes from, its key columns, and the SELECT that unnests it.

    ``select`` reads ``new_rows`` (the raw rows fetched after the previous segment) and returns the key
    columns, ``fetched_at`` and the series columns; ``empty`` is the same shape with no rows, for a view
    before the first segment exists.
    """

    name: str
    raw_table: str
    keys: tuple[str, ...]
    select: str
    columns: str

    @property
    def column_types(self) -> list[tuple[str, str]]:
        """(name, DuckDB type) of the columns ``select`` returns."""
        pairs = [spec.strip().partition(" ") for spec in self.columns.split(",")]
        return [(name, column_type) for name, _, column_type in pairs]


SAMPLE_KINDS: tuple[SampleKind, ...] = (
    SampleKind(
        name="exercise_samples",
        raw_table="raw.exercises",
        keys=("user_id", "exercise_id"),
        # AccessLink sends each series as comma-separated text; an empty item is a sensor gap (NULL).
        select="""
            SELECT user_id, exercise_id, day, fetched_at,
                CAST(series.sample_type AS VARCHAR) AS sample_type,
                TRY_CAST(series.recording_rate AS INTEGER) AS recording_rate_seconds,
                list_transform(string_split(series.data, ','), lambda v: TRY_CAST(NULLIF(v, '') AS DOUBLE))
                    AS sample_values
            FROM (
                SELECT user_id, exercise_id, day, fetched_at,
                    unnest(from_json(payload -> 'samples',
                        '[{"sample_type": "JSON", "recording_rate": "JSON", "data": "VARCHAR"}]')) AS series
                FROM new_rows
                WHERE json_type(payload -> 'samples') = 'ARRAY'
            )
        """,
        columns="user_id VARCHAR, exercise_id VARCHAR, day DATE, fetched_at TIMESTAMPTZ, "
        "sample_type VARCHAR, recording_rate_seconds INTEGER, sample_values DOUBLE[]",
    ),
    SampleKind(
        name="exercise_routes",
        raw_table="raw.exercises",
        keys=("user_id", "exercise_id"),
        select="""
            SELECT user_id, exercise_id, day, fetched_at,
                list_transform(points, lambda p: TRY_CAST(p.latitude AS DOUBLE)) AS latitudes,
                list_transform(points, lambda p: TRY_CAST(p.longitude AS DOUBLE)) AS longitudes,
                list_transform(points, lambda p: p.time) AS offsets,
                list_transform(points, lambda p: TRY_CAST(p.satellites AS INTEGER)) AS satellites,
                list_transform(points, lambda p: TRY_CAST(p.fix AS INTEGER)) AS fixes
            FROM (
                SELECT user_id, exercise_id, day, fetched_at,
                    from_json(payload -> 'route', '[{"latitude": "JSON", "longitude": "JSON",
                        "time": "VARCHAR", "satellites": "JSON", "fix": "JSON"}]') AS points
                FROM new_rows
                WHERE json_type(payload -> 'route') = 'ARRAY'
            )
        """,
        columns="user_id VARCHAR, exercise_id VARCHAR, day DATE, fetched_at TIMESTAMPTZ, latitudes DOUBLE[], "
        "longitudes DOUBLE[], offsets VARCHAR[], satellites INTEGER[], fixes INTEGER[]",
    ),
    SampleKind(
        name="sleep_series",
        raw_table="raw.sleep",
        keys=("user_id", "day"),
        # The HH:MM keys wrap past midnight, so they stay in the order the payload lists them.
        select="""
            SELECT user_id, day, fetched_at, series.name AS series,
                json_keys(payload -> series.name) AS clock_times,
                list_transform(json_keys(payload -> series.name),
                    lambda k: TRY_CAST(json_extract(payload -> series.name, '$."' || k || '"') AS DOUBLE)
                ) AS sample_values
            FROM new_rows
            CROSS JOIN (VALUES ('hypnogram'), ('heart_rate_samples')) AS series (name)
            WHERE json_type(payload -> series.name) = 'OBJECT'
        """,
        columns="user_id VARCHAR, day DATE, fetched_at TIMESTAMPTZ, series VARCHAR, clock_times VARCHAR[], "
        "sample_values DOUBLE[]",
    ),
)


@dataclass(frozen=True)
class SegmentWrite:
    kind: str
    path: Path
    rows: int


def sync_sample_store(con: duckdb.DuckDBPyConnection, samples_dir: Path) -> list[SegmentWrite]:
    """Write a segment per kind for the raw rows fetched since that kind's last segment.

    The file is written (and renamed into place) before its state row commits. A crash in between leaves a
    segment no state row names; it is removed before the kind's next segment is written, because that
    segment covers the same rows again (plus any fetched since) and two copies would both be served.
    """
    con.execute(STATE_DDL)
    written = []
    for kind in SAMPLE_KINDS:
        _remove_unrecorded_segments(con, samples_dir / kind.name, kind.name)
        row = con.execute(
            f"SELECT max(through_fetched_at) FROM {STATE_TABLE} "
            "WHERE kind = ? AND NOT starts_with(segment, ?)",
            [kind.name, EXPORT_SEGMENT_PREFIX],
        ).fetchone()
        after = row[0] if row else None
        newest = con.execute(
            f"SELECT max(fetched_at) FROM {kind.raw_table} WHERE $after IS NULL OR fetched_at > $after",
            {"after": after},
        ).fetchone()
        through: datetime | None = newest[0] if newest else None
        if through is None:
            continue
        path = samples_dir / kind.name / f"through-{through.strftime('%Y%m%dT%H%M%S%f%z')}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        new_rows = (
            f"SELECT * FROM {kind.raw_table} "
            "WHERE ($after IS NULL OR fetched_at > $after) AND fetched_at <= $through"
        )
        query = f"WITH new_rows AS ({new_rows})\n{kind.select}\nORDER BY ALL"
        params = {"after": after, "through": through}
        con.execute(f"COPY ({query}) TO '{sql_path(tmp)}' (FORMAT parquet, COMPRESSION zstd)", params)
        count = con.execute(f"SELECT count(*) FROM read_parquet('{sql_path(tmp)}')").fetchone()
        rows = int(count[0]) if count else 0
        if rows:
            fsync_file(tmp)
            os.replace(tmp, path)
            pause_point("publish:segment-written")
        else:
            tmp.unlink()  # new records without this kind of series: only the state moves on
        con.execute(
            f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?, ?, ?)", [kind.name, path.name, through, rows]
        )
        if rows:
            written.append(SegmentWrite(kind.name, path, rows))
    return written


def _remove_unrecorded_segments(con: duckdb.DuckDBPyConnection, folder: Path, kind: str) -> None:
    """Delete what a crashed sync left in ``folder``: segments without a state row, half-written files."""
    if not folder.is_dir():
        return
    recorded = {
        name
        for (name,) in con.execute(f"SELECT segment FROM {STATE_TABLE} WHERE kind = ?", [kind]).fetchall()
    }
    for entry in folder.iterdir():
        if entry.name not in recorded:
            entry.unlink()


def sample_views_sql(
    samples_dir: Path, *, catalog: str | None = None, kinds: Sequence[SampleKind] = SAMPLE_KINDS
) -> list[str]:
    """DDL for the ``samples`` schema (in ``catalog``): per kind, each record's latest series."""
    schema = f"{catalog}.samples" if catalog else "samples"
    statements = [f"CREATE SCHEMA IF NOT EXISTS {schema}"]
    for kind in kinds:
        folder = samples_dir / kind.name
        if any(folder.glob("*.parquet")):
            source = f"read_parquet('{sql_path(folder)}/*.parquet')"
            keys = ", ".join(kind.keys)
            statements.append(
                f"CREATE OR REPLACE VIEW {schema}.{kind.name} AS SELECT * FROM {source} "
                f"QUALIFY rank() OVER (PARTITION BY {keys} ORDER BY fetched_at DESC) = 1"
            )
        else:
            names = ", ".join(f"CAST(NULL AS {kind_type}) AS {name}" for name, kind_type in kind.column_types)
            statements.append(f"CREATE OR REPLACE VIEW {schema}.{kind.name} AS SELECT {names} WHERE false")
    return statements


def sql_path(path: Path) -> str:
    return path.as_posix().replace("'", "''")


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
