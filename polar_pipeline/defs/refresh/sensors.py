"""The daily refresh schedule, and the sensors that keep every user synced without anyone watching.

* ``daily_refresh`` (schedule): every user's last ``refresh_days`` days through the whole graph in ONE run
  at ``refresh_time`` in ``refresh_timezone``; the publish sensor publishes after it.
* ``new_users`` (sensor): a user of the control store who was never synced (added by `polar-flow users
  add`, `polar-flow connect` or the API's OAuth callback) gets their ``users`` partition and a first sync
  of the last 28 days; a token the API stored is registered with AccessLink first.
* ``sync_retries`` (sensor): when a ``pipeline_job`` run fails, the users it did not fail for are run again
  at once (one user's bad data or dead token never holds the others back), and the users it failed for are
  retried on their own with a doubling back-off, up to ``sync_retry_limit`` times; then they show as
  ``sync_failed`` in ``analytics.data_health`` and ``polar-flow status`` until a later sync succeeds.
* ``late_records`` (sensor): raw records a run stored for days outside its own (``late_days``: a workout
  uploaded late, a day re-sent) get those days and their trailing windows rebuilt, one run per user of the
  derived assets.

All are on by default (``DefaultScheduleStatus.RUNNING``): an install keeps itself current once
``polar-flow dev`` (or the compose file's daemon) runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster_shared.check import CheckError

from polar_pipeline.connections import open_control_store
from polar_pipeline.defs.pipeline.definitions import PIPELINE_JOB
from polar_pipeline.defs.refresh.requests import (
    RERUN_OF_TAG,
    TRIGGER_TAG,
    contiguous_segments,
    daily_refresh_request,
    day_range,
    range_request,
    refresh_last_day,
    run_slice,
)
from polar_pipeline.defs.requests.sensors import failure_message, register_if_new
from polar_pipeline.history import history_start
from polar_pipeline.late_days import LateDays
from polar_pipeline.operations import DEFAULT_SYNC_DAYS
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.rebuilds import derived_asset_keys, rebuild_range
from polar_pipeline.settings import Settings
from polar_pipeline.sync_outcomes import SyncAttempt, SyncOutcomes
from polar_pipeline.sync_requests import SyncRequestQueue

DAILY_REFRESH = "daily_refresh"
NEW_USERS = "new_users"
SYNC_RETRIES = "sync_retries"
LATE_RECORDS = "late_records"


def _tick_time(context: dg.ScheduleEvaluationContext) -> datetime:
    """The tick's scheduled time; now for an evaluation outside the daemon (a test, "Test schedule")."""
    try:
        return context.scheduled_execution_time
    except CheckError:
        return datetime.now(UTC)


def build_daily_refresh(settings: Settings) -> dg.ScheduleDefinition:
    hour, minute = (int(part) for part in settings.refresh_time.split(":"))

    @dg.schedule(
        name=DAILY_REFRESH,
        cron_schedule=f"{minute} {hour} * * *",
        execution_timezone=settings.refresh_timezone,
        job_name=PIPELINE_JOB,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            f"Every user's last {settings.refresh_days} days through the whole graph in one run, at "
            f"{settings.refresh_time} {settings.refresh_timezone} (POLAR_REFRESH_TIME, "
            "POLAR_REFRESH_TIMEZONE); a publish follows."
        ),
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        users = context.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
        return daily_refresh_request(settings, users, _tick_time(context))

    return daily_refresh


def new_user_requests(
    settings: Settings, instance: dg.DagsterInstance, now: datetime
) -> dg.SensorResult | dg.SkipReason:
    """First syncs for users of the control store that no run has tried yet and no API request covers."""
    store = open_control_store(settings)
    outcomes = SyncOutcomes(settings.control_store_path)
    tried = outcomes.states()
    requested = {request.user_id for request in SyncRequestQueue(settings.control_store_path).open_requests()}
    fresh = [
        user
        for user in store.list_users()
        if user.status == "active" and user.user_id not in tried and user.user_id not in requested
    ]
    if not fresh:
        return dg.SkipReason("every user has been synced at least once")
    known = set(instance.get_dynamic_partitions(USERS_PARTITIONS_NAME))
    days = day_range(settings, refresh_last_day(settings, now), DEFAULT_SYNC_DAYS)
    added: list[str] = []
    run_requests: list[dg.RunRequest] = []
    for user in fresh:
        refusal = register_if_new(settings, store, user)
        if refusal is not None:
            outcomes.record([SyncAttempt(user.user_id, "registration", False, refusal)], now)
            continue
        if user.user_id not in known:
            added.append(user.user_id)
        run_requests.append(
            range_request(
                f"first-sync-{user.user_id}-{user.created_at}",
                (user.user_id, user.user_id),
                days,
                {TRIGGER_TAG: "first_sync"},
            )
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(USERS_PARTITIONS_NAME, added)]
        if added
        else [],
    )


