"""The daily refresh schedule, the blocking arrival check and the sensors that re-run and retry.

The end-to-end test plants one out-of-range Nightly Recharge value for the middle one of three users and
follows what an unattended install does: the refresh run stops before the marts (the check is blocking), the
record is in quarantine with its reason, the two other users are re-run at once, and the planted user after
the back-off, without the bad record.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg

from polar_pipeline.connections import open_control_store
from polar_pipeline.definitions import build_definitions
from polar_pipeline.defs.ingest.assets import ARRIVAL_CHECK
from polar_pipeline.defs.refresh.requests import contiguous_segments, run_slice
from polar_pipeline.defs.refresh.sensors import (
    DAILY_REFRESH,
    new_user_requests,
    retry_requests,
    sync_retries_tick,
)
from polar_pipeline.operations import QUIET_RUN_CONFIG, sync
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME, user_day_partitions
from polar_pipeline.settings import Settings
from polar_pipeline.sync_outcomes import SyncAttempt, SyncOutcomes
from tests.conftest import TEST_TODAY, Pipeline

DAILY_METRICS = dg.AssetKey(["marts", "daily_metrics"])


def covered_keys(settings: Settings, instance: dg.DagsterInstance, request: dg.RunRequest) -> set[str]:
    """The user × day partitions a run request's range tags name, as Dagster resolves them."""
    partitions = user_day_partitions(settings)
    keys = partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(
            request.tags["dagster/asset_partition_range_start"],
            request.tags["dagster/asset_partition_range_end"],
        ),
        dynamic_partitions_store=instance,
    )
    return set(keys)


def test_the_daily_schedule_asks_for_every_user_and_the_last_three_days_in_one_run() -> None:
    settings = Settings()
    schedule = build_definitions(settings).resolve_schedule_def(DAILY_REFRESH)
    assert schedule.execution_timezone == settings.refresh_timezone
    assert schedule.cron_schedule == "0 6 * * *"
    users = ["ann", "bob", "cy", "dee"]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, users)
        # The context enters an instance of its own from the ref: `with` closes it (else it stays "current").
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
        ) as context:
            requests = list(schedule.evaluate_tick(context).run_requests or [])
        assert len(requests) == 1
        (request,) = requests
        days = [TEST_TODAY - timedelta(days=n) for n in (2, 1, 0)]
        expected = {f"{day.isoformat()}|{user}" for user in users for day in days}
        assert covered_keys(settings, instance, request) == expected
        assert request.run_key == f"daily-refresh-{TEST_TODAY.isoformat()}"


def test_no_users_no_run() -> None:
    settings = Settings()
    schedule = build_definitions(settings).resolve_schedule_def(DAILY_REFRESH)
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(instance=instance) as context:
            result = schedule.evaluate_tick(context)
        assert not result.run_requests
        assert "no users" in (result.skip_message or "")


def test_contiguous_segments_keep_partition_order() -> None:
    order = ["a", "b", "c", "d", "e"]
    assert contiguous_segments(order, ["a", "c", "d"]) == [("a", "a"), ("c", "d")]
    assert contiguous_segments(order, ["e", "a", "b"]) == [("a", "b"), ("e", "e")]
    assert contiguous_segments(order, []) == []
    tags = {
        "dagster/asset_partition_range_start": "2026-02-27|b",
        "dagster/asset_partition_range_end": "2026-03-01|d",
    }
    assert run_slice(tags, order) == (["b", "c", "d"], date(2026, 2, 27), date(2026, 3, 1))
    assert run_slice({"dagster/partition": "2026-02-27|e"}, order) == (
        ["e"],
        date(2026, 2, 27),
        date(2026, 2, 27),
    )
    assert run_slice({}, order) is None


