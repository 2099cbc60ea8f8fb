"""Sync and pattern requests end to end: the API queues, the real sensor requests runs, the real job runs.

The test plays the Dagster daemon's part, in process: it evaluates the real ``sync_requests`` sensor on the
test instance, applies what the tick asks for (the ``users`` partitions, then each RunRequest executed as a
run of the real job with the RunRequest's tags), and evaluates the sensor again. The API under test is a
real server on loopback over the same POLAR_HOME; every request sends the user's own key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any
from uuid import uuid4

import dagster as dg
import duckdb
import httpx
import pytest

from polar_api.app import create_app
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.connections import AccountMismatch, open_control_store
from polar_pipeline.definitions import build_definitions
from polar_pipeline.defs.requests.sensors import ANALYTICS_KEYS, REQUEST_TAG, SENSOR_NAME
from polar_pipeline.defs.serving.sensors import PUBLISH_JOB
from polar_pipeline.operations import QUIET_RUN_CONFIG, add_user
from polar_pipeline.orchestration.partitions import USERS_PARTITIONS_NAME
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.conftest import TEST_TODAY, Pipeline, open_pipeline
from tests.support.servers import serve_asgi

DAYS = 7
"""Days per sync: few, to keep the runs short (AccessLink's sleep list still brings its whole window)."""
REQUESTED_DAYS = {TEST_TODAY - timedelta(days=n) for n in range(DAYS)}


@dataclass
class World:
    """A private simulator, POLAR_HOME and Dagster instance, its definitions, and the API over them."""

    pipeline: Pipeline
    defs: dg.Definitions
    api: httpx.Client
    keys: ApiKeyStore

    def sim_user(self, index: int) -> tuple[str, str]:
        """The simulator's user ``index``: (user id, Polar token)."""
        user = self.pipeline.users[index]
        return str(user["x_user_id"]), str(user["access_token"])

    def connect_by_cli(self, index: int) -> str:
        """What ``polar-flow users add`` does: registered, token stored, partition added."""
        user_id, token = self.sim_user(index)
        add_user(self.pipeline.settings, user_id, token, instance=self.pipeline.instance)
        return user_id

    def key_headers(self, user_id: str) -> dict[str, str]:
        return {"X-API-Key": self.keys.create(user_id, name="sync tests").secret}

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        sensor = self.defs.resolve_sensor_def(SENSOR_NAME)
        result = sensor(dg.build_sensor_context(instance=self.pipeline.instance, definitions=self.defs))
        assert isinstance(result, dg.SensorResult | dg.SkipReason)
        return result

    def launch(
        self, tick: dg.SensorResult | dg.SkipReason, *, once_started: Callable[[str], None] | None = None
    ) -> list[dg.ExecuteInProcessResult]:
        """What the daemon does with a tick: add the requested partitions, then run each RunRequest.

        ``once_started(run_id)`` is called while each run executes, right after it has started.
        """
        assert isinstance(tick, dg.SensorResult), tick
        instance = self.pipeline.instance
        for partitions in tick.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(partitions.partitions_def_name, list(partitions.partition_keys))
        results = []
        for run_request in tick.run_requests or []:
            assert run_request.job_name is not None and run_request.run_key is not None
            run_id = str(uuid4())  # chosen here, so the listener can be attached before the run starts
            if once_started is not None:
                instance.add_event_listener(run_id, partial(_on_run_start, run_id, once_started))
            job = self.defs.resolve_job_def(run_request.job_name)
            tags = dict(run_request.tags) | {
                "dagster/run_key": run_request.run_key,
                "dagster/sensor_name": SENSOR_NAME,
            }
            results.append(
                job.execute_in_process(
                    run_config=QUIET_RUN_CONFIG,
                    instance=instance,
                    tags=tags,
                    asset_selection=run_request.asset_selection,
                    run_id=run_id,
                    raise_on_error=False,
                )
            )
        return results

    def publish_after(self, run_id: str) -> None:
        """The publish sensor on the finished run, and the publish run it asks for."""
        instance = self.pipeline.instance
        run = instance.get_run_by_id(run_id)
        assert run is not None
        event = dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name, message="done"
        )
        sensor = self.defs.resolve_sensor_def("publish_after_successful_run")
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run, dagster_event=event
        )
        assert isinstance(sensor(context), dg.RunRequest)
        publish_job = self.defs.resolve_job_def(PUBLISH_JOB)
        assert publish_job.execute_in_process(run_config=QUIET_RUN_CONFIG, instance=instance).success

    def status(self, user_id: str, headers: dict[str, str], request_id: str) -> dict[str, Any]:
        response = self.api.get(
            f"/api/v1/users/{user_id}/sync/status", params={"request_id": request_id}, headers=headers
        )
        assert response.status_code == 200, response.text
        (request,) = response.json()["requests"]
        assert request["request_id"] == request_id
        return dict(request)

    def sim_account(self, user_id: str) -> dict[str, Any]:
        """The simulator's view of the account (registered, revoked)."""
        return dict(next(u for u in self.pipeline.sim("GET", "/sim/users") if str(u["x_user_id"]) == user_id))

    def raw_sleep_days(self, user_id: str) -> set[date]:
        rows = self.pipeline.query("SELECT day FROM raw.sleep WHERE user_id = ?", [user_id])
        return {day for (day,) in rows}

    def served_sleep_days(self, token: str) -> set[date]:
        """What AccessLink (the simulator) serves for the token: the independent side of the check."""
        response = httpx.get(
            f"{self.pipeline.sim_url}/v3/users/sleep", headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        return {date.fromisoformat(night["date"]) for night in response.json()["nights"]}


def _on_run_start(run_id: str, callback: Callable[[str], None], entry: dg.EventLogEntry) -> None:
    if entry.dagster_event is not None and entry.dagster_event.event_type == dg.DagsterEventType.RUN_START:
        callback(run_id)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        open_pipeline(tmp_path_factory.mktemp("sync-trigger"), monkeypatch) as pipeline,
        serve_asgi(create_app(pipeline.settings)) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as api,
    ):
        defs = build_definitions(pipeline.settings)
        yield World(pipeline, defs, api, ApiKeyStore(pipeline.settings.control_store_path))


