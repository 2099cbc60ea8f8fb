"""The request queue (``polar_pipeline.sync_requests``) and the sensor that turns it into runs.

The sensor tests give it runs in a test Dagster instance, in the states the daemon and the run workers put
them in (created, failed, retried, succeeded), and read what it records on the requests. The real runs,
through the API, are in ``tests/api/test_sync_trigger.py``.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from cryptography.fernet import Fernet

from polar_pipeline.control_store import ControlStore
from polar_pipeline.defs.requests.sensors import (
    ANALYTICS_KEYS,
    REQUEST_TAG,
    SENSOR_NAME,
    WILL_RETRY_TAG,
    build_sync_requests_sensor,
    request_tags,
)
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME, user_day_key
from polar_pipeline.settings import Settings
from polar_pipeline.sync_requests import InvalidTransition, Status, SyncRequest, SyncRequestQueue
from tests.conftest import TEST_TODAY
from tests.support.instances import ephemeral_instance


@pytest.fixture
def queue(tmp_path: Path) -> SyncRequestQueue:
    return SyncRequestQueue(tmp_path / "control.sqlite3")


# ------------------------------------------------------------------------------------------------ the queue


def test_a_second_trigger_returns_the_open_request_instead_of_queueing_another(
    queue: SyncRequestQueue,
) -> None:
    first = queue.enqueue("alice", "sync", 28)
    again = queue.enqueue("alice", "sync", 90)
    assert first.created and not again.created
    assert again.request == first.request  # unchanged: still 28 days
    assert first.request.status == "queued" and first.request.attempts == 0 and first.request.run_id is None
    other_kind = queue.enqueue("alice", "patterns", 28)
    other_user = queue.enqueue("bob", "sync", 28)
    assert other_kind.created and other_user.created
    ids = {first.request.request_id, other_kind.request.request_id, other_user.request.request_id}
    assert len(ids) == 3
    assert len(queue.open_requests()) == 3


@pytest.mark.parametrize("status", ["running", "retrying"])
def test_a_running_or_retrying_request_is_still_the_open_one(queue: SyncRequestQueue, status: Status) -> None:
    first = queue.enqueue("alice", "sync", 28).request
    queue.record_progress(first.request_id, status, run_id="run-1", attempts=1)
    again = queue.enqueue("alice", "sync", 28)
    assert not again.created and again.request.request_id == first.request_id


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_a_finished_request_makes_room_for_a_new_one(queue: SyncRequestQueue, outcome: Status) -> None:
    first = queue.enqueue("alice", "sync", 28).request
    queue.record_progress(first.request_id, "running", run_id="run-1", attempts=1)
    queue.record_progress(first.request_id, outcome, run_id="run-1", attempts=1)
    second = queue.enqueue("alice", "sync", 7)
    assert second.created and second.request.request_id != first.request_id
    assert second.request.days == 7 and second.request.status == "queued"


def test_two_writers_at_once_still_get_one_open_request(queue: SyncRequestQueue) -> None:
    barrier = threading.Barrier(8)
    results: list[tuple[str, bool]] = []

    def trigger() -> None:
        barrier.wait()
        enqueued = SyncRequestQueue(queue.path).enqueue("alice", "sync", 28)
        results.append((enqueued.request.request_id, enqueued.created))

    threads = [threading.Thread(target=trigger) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({request_id for request_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_the_table_itself_refuses_a_second_open_request_per_user_and_kind(queue: SyncRequestQueue) -> None:
    """The partial unique index: even a writer that skips ``enqueue`` cannot add a second open request."""
    queue.enqueue("alice", "sync", 28)
    con = sqlite3.connect(queue.path)
    try:
        insert = (
            "INSERT INTO sync_requests (request_id, user_id, kind, days, status, attempts, created_at, "
            "updated_at) VALUES (?, 'alice', 'sync', 28, ?, 0, 'now', 'now')"
        )
        with pytest.raises(sqlite3.IntegrityError):
            con.execute(insert, ("req_by_hand", "running"))
        con.execute(insert, ("req_finished", "succeeded"))  # finished ones are not limited
        con.commit()
    finally:
        con.close()


def test_progress_moves_forward_and_a_finished_request_never_changes(queue: SyncRequestQueue) -> None:
    request = queue.enqueue("alice", "sync", 28).request
    running = queue.record_progress(request.request_id, "running", run_id="run-1", attempts=1)
    assert (running.status, running.run_id, running.attempts, running.finished_at) == (
        "running",
        "run-1",
        1,
        None,
    )
    assert running.updated_at > request.updated_at
    unchanged = queue.record_progress(request.request_id, "running", run_id="run-1", attempts=1)
    assert unchanged.updated_at == running.updated_at  # nothing new: nothing written
    retrying = queue.record_progress(
        request.request_id, "retrying", run_id="run-2", attempts=2, error="raw_sleep: boom"
    )
    assert (retrying.status, retrying.run_id, retrying.error) == ("retrying", "run-2", "raw_sleep: boom")
    done = queue.record_progress(request.request_id, "succeeded", run_id="run-2", attempts=2)
    assert done.status == "succeeded" and done.error is None
    assert done.finished_at is not None and done.finished_at == done.updated_at
    for status in ("running", "failed", "queued"):
        with pytest.raises(InvalidTransition):
            queue.record_progress(request.request_id, status, run_id="run-3", attempts=3)
    assert queue.get("alice", request.request_id) == done


def test_a_long_error_is_cut_to_a_bounded_length(queue: SyncRequestQueue) -> None:
    request = queue.enqueue("alice", "sync", 28).request
    failed = queue.record_progress(request.request_id, "failed", run_id="r", attempts=1, error="x" * 10_000)
    assert failed.error is not None and 100 < len(failed.error) <= 2000 and failed.error.endswith("…")


def test_another_users_request_is_invisible(queue: SyncRequestQueue) -> None:
    mine = queue.enqueue("alice", "sync", 28).request
    assert queue.get("alice", mine.request_id) == mine
    assert queue.get("bob", mine.request_id) is None
    assert queue.get("alice", "req_0000000000000000") is None
    assert queue.latest("bob") == []


def test_latest_lists_newest_first_across_kinds(queue: SyncRequestQueue) -> None:
    made = []
    for kind in ("sync", "patterns", "sync"):
        request = queue.enqueue("alice", kind, 28).request
        queue.record_progress(request.request_id, "failed", run_id=None, attempts=0, error="e")
        made.append(request.request_id)
    queue.enqueue("bob", "sync", 28)
    assert [request.request_id for request in queue.latest("alice")] == made[::-1]
    assert [request.request_id for request in queue.latest("alice", limit=2)] == made[:0:-1]


@pytest.mark.parametrize("days", [0, 366, -1])
def test_days_outside_1_to_365_are_refused(queue: SyncRequestQueue, days: int) -> None:
    with pytest.raises(ValueError, match="days"):
        queue.enqueue("alice", "sync", days)


def test_unknown_kinds_and_user_ids_that_break_partition_keys_are_refused(queue: SyncRequestQueue) -> None:
    with pytest.raises(ValueError, match="kind"):
        queue.enqueue("alice", "backfill", 28)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid user id"):
        queue.enqueue("a|b", "sync", 28)


# ------------------------------------------------------------------------------------------------ the sensor


class SensorBench:
    """A queue, a control store with one user, a Dagster instance, and the real sensor over them."""

    def __init__(self, settings: Settings, instance: dg.DagsterInstance, user: str) -> None:
        self.settings = settings
        self.instance = instance
        self.user = user
        self.queue = SyncRequestQueue(settings.control_store_path)
        self.store = ControlStore(settings.control_store_path, settings.encryption_key.encode())
        self.sensor = build_sync_requests_sensor(settings)
        self.job = dg.GraphDefinition(name="pipeline_job", node_defs=[]).to_job()

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        context = dg.build_sensor_context(instance=self.instance, sensor_name=SENSOR_NAME)
        result = self.sensor(context)
        assert isinstance(result, dg.SensorResult | dg.SkipReason)
        return result

    def request(self, request_id: str) -> SyncRequest:
        (found,) = [r for r in self.queue.latest(self.user, 50) if r.request_id == request_id]
        return found

    def run_for(self, request: SyncRequest, **tags: str) -> dg.DagsterRun:
        """A run as the daemon creates it for a RunRequest: not started yet, carrying the request's tags."""
        return self.instance.create_run_for_job(
            job_def=self.job,
            tags=request_tags(request) | tags,
            status=dg.DagsterRunStatus.NOT_STARTED,
        )

    def succeed(self, run: dg.DagsterRun) -> None:
        event = dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name, message="done"
        )
        self.instance.report_dagster_event(event, run_id=run.run_id)


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """One in-memory instance for the module; each test has its own user in it (tests/support/instances.py
    says why it is not ``instance_for_test``)."""
    with ephemeral_instance() as instance:
        yield instance


