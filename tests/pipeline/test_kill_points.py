"""A sync or a publish killed in any phase leaves the warehouse and the snapshot consistent; reruns converge.

One starting state (two users synced and published three times) is copied aside. The simulated clock moves
on three days (new nights, so new sample segments), and the same 28-day sync is
then killed again and again, each time at a different point (``POLAR_DEBUG_PAUSE_AT``: the process announces
the point on stderr, waits, and is killed there with SIGKILL), and after every kill:

* every mart equals a clean rebuild from the raw tables, for every partition Dagster reports materialized;
* the pointer names a complete generation, every generation file on disk is complete, and nothing a reader
  could open is half-written (a killed publish's temporary files are hidden names no pointer ever names).

Finally the sync runs to the end, and the warehouse and the snapshot equal those of the same sync run once,
uninterrupted, on the copy of the starting state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from polar_pipeline.operations import publish, sync
from polar_pipeline.sqlmodels import ModelGraph, load_models, run_models
from polar_pipeline.warehouse.snapshot import GENERATION_PATTERN, POINTER_NAME, read_pointer
from polar_pipeline.warehouse.writer import connect_writer
from tests.conftest import Pipeline
from tests.transform.checksums import table_checksum

POLAR_FLOW = str(Path(sys.executable).parent / "polar-flow")

KILL_POINTS: list[tuple[str, str]] = [
    ("sync", "commit:raw.sleep"),  # raw ingest, inside its transaction
    (
        "sync",
        "model:marts.baselines",
    ),  # between two mart models: daily_metrics committed, baselines not begun
    ("sync", "replace:marts.rolling_metrics"),  # inside a mart's transaction: old rows deleted, new not in
    ("publish", "publish:segment-written"),  # a sample segment in place, its state row not yet written
    ("publish", "publish:copying"),  # the first table copied into the new generation's temporary file
    ("publish", "publish:copied"),  # the temporary file complete, not yet fsynced
    ("publish", "publish:synced"),  # fsynced, not yet renamed to its generation name
    ("publish", "publish:renamed"),  # the generation file in place, the pointer not yet switched
    ("publish", "publish:pointer-written"),  # the new pointer written beside the current one
    ("publish", "publish:switched"),  # the pointer switched, old generations not yet removed
]


PUBLISH_ONLY = """
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.pause import arm_pause_points
from polar_pipeline.warehouse.snapshot import publish_snapshot
from polar_pipeline.warehouse.writer import connect_writer

settings = Settings()
arm_pause_points(settings.debug_pause_at.split(","), settings.debug_pause_seconds)
con = connect_writer(settings.warehouse_path)
publish_snapshot(con, settings.snapshots_dir, samples_dir=settings.samples_dir)
"""
"""The publish step's own code without Dagster around it: the kill points are inside it, and a process that
needs a second to start instead of five keeps seven publish kills cheap (the syncs' kills go through the CLI
and Dagster, and the final sync publishes through them too)."""


def _command(kind: str, today: date) -> list[str]:
    if kind == "sync":
        return [POLAR_FLOW, "sync", "--days", "28", "--until", today.isoformat()]
    return [sys.executable, "-c", PUBLISH_ONLY]


def _kill_at(command: list[str], env: dict[str, str], point: str) -> None:
    """Run ``command`` until it announces ``point``, then SIGKILL its whole process group."""
    victim = subprocess.Popen(
        command,
        env=env | {"POLAR_DEBUG_PAUSE_AT": point, "POLAR_DEBUG_PAUSE_SECONDS": "120"},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert victim.stderr is not None
        tail: list[str] = []
        for line in victim.stderr:  # ends when the process exits; pytest's timeout bounds a hang
            if f"paused at {point} " in line:
                break
            tail = [*tail[-20:], line]
        else:
            raise AssertionError(f"exited (rc {victim.wait()}) without reaching {point}:\n{''.join(tail)}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # it had already exited: the assertion above says so
            os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)


def _materialized(instance: dg.DagsterInstance, relation: str) -> set[tuple[str, str]]:
    """(user, day) of every partition of a mart Dagster reports materialized (keys are day|user)."""
    keys = instance.get_materialized_partitions(dg.AssetKey(relation.split(".")))
    return {(key.split("|")[1], key.split("|")[0]) for key in keys}


def _mart_rows(con: duckdb.DuckDBPyConnection, relation: str, partitions: set[tuple[str, str]]) -> list[Any]:
    rows = con.execute(f"SELECT * FROM {relation} ORDER BY ALL").fetchall()
    columns = [c[0] for c in con.execute(f"DESCRIBE {relation}").fetchall()]
    user_at, day_at = columns.index("user_id"), columns.index("day")
    return [row for row in rows if (str(row[user_at]), str(row[day_at])) in partitions]


def _assert_marts_match_a_clean_rebuild(
    pipeline: Pipeline, graph: ModelGraph, users: list[str], today: date, scratch: Path, point: str
) -> None:
    warehouse = pipeline.settings.warehouse_path
    for stale in scratch.glob("rebuild*"):
        stale.unlink()
    copy = scratch / "rebuild.duckdb"
    shutil.copy(warehouse, copy)
    if Path(f"{warehouse}.wal").exists():  # a killed writer's log: replayed (or dropped) on open
        shutil.copy(f"{warehouse}.wal", f"{copy}.wal")
    con = connect_writer(copy)
    try:
        first = con.execute("SELECT min(day) FROM raw.sleep").fetchone()
        assert first is not None and first[0] is not None
        run_models(con, graph, users, first[0], today)
        actual = duckdb.connect(str(warehouse), read_only=True)
        try:
            for model in graph.tables:
                partitions = _materialized(pipeline.instance, model.relation)
                assert partitions, f"{point}: no materialized partition of {model.relation}"
                assert _mart_rows(actual, model.relation, partitions) == _mart_rows(
                    con, model.relation, partitions
                ), f"after a kill at {point}: {model.relation} differs from a clean rebuild"
        finally:
            actual.close()
    finally:
        con.close()


def _served_relations(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            f"{schema}.{name}"
            for schema, name in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL"
            ).fetchall()
        ]
        counts = {}
        for name in names:
            row = con.execute(f"SELECT count(*) FROM {name}").fetchone()
            counts[name] = int(row[0]) if row else -1
        return counts
    finally:
        con.close()


def _assert_snapshot_complete(snapshots: Path, expected: set[str], point: str) -> None:
    info = read_pointer(snapshots)
    assert info is not None and info.path.exists(), f"{point}: the pointer names no file"
    assert not info.path.name.startswith("."), point
    for entry in snapshots.iterdir():
        if GENERATION_PATTERN.match(entry.name):  # anything a reader could open: complete
            assert set(_served_relations(entry)) >= expected, f"{point}: {entry.name} is incomplete"
        else:
            assert entry.name == POINTER_NAME or entry.name.startswith("."), f"{point}: stray {entry.name}"


def _state(home: Path, graph: ModelGraph) -> dict[str, Any]:
    """What a converged run must agree on: raw contents (not fetch times), marts, the snapshot."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        state: dict[str, Any] = {
            table: table_checksum(con, f"raw.{table}", ["user_id", key, "payload"])
            for table, key in (("sleep", "day"), ("nightly_recharge", "day"), ("activity", "day"))
        }
        state["exercises"] = table_checksum(con, "raw.exercises", ["user_id", "exercise_id", "payload"])
        state["quarantine"] = table_checksum(
            con, "raw.quarantine", ["user_id", "stream", "payload", "reason"]
        )
        for model in graph.tables:
            columns = [c[0] for c in con.execute(f"DESCRIBE {model.relation}").fetchall()]
            state[model.relation] = table_checksum(con, model.relation, columns)
    finally:
        con.close()
    info = read_pointer(home / "serving")
    assert info is not None
    served = duckdb.connect(str(info.path), read_only=True)
    try:
        for relation in ("samples.exercise_samples", "samples.sleep_series", "marts.daily_metrics"):
            described = served.execute(f"DESCRIBE {relation}").fetchall()
            columns = [c[0] for c in described if c[0] != "fetched_at"]
            state[f"serving {relation}"] = table_checksum(served, relation, columns)
    finally:
        served.close()
    return state


