"""The run requests of the daily refresh, first syncs and retries: pure functions of the instance's users,
the control store and the clock, so tests evaluate them without a daemon.

Runs cover a rectangle of the user × day space: contiguous users (in the ``users`` partitions' insertion
order) × a day range, expressed by ``range_tags``. Every user in one run keeps bookkeeping per run, not per
user, which is what makes the refresh cheap (one run for everyone).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from polar_pipeline import clock
from polar_pipeline.defs.pipeline.definitions import PIPELINE_JOB
from polar_pipeline.history import history_start
from polar_pipeline.orchestration.partitions import DAY_DIMENSION, USERS_DIMENSION, range_tags
from polar_pipeline.settings import Settings

TRIGGER_TAG = "polar-flow/trigger"
RERUN_OF_TAG = "polar-flow/rerun-of"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


def refresh_last_day(settings: Settings, now: datetime) -> date:
    """The newest day a refresh at ``now`` covers: ``POLAR_TODAY`` if set, else today in UTC, the day axis'
    newest partition (a user east of UTC whose day has begun gets it in the next refresh)."""
    return clock.today(settings) if settings.today is not None else now.astimezone(UTC).date()


def day_range(settings: Settings, last_day: date, days: int) -> tuple[date, date]:
    """``days`` days ending ``last_day``, never before the day axis starts."""
    first_day = max(last_day - timedelta(days=days - 1), history_start(settings))
    return min(first_day, last_day), last_day


def contiguous_segments(ordered_users: Sequence[str], chosen: Iterable[str]) -> list[tuple[str, str]]:
    """The chosen users as (first, last) runs of neighbours in the partition order: one run each."""
    wanted = set(chosen)
    segments: list[tuple[str, str]] = []
    start: str | None = None
    previous: str | None = None
    for user in ordered_users:
        if user in wanted:
            start = start or user
            previous = user
        elif start is not None and previous is not None:
            segments.append((start, previous))
            start = previous = None
    if start is not None and previous is not None:
        segments.append((start, previous))
    return segments


def range_request(
    run_key: str,
    users: tuple[str, str],
    days: tuple[date, date],
    tags: dict[str, str],
    asset_selection: Sequence[dg.AssetKey] | None = None,
) -> dg.RunRequest:
    """One ``pipeline_job`` run over users first..last × days first..last (all its assets, or a selection)."""
    return dg.RunRequest(
        run_key=run_key,
        job_name=PIPELINE_JOB,
        tags=range_tags(users[0], days[0], days[1], last_user=users[1]) | tags,
        asset_selection=None if asset_selection is None else list(asset_selection),
    )


def daily_refresh_request(
    settings: Settings, users: Sequence[str], now: datetime
) -> dg.RunRequest | dg.SkipReason:
    """Every user's last ``refresh_days`` days in ONE run (the publish sensor publishes after it)."""
    if not users:
        return dg.SkipReason("no users yet: connect one with `polar-flow connect` or `polar-flow users add`")
    first_day, last_day = day_range(settings, refresh_last_day(settings, now), settings.refresh_days)
    return range_request(
        f"daily-refresh-{last_day.isoformat()}",
        (users[0], users[-1]),
        (first_day, last_day),
        {TRIGGER_TAG: "daily_refresh"},
    )


def _split_key(key: str) -> tuple[str, date]:
    parts = dict(zip((DAY_DIMENSION, USERS_DIMENSION), key.split("|", 1), strict=True))
    return parts[USERS_DIMENSION], date.fromisoformat(parts[DAY_DIMENSION])


def run_slice(tags: dict[str, str], ordered_users: Sequence[str]) -> tuple[list[str], date, date] | None:
    """The users and days a pipeline run covered, from its tags (a range, or one partition); None when the
    tags name no user × day slice or a user no longer in the partitions."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        (first_user, first_day), (last_user, last_day) = (
            _split_key(tags[RANGE_START_TAG]),
            _split_key(tags[RANGE_END_TAG]),
        )
    elif PARTITION_TAG in tags and "|" in tags[PARTITION_TAG]:
        first_user, first_day = last_user, last_day = _split_key(tags[PARTITION_TAG])
    else:
        return None
    if first_user not in ordered_users or last_user not in ordered_users:
        return None
    users = list(ordered_users[ordered_users.index(first_user) : ordered_users.index(last_user) + 1])
    return users, first_day, last_day