USER_NUMBERS = itertools.count(1)
CLOSED_PORT_URL = "http://127.0.0.1:9"
"""AccessLink for these tests: nothing listens there, so a call fails at once and never leaves the host."""


@pytest.fixture
def bench(tmp_path: Path, instance: dg.DagsterInstance) -> SensorBench:
    settings = Settings(
        home=tmp_path / "home",
        encryption_key=Fernet.generate_key().decode(),
        accesslink_url=CLOSED_PORT_URL,
    )
    bench = SensorBench(settings, instance, user=f"user-{next(USER_NUMBERS)}")
    bench.store.upsert_user(bench.user, "a-polar-token", polar_user_id=1)  # registered: no AccessLink call
    return bench


def test_a_queued_sync_becomes_one_ranged_run_request_keyed_by_the_request(bench: SensorBench) -> None:
    request = bench.queue.enqueue(bench.user, "sync", 14).request
    result = bench.tick()
    assert isinstance(result, dg.SensorResult)
    (run_request,) = result.run_requests or []
    assert run_request.run_key == request.request_id
    assert run_request.job_name == "pipeline_job" and run_request.asset_selection is None
    first_day = TEST_TODAY - timedelta(days=13)
    assert run_request.tags["dagster/asset_partition_range_start"] == user_day_key(bench.user, first_day)
    assert run_request.tags["dagster/asset_partition_range_end"] == user_day_key(bench.user, TEST_TODAY)
    assert run_request.tags[REQUEST_TAG] == request.request_id
    # A user the instance does not know yet gets the users partition in the same tick.
    (added,) = result.dynamic_partitions_requests or []
    assert isinstance(added, dg.AddDynamicPartitionsRequest)
    assert (added.partitions_def_name, list(added.partition_keys)) == (USERS_PARTITIONS_NAME, [bench.user])
    assert bench.request(request.request_id).status == "queued"  # no run yet: still queued


