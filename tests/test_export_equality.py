"""An export of a simulated person, imported, equals syncing the same person's history through AccessLink.

Both paths start from the simulator's payloads but share nothing after that: one is served over HTTP and
fetched by the AccessLink client, the other written as Polar's export files and read by the importer. For
the days both cover, ``marts.daily_metrics`` must agree column by column, except the columns a real export
cannot carry (``EXPORT_CANNOT_CARRY``), which must be exactly the ones that differ. Then the synced person
imports the same export: AccessLink's richer rows stay, every workout counts once, and each imported
session's per-second series in the sample store equal the ones AccessLink sent for that workout.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb

from polar_pipeline import cli
from polar_pipeline.operations import sync
from polar_pipeline.simulator import SimulatorConfig
from polar_pipeline.simulator.export import write_export
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.conftest import TEST_TODAY, Pipeline

SYNC_DAYS = 28
TWIN = "imported-twin"
EXPORT_CANNOT_CARRY = {
    # Sleep files hold no heart-rate samples.
    "sleep_hr_avg_bpm",
    "sleep_hr_min_bpm",
    "sleep_hr_max_bpm",
    # Activity files hold no active calories or daily-goal percentage.
    "active_calories",
    "daily_activity_percent",
    # Polar's daily cardio load, strain and tolerance are AccessLink-only.
    "polar_cardio_load",
    "polar_cardio_load_ratio",
    "polar_cardio_load_status",
    "polar_strain",
    "polar_tolerance",
}


def _daily_metrics(pipeline: Pipeline, user_id: str) -> dict[Any, dict[str, Any]]:
    columns = [row[0] for row in pipeline.query("DESCRIBE marts.daily_metrics") if row[0] != "user_id"]
    rows = pipeline.query(
        f"SELECT {', '.join(columns)} FROM marts.daily_metrics WHERE user_id = ? ORDER BY day", [user_id]
    )
    return {row[columns.index("day")]: dict(zip(columns, row, strict=True)) for row in rows}


def _digest(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_imported_export_equals_the_synced_history(pipeline: Pipeline, tmp_path: Path) -> None:
    first = TEST_TODAY - timedelta(days=SYNC_DAYS - 1)
    # Registered a window ago: AccessLink lists only the workouts uploaded after registration.
    pipeline.sim("POST", "/sim/clock", json={"today": (first - timedelta(days=1)).isoformat()})
    (synced_user,) = pipeline.add_users(1)
    pipeline.sim("POST", "/sim/clock", json={"today": TEST_TODAY.isoformat()})
    assert sync(pipeline.settings, [synced_user], days=SYNC_DAYS, instance=pipeline.instance).success

    export = tmp_path / "export.zip"
    config = SimulatorConfig(seed=11, users=3, today=TEST_TODAY)
    write_export(config, 0, export, first_day=first - timedelta(days=2), last_day=TEST_TODAY, samples=True)
    assert cli.main(["import", str(export), "--user", TWIN, "--no-progress"]) == 0

    segments = sorted((pipeline.settings.samples_dir / "exercise_samples").glob("export-*.parquet"))
    assert len(segments) == 1
    assert cli.main(["import", str(export), "--user", TWIN, "--no-progress"]) == 0  # the same zip again
    assert sorted((pipeline.settings.samples_dir / "exercise_samples").glob("export-*.parquet")) == segments

    synced = _daily_metrics(pipeline, synced_user)
    imported = _daily_metrics(pipeline, TWIN)
    differing: dict[str, int] = {}
    equal_days = 0
    for day, row in synced.items():
        twin = imported[day]
        for column, value in row.items():
            if twin[column] != value:
                differing[column] = differing.get(column, 0) + 1
                assert column in EXPORT_CANNOT_CARRY, (day, column, value, twin[column])
                assert twin[column] is None, (day, column)  # absent, never invented
        equal_days += all(twin[c] == v for c, v in row.items() if c not in EXPORT_CANNOT_CARRY)
    assert set(differing) == EXPORT_CANNOT_CARRY, differing
    assert equal_days == len(synced) == SYNC_DAYS
    assert sum(row["exercise_count"] for row in synced.values()) >= 15
    assert sum(row["hr_sample_count"] or 0 for row in synced.values()) > SYNC_DAYS * 200

    # The synced person imports the same export (it starts two days earlier): nothing AccessLink delivered
    # is replaced or counted twice, and only the days before the sync are added.
    raw_before = {
        table: _digest(
            pipeline.query(
                f"SELECT * FROM raw.{table} WHERE user_id = ? AND day >= ? ORDER BY ALL", [synced_user, first]
            )
        )
        for table in ("activity", "sleep", "nightly_recharge", "continuous_heart_rate")
    }
    assert cli.main(["import", str(export), "--user", synced_user, "--no-progress"]) == 0
    for table, digest in raw_before.items():
        rows = pipeline.query(
            f"SELECT * FROM raw.{table} WHERE user_id = ? AND day >= ? ORDER BY ALL", [synced_user, first]
        )
        assert _digest(rows) == digest, table
    after = _daily_metrics(pipeline, synced_user)
    assert {day: row for day, row in after.items() if day >= first} == synced
    assert sorted(day for day in after if day < first) == [
        first - timedelta(days=2),
        first - timedelta(days=1),
    ]
    linked = pipeline.query(
        "SELECT exercise_id, export_exercise_id FROM marts.exercises "
        "WHERE user_id = ? AND export_exercise_id IS NOT NULL",
        [synced_user],
    )
    assert len(linked) == sum(row["exercise_count"] for row in synced.values())
    # Each workout's sport reads back from the export: the real id 83 ("Other indoor") for mobility, the
    # session's name for ids the importer has no pair for, the old format's enum string.
    sports = pipeline.query(
        "SELECT synced.detailed_sport_info, exported.detailed_sport_info FROM marts.exercises AS m "
        "JOIN staging.exercises AS synced "
        "ON synced.user_id = m.user_id AND synced.exercise_id = m.exercise_id "
        "JOIN staging.exercises AS exported "
        "ON exported.user_id = m.user_id AND exported.exercise_id = m.export_exercise_id "
        "WHERE m.user_id = ?",
        [synced_user],
    )
    assert len(sports) == len(linked)
    translated = {"MOBILITY_STATIC": "OTHER_INDOOR"}
    assert [(a, translated.get(a, a)) for a, _ in sports] == [(a, b) for a, b in sports]
    assert len({a for a, _ in sports}) >= 2

    pointer = read_pointer(pipeline.settings.snapshots_dir)
    assert pointer is not None
    snapshot = duckdb.connect(str(pointer.path), read_only=True)
    try:
        compared = 0
        for accesslink_id, export_id in linked:
            series = {}
            for exercise_id in (accesslink_id, export_id):
                rows = snapshot.execute(
                    "SELECT trim(sample_type, '\"'), recording_rate_seconds, sample_values "
                    "FROM samples.exercise_samples WHERE user_id = ? AND exercise_id = ?",
                    [synced_user, exercise_id],
                ).fetchall()
                series[exercise_id] = {kind: (rate, values) for kind, rate, values in rows}
            sent, imported_series = series[accesslink_id], series[export_id]
            assert sent and "0" in sent, accesslink_id
            for kind, (rate, values) in imported_series.items():
                sent_rate, sent_values = sent[kind]
                assert rate == sent_rate, (accesslink_id, kind)
                if kind == "1" and all(v is None for v in values):
                    continue  # an indoor session: the export writes SPEED as all NaN (no sensor)
                assert len(values) == len(sent_values), (accesslink_id, kind)
                for ours, theirs in zip(values, sent_values, strict=True):
                    if theirs is None:
                        assert ours is None
                    else:
                        assert math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9), (kind, ours, theirs)
                compared += 1
            assert "0" in imported_series, export_id  # heart rate: every simulated workout records it
    finally:
        snapshot.close()
    assert compared >= len(linked) * 2