def execute(pipeline: Pipeline, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    job = build_definitions(pipeline.settings).resolve_job_def("pipeline_job")
    return job.execute_in_process(
        run_config=QUIET_RUN_CONFIG, instance=pipeline.instance, tags=dict(request.tags), raise_on_error=False
    )


def materialized_users(instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey) -> set[str]:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    users = set()
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.asset_key == key:
            users.add(str(materialization.partition).split("|")[1])
    return users


def test_a_planted_bad_record_blocks_its_run_and_only_its_user_waits(pipeline: Pipeline) -> None:
    ann, bob, cy = pipeline.add_users(3)
    bad_day = TEST_TODAY - timedelta(days=1)
    plant = {"user": int(bob), "stream": "nightly_recharge", "key": bad_day.isoformat()}
    pipeline.sim(
        "POST", "/sim/faults", json={"planted_values": [plant | {"field": "heart_rate_avg", "value": 130}]}
    )

    first = sync(pipeline.settings, days=3, instance=pipeline.instance)
    assert not first.success
    # The blocking check failed for bob's record, and nothing downstream of raw ran for anyone.
    evaluation = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("raw_nightly_recharge"), ARRIVAL_CHECK)]
    )
    check = evaluation[dg.AssetCheckKey(dg.AssetKey("raw_nightly_recharge"), ARRIVAL_CHECK)]
    assert check.run_id == first.run_id and check.evaluation is not None and not check.evaluation.passed
    assert materialized_users(pipeline.instance, first.run_id, DAILY_METRICS) == set()
    assert materialized_users(pipeline.instance, first.run_id, dg.AssetKey("raw_sleep")) == {ann, bob, cy}
    quarantined = pipeline.query(
        "SELECT user_id, day, reason FROM raw.quarantine WHERE stream = 'staging.nightly_recharge'"
    )
    assert [(user, day) for user, day, _ in quarantined] == [(bob, bad_day)]
    assert "heart_rate_avg: expected an integer 25..120 bpm" in quarantined[0][2]
    assert pipeline.query("SELECT user_id, blocking FROM control.check_failures") == [(bob, True)]
    states = SyncOutcomes(pipeline.settings.control_store_path).states()
    assert states[bob].failing and "quarantined on arrival" in (states[bob].last_error or "")
    assert not states[ann].failing and not states[cy].failing

    # The retry sensor re-runs ann and cy at once (two runs: bob sits between them in partition order).
    now = datetime.now(UTC)
    tick = sync_retries_tick(pipeline.settings, pipeline.instance, None, now)
    reruns = list(tick.run_requests or [])
    assert sorted(
        covered_keys(pipeline.settings, pipeline.instance, r).pop().split("|")[1] for r in reruns
    ) == [
        ann,
        cy,
    ]
    for rerun in reruns:
        result = execute(pipeline, rerun)
        assert result.success
    metrics_users = {user for (user,) in pipeline.query("SELECT DISTINCT user_id FROM marts.daily_metrics")}
    assert metrics_users == {ann, cy}
    # The same failed run is not acted on twice.
    again = sync_retries_tick(pipeline.settings, pipeline.instance, tick.cursor, now)
    assert not again.run_requests

    # Bob waits for the back-off, then his retry passes: the bad record is quarantined, his other values flow.
    assert not retry_requests(pipeline.settings, pipeline.instance, [ann, bob, cy], now)
    later = now + timedelta(minutes=pipeline.settings.sync_retry_backoff_minutes + 1)
    (retry,) = retry_requests(pipeline.settings, pipeline.instance, [ann, bob, cy], later)
    assert {key.split("|")[1] for key in covered_keys(pipeline.settings, pipeline.instance, retry)} == {bob}
    assert execute(pipeline, retry).success
    rows = pipeline.query(
        "SELECT day, overnight_hr_bpm, sleep_seconds FROM marts.daily_metrics WHERE user_id = ? ORDER BY day",
        [bob],
    )
    assert [day for day, _, _ in rows] == [TEST_TODAY - timedelta(days=n) for n in (2, 1, 0)]
    by_day = {day: (hr, sleep) for day, hr, sleep in rows}
    assert by_day[bad_day][0] is None and by_day[bad_day][1] is not None  # recharge set aside, sleep kept
    assert all(25 <= hr <= 120 for day, (hr, _) in by_day.items() if day != bad_day and hr is not None)
    assert not SyncOutcomes(pipeline.settings.control_store_path).states()[bob].failing
    assert pipeline.query("SELECT count(*) FROM control.check_failures") == [(0,)]