def test_a_known_user_gets_no_partition_request_and_patterns_select_only_the_analytics(
    bench: SensorBench,
) -> None:
    bench.instance.add_dynamic_partitions(USERS_PARTITIONS_NAME, [bench.user])
    bench.store.set_time_zone(bench.user, "Pacific/Kiritimati")  # UTC+14: still ends on POLAR_TODAY
    request = bench.queue.enqueue(bench.user, "patterns", 3).request
    result = bench.tick()
    assert isinstance(result, dg.SensorResult)
    assert not result.dynamic_partitions_requests
    (run_request,) = result.run_requests or []
    assert run_request.run_key == request.request_id
    assert sorted(run_request.asset_selection or []) == sorted(ANALYTICS_KEYS)
    assert {key.to_user_string() for key in ANALYTICS_KEYS} >= {"analytics/insights", "analytics/trends"}
    assert run_request.tags["dagster/asset_partition_range_start"] == user_day_key(
        bench.user, TEST_TODAY - timedelta(days=2)
    )


def test_a_run_moves_the_request_to_running_then_succeeded(bench: SensorBench) -> None:
    request = bench.queue.enqueue(bench.user, "sync", 28).request
    run = bench.run_for(request)
    assert isinstance(bench.tick(), dg.SkipReason)  # the request has its run: nothing to request
    running = bench.request(request.request_id)
    assert (running.status, running.run_id, running.attempts) == ("running", run.run_id, 1)
    bench.succeed(run)
    bench.tick()
    done = bench.request(request.request_id)
    assert (done.status, done.run_id, done.error) == ("succeeded", run.run_id, None)
    assert done.finished_at is not None
    assert isinstance(bench.tick(), dg.SkipReason) and bench.queue.open_requests() == []


