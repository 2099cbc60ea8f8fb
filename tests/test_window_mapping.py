"""The trailing-window mapping gives Dagster's own answer; other processes read it as the stock class."""

import random
from datetime import date, timedelta

import dagster as dg
import pytest
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._serdes import deserialize_value, serialize_value

from polar_pipeline.orchestration.partitions import DAY_DIMENSION, USERS_DIMENSION, USERS_PARTITIONS_NAME
from polar_pipeline.orchestration.window_mapping import TrailingWindowMapping, trailing_window_mapping

START = date(2025, 1, 1)
PARTITIONS = dg.MultiPartitionsDefinition(
    {
        USERS_DIMENSION: dg.DynamicPartitionsDefinition(name=USERS_PARTITIONS_NAME),
        DAY_DIMENSION: dg.DailyPartitionsDefinition(start_date=START.isoformat(), end_offset=1),
    }
)


def _stock(window_days: int) -> dg.MultiPartitionMapping:
    return dg.MultiPartitionMapping(
        dict(trailing_window_mapping(window_days).downstream_mappings_by_upstream_dimension)
    )


def _key(user: str, day: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({USERS_DIMENSION: user, DAY_DIMENSION: day.isoformat()})


@pytest.mark.parametrize("window_days", [0, 13, 89, 364])
def test_the_trailing_window_maps_upstream_exactly_like_the_stock_mapping(window_days: int) -> None:
    rng = random.Random(window_days)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, ["u1", "u2", "u3"])
    cases = [
        [_key("u1", START + timedelta(days=d)) for d in range(365)],  # one user-year, from the axis start
        [_key(u, START + timedelta(days=d)) for u in ("u2", "u3") for d in range(300, 330)],
        [_key(rng.choice(["u1", "u2", "u3"]), START + timedelta(days=rng.randrange(600))) for _ in range(40)],
        [_key("u1", START), _key("u1", START + timedelta(days=500))],  # two far-apart days: two windows
        [_key("u1", START + timedelta(days=200)), _key("gone", START + timedelta(days=200))],  # unknown user
    ]
    with partition_loading_context(dynamic_partitions_store=instance):
        for keys in cases:
            subset = PARTITIONS.empty_subset().with_partition_keys(keys)
            ours = trailing_window_mapping(window_days).get_upstream_mapped_partitions_result_for_partitions(
                subset, PARTITIONS, PARTITIONS, dynamic_partitions_store=instance
            )
            stock = _stock(window_days).get_upstream_mapped_partitions_result_for_partitions(
                subset, PARTITIONS, PARTITIONS, dynamic_partitions_store=instance
            )
            assert set(ours.partitions_subset.get_partition_keys()) == set(
                stock.partitions_subset.get_partition_keys()
            )
            assert set(ours.required_but_nonexistent_subset.get_partition_keys()) == set(
                stock.required_but_nonexistent_subset.get_partition_keys()
            )
            first = min(date.fromisoformat(k.keys_by_dimension[DAY_DIMENSION]) for k in keys)
            earliest = min(
                date.fromisoformat(PARTITIONS.get_partition_key_from_str(k).keys_by_dimension[DAY_DIMENSION])
                for k in ours.partitions_subset.get_partition_keys()
            )
            assert earliest == max(START, first - timedelta(days=window_days))


def test_other_processes_read_the_mapping_as_the_stock_class() -> None:
    """The webserver and the daemon never import our module: the serialized form must be the stock one."""
    ours = trailing_window_mapping(60)
    restored = deserialize_value(serialize_value(ours), dg.MultiPartitionMapping)
    assert type(restored) is dg.MultiPartitionMapping
    assert restored == _stock(60)
    assert isinstance(ours, TrailingWindowMapping)


def test_the_code_location_snapshot_carries_the_windows_as_stock_mappings() -> None:
    """What the webserver receives: every windowed mart's edge, with the window, as the stock class."""
    from dagster._core.remote_representation.external_data import RepositorySnap

    from polar_pipeline.definitions import build_definitions
    from polar_pipeline.settings import Settings

    defs = build_definitions(Settings())
    snap = deserialize_value(
        serialize_value(RepositorySnap.from_def(defs.get_repository_def())), RepositorySnap
    )
    windows = {
        node.asset_key.to_user_string(): edge.partition_mapping
        for node in snap.asset_nodes
        for edge in node.parent_edges
        if edge.partition_mapping is not None
    }
    assert set(windows) >= {"marts/rolling_metrics", "marts/training_load", "marts/baselines"}
    assert all(type(mapping) is dg.MultiPartitionMapping for mapping in windows.values())
    assert windows["marts/training_load"] == _stock(364)
