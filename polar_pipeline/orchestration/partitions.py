"""The user × day partition space every asset shares, and the one function that reads a run's slice of it.

Assets take their users and days from ``partition_scope`` only, never by parsing keys themselves, so the
user dimension can later become a shard of users without touching them. The day axis starts at a setting,
so the partitions are built when the definitions are (``user_day_partitions(settings)``), not at import;
``history.py`` says where it starts.
"""

from __future__ import annotations

from datetime import date
from functools import cache

import dagster as dg

from polar_pipeline.history import history_start
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.slices import UserDaySlice

USERS_DIMENSION = "user"
DAY_DIMENSION = "day"
USERS_PARTITIONS_NAME = "users"  # the dynamic partitions' name in the Dagster instance

PartitionScope = UserDaySlice
"""A run's slice: its users and inclusive day range (the warehouse's own slice type)."""


@cache
def _user_day_partitions(start_date: str) -> dg.MultiPartitionsDefinition:
    # end_offset=1: today's partition exists, because this morning's sleep and recharge belong to today.
    return dg.MultiPartitionsDefinition(
        {
            USERS_DIMENSION: dg.DynamicPartitionsDefinition(name=USERS_PARTITIONS_NAME),
            DAY_DIMENSION: dg.DailyPartitionsDefinition(start_date=start_date, end_offset=1),
        }
    )


def user_day_partitions(settings: Settings) -> dg.MultiPartitionsDefinition:
    """Dynamic users × daily days from the history start (one shared object per start date)."""
    return _user_day_partitions(history_start(settings).isoformat())


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


def partition_scope(context: dg.AssetExecutionContext) -> PartitionScope:
    """Read the run's user × day slice, whether it is one partition or a single-run range."""
    partitions_def = context.assets_def.partitions_def
    if not isinstance(partitions_def, dg.MultiPartitionsDefinition):
        raise dg.Failure("this asset needs the user × day partitions")
    users: dict[str, None] = {}
    days: set[date] = set()
    for key in context.partition_keys:
        dimensions = partitions_def.get_partition_key_from_str(str(key)).keys_by_dimension
        users[dimensions[USERS_DIMENSION]] = None
        days.add(date.fromisoformat(dimensions[DAY_DIMENSION]))
    if not users:
        raise dg.Failure("this asset needs a user × day partition or range")
    first, last = min(days), max(days)
    if (last - first).days + 1 != len(days):
        raise dg.Failure(f"expected a contiguous day range, got {len(days)} days between {first} and {last}")
    return PartitionScope(users=tuple(users), first_day=first, last_day=last)
