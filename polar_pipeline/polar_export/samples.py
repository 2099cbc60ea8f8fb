"""A session's per-sample series and route, streamed into the sample store while the export is read.

The raw ``exercises`` payload of an imported session keeps only its summary; the series (heart rate,
speed, … one value per second) and the route go to the same Parquet sample store AccessLink workouts use
(``samples.exercise_samples``, ``samples.exercise_routes``), in the same shape: AccessLink's numeric
sample-type codes as text, the recording rate in seconds, a value list with NULL for a sensor dropout, and
route offsets as ISO durations from the start. So ``/exercises/{id}/samples`` serves an imported workout
like a synced one.

Rows are buffered per kind and flushed to a Parquet file as they grow, so memory holds a few sessions'
arrays at most (``FLUSH_VALUES``), never the archive's. The files are written under ``samples/.incoming/``
and only become segments (``export-…parquet`` in the kind's folder, a row in ``raw.sample_segments``) when the
import's raw records commit (``commit_segments``). A session whose samples the store already holds (the
same zip again, an overlapping newer export) is not written twice.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from polar_pipeline.memory import release_freed_memory
from polar_pipeline.polar_export.values import (
    as_object,
    first_exercise,
    local_datetime,
    number,
    seconds_as_iso,
)
from polar_pipeline.warehouse.samples import (
    EXPORT_SEGMENT_PREFIX,
    SAMPLE_KINDS,
    STATE_DDL,
    STATE_TABLE,
    fsync_file,
    sql_path,
)

SAMPLE_TYPE_CODES: dict[str, str] = {
    "HEART_RATE": "0",
    "SPEED": "1",
    "CADENCE": "2",
    "ALTITUDE": "3",
    "POWER": "4",
    "POWER_PEDALING_INDEX": "5",
    "POWER_LEFT_RIGHT_BALANCE": "6",
    "AIR_PRESSURE": "7",
    "RUNNING_CADENCE": "8",
    "TEMPERATURE": "9",
    "DISTANCE": "10",
    "RR_INTERVAL": "11",
}
"""New-format ``samples.samples[].type`` → AccessLink's sample-type code (its published list, 0-11)."""

OLD_SAMPLE_CODES: dict[str, str] = {
    "heartRate": "0",
    "speed": "1",
    "cadence": "2",
    "altitude": "3",
    "power": "4",
    "temperature": "9",
    "distance": "10",
}
"""Old-format ``samples`` keys (``[{dateTime, value}]`` lists) → the same codes."""

FLUSH_VALUES = 100_000
"""Values buffered per kind before they are written out (~20 MB as Python floats): a few sessions' worth."""

INCOMING_DIR = ".incoming"
_KINDS = {kind.name: kind for kind in SAMPLE_KINDS}
SERIES_KIND, ROUTE_KIND = "exercise_samples", "exercise_routes"


@dataclass
class _Buffer:
    """One kind's pending rows as columns, and the Parquet file they stream into."""

    kind: str
    path: Path
    schema: pa.Schema
    columns: dict[str, list[Any]] = field(default_factory=dict)
    writer: pq.ParquetWriter | None = None
    rows: int = 0
    pending_values: int = 0

    def add(self, row: dict[str, Any], values: int) -> None:
        for name, value in row.items():
            self.columns.setdefault(name, []).append(value)
        self.rows += 1
        self.pending_values += values
        if self.pending_values >= FLUSH_VALUES:
            self.flush()

    def flush(self) -> None:
        if not self.columns:
            return
        table = pa.Table.from_pydict(self.columns, schema=self.schema)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self.writer.write_table(table)
        self.columns = {}
        self.pending_values = 0
        release_freed_memory()

    def close(self) -> None:
        self.flush()
        if self.writer is not None and self.writer.is_open:
            self.writer.close()
            fsync_file(self.path)