def test_sync_and_pattern_requests_are_queued_run_by_the_sensor_and_followed_to_success(world: World) -> None:
    user = world.connect_by_cli(0)
    _, token = world.sim_user(0)
    headers = world.key_headers(user)

    response = world.api.post(f"/api/v1/users/{user}/sync/trigger", params={"days": DAYS}, headers=headers)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert (queued["user_id"], queued["kind"], queued["status"], queued["days"]) == (
        user,
        "sync",
        "queued",
        DAYS,
    )
    assert queued["status_url"] == f"/api/v1/users/{user}/sync/status?request_id={queued['request_id']}"
    assert response.headers["Location"] == queued["status_url"]
    again = world.api.post(f"/api/v1/users/{user}/sync/trigger", headers=headers)
    assert again.status_code == 202 and again.json()["request_id"] == queued["request_id"]
    assert world.status(user, headers, queued["request_id"])["status"] == "queued"

    tick = world.tick()
    assert isinstance(tick, dg.SensorResult) and not tick.dynamic_partitions_requests  # a known user
    assert [run_request.run_key for run_request in tick.run_requests or []] == [queued["request_id"]]
    assert world.status(user, headers, queued["request_id"])["status"] == "queued"  # no run yet
    seen_while_running: list[tuple[str, dict[str, Any]]] = []

    def look(run_id: str) -> None:  # the sensor's next tick while the run executes, and the API's answer
        world.tick()
        seen_while_running.append((run_id, world.status(user, headers, queued["request_id"])))

    (run,) = world.launch(tick, once_started=look)
    assert run.success
    ((started_run_id, running),) = seen_while_running
    assert started_run_id == run.run_id
    assert (running["status"], running["run_id"], running["attempts"]) == ("running", run.run_id, 1)
    assert running["finished_at"] is None
    stored_run = world.pipeline.instance.get_run_by_id(run.run_id)
    assert stored_run is not None and stored_run.tags[REQUEST_TAG] == queued["request_id"]
    assert isinstance(world.tick(), dg.SkipReason)  # nothing queued any more
    done = world.status(user, headers, queued["request_id"])
    assert (done["status"], done["run_id"], done["attempts"], done["error"]) == (
        "succeeded",
        run.run_id,
        1,
        None,
    )
    assert done["finished_at"] is not None

    # The data is in the warehouse: every night AccessLink serves (its sleep list is the whole window).
    served = world.served_sleep_days(token)
    assert len(served) >= 20 and max(served) == TEST_TODAY
    assert world.raw_sleep_days(user) == served
    materialized = {event.asset_key for event in run.get_asset_materialization_events()}
    assert set(ANALYTICS_KEYS) <= materialized and dg.AssetKey("raw_sleep") in materialized

    # The publish sensor publishes after it, as after any run: the snapshot now knows the user.
    world.publish_after(run.run_id)
    pointer = read_pointer(world.pipeline.settings.snapshots_dir)
    assert pointer is not None
    con = duckdb.connect(str(pointer.path), read_only=True)
    try:
        days = {
            day
            for (day,) in con.execute(
                "SELECT day FROM marts.daily_metrics WHERE user_id = ?", [user]
            ).fetchall()
        }
    finally:
        con.close()
    assert days == REQUESTED_DAYS  # the marts were built for the requested days, and only those

    # Pattern detection: the analytics assets again, from these marts, without a call to AccessLink.
    world.pipeline.sim("POST", "/sim/stats/reset")
    detect = world.api.post(f"/api/v1/users/{user}/patterns/detect", params={"days": 2}, headers=headers)
    assert detect.status_code == 202 and detect.json()["kind"] == "patterns"
    (patterns_run,) = world.launch(world.tick())
    assert patterns_run.success
    recomputed = {event.asset_key for event in patterns_run.get_asset_materialization_events()}
    assert recomputed == set(ANALYTICS_KEYS)
    assert world.pipeline.sim("GET", "/sim/stats")["requests"] == 0
    world.tick()
    detected = world.status(user, headers, detect.json()["request_id"])
    assert (detected["status"], detected["run_id"]) == ("succeeded", patterns_run.run_id)
    listed = world.api.get(f"/api/v1/users/{user}/sync/status", params={"limit": 2}, headers=headers)
    assert [(item["request_id"], item["kind"]) for item in listed.json()["requests"]] == [
        (detect.json()["request_id"], "patterns"),
        (queued["request_id"], "sync"),
    ]


