"""The ``sync_requests`` sensor: queued API requests become runs, and the runs' progress goes back to them.

Each tick it reads the open requests (one SQLite query; nothing else when there are none) and the runs
tagged with their ids (one Dagster query), then

* records each request's progress from its newest run: ``running`` while the run is queued or executing,
  ``succeeded`` or ``failed`` (with the failed steps' messages) when it ends, ``retrying`` while Dagster
  re-executes a failed run (``dagster/will_retry``, or a newer run with the same request tag);
* turns each request still without a run into a ``RunRequest`` with ``run_key = request_id`` (so a request
  asked for twice runs once) over the user's last ``days`` local days, as one single-run range
  (``range_tags``): ``sync`` runs the whole ``pipeline_job``, ``patterns`` only its analytics assets (no
  AccessLink calls). A user the instance does not know yet gets its ``users`` partition in the same tick,
  and a token the API stored is registered with AccessLink before its first sync (the only network call,
  once per new user).

The publish sensor publishes after each successful run, as after any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from polar_pipeline import clock
from polar_pipeline.accesslink import AccessLinkError, NotRegistered, ReauthorizationRequired
from polar_pipeline.connections import open_control_store, register_stored_token
from polar_pipeline.control_store import ControlStore, StoredUser, UnknownUser
from polar_pipeline.defs.analytics.definitions import ALL_TABLES as ANALYTICS_TABLES
from polar_pipeline.defs.pipeline.definitions import PIPELINE_JOB
from polar_pipeline.history import history_start
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME, range_tags
from polar_pipeline.settings import Settings
from polar_pipeline.sync_requests import Status, SyncRequest, SyncRequestQueue

SENSOR_NAME = "sync_requests"
REQUEST_TAG = "polar-flow/request_id"
KIND_TAG = "polar-flow/request_kind"
USER_TAG = "polar-flow/user"
WILL_RETRY_TAG = "dagster/will_retry"
"""Dagster's tag on a failed run that its run-retry daemon will re-execute ("true")."""
ANALYTICS_KEYS = [table.key for table in ANALYTICS_TABLES]
"""What a ``patterns`` request recomputes: the analytics assets of ``pipeline_job``, from the marts."""

IN_PROGRESS = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
    dg.DagsterRunStatus.MANAGED,
}


@dataclass(frozen=True)
class Progress:
    """A request's state as its runs tell it."""

    status: Status
    run_id: str
    attempts: int
    error: str | None


def request_tags(request: SyncRequest) -> dict[str, str]:
    """The tags that name a request on its runs (and on their retries, which copy the tags)."""
    return {REQUEST_TAG: request.request_id, KIND_TAG: request.kind, USER_TAG: request.user_id}


def last_local_day(settings: Settings, zone: str | None) -> date:
    """The user's today (``clock``), but never past the day axis' newest partition (today in UTC)."""
    day = clock.today(settings, zone)
    if settings.today is None:
        day = min(day, datetime.now(UTC).date())
    return day


def run_request_for(settings: Settings, request: SyncRequest, last_day: date) -> dg.RunRequest:
    """One run over the user's days ``last_day - days + 1 .. last_day`` (from the day axis' start at most)."""
    first_day = min(last_day, max(last_day - timedelta(days=request.days - 1), history_start(settings)))
    return dg.RunRequest(
        run_key=request.request_id,
        job_name=PIPELINE_JOB,
        asset_selection=ANALYTICS_KEYS if request.kind == "patterns" else None,
        tags=range_tags(request.user_id, first_day, last_day) | request_tags(request),
    )


def runs_by_request(
    instance: dg.DagsterInstance, request_ids: Sequence[str]
) -> dict[str, list[dg.DagsterRun]]:
    """Every run tagged with one of the requests, oldest first per request: one query."""
    found: dict[str, list[dg.DagsterRun]] = {}
    if not request_ids:
        return found
    records = instance.get_run_records(filters=dg.RunsFilter(tags={REQUEST_TAG: list(request_ids)}))
    for record in sorted(records, key=lambda record: record.create_timestamp):
        run = record.dagster_run
        found.setdefault(run.tags[REQUEST_TAG], []).append(run)
    return found


