"""Serving snapshots: generations, atomic switch, cleanup, and readers that never fail during publishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from polar_pipeline.warehouse.raw_store import RawRecord, upsert_raw_records
from polar_pipeline.warehouse.schema import RAW_TABLES, ensure_raw_schema
from polar_pipeline.warehouse.snapshot import (
    GENERATIONS_KEPT,
    SnapshotReader,
    SnapshotUnavailable,
    publish_snapshot,
    read_pointer,
)
from polar_pipeline.warehouse.writer import connect_writer, transaction

REPO = Path(__file__).resolve().parents[2]


def write_batch(warehouse: Path, batch: int, size: int) -> None:
    con = connect_writer(warehouse)
    try:
        ensure_raw_schema(con)
        first = date(2025, 1, 1) + timedelta(days=batch * size)
        records = [
            RawRecord(
                key=(first + timedelta(days=i)).isoformat(), day=first + timedelta(days=i), payload_json="{}"
            )
            for i in range(size)
        ]
        with transaction(con):
            upsert_raw_records(
                con, RAW_TABLES["sleep"], "u1", records, source="t", fetched_at=datetime.now(UTC)
            )
    finally:
        con.close()


def publish(warehouse: Path, snapshots: Path) -> int:
    con = connect_writer(warehouse)
    try:
        # These tests publish the raw layer itself (the default serves marts): the mechanism is the same.
        return publish_snapshot(con, snapshots, schemas=("raw",)).generation
    finally:
        con.close()


def test_reader_before_first_publish_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SnapshotUnavailable), SnapshotReader(tmp_path / "serving").cursor():
        pass


def test_generations_switch_atomically_and_old_ones_are_cleaned(tmp_path: Path) -> None:
    warehouse, snapshots = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    reader = SnapshotReader(snapshots)
    write_batch(warehouse, 0, 5)
    assert publish(warehouse, snapshots) == 1
    with reader.cursor() as (held, info):
        assert info.generation == 1
        write_batch(warehouse, 1, 5)
        assert publish(warehouse, snapshots) == 2
        # A cursor already handed out keeps its generation; a new one follows the pointer.
        assert held.execute("SELECT count(*) FROM raw.sleep").fetchall() == [(5,)]
        with reader.cursor() as (fresh, fresh_info):
            assert fresh_info.generation == 2
            assert fresh.execute("SELECT count(*) FROM raw.sleep").fetchall() == [(10,)]
    for _ in range(4):
        publish(warehouse, snapshots)
    files = sorted(p.name for p in snapshots.glob("serving-*.duckdb"))
    assert len(files) == GENERATIONS_KEPT
    pointer = read_pointer(snapshots)
    assert pointer is not None and pointer.path.name == files[-1] and pointer.generation == 6
    assert (
        not os.access(pointer.path, os.W_OK) or os.geteuid() == 0
    )  # published read-only (root ignores modes)
    assert oct(pointer.path.stat().st_mode & 0o777) == oct(0o444)
    reader.close()


def test_separate_reader_process_sees_no_errors_and_no_half_batches(tmp_path: Path) -> None:
    warehouse, snapshots = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    batch_size = 50
    write_batch(warehouse, 0, batch_size)
    publish(warehouse, snapshots)
    probe = start_probe(snapshots, "SELECT count(*) FROM raw.sleep")
    batches = 1
    while batches < 40:
        write_batch(warehouse, batches, batch_size)
        publish(warehouse, snapshots)
        batches += 1
    out = stop_probe(probe)
    report = json.loads(out)
    assert report["errors"] == [] and report["failed"] == 0
    assert report["stopped_by_signal"] and report["not_published"] == 0
    assert report["relations"] >= 4  # every table of the snapshot was read, each time
    assert report["reads"] > 50
    counts = {int(result[0][0]) for _generation, result in report["seen"]}
    assert len(counts) > 1, "the reader should have seen several generations"
    assert all(count % batch_size == 0 for count in counts), counts


def start_probe(snapshots: Path, query: str) -> subprocess.Popen[str]:
    probe = subprocess.Popen(
        [sys.executable, "-m", "polar_pipeline.warehouse.probe", str(snapshots), query],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert probe.stderr is not None and probe.stderr.readline().strip() == "ready"
    return probe


def stop_probe(probe: subprocess.Popen[str]) -> str:
    probe.terminate()
    out, _ = probe.communicate(timeout=60)
    return out


def _probe_report(snapshots: Path) -> dict[str, Any]:
    """Half a second of probing (it loops from "ready" on, dozens of tries), then stop it by signal."""
    probe = start_probe(snapshots, "SELECT 1")
    time.sleep(0.5)
    report: dict[str, Any] = json.loads(stop_probe(probe))
    return report


def test_the_probe_counts_not_yet_published_apart_from_a_snapshot_it_cannot_open(tmp_path: Path) -> None:
    snapshots = tmp_path / "serving"
    snapshots.mkdir()
    nothing = _probe_report(snapshots)
    assert nothing["not_published"] > 0 and nothing["failed"] == 0 and nothing["stopped_by_signal"]

    # A pointer to a generation that is not there (or not a database) is a failure, not "not yet".
    (snapshots / "CURRENT.json").write_text(
        json.dumps(
            {"generation": 7, "file": "serving-00000007.duckdb", "published_at": "2026-01-01T00:00:00+00:00"}
        )
    )
    (snapshots / "serving-00000007.duckdb").write_bytes(b"not a database")
    broken = _probe_report(snapshots)
    assert broken["failed"] > 0 and broken["reads"] == 0
    assert all("could not open" in error for error in broken["errors"]), broken["errors"][:2]