def test_kills_in_every_phase_leave_consistent_state_and_reruns_converge(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    graph = load_models()
    today = pipeline.sim_today()
    pipeline.sim("POST", "/sim/clock", json={"today": (today - timedelta(days=3)).isoformat()})
    users = pipeline.add_users(2)
    assert sync(
        pipeline.settings, days=28, until=today - timedelta(days=14), instance=pipeline.instance
    ).success
    for _ in range(3):  # three generations, so the killed publishes also have old ones to clean up
        assert publish(pipeline.settings, instance=pipeline.instance)
    pipeline.instance.dispose()
    info = read_pointer(pipeline.settings.snapshots_dir)
    assert info is not None
    expected_relations = set(_served_relations(info.path))

    # The starting state, copied aside for the uninterrupted reference run.
    reference_home, reference_dagster = tmp_path / "reference-home", tmp_path / "reference-dagster"
    shutil.copytree(pipeline.settings.home_dir, reference_home)
    shutil.copytree(pipeline.env["DAGSTER_HOME"], reference_dagster)

    pipeline.sim("POST", "/sim/clock", json={"today": today.isoformat()})
    env = os.environ | pipeline.env
    for kind, point in KILL_POINTS:
        before = pipeline.checksums()
        _kill_at(_command(kind, today), env, point)
        if point.startswith("commit:raw."):  # its transaction never committed: the table is as before
            table = point.removeprefix("commit:raw.")
            assert pipeline.checksums()[table] == before[table], point
        _assert_marts_match_a_clean_rebuild(pipeline, graph, users, today, tmp_path, point)
        _assert_snapshot_complete(pipeline.settings.snapshots_dir, expected_relations, point)

    rerun = subprocess.run(_command("sync", today), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # Every killed Dagster run was marked failed (its pool slot freed) by the command that came after it.
    failed = pipeline.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    assert len(failed) == sum(kind == "sync" for kind, _ in KILL_POINTS)
    leftovers = [entry.name for entry in pipeline.settings.snapshots_dir.iterdir() if ".tmp" in entry.name]
    assert leftovers == [], "the completed publish should have removed what the killed ones left"

    reference_env = env | {"POLAR_HOME": str(reference_home), "DAGSTER_HOME": str(reference_dagster)}
    uninterrupted = subprocess.run(
        _command("sync", today), env=reference_env, capture_output=True, text=True, timeout=300
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]
    assert _state(pipeline.settings.home_dir, graph) == _state(reference_home, graph)