def _arrow_schema(kind: str) -> pa.Schema:
    """The kind's columns (``SampleKind.column_types``) as Arrow types, so both sources read alike."""
    arrow = {
        "VARCHAR": pa.string(),
        "DATE": pa.date32(),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
        "INTEGER": pa.int32(),
        "DOUBLE[]": pa.list_(pa.float64()),
        "VARCHAR[]": pa.list_(pa.string()),
        "INTEGER[]": pa.list_(pa.int32()),
    }
    return pa.schema([(name, arrow[kind_type]) for name, kind_type in _KINDS[kind].column_types])


class ExportSampleSink:
    """Collects the series of one import's sessions; ``commit_segments`` makes them part of the store."""

    def __init__(self, samples_dir: Path, user_id: str, fetched_at: datetime, known: set[str]) -> None:
        self.samples_dir = samples_dir
        self.user_id = user_id
        self.fetched_at = fetched_at
        self.known = known
        """Exercise ids whose samples an earlier import already stored (not written again)."""
        self.token = uuid.uuid4().hex[:12]
        incoming = samples_dir / INCOMING_DIR
        self.buffers = {
            kind: _Buffer(kind, incoming / f"{kind}-{self.token}.parquet", _arrow_schema(kind))
            for kind in (SERIES_KIND, ROUTE_KIND)
        }
        self.sessions = 0

    def add_session(self, exercise_id: str, day: date, document: dict[str, Any]) -> list[str]:
        """Buffer the session's series and route; returns the sample-type codes it carried."""
        if exercise_id in self.known:
            return []
        self.known.add(exercise_id)
        series, route = session_series(document)
        common = {"user_id": self.user_id, "exercise_id": exercise_id, "day": day}
        for sample_type, rate, values in series:
            self.buffers[SERIES_KIND].add(
                common
                | {
                    "fetched_at": self.fetched_at,
                    "sample_type": sample_type,
                    "recording_rate_seconds": rate,
                    "sample_values": values,
                },
                len(values),
            )
        if route is not None:
            self.buffers[ROUTE_KIND].add(
                common | {"fetched_at": self.fetched_at} | route, 3 * len(route["latitudes"])
            )
        if series or route is not None:
            self.sessions += 1
        return [sample_type for sample_type, _, _ in series]

    def close(self) -> None:
        for buffer in self.buffers.values():
            buffer.close()

    def discard(self) -> None:
        """Drop whatever did not become a segment (an import that failed before its commit)."""
        for buffer in self.buffers.values():
            if buffer.writer is not None and buffer.writer.is_open:
                buffer.writer.close()
            buffer.path.unlink(missing_ok=True)


def known_export_samples(samples_dir: Path, user_id: str) -> set[str]:
    """The user's exercise ids that an earlier import's segments already hold."""
    folder = samples_dir / SERIES_KIND
    routes = samples_dir / ROUTE_KIND
    known: set[str] = set()
    for kind_folder in (folder, routes):
        if not any(kind_folder.glob(f"{EXPORT_SEGMENT_PREFIX}*.parquet")):
            continue
        pattern = sql_path(kind_folder / f"{EXPORT_SEGMENT_PREFIX}*.parquet")
        with duckdb.connect() as con:
            rows = con.execute(
                f"SELECT DISTINCT exercise_id FROM read_parquet('{pattern}') WHERE user_id = $user_id",
                {"user_id": user_id},
            ).fetchall()
        known.update(exercise_id for (exercise_id,) in rows)
    return known


def commit_segments(con: duckdb.DuckDBPyConnection, sink: ExportSampleSink) -> dict[str, int]:
    """Move the sink's files into the store and record them, in the transaction of the raw records.

    Export segments never move a kind's ``through_fetched_at`` watermark (publish looks only at ``through-``
    segments for that), so AccessLink rows fetched before the import still get their segment."""
    con.execute(STATE_DDL)
    rows: dict[str, int] = {}
    for kind, buffer in sink.buffers.items():
        if buffer.writer is None or buffer.rows == 0:
            continue
        stamp = sink.fetched_at.strftime("%Y%m%dT%H%M%S%f")
        target = sink.samples_dir / kind / f"{EXPORT_SEGMENT_PREFIX}{stamp}-{sink.token}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(buffer.path, target)
        con.execute(
            f"INSERT OR REPLACE INTO {STATE_TABLE} VALUES (?, ?, ?, ?)",
            [kind, target.name, sink.fetched_at, buffer.rows],
        )
        rows[kind] = buffer.rows
    return rows


