"""Our DAGSTER_HOME: the faster event log keeps every event and partition, durable across processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from polar_pipeline.orchestration.event_log import BATCH_SIZE_ENV, FastSqliteEventLogStorage
from polar_pipeline.orchestration.home import MARKER, prepare_dagster_home
from polar_pipeline.settings import Settings

users = dg.DynamicPartitionsDefinition(name="users")
user_day = dg.MultiPartitionsDefinition(
    {"user": users, "day": dg.DailyPartitionsDefinition(start_date="2025-01-01")}
)


@dg.asset(partitions_def=user_day, backfill_policy=dg.BackfillPolicy.single_run())
def probe_asset() -> dg.MaterializeResult:  # type: ignore[type-arg]
    return dg.MaterializeResult()


def _probe_job() -> dg.JobDefinition:
    return dg.Definitions(
        assets=[probe_asset], jobs=[dg.define_asset_job("j", [probe_asset])]
    ).resolve_job_def("j")


def _materialize_range(
    instance: dg.DagsterInstance, first_key: str, last_key: str
) -> dg.ExecuteInProcessResult:
    """One run of the probe asset over the user × day keys ``first_key``..``last_key`` (day|user)."""
    return _probe_job().execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": first_key,
            "dagster/asset_partition_range_end": last_key,
        },
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("POLAR_HOME", str(tmp_path))
    path = prepare_dagster_home(Settings())
    yield path


def test_dagster_yaml_selects_the_fast_event_log_and_pool_limit(home: Path) -> None:
    text = (home / "dagster.yaml").read_text()
    assert text.startswith(MARKER) and "default_limit: 1" in text
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, FastSqliteEventLogStorage)


def test_a_ranged_run_records_every_partition_and_users_survive_a_new_process(home: Path) -> None:
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("users", ["alice", "bob"])
        result = _materialize_range(instance, "2025-01-01|alice", "2025-03-01|bob")
        assert result.success
    script = (
        "import dagster as dg\n"
        "with dg.DagsterInstance.get() as i:\n"
        "    print(sorted(i.get_dynamic_partitions('users')))\n"
        "    print(len(i.get_materialized_partitions(dg.AssetKey('probe_asset'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=os.environ | {"DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["['alice', 'bob']", str(2 * 60)]


def test_shards_are_wal_and_our_connections_skip_the_full_fsync(home: Path) -> None:
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("users", ["carol"])
        run_id = _probe_job().execute_in_process(instance=instance, partition_key="2025-01-02|carol").run_id
        storage = instance.event_log_storage
        assert isinstance(storage, FastSqliteEventLogStorage)
        with storage.run_connection(run_id) as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        with storage.index_connection() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert len(instance.get_materialized_partitions(dg.AssetKey("probe_asset"))) == 1


def test_a_dagster_yaml_of_your_own_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "dagster"
    own.mkdir()
    (own / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(own))
    prepare_dagster_home(Settings())
    assert (own / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


# --- batched event writes --------------------------------------------------------------------------------


@dg.asset(
    partitions_def=user_day,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("rows_written", asset="checked_asset", blocking=True)],
)
def checked_asset() -> dg.MaterializeResult:  # type: ignore[type-arg]
    return dg.MaterializeResult(
        metadata={"rows": 1},
        tags={"polar/batch": "yes"},
        check_results=[dg.AssetCheckResult(check_name="rows_written", passed=True)],
    )


@dg.asset(partitions_def=user_day, backfill_policy=dg.BackfillPolicy.single_run(), deps=[checked_asset])
def failing_asset() -> None:
    raise RuntimeError("planted failure")


RANGE_TAGS = {
    "dagster/asset_partition_range_start": "2025-01-01|alice",
    "dagster/asset_partition_range_end": "2025-02-09|bob",
}
RANGE_KEYS = {
    f"2025-{month:02d}-{day:02d}|{user}"
    for user in ("alice", "bob")
    for month, days in ((1, 31), (2, 9))
    for day in range(1, days + 1)
}


def _run_in(home: Path, *, batched: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, Any]]:
    """Run the checked + failing graph over 2 users x 40 days in the instance at ``home``; read its tables."""
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    if batched:
        monkeypatch.setenv(BATCH_SIZE_ENV, str(Settings().dagster_event_batch_size))
    else:
        monkeypatch.delenv(BATCH_SIZE_ENV, raising=False)
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, FastSqliteEventLogStorage) == batched
        instance.add_dynamic_partitions("users", ["alice", "bob"])
        defs = dg.Definitions(
            assets=[checked_asset, failing_asset],
            jobs=[dg.define_asset_job("j", [checked_asset, failing_asset])],
        )
        result = defs.resolve_job_def("j").execute_in_process(
            instance=instance, tags=RANGE_TAGS, raise_on_error=False
        )
        assert not result.success
        failed = {
            name: sorted(_failed_partitions(instance, name)) for name in ("checked_asset", "failing_asset")
        }
        materialized = {
            name: set(instance.get_materialized_partitions(dg.AssetKey(name)))
            for name in ("checked_asset", "failing_asset")
        }
    return result.run_id, {"failed": failed, "materialized": materialized} | _tables(home, result.run_id)


def _failed_partitions(instance: dg.DagsterInstance, name: str) -> list[str]:
    """The partitions the UI shows as failed (Dagster's partition status cache)."""
    status = get_and_update_asset_status_cache_value(instance, dg.AssetKey(name), user_day)
    assert status is not None
    return list(status.deserialize_failed_partition_subsets(user_day).get_partition_keys())


def _tables(home: Path, run_id: str) -> dict[str, Any]:
    """What the event log holds for the run, without ids, timestamps and run ids (they differ per run)."""
    from dagster._serdes import deserialize_value

    shards = home / "history" / "runs"
    tables: dict[str, Any] = {}
    with sqlite3.connect(shards / f"{run_id}.db") as run_shard:
        tables["run_events"] = Counter(
            run_shard.execute("SELECT dagster_event_type, step_key, asset_key, partition FROM event_logs")
        )
    with sqlite3.connect(shards / "index.db") as index:
        tables["index_events"] = Counter(
            index.execute(
                "SELECT dagster_event_type, step_key, asset_key, partition FROM event_logs WHERE run_id = ?",
                [run_id],
            )
        )
        tables["asset_keys"] = {
            key: (
                last_run == run_id,
                None if last is None else deserialize_value(last).event_log_entry.dagster_event.partition,
                stamp is not None,
            )
            for key, last_run, last, stamp in index.execute(
                "SELECT asset_key, last_run_id, last_materialization, last_materialization_timestamp "
                "FROM asset_keys"
            )
        }
        tables["tags"] = Counter(  # a data version hashes the run's own identity: compare that it is there
            (asset, key, "<version>" if "data_version" in key else value)
            for asset, key, value in index.execute("SELECT asset_key, key, value FROM asset_event_tags")
        )
        tables["checks"] = Counter(
            index.execute(
                "SELECT asset_key, check_name, partition, execution_status FROM asset_check_executions"
            )
        )
    return tables


def test_batched_writes_store_the_same_rows_as_the_stock_storage_and_mark_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stock_home = tmp_path / "stock"
    stock_home.mkdir()
    (stock_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("POLAR_HOME", str(tmp_path / "polar"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    ours_home = prepare_dagster_home(Settings())

    _, stock = _run_in(stock_home, batched=False, monkeypatch=monkeypatch)
    stored_in_batches: list[int] = []
    original = FastSqliteEventLogStorage.store_event_batch

    def counting(self: FastSqliteEventLogStorage, events: Any) -> None:
        original(self, events)  # Dagster falls back to one-by-one writes if this raises: count successes only
        stored_in_batches.append(len(events))

    monkeypatch.setattr(FastSqliteEventLogStorage, "store_event_batch", counting)
    _, ours = _run_in(ours_home, batched=True, monkeypatch=monkeypatch)

    assert ours == stock
    # 160 planned events and 80 materializations went through batches, not one transaction each.
    assert sum(stored_in_batches) >= 3 * len(RANGE_KEYS) and len(stored_in_batches) <= 4
    planned = [row for row in ours["run_events"] if row[0] == "ASSET_MATERIALIZATION_PLANNED"]
    assert {row[3] for row in planned} == RANGE_KEYS and len(planned) == 2 * len(RANGE_KEYS)
    assert ours["materialized"] == {"checked_asset": RANGE_KEYS, "failing_asset": set()}
    assert set(ours["failed"]["failing_asset"]) == RANGE_KEYS
    assert ours["checks"] == Counter({('["checked_asset"]', "rows_written", None, "SUCCEEDED"): 1})
    assert ours["tags"][('["checked_asset"]', "dagster/partition/user", "bob")] == len(RANGE_KEYS) // 2


def test_a_batch_keeps_its_own_ids_when_another_process_writes_the_index_shard_at_once(home: Path) -> None:
    """Another process's event lands in the index shard just before our batch insert: our ids stay ours."""
    from sqlalchemy import event as sa_event

    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("users", ["alice"])
        storage = instance.event_log_storage
        assert isinstance(storage, FastSqliteEventLogStorage)
        index_db = home / "history" / "runs" / "index.db"
        intrusions: list[int] = []

        def another_process_writes(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
        ) -> None:
            batch = executemany or statement.count("?") > 20  # a batch insert, not a single event
            if statement.lstrip().upper().startswith("INSERT INTO EVENT_LOGS") and batch and not intrusions:
                other = sqlite3.connect(index_db)
                try:
                    other.execute(
                        "INSERT INTO event_logs (run_id, event, dagster_event_type, timestamp) "
                        "VALUES ('intruder', '{}', 'ENGINE_EVENT', CURRENT_TIMESTAMP)"
                    )
                    other.commit()
                finally:
                    other.close()
                intrusions.append(1)

        engine = storage._engine_for("index")  # the seam this test needs
        sa_event.listen(engine, "before_cursor_execute", another_process_writes)
        result = _materialize_range(instance, "2025-01-01|alice", "2025-04-30|alice")
        assert result.success and intrusions == [1]
        run_id = result.run_id
    index = sqlite3.connect(index_db)
    run_shard = sqlite3.connect(home / "history" / "runs" / f"{run_id}.db")
    try:
        mismatched = index.execute(
            "SELECT count(*) FROM asset_event_tags t JOIN event_logs e ON e.id = t.event_id "
            "WHERE e.asset_key IS NOT t.asset_key"
        ).fetchone()
        counts = "SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = ? GROUP BY 1"
        in_index = dict(index.execute(counts, [run_id]).fetchall())
        in_run = dict(run_shard.execute(counts, [run_id]).fetchall())
    finally:
        index.close()
        run_shard.close()
    assert mismatched == (0,)
    assert in_run["ASSET_MATERIALIZATION_PLANNED"] == in_run["ASSET_MATERIALIZATION"] == 120
    assert {kind: in_run[kind] for kind in in_index} == in_index  # each mirrored event once, in both
