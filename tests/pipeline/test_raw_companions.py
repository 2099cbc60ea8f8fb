"""raw_activity stores three streams (activity, continuous heart rate, cardio load) in one asset.

One quick ingest run against the real loopback simulator, with the continuous heart-rate endpoint failing for
one of the two users: everything else of both users is stored, byte for byte what the client fetches, and the
failure is logged and reported in the asset's metadata instead of being lost.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pytest

from polar_pipeline.accesslink import AccessLinkClient, FetchResult, TransientError
from polar_pipeline.operations import sync
from tests.conftest import Pipeline

DAYS = 5


def _stored(pipeline: Pipeline, table: str, user: str) -> dict[str, Any]:
    rows = pipeline.query(f"SELECT day::VARCHAR, payload::VARCHAR FROM raw.{table} WHERE user_id = ?", [user])
    return {day: json.loads(payload) for day, payload in rows}


def _fetched(result: FetchResult[Any], first: date, last: date) -> dict[str, Any]:
    return {r.key: r.payload for r in result.records if first <= r.day <= last}


def test_raw_activity_stores_three_streams_and_reports_a_failed_one(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    healthy, failing = pipeline.add_users(2)
    tokens = {str(u["x_user_id"]): u["access_token"] for u in pipeline.users}
    fetch_continuous_hr = AccessLinkClient.fetch_continuous_hr

    def flaky(client: AccessLinkClient, token: str, first: date, last: date) -> Any:
        if token == tokens[failing]:
            raise TransientError("503 server error; gave up after 7 attempts")
        return fetch_continuous_hr(client, token, first, last)

    monkeypatch.setattr(AccessLinkClient, "fetch_continuous_hr", flaky)
    today = pipeline.sim_today()
    outcome = sync(
        pipeline.settings, days=DAYS, until=today, job_name="ingest_job", instance=pipeline.instance
    )
    # A companion's failure does not fail the asset: the next sync fetches it again.
    assert outcome.success

    first = today - timedelta(days=DAYS - 1)
    with AccessLinkClient(pipeline.sim_url, token_url="", client_id="", client_secret="") as client:
        for user in (healthy, failing):
            token = tokens[user]
            expected = {
                "activity": _fetched(client.fetch_activity(token, first, today), first, today),
                "cardio_load": _fetched(client.fetch_cardio_load(token, first, today), first, today),
                "continuous_heart_rate": _fetched(
                    fetch_continuous_hr(client, token, first, today), first, today
                ),
            }
            assert all(len(payloads) == DAYS for payloads in expected.values()), user
            for table, payloads in expected.items():
                stored = {day: p for day, p in _stored(pipeline, table, user).items() if day in payloads}
                if table == "continuous_heart_rate" and user == failing:
                    assert stored == {}
                else:
                    assert stored == payloads, (table, user)

    (materialization, *_) = [
        event.asset_materialization
        for event in pipeline.instance.all_logs(
            outcome.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        if event.asset_materialization
        and event.asset_materialization.asset_key == dg.AssetKey("raw_activity")
    ]
    assert materialization is not None
    metadata = materialization.metadata
    failures = metadata["stream_failures"].value
    assert failures == {
        "continuous_heart_rate": {failing: "TransientError: 503 server error; gave up after 7 attempts"}
    }
    streams = metadata["streams"].value
    assert isinstance(streams, dict) and set(streams) == {"activity", "continuous_heart_rate", "cardio_load"}
    assert streams["continuous_heart_rate"]["users"] == [healthy]
    assert sorted(streams["cardio_load"]["users"]) == sorted([healthy, failing])
    assert metadata["records_received"].value == sum(s["received"] for s in streams.values())


def test_a_failed_main_stream_fails_the_asset_after_everything_fetched_is_stored(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    (user,) = pipeline.add_users(1)

    def down(client: AccessLinkClient, token: str, first: date, last: date, **_: Any) -> Any:
        raise TransientError("502 server error; gave up after 7 attempts")

    monkeypatch.setattr(AccessLinkClient, "fetch_activity", down)
    today = pipeline.sim_today()
    outcome = sync(pipeline.settings, days=2, until=today, job_name="ingest_job", instance=pipeline.instance)
    assert not outcome.success  # activity is the asset's own stream: retried by the next run, as before
    assert _stored(pipeline, "activity", user) == {}
    # Its companions were fetched and are kept.
    assert len(_stored(pipeline, "continuous_heart_rate", user)) >= 2
    assert len(_stored(pipeline, "cardio_load", user)) >= 2
    (failure,) = [
        event
        for event in pipeline.instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        if event.step_key == "raw_activity"
    ]
    assert failure.dagster_event is not None
    message = failure.dagster_event.step_failure_data.error
    assert message is not None and "activity: fetch failed for user(s)" in message.message