Series = tuple[str, int | None, list[float | None]]
"""(AccessLink sample-type code, seconds per sample, values with None for a dropout)."""


def session_series(document: dict[str, Any]) -> tuple[list[Series], dict[str, Any] | None]:
    """The session's series and its route columns (or None)."""
    exercise = first_exercise(document)
    if "exportVersion" in document:
        old = [
            (code, _old_rate(points), _values([point.get("value") for point in points]))
            for code, points in _old_entries(document)
        ]
        return old, _old_route(exercise, as_object(exercise.get("samples")))
    new = [
        (code, _rate(entry.get("intervalMillis")), _values(entry["values"]))
        for code, entry in _new_entries(document)
    ]
    return new, _new_route(as_object(exercise.get("routes")))


def series_types(document: dict[str, Any]) -> list[str]:
    """The sample-type codes a session carries (kept in its raw payload, so staging knows it has samples)."""
    entries = _old_entries(document) if "exportVersion" in document else _new_entries(document)
    return [code for code, _ in entries]


def _new_entries(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The new format's series: ``samples.samples[{type, intervalMillis, values}]``, by type code."""
    samples = as_object(first_exercise(document).get("samples"))
    return [
        (SAMPLE_TYPE_CODES.get(str(entry.get("type")), str(entry.get("type"))), entry)
        for entry in samples.get("samples") or []
        if isinstance(entry, dict) and isinstance(entry.get("values"), list)
    ]


def _old_entries(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The old format's series: one ``[{dateTime, value}]`` list per sample key, by type code."""
    samples = as_object(first_exercise(document).get("samples"))
    return [
        (OLD_SAMPLE_CODES.get(key, key), [point for point in points if isinstance(point, dict)])
        for key, points in samples.items()
        if key != "recordedRoute" and isinstance(points, list)
    ]


def _values(items: Any) -> list[float | None]:
    return [float(v) if number(v) is not None else None for v in items] if isinstance(items, list) else []


def _rate(interval_millis: Any) -> int | None:
    interval = number(interval_millis)
    return round(interval / 1000) if interval is not None and interval >= 1000 else None


def _route_columns(points: list[dict[str, Any]], offsets: list[str | None]) -> dict[str, Any]:
    """A route as the sample store's columns (the export records no satellites or fix quality)."""
    return {
        "latitudes": _values([p.get("latitude") for p in points]),
        "longitudes": _values([p.get("longitude") for p in points]),
        "offsets": offsets,
        "satellites": [None] * len(points),
        "fixes": [None] * len(points),
    }


def _new_route(routes: dict[str, Any]) -> dict[str, Any] | None:
    points = [p for p in as_object(routes.get("route")).get("wayPoints") or [] if isinstance(p, dict)]
    if not points:
        return None
    offsets = [
        seconds_as_iso(millis / 1000) if (millis := number(p.get("elapsedMillis"))) is not None else None
        for p in points
    ]
    return _route_columns(points, offsets)


def _old_rate(points: list[dict[str, Any]]) -> int | None:
    """Seconds between the first two samples (the old format stamps each one)."""
    if len(points) < 2:
        return None
    first, second = local_datetime(points[0].get("dateTime")), local_datetime(points[1].get("dateTime"))
    if first is None or second is None:
        return None
    return round((second - first).total_seconds()) or None


def _old_route(exercise: dict[str, Any], samples: dict[str, Any]) -> dict[str, Any] | None:
    points = [p for p in samples.get("recordedRoute") or [] if isinstance(p, dict)]
    if not points:
        return None
    start = local_datetime(exercise.get("startTime"))
    offsets: list[str | None] = []
    for point in points:
        stamp = local_datetime(point.get("dateTime"))
        elapsed = None if stamp is None or start is None else (stamp - start).total_seconds()
        offsets.append(None if elapsed is None else seconds_as_iso(elapsed))
    return _route_columns(points, offsets)