def isolation_requests(
    settings: Settings, instance: dg.DagsterInstance, run: dg.DagsterRun, ordered_users: list[str]
) -> list[dg.RunRequest]:
    """After a failed run: the users it did not fail for, again at once; a run no user is blamed for puts
    the failure on all its users, to be retried with back-off."""
    covered = run_slice(dict(run.tags), ordered_users)
    if covered is None:
        return []
    users, first_day, last_day = covered
    outcomes = SyncOutcomes(settings.control_store_path)
    blamed = set(outcomes.failed_in_run(run.run_id)) & set(users)
    if not blamed:
        message = f"run {run.run_id} failed: {failure_message(instance, run)}"
        outcomes.record([SyncAttempt(user, run.run_id, False, message) for user in users], datetime.now(UTC))
        return []
    if RERUN_OF_TAG in run.tags:  # a rerun of the innocent that failed: back-off from here on
        return []
    innocent = [user for user in users if user not in blamed]
    return [
        range_request(
            f"rerun-{run.run_id}-{index}",
            segment,
            (first_day, last_day),
            {TRIGGER_TAG: "rerun_without_failed_users", RERUN_OF_TAG: run.run_id},
        )
        for index, segment in enumerate(contiguous_segments(ordered_users, innocent))
    ]


def retry_requests(
    settings: Settings, instance: dg.DagsterInstance, ordered_users: list[str], now: datetime
) -> list[dg.RunRequest]:
    """Users whose last sync failed and whose back-off has passed, each over the days their failed run had."""
    store = open_control_store(settings)
    active = {user.user_id for user in store.list_users() if user.status == "active"}
    backoff = timedelta(minutes=settings.sync_retry_backoff_minutes)
    requests: list[dg.RunRequest] = []
    for state in SyncOutcomes(settings.control_store_path).states().values():
        if not state.failing or state.gave_up(settings.sync_retry_limit):
            continue
        if state.user_id not in active or state.user_id not in ordered_users:
            continue  # a rejected token waits for the person (`polar-flow connect`), not for a timer
        if state.retry_due_at(backoff) > now:
            continue
        failed_run = instance.get_run_by_id(state.last_failed_run_id) if state.last_failed_run_id else None
        covered = run_slice(dict(failed_run.tags), ordered_users) if failed_run else None
        days = (
            (covered[1], covered[2])
            if covered
            else day_range(settings, refresh_last_day(settings, now), settings.refresh_days)
        )
        requests.append(
            range_request(
                f"retry-{state.user_id}-{state.last_failed_run_id}-{state.consecutive_failures}",
                (state.user_id, state.user_id),
                days,
                {TRIGGER_TAG: "retry", "polar-flow/retry": str(state.consecutive_failures)},
            )
        )
    return requests


def sync_retries_tick(
    settings: Settings, instance: dg.DagsterInstance, cursor: str | None, now: datetime
) -> dg.SensorResult:
    """One tick: new failed runs since the cursor → reruns without the failed users; due retries."""
    since = float(json.loads(cursor)["updated_after"]) if cursor else now.timestamp() - 86400
    ordered_users = list(instance.get_dynamic_partitions(USERS_PARTITIONS_NAME))
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=PIPELINE_JOB,
            statuses=[dg.DagsterRunStatus.FAILURE],
            updated_after=datetime.fromtimestamp(since, UTC),
        ),
        ascending=True,
    )
    run_requests: list[dg.RunRequest] = []
    newest = since
    for record in records:
        run_requests += isolation_requests(settings, instance, record.dagster_run, ordered_users)
        newest = max(newest, record.update_timestamp.timestamp())
    run_requests += retry_requests(settings, instance, ordered_users, now)
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps({"updated_after": newest}))


def late_record_requests(settings: Settings, now: datetime) -> dg.SensorResult | dg.SkipReason:
    """One run per user of the derived assets over the days a run changed raw records of but did not
    rebuild (``late_days``), plus the trailing windows after them (``rebuilds.rebuild_range``)."""
    queue = LateDays(settings.control_store_path)
    pending = queue.pending()
    if not pending:
        return dg.SkipReason("no raw records changed outside the days their runs rebuilt")
    axis_start = history_start(settings)
    today = refresh_last_day(settings, now)
    keys = derived_asset_keys(settings)
    run_requests: list[dg.RunRequest] = []
    for user_id, days in pending.items():
        span = rebuild_range(days[0], days[-1], axis_start=axis_start, today=today)
        run_key = f"late-{user_id}-{days[0]}-{days[-1]}-{now.isoformat()}"
        if span is not None:
            tags = {TRIGGER_TAG: "late_records"}
            run_requests.append(range_request(run_key, (user_id, user_id), span, tags, asset_selection=keys))
        queue.mark_requested(user_id, days, run_key)  # days before the axis have no partition to rebuild
    if not run_requests:
        return dg.SkipReason("the late days lie before the day axis")
    return dg.SensorResult(run_requests=run_requests)


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    @dg.sensor(
        name=NEW_USERS,
        job_name=PIPELINE_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Users of the control store never synced yet get their partition and a 28-day sync.",
    )
    def new_users(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        return new_user_requests(settings, context.instance, datetime.now(UTC))

    @dg.sensor(
        name=SYNC_RETRIES,
        job_name=PIPELINE_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "After a failed pipeline run, re-runs at once the users it did not fail for; retries those it "
            f"failed for with a doubling back-off from {settings.sync_retry_backoff_minutes:g} min, at most "
            f"{settings.sync_retry_limit} times (then they show as sync_failed)."
        ),
    )
    def sync_retries(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        return sync_retries_tick(settings, context.instance, context.cursor, datetime.now(UTC))

    @dg.sensor(
        name=LATE_RECORDS,
        job_name=PIPELINE_JOB,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Raw records a run stored for days outside its own (a workout uploaded late, a day re-sent) get "
            "their marts and analytics rebuilt: one run per user of the derived assets over those days and "
            "the trailing windows after them."
        ),
    )
    def late_records(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        return late_record_requests(settings, datetime.now(UTC))

    return [new_users, sync_retries, late_records]
