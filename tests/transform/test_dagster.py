"""The marts through Dagster itself: transform_job over a user × day range, metadata, and a second run."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from polar_pipeline.defs.transform import definitions as transform
from polar_pipeline.defs.transform.assets import table_keys
from polar_pipeline.orchestration.partitions import range_tags
from polar_pipeline.orchestration.resources import WarehouseResource
from polar_pipeline.settings import get_settings
from tests.transform import reference
from tests.transform.conftest import SimWarehouse

DAYS = 60
MART_KEYS = table_keys(transform.model_graph(get_settings()))


def mart_checksums(path: Path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            key.path[-1]: hashlib.sha256(
                repr(con.execute(f"SELECT * FROM marts.{key.path[-1]} ORDER BY ALL").fetchall()).encode()
            ).hexdigest()
            for key in MART_KEYS
        }
    finally:
        con.close()


def test_transform_job_materializes_every_mart_partition(
    sim_raw: SimWarehouse, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    path = sim_raw.copy_to(tmp_path)
    user = sim_raw.users[1]
    first, last = sim_raw.first_day, sim_raw.first_day + timedelta(days=DAYS - 1)
    warehouse = WarehouseResource(
        database=str(path), snapshots_dir=str(tmp_path / "serving"), samples_dir=str(tmp_path / "samples")
    )
    job = dg.Definitions.merge(
        transform.build_defs(get_settings()), dg.Definitions(resources={"warehouse": warehouse})
    ).resolve_job_def("transform_job")
    instance.add_dynamic_partitions("users", list(sim_raw.users))

    result = job.execute_in_process(instance=instance, tags=range_tags(user, first, last))
    assert result.success
    for key in MART_KEYS:
        materializations = result.asset_materializations_for_node("__".join(key.path))
        assert len(materializations) == DAYS, key
        metadata: dict[str, Any] = dict(materializations[0].metadata)
        assert {"dagster/row_count", "preview", "first_day", "last_day", "users", "read_from"} <= set(
            metadata
        )
        assert metadata["first_day"].value == first.isoformat() and metadata["users"].value == [user]
    daily: dict[str, Any] = dict(result.asset_materializations_for_node("marts__daily_metrics")[0].metadata)
    assert "| user_id | day |" in daily["preview"].value

    con = duckdb.connect(str(path), read_only=True)
    try:
        # The history starts with the first wake-up day, one day after the simulator's history start.
        stored = con.execute("SELECT count(*) FROM marts.daily_metrics WHERE user_id = ?", [user]).fetchone()
        assert stored is not None and daily["dagster/row_count"].value == stored[0] >= DAYS - 1
        raw = reference.load_raw(con)
        only_user = {stream: [row for row in rows if row[0] == user] for stream, rows in raw.items()}
        for mart, (keys, rows) in reference.all_marts(only_user).items():
            in_range = {key: row for key, row in rows.items() if key[1] <= last}
            reference.assert_table_matches(con, mart, keys, in_range)
    finally:
        con.close()

    # Materializing part of the range again leaves every table exactly as it was.
    before = mart_checksums(path)
    again = job.execute_in_process(
        instance=instance, tags=range_tags(user, first + timedelta(days=20), first + timedelta(days=29))
    )
    assert again.success
    assert len(again.asset_materializations_for_node("marts__baselines")) == 10
    assert mart_checksums(path) == before
