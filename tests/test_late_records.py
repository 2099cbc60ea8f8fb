"""A workout uploaded late lands in raw dated before the run's days; the late_records sensor rebuilds it.

AccessLink lists workouts by upload time (the last 30 days), so the daily refresh (3 days) stores workouts
of older days too. Their marts must not wait for a run that happens to cover that day: the raw asset queues
the days (``late_days``), and the sensor asks for one run of the derived assets over them plus the trailing
windows, after which ``marts.exercises`` holds every workout raw holds.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg

from polar_pipeline.definitions import build_definitions
from polar_pipeline.defs.pipeline.definitions import PIPELINE_JOB
from polar_pipeline.defs.refresh.sensors import late_record_requests
from polar_pipeline.late_days import LateDays
from polar_pipeline.operations import QUIET_RUN_CONFIG, sync
from polar_pipeline.rebuilds import TRAILING_DAYS
from tests.conftest import RAW_TABLE_NAMES, TEST_TODAY, Pipeline

REFRESH_DAYS = 3


def _per_day(pipeline: Pipeline, table: str, user_id: str) -> Counter[object]:
    rows = pipeline.query(f"SELECT day FROM {table} WHERE user_id = ?", [user_id])
    return Counter(day for (day,) in rows)


def test_workouts_stored_outside_the_run_are_rebuilt_by_the_sensor(pipeline: Pipeline) -> None:
    pipeline.sim("POST", "/sim/clock", json={"today": (TEST_TODAY - timedelta(days=27)).isoformat()})
    (user_id,) = pipeline.add_users(1)
    pipeline.sim("POST", "/sim/clock", json={"today": TEST_TODAY.isoformat()})
    first = TEST_TODAY - timedelta(days=REFRESH_DAYS - 1)
    assert sync(pipeline.settings, [user_id], days=REFRESH_DAYS, instance=pipeline.instance).success

    raw = _per_day(pipeline, "raw.exercises", user_id)
    outside = sorted(day for day in raw if day < first)  # type: ignore[operator]
    assert len(outside) >= 10, raw  # a month of uploads, listed by the 3-day refresh
    assert not any(_per_day(pipeline, "marts.exercises", user_id)[day] for day in outside)
    # Every raw row is new in this first run, so the queue holds every raw day outside the run, of any stream.
    stored_outside = {
        day
        for table in RAW_TABLE_NAMES
        if table != "quarantine"
        for (day,) in pipeline.query(
            f"SELECT day FROM raw.{table} WHERE user_id = ? AND day < ?", [user_id, first]
        )
    }
    assert set(outside) <= stored_outside
    queued = LateDays(pipeline.settings.control_store_path).pending()
    assert queued == {user_id: sorted(stored_outside)}

    now = datetime.now(UTC)
    result = late_record_requests(pipeline.settings, now)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    assert request.tags["dagster/asset_partition_range_start"] == f"{queued[user_id][0]}|{user_id}"
    last = min(queued[user_id][-1] + timedelta(days=TRAILING_DAYS), TEST_TODAY)
    assert request.tags["dagster/asset_partition_range_end"] == f"{last}|{user_id}"
    assert request.asset_selection and all(
        key.path[0] in ("marts", "analytics") for key in request.asset_selection
    )
    assert isinstance(late_record_requests(pipeline.settings, now), dg.SkipReason)  # asked for once

    job = build_definitions(pipeline.settings).resolve_job_def(PIPELINE_JOB)
    run = job.get_subset(asset_selection=set(request.asset_selection)).execute_in_process(
        instance=pipeline.instance, run_config=QUIET_RUN_CONFIG, tags=dict(request.tags)
    )
    assert run.success
    assert _per_day(pipeline, "marts.exercises", user_id) == raw
    daily = dict(
        pipeline.query("SELECT day, exercise_count FROM marts.daily_metrics WHERE user_id = ?", [user_id])
    )
    assert all(daily[day] == count for day, count in raw.items())
