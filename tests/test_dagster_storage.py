"""Our DAGSTER_HOME: the faster event log keeps every event and partition, durable across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from polar_pipeline.orchestration.event_log import FastSqliteEventLogStorage
from polar_pipeline.orchestration.home import MARKER, prepare_dagster_home
from polar_pipeline.settings import Settings

users = dg.DynamicPartitionsDefinition(name="users")
user_day = dg.MultiPartitionsDefinition(
    {"user": users, "day": dg.DailyPartitionsDefinition(start_date="2025-01-01")}
)


@dg.asset(partitions_def=user_day, backfill_policy=dg.BackfillPolicy.single_run())
def probe_asset() -> dg.MaterializeResult:  # type: ignore[type-arg]
    return dg.MaterializeResult()


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
        job = dg.Definitions(
            assets=[probe_asset], jobs=[dg.define_asset_job("j", [probe_asset])]
        ).resolve_job_def("j")
        result = job.execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "2025-01-01|alice",
                "dagster/asset_partition_range_end": "2025-03-01|bob",
            },
        )
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
        job = dg.Definitions(
            assets=[probe_asset], jobs=[dg.define_asset_job("j", [probe_asset])]
        ).resolve_job_def("j")
        run_id = job.execute_in_process(instance=instance, partition_key="2025-01-02|carol").run_id
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
