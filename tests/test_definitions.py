"""The code location loads, validates with the Dagster CLI, and shows the raw assets with partitions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from polar_pipeline.definitions import build_definitions
from polar_pipeline.orchestration.partitions import user_day_partitions
from polar_pipeline.settings import get_settings

RAW_ASSETS = {"raw_sleep", "raw_nightly_recharge", "raw_activity", "raw_exercises"}


def test_raw_assets_are_user_day_partitioned_single_run_and_pooled() -> None:
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert RAW_ASSETS | {"serving_snapshot"} <= keys
    for name in RAW_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def == user_day_partitions(get_settings())
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert defs.resolve_assets_def(dg.AssetKey(name)).node_def.pool == "duckdb"
        assert node.group_name == "ingest"
    assert graph.get(dg.AssetKey("serving_snapshot")).partitions_def is None


def test_dagster_definitions_validate_passes(tmp_path: Path) -> None:
    env = os.environ | {"POLAR_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    dagster = str(Path(sys.executable).parent / "dagster")
    result = subprocess.run(
        [dagster, "definitions", "validate", "-m", "polar_pipeline.definitions"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "All code locations passed validation" in result.stdout + result.stderr