def failure_message(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Why ``run`` ended without success: its failed steps and their errors, else the run's own failure."""
    if run.status == dg.DagsterRunStatus.CANCELED:
        return f"run {run.run_id} was canceled"
    connection = instance.get_records_for_run(
        run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    )
    step_errors: list[str] = []
    run_error = ""
    for record in connection.records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            text = error.message.strip() if error is not None else entry.user_message
            step_errors.append(f"{event.step_key}: {text}")
        else:
            run_error = (event.message or entry.user_message).strip()
    if step_errors:
        return "; ".join(step_errors)
    return run_error or f"run {run.run_id} failed"


def progress_of(
    instance: dg.DagsterInstance, request: SyncRequest, runs: Sequence[dg.DagsterRun]
) -> Progress:
    """The request's state from its runs (oldest first): the newest one decides."""
    newest = runs[-1]
    attempts = len(runs)
    if newest.status == dg.DagsterRunStatus.SUCCESS:
        return Progress("succeeded", newest.run_id, attempts, None)
    if newest.status in IN_PROGRESS:
        if attempts == 1:
            return Progress("running", newest.run_id, attempts, None)
        # A re-execution of a failed run: keep saying why the previous attempt failed.
        error = request.error or failure_message(instance, runs[-2])
        return Progress("retrying", newest.run_id, attempts, error)
    known = request.error if request.run_id == newest.run_id else None  # the message, once per run
    error = known or failure_message(instance, newest)
    status: Status = "retrying" if newest.tags.get(WILL_RETRY_TAG) == "true" else "failed"
    return Progress(status, newest.run_id, attempts, error)


def register_if_new(settings: Settings, store: ControlStore, user: StoredUser) -> str | None:
    """Register a token the API stored before it is first used; returns why not, when AccessLink refuses.

    Only users without a Polar user id (never registered by us) cost an AccessLink call, one per request;
    AccessLink's answer 409 (registered already) lets the sync go ahead.
    """
    if user.polar_user_id is not None:
        return None
    try:
        register_stored_token(settings, user.user_id)
    except ReauthorizationRequired:
        store.set_status(user.user_id, "reauthorize")
        return "AccessLink rejected the user's Polar token (401): send a new one in X-Polar-Token"
    except NotRegistered:
        store.set_status(user.user_id, "not_registered")
        return "AccessLink refused to register the user (403): the Polar consents are missing"
    except AccessLinkError as error:
        answered = f" (it answered {error.status_code})" if error.status_code else ""
        return f"AccessLink could not register the user{answered}: try again later"
    return None


def evaluate(
    settings: Settings, instance: dg.DagsterInstance, queue: SyncRequestQueue
) -> dg.SensorResult | dg.SkipReason:
    """One tick: progress recorded for requests with runs, run requests for those without."""
    open_requests = queue.open_requests()
    if not open_requests:
        return dg.SkipReason("no open sync or pattern requests")
    runs = runs_by_request(instance, [request.request_id for request in open_requests])
    waiting: list[SyncRequest] = []
    for request in open_requests:
        request_runs = runs.get(request.request_id)
        if request_runs:
            progress = progress_of(instance, request, request_runs)
            queue.record_progress(
                request.request_id,
                progress.status,
                run_id=progress.run_id,
                attempts=progress.attempts,
                error=progress.error,
            )
        elif request.run_id is not None:  # it had a run, and the run was deleted
            queue.record_progress(
                request.request_id,
                "failed",
                run_id=request.run_id,
                attempts=request.attempts,
                error=f"its run {request.run_id} no longer exists in Dagster",
            )
        else:
            waiting.append(request)
    if not waiting:
        return dg.SkipReason(f"{len(open_requests)} open request(s), each with a run")

    store = open_control_store(settings)
    known_users = set(instance.get_dynamic_partitions(USERS_PARTITIONS_NAME))
    new_users: list[str] = []
    run_requests: list[dg.RunRequest] = []
    for request in waiting:
        try:
            user = store.get_user(request.user_id)
        except UnknownUser:
            refusal: str | None = f"unknown user {request.user_id}: connect a Polar token first"
        else:
            refusal = register_if_new(settings, store, user) if request.kind == "sync" else None
        if refusal is not None:
            queue.record_progress(request.request_id, "failed", run_id=None, attempts=0, error=refusal)
            continue
        zone = user.time_zone
        if request.user_id not in known_users and request.user_id not in new_users:
            new_users.append(request.user_id)
        run_requests.append(run_request_for(settings, request, last_local_day(settings, zone)))
    if not run_requests:
        return dg.SkipReason("no request could be run")
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=(
            [dg.AddDynamicPartitionsRequest(USERS_PARTITIONS_NAME, new_users)] if new_users else []
        ),
    )


def build_sync_requests_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job_name=PIPELINE_JOB,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Turns the API's queued sync and pattern-detection requests into pipeline_job runs (run_key = "
            "request id) and records their runs' progress on the requests."
        ),
    )
    def sync_requests(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        return evaluate(settings, context.instance, SyncRequestQueue(settings.control_store_path))

    return sync_requests
