"""The trailing-window dependency between user × day assets: Dagster's semantics at a fraction of the cost.

A windowed mart (a 90-day rolling mean, a 365-day EWMA) reads ``window_days`` of its upstream before each
day, and we declare that to Dagster so lineage and stale status know it: same user, days
``[day - window_days, day]``. Dagster's ``MultiPartitionMapping`` computes the upstream of a range key by
key: for one user-year of a 365-day window it maps 365 single days and builds ~133,000 keys before
de-duplicating them, and it does so at the start of every step (for the inputs' data versions). That was a
fifth of a whole-graph run.

``TrailingWindowMapping`` is a ``MultiPartitionMapping`` (same fields, serialized under the same name, so the
webserver and the daemon see the stock class) that answers the downstream-to-upstream question per user
instead: the day dimension's ``TimeWindowPartitionMapping`` is applied once to all of a user's days, which
works on time windows rather than keys. Mapping each key and taking the union, as the stock class does, and
mapping the set at once give the same answer for identity and time-window dimension mappings; a test checks
the result equals the stock one. Any other shape falls back to the stock code.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from itertools import product
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.definitions.partitions.mapping.partition_mapping import UpstreamPartitionsResult
from dagster._core.definitions.partitions.subset import AllPartitionsSubset, DefaultPartitionsSubset
from dagster_shared.serdes.serdes import _WHITELIST_MAP

from polar_pipeline.orchestration.partitions import DAY_DIMENSION, USERS_DIMENSION

if TYPE_CHECKING:
    from dagster._core.definitions.partitions.subset import PartitionsSubset
    from dagster._core.instance import DynamicPartitionsStore


class TrailingWindowMapping(dg.MultiPartitionMapping):
    """Same user; days ``[day - window_days, day]``, days before the axis start simply absent."""

    def get_upstream_mapped_partitions_result_for_partitions(
        self,
        downstream_partitions_subset: PartitionsSubset | None,
        downstream_partitions_def: dg.PartitionsDefinition[Any] | None,
        upstream_partitions_def: dg.PartitionsDefinition[Any],
        current_time: datetime | None = None,
        dynamic_partitions_store: DynamicPartitionsStore | None = None,
    ) -> UpstreamPartitionsResult:
        if not (
            isinstance(downstream_partitions_def, dg.MultiPartitionsDefinition)
            and isinstance(upstream_partitions_def, dg.MultiPartitionsDefinition)
            and downstream_partitions_subset is not None
            and not isinstance(downstream_partitions_subset, AllPartitionsSubset)
            and set(self.downstream_mappings_by_upstream_dimension) == {USERS_DIMENSION, DAY_DIMENSION}
            and set(downstream_partitions_def.partition_dimension_names) == {USERS_DIMENSION, DAY_DIMENSION}
            and set(upstream_partitions_def.partition_dimension_names) == {USERS_DIMENSION, DAY_DIMENSION}
        ):
            return super().get_upstream_mapped_partitions_result_for_partitions(
                downstream_partitions_subset,
                downstream_partitions_def,
                upstream_partitions_def,
                current_time,
                dynamic_partitions_store,
            )
        with partition_loading_context(current_time, dynamic_partitions_store):
            return self._map_per_user(
                downstream_partitions_subset, downstream_partitions_def, upstream_partitions_def
            )

    def _map_per_user(
        self,
        downstream_subset: PartitionsSubset,
        downstream_def: dg.MultiPartitionsDefinition,
        upstream_def: dg.MultiPartitionsDefinition,
    ) -> UpstreamPartitionsResult:
        days_by_user: dict[str, set[str]] = defaultdict(set)
        for key in downstream_subset.get_partition_keys():
            dimensions = downstream_def.get_partition_key_from_str(key).keys_by_dimension
            days_by_user[dimensions[USERS_DIMENSION]].add(dimensions[DAY_DIMENSION])

        nonexistent: set[str] = set()

        def mapped(dimension: str, keys: set[str]) -> list[str]:
            """The stock per-dimension mapping, applied to a set of keys in one call."""
            mapping = self.downstream_mappings_by_upstream_dimension[dimension]
            downstream_dimension_def = downstream_def.get_partitions_def_for_dimension(mapping.dimension_name)
            result = mapping.partition_mapping.get_upstream_mapped_partitions_result_for_partitions(
                downstream_dimension_def.empty_subset().with_partition_keys(sorted(keys)),
                downstream_dimension_def,
                upstream_def.get_partitions_def_for_dimension(dimension),
            )
            nonexistent.update(result.required_but_nonexistent_subset.get_partition_keys())
            return list(result.partitions_subset.get_partition_keys())

        upstream_keys: set[dg.MultiPartitionKey] = set()
        for user, days in days_by_user.items():
            for upstream_user, upstream_day in product(
                mapped(USERS_DIMENSION, {user}), mapped(DAY_DIMENSION, days)
            ):
                upstream_keys.add(
                    dg.MultiPartitionKey({USERS_DIMENSION: upstream_user, DAY_DIMENSION: upstream_day})
                )
        return UpstreamPartitionsResult(
            partitions_subset=upstream_def.empty_subset().with_partition_keys(upstream_keys),
            required_but_nonexistent_subset=DefaultPartitionsSubset(nonexistent),
        )


# Serialized exactly as the stock class (its serializer writes ``__class__: MultiPartitionMapping``), so a
# process that never imports this module (the webserver, the daemon) reads a plain MultiPartitionMapping.
_WHITELIST_MAP.object_serializers[TrailingWindowMapping.__name__] = _WHITELIST_MAP.object_serializers[
    dg.MultiPartitionMapping.__name__
]


def trailing_window_mapping(window_days: int) -> TrailingWindowMapping:
    """Same user, and the days [day - window_days, day]; days before the partition start are simply absent."""
    return TrailingWindowMapping(
        {
            DAY_DIMENSION: dg.DimensionPartitionMapping(
                DAY_DIMENSION,
                dg.TimeWindowPartitionMapping(
                    start_offset=-window_days, allow_nonexistent_upstream_partitions=True
                ),
            ),
            USERS_DIMENSION: dg.DimensionPartitionMapping(USERS_DIMENSION, dg.IdentityPartitionMapping()),
        }
    )