def test_a_failed_run_fails_the_request_with_the_runs_message(bench: SensorBench) -> None:
    request = bench.queue.enqueue(bench.user, "sync", 28).request
    run = bench.run_for(request)
    bench.instance.report_run_failed(run, "the run worker died")
    bench.tick()
    failed = bench.request(request.request_id)
    assert (failed.status, failed.run_id) == ("failed", run.run_id)
    assert failed.error is not None and "the run worker died" in failed.error


def test_a_retried_run_shows_retrying_then_the_retrys_outcome(bench: SensorBench) -> None:
    request = bench.queue.enqueue(bench.user, "sync", 28).request
    first = bench.run_for(request)
    bench.instance.report_run_failed(first, "AccessLink answered 503")
    bench.instance.add_run_tags(first.run_id, {WILL_RETRY_TAG: "true"})
    bench.tick()
    waiting = bench.request(request.request_id)
    assert (waiting.status, waiting.run_id, waiting.attempts) == ("retrying", first.run_id, 1)
    assert waiting.error is not None and "503" in waiting.error
    retry = bench.run_for(request, **{"dagster/retry_number": "1"})
    bench.tick()
    retrying = bench.request(request.request_id)
    assert (retrying.status, retrying.run_id, retrying.attempts) == ("retrying", retry.run_id, 2)
    assert retrying.error == waiting.error  # why the first attempt failed, while the retry runs
    bench.succeed(retry)
    bench.tick()
    done = bench.request(request.request_id)
    assert (done.status, done.run_id, done.attempts, done.error) == ("succeeded", retry.run_id, 2, None)


def test_a_request_whose_run_was_deleted_fails_instead_of_waiting_forever(bench: SensorBench) -> None:
    request = bench.queue.enqueue(bench.user, "sync", 28).request
    run = bench.run_for(request)
    bench.tick()
    bench.instance.delete_run(run.run_id)
    bench.tick()
    failed = bench.request(request.request_id)
    assert failed.status == "failed" and failed.error is not None and "no longer exists" in failed.error


def test_a_request_for_a_user_without_a_token_fails_without_a_run(bench: SensorBench) -> None:
    request = bench.queue.enqueue("nobody", "sync", 28).request
    result = bench.tick()
    assert isinstance(result, dg.SkipReason)
    (failed,) = bench.queue.latest("nobody")
    assert failed.request_id == request.request_id and failed.status == "failed"
    assert failed.error is not None and "unknown user nobody" in failed.error


def test_with_nothing_open_the_sensor_skips_without_asking_dagster(bench: SensorBench) -> None:
    result = bench.tick()
    assert isinstance(result, dg.SkipReason) and "no open" in (result.skip_message or "")


def test_a_new_users_token_that_cannot_be_registered_fails_the_request_with_the_reason(
    bench: SensorBench,
) -> None:
    bench.store.upsert_user("newcomer", "a-token-never-registered")  # as the API stores it: no Polar id
    request = bench.queue.enqueue("newcomer", "sync", 28).request
    assert isinstance(bench.tick(), dg.SkipReason)  # AccessLink unreachable: no run, and the reason kept
    (failed,) = bench.queue.latest("newcomer")
    assert failed.request_id == request.request_id and failed.status == "failed"
    assert failed.error == "AccessLink could not register the user: try again later"
    # A pattern request needs no AccessLink, so it runs for the same user.
    patterns = bench.queue.enqueue("newcomer", "patterns", 7).request
    result = bench.tick()
    assert isinstance(result, dg.SensorResult)
    assert [run_request.run_key for run_request in result.run_requests or []] == [patterns.request_id]