def test_retries_back_off_and_stop_at_the_limit(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    ann, bob = pipeline.add_users(2)
    outcomes = SyncOutcomes(settings.control_store_path)
    start = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    backoff = timedelta(minutes=settings.sync_retry_backoff_minutes)
    order = [ann, bob]

    def due(at: datetime) -> list[str]:
        return [r.run_key or "" for r in retry_requests(settings, pipeline.instance, order, at)]

    outcomes.record(
        [SyncAttempt(bob, "run-1", False, "ServerError: 503"), SyncAttempt(ann, "run-1", True)], start
    )
    assert due(start + backoff - timedelta(seconds=1)) == []
    assert due(start + backoff) == [f"retry-{bob}-run-1-1"]
    for attempt in range(2, settings.sync_retry_limit + 2):
        at = start + backoff * attempt * 10
        outcomes.record([SyncAttempt(bob, f"run-{attempt}", False, "ServerError: 503")], at)
        state = outcomes.states()[bob]
        assert state.consecutive_failures == attempt
        wait = backoff * (2 ** (attempt - 1))
        if attempt <= settings.sync_retry_limit:
            assert due(at + wait - timedelta(seconds=1)) == []
            assert due(at + wait) == [f"retry-{bob}-run-{attempt}-{attempt}"]
        else:  # the limit: no more automatic retries, the user shows as failed
            assert state.gave_up(settings.sync_retry_limit)
            assert due(at + wait * 100) == []
    # A token the user must renew is not retried on a timer.
    outcomes.record([SyncAttempt(ann, "run-9", False, "token rejected (401)")], start)
    open_control_store(settings).set_status(ann, "reauthorize")
    assert not [key for key in due(start + backoff * 1000) if ann in key]
    # A success resets the count.
    outcomes.record([SyncAttempt(bob, "run-10", True)], start)
    assert outcomes.states()[bob].consecutive_failures == 0


def test_one_failing_asset_counts_the_run_once_whatever_the_order(tmp_path: Path) -> None:
    outcomes = SyncOutcomes(tmp_path / "control.sqlite3")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    outcomes.record([SyncAttempt("u", "r1", False, "x")], at)  # run 1 failed: 1
    outcomes.record([SyncAttempt("u", "r2", True)], at)  # raw_sleep fine in run 2 …
    outcomes.record([SyncAttempt("u", "r2", False, "y")], at)  # … raw_activity failed in run 2
    outcomes.record([SyncAttempt("u", "r2", False, "z")], at)  # and raw_exercises too
    outcomes.record([SyncAttempt("u", "r2", True)], at)  # raw_recharge fine: the run still failed
    state = outcomes.states()["u"]
    assert state.consecutive_failures == 2 and state.last_failed_run_id == "r2" and state.last_error == "z"


def test_a_new_user_gets_a_partition_and_a_first_sync(pipeline: Pipeline) -> None:
    settings = pipeline.settings
    (ann,) = pipeline.add_users(1)
    sim_bob = pipeline.users[1]
    bob = str(sim_bob["x_user_id"])
    store = open_control_store(settings)
    store.upsert_user(bob, sim_bob["access_token"])  # as the API's OAuth callback stores it: not registered
    result = new_user_requests(settings, pipeline.instance, datetime.now(UTC))
    assert isinstance(result, dg.SensorResult)
    assert [r.run_key for r in result.run_requests or []] == [
        f"first-sync-{ann}-{store.get_user(ann).created_at}",
        f"first-sync-{bob}-{store.get_user(bob).created_at}",
    ]
    assert [list(p.partition_keys) for p in result.dynamic_partitions_requests or []] == [[bob]]
    assert store.get_user(bob).polar_user_id is not None  # registered with AccessLink on the way
    SyncOutcomes(settings.control_store_path).record(
        [SyncAttempt(ann, "r", True), SyncAttempt(bob, "r", True)], datetime.now(UTC)
    )
    assert isinstance(new_user_requests(settings, pipeline.instance, datetime.now(UTC)), dg.SkipReason)