def test_a_new_user_connected_with_a_token_gets_a_partition_and_is_synced(world: World) -> None:
    user, token = world.sim_user(1)
    headers = world.key_headers(user)
    assert world.api.get(f"/api/v1/users/{user}/sync/status", headers=headers).status_code == 404
    unknown = world.api.post(f"/api/v1/users/{user}/sync/trigger", headers=headers)
    assert unknown.status_code == 404 and "X-Polar-Token" in unknown.json()["detail"]

    response = world.api.post(
        f"/api/v1/users/{user}/sync/trigger",
        params={"days": DAYS},
        headers=headers | {"X-Polar-Token": token},
    )
    assert response.status_code == 202, response.text
    assert token not in response.text and token not in str(response.headers)
    # Stored encrypted (readable with the key, absent from the file's bytes); the request itself made no
    # AccessLink call, so the account is registered only by the sensor, below.
    assert open_control_store(world.pipeline.settings).token_for(user) == token
    assert open_control_store(world.pipeline.settings).get_user(user).polar_user_id is None
    assert not world.sim_account(user)["registered"]
    store_path = world.pipeline.settings.control_store_path
    on_disk = b"".join(
        path.read_bytes()
        for path in (store_path, store_path.with_name(store_path.name + "-wal"))
        if path.exists()
    )
    assert len(on_disk) > 0 and token.encode() not in on_disk

    assert user not in world.pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
    tick = world.tick()
    assert isinstance(tick, dg.SensorResult)
    assert [list(p.partition_keys) for p in tick.dynamic_partitions_requests or []] == [[user]]
    assert world.sim_account(user)["registered"]
    assert open_control_store(world.pipeline.settings).get_user(user).polar_user_id == int(user)
    (run,) = world.launch(tick)
    assert run.success
    assert user in world.pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)
    world.tick()
    done = world.status(user, headers, response.json()["request_id"])
    assert (done["status"], done["run_id"]) == ("succeeded", run.run_id)
    served = world.served_sleep_days(token)
    assert len(served) >= 20 and world.raw_sleep_days(user) == served

    # Another user cannot see this request, even with its id.
    other = world.connect_by_cli(0)
    hidden = world.api.get(
        f"/api/v1/users/{other}/sync/status",
        params={"request_id": response.json()["request_id"]},
        headers=world.key_headers(other),
    )
    assert hidden.status_code == 404


