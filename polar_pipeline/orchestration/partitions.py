"""The user × day partition space every asset shares, and the helper that reads a run's slice of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import dagster as dg

from polar_pipeline.settings import get_settings

USERS_DIMENSION = "user"
DAY_DIMENSION = "day"
USERS_PARTITIONS_NAME = "users"  # the dynamic partitions' name in the Dagster instance

users_partitions = dg.DynamicPartitionsDefinition(name=USERS_PARTITIONS_NAME)
# end_offset=1: today's partition exists, because this morning's sleep and recharge belong to today.
day_partitions = dg.DailyPartitionsDefinition(start_date=get_settings().partition_start_date, end_offset=1)
user_day_partitions = dg.MultiPartitionsDefinition(
    {USERS_DIMENSION: users_partitions, DAY_DIMENSION: day_partitions}
)


def user_day_key(user_id: str, day: date) -> str:
    """The string form Dagster uses for a user × day key (dimensions sorted by name: day|user)."""
    return str(dg.MultiPartitionKey({USERS_DIMENSION: user_id, DAY_DIMENSION: day.isoformat()}))


def range_tags(
    user_id: str, first_day: date, last_day: date, *, last_user: str | None = None
) -> dict[str, str]:
    """Run tags that make one run cover days first..last for one user, or for the users from ``user_id``
    to ``last_user`` in the partition's (insertion) order: a single-run backfill slice."""
    return {
        "dagster/asset_partition_range_start": user_day_key(user_id, first_day),
        "dagster/asset_partition_range_end": user_day_key(last_user or user_id, last_day),
    }


@dataclass(frozen=True)
class PartitionScope:
    """The users and the inclusive day range a run materializes."""

    users: tuple[str, ...]
    first_day: date
    last_day: date

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def partition_scope(context: dg.AssetExecutionContext) -> PartitionScope:
    """Read the run's user × day slice, whether it is one partition or a single-run range."""
    users: dict[str, None] = {}
    days: set[date] = set()
    for key in context.partition_keys:
        dimensions = user_day_partitions.get_partition_key_from_str(str(key)).keys_by_dimension
        users[dimensions[USERS_DIMENSION]] = None
        days.add(date.fromisoformat(dimensions[DAY_DIMENSION]))
    if not users:
        raise dg.Failure("this asset needs a user × day partition or range")
    first, last = min(days), max(days)
    if (last - first).days + 1 != len(days):
        raise dg.Failure(f"expected a contiguous day range, got {len(days)} days between {first} and {last}")
    return PartitionScope(users=tuple(users), first_day=first, last_day=last)
