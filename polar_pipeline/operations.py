"""What the CLI and the demo do, as plain functions: add a user, sync users over days, publish."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg

from polar_pipeline import clock
from polar_pipeline.connections import connect_user
from polar_pipeline.connections import open_control_store as open_control_store  # the CLI's, tests'
from polar_pipeline.control_store import StoredUser
from polar_pipeline.defs.pipeline.definitions import PIPELINE_JOB
from polar_pipeline.defs.serving.sensors import PUBLISH_JOB
from polar_pipeline.orchestration.home import dagster_instance
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME, range_tags
from polar_pipeline.progress import EventListener, execute_watched
from polar_pipeline.settings import Settings

# Console logging of in-process runs: our INFO lines, not Dagster's per-partition DEBUG events.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
PID_TAG = "polar-flow/pid"
HOST_TAG = "polar-flow/host"
DEFAULT_SYNC_DAYS = 28


def process_tags() -> dict[str, str]:
    """Tags that let a later CLI run tell whether this in-process run's process is still alive."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail in-process runs whose process died (e.g. SIGKILL) and free their pool slots.

    A killed run keeps its ``duckdb`` pool slot in the instance, and with a pool limit of 1 every later
    run would wait for it forever. No daemon monitors in-process runs, so the CLI cleans up before it
    starts: only runs it tagged itself, on this host, whose process no longer exists.
    """
    recovered = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    for record in records:
        run = record.dagster_run
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if pid is None or host != socket.gethostname() or _pid_alive(int(pid)):
            continue
        instance.report_run_failed(
            run, f"the process running it (pid {pid}) died; marked failed by polar-flow"
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(run.run_id)
    return recovered


def announce_other_runs(instance: dg.DagsterInstance) -> str | None:
    """Say on stderr, once, which other runs of this instance are in progress; returns the line said.

    Every step that touches the warehouse claims the ``duckdb`` pool's one slot, so a run started while
    another is in progress takes turns with it step by step, and waits in silence (Dagster logs the wait at
    DEBUG) whenever the other one holds the slot. Saying so up front tells the person why it is slower.
    """
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    if not records:
        return None
    runs = ", ".join(
        f"{record.dagster_run.run_id[:8]} ({record.dagster_run.job_name}, "
        f"pid {record.dagster_run.tags.get(PID_TAG, '?')})"
        for record in records
    )
    who = "another run is" if len(records) == 1 else f"{len(records)} other runs are"
    line = (
        f"polar-flow: {who} writing the warehouse ({runs}); this run's steps wait their turn "
        "(the duckdb pool: one writer at a time)"
    )
    print(line, file=sys.stderr, flush=True)
    return line


def add_user(
    settings: Settings, user_id: str, token: str, *, instance: dg.DagsterInstance | None = None
) -> StoredUser:
    """Register with AccessLink and store the token encrypted (``connections``), then add the partition."""
    stored = connect_user(settings, user_id, token)
    instance = instance or dagster_instance(settings)
    instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [user_id])
    return stored


@dataclass(frozen=True)
class SyncOutcome:
    run_id: str
    success: bool
    users: tuple[str, ...]
    first_day: date
    last_day: date
    partitions: int


class UnknownUsers(ValueError):
    """Users a sync names that the Dagster instance's ``users`` partitions do not have."""


def sync(
    settings: Settings,
    users: list[str] | None = None,
    *,
    days: int | None = None,
    until: date | None = None,
    first_day: date | None = None,
    job_name: str = PIPELINE_JOB,
    instance: dg.DagsterInstance | None = None,
    progress: EventListener | None = None,
) -> SyncOutcome:
    """Materialize ``job_name`` for the users' days ``first_day``..``until`` in ONE run.

    Without ``first_day``: the last ``days`` days (default 28) ending ``until`` (default today). A backfill
    names ``first_day``. ``progress`` receives every event of the run (``progress.RunProgress``).
    """
    from polar_pipeline.definitions import build_definitions

    instance = instance or dagster_instance(settings)
    known = instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
    chosen = users or known
    missing = [u for u in chosen if u not in known]
    if missing:
        raise UnknownUsers(f"unknown user(s) {', '.join(missing)}: add them with `polar-flow users add`")
    if not chosen:
        raise ValueError("no users yet: add one with `polar-flow users add`")
    last_day = until or clock.today(settings)
    if first_day is None:
        first_day = last_day - timedelta(days=(DEFAULT_SYNC_DAYS if days is None else days) - 1)
    elif days is not None:
        raise ValueError("give a sync either days or a first day, not both")
    if first_day > last_day:
        raise ValueError(f"the first day {first_day} is after the last day {last_day}")
    ordered = [u for u in known if u in chosen]  # the user dimension's range follows insertion order
    if ordered != known[known.index(ordered[0]) : known.index(ordered[-1]) + 1]:
        raise ValueError("several users in one run must be contiguous in the users partition order")
    tags = range_tags(ordered[0], first_day, last_day, last_user=ordered[-1])
    recover_abandoned_runs(instance)
    announce_other_runs(instance)
    job = build_definitions(settings).resolve_job_def(job_name)
    result = execute_watched(
        job, instance=instance, listener=progress, run_config=QUIET_RUN_CONFIG, tags=tags | process_tags()
    )
    return SyncOutcome(
        run_id=result.run_id,
        success=result.success,
        users=tuple(ordered),
        first_day=first_day,
        last_day=last_day,
        partitions=len(ordered) * ((last_day - first_day).days + 1),
    )


def publish(settings: Settings, *, instance: dg.DagsterInstance | None = None) -> bool:
    """Run the publish job once: the users' time zones recorded, then a new serving snapshot generation."""
    from polar_pipeline.definitions import build_definitions

    instance = instance or dagster_instance(settings)
    recover_abandoned_runs(instance)
    announce_other_runs(instance)
    job = build_definitions(settings).resolve_job_def(PUBLISH_JOB)
    result = job.execute_in_process(
        run_config=QUIET_RUN_CONFIG, instance=instance, tags=process_tags(), raise_on_error=False
    )
    return bool(result.success)