def test_a_failing_run_fails_the_request_with_the_runs_error(world: World) -> None:
    user = world.connect_by_cli(2)
    _, token = world.sim_user(2)
    headers = world.key_headers(user)
    # The person revokes access at Polar (deregistration revokes the token): every fetch now gets a 401.
    revoked = httpx.delete(
        f"{world.pipeline.sim_url}/v3/users/{user}", headers={"Authorization": f"Bearer {token}"}
    )
    assert revoked.status_code == 204
    response = world.api.post(f"/api/v1/users/{user}/sync/trigger", params={"days": 1}, headers=headers)
    assert response.status_code == 202
    (run,) = world.launch(world.tick())
    assert not run.success
    world.tick()
    failed = world.status(user, headers, response.json()["request_id"])
    assert (failed["status"], failed["run_id"], failed["attempts"]) == ("failed", run.run_id, 1)
    assert failed["finished_at"] is not None
    assert "raw_sleep" in failed["error"] and "no user could be fetched" in failed["error"]
    assert token not in failed["error"]
    assert open_control_store(world.pipeline.settings).get_user(user).status == "reauthorize"


def test_a_token_accesslink_rejects_fails_the_request_and_is_never_repeated(world: World) -> None:
    user, bad_token = "new-person", "not-a-polar-token-xyz"
    headers = world.key_headers(user)
    response = world.api.post(
        f"/api/v1/users/{user}/sync/trigger",
        params={"days": 1},
        headers=headers | {"X-Polar-Token": bad_token},
    )
    assert response.status_code == 202 and bad_token not in response.text
    assert isinstance(world.tick(), dg.SkipReason)  # registration refused: no run
    failed = world.status(user, headers, response.json()["request_id"])
    assert (failed["status"], failed["run_id"], failed["attempts"]) == ("failed", None, 0)
    assert "rejected" in failed["error"] and "401" in failed["error"] and bad_token not in failed["error"]
    assert open_control_store(world.pipeline.settings).get_user(user).status == "reauthorize"
    assert user not in world.pipeline.instance.get_dynamic_partitions(USERS_PARTITIONS_NAME)

    for malformed in ("x" * 5000, "a-tab\tinside"):
        refused = world.api.post(
            f"/api/v1/users/{user}/sync/trigger", headers=headers | {"X-Polar-Token": malformed}
        )
        assert refused.status_code == 400 and "x" * 100 not in refused.text and "inside" not in refused.text
    assert (
        world.api.post(
            "/api/v1/users/nobody-here/patterns/detect", headers=world.key_headers("nobody-here")
        ).status_code
        == 404
    )
    for days in (0, 366):
        bad = world.api.post(f"/api/v1/users/{user}/sync/trigger", params={"days": days}, headers=headers)
        assert bad.status_code == 422


def test_the_cli_refuses_a_token_that_opens_another_account(world: World) -> None:
    """``users add`` with somebody else's token may not continue this user's history with their data."""
    user = world.connect_by_cli(0)
    _, own_token = world.sim_user(0)
    _, foreign_token = world.sim_user(1)
    with pytest.raises(AccountMismatch, match="another Polar account"):
        add_user(world.pipeline.settings, user, foreign_token, instance=world.pipeline.instance)
    assert open_control_store(world.pipeline.settings).token_for(user) == own_token
