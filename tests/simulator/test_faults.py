"""Fault injection and rate limiting: every fault kind is observable, deterministic and logged."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from polar_pipeline.simulator import FaultConfig, SimulatorConfig, create_app
from tests.support.servers import serve_asgi

TODAY = dt.date(2025, 6, 30)
ATHLETE = 10000001


class Sim:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.tokens = {user["x_user_id"]: user["access_token"] for user in client.get("/sim/users").json()}

    def get(self, path: str, user: int = ATHLETE, **params: str) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[user]}"}, params=params)

    def faults(self, **changes: Any) -> dict[str, Any]:
        response = self.client.post("/sim/faults", json=changes)
        assert response.status_code == 200, response.text
        return dict(response.json())


def start(
    faults: FaultConfig | None = None, register_at: dt.date = TODAY - dt.timedelta(days=20)
) -> Iterator[Sim]:
    config = SimulatorConfig(
        seed=5, users=2, today=register_at, history_days=120, faults=faults or FaultConfig()
    )
    with serve_asgi(create_app(config)) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        sim = Sim(client)
        for user, token in sim.tokens.items():
            client.post(
                "/v3/users", headers={"Authorization": f"Bearer {token}"}, json={"member-id": str(user)}
            )
        client.post("/sim/clock", json={"today": TODAY.isoformat()})
        client.post("/sim/stats/reset")
        yield sim


@pytest.fixture
def sim() -> Iterator[Sim]:
    yield from start()


def test_fault_config_round_trips_and_merges(sim: Sim) -> None:
    assert sim.client.get("/sim/faults").json() == FaultConfig().to_json()
    merged = sim.faults(server_error_rate=0.5, short_limit=10)
    assert (
        merged["server_error_rate"] == 0.5 and merged["short_limit"] == 10 and merged["retry_after"] is True
    )
    assert sim.client.post("/sim/faults", json={"no_such_fault": 1}).status_code == 400
    assert sim.client.post("/sim/faults", json={"retry_after": "yes"}).status_code == 400
    assert sim.client.post("/sim/faults", json=[1]).status_code == 400
    assert sim.faults(short_limit=None)["short_limit"] is None


def test_server_errors_come_in_bursts_and_are_recoverable(sim: Sim) -> None:
    sim.faults(server_error_rate=1.0)
    statuses = {sim.get("/v3/users/sleep").status_code for _ in range(12)}
    assert statuses <= {500, 502, 503} and len(statuses) >= 2
    sim.faults(server_error_rate=0.15, server_error_burst=3)
    sequence = [sim.get("/v3/users/activities").status_code for _ in range(80)]
    errors = [i for i, status in enumerate(sequence) if status >= 500]
    assert errors and 200 in sequence
    for i in errors:  # each error starts or continues a run of at least three
        run_start = i
        while run_start > 0 and sequence[run_start - 1] >= 500:
            run_start -= 1
        run_end = i
        while run_end + 1 < len(sequence) and sequence[run_end + 1] >= 500:
            run_end += 1
        assert run_end - run_start + 1 >= 3 or run_end == len(sequence) - 1
    sim.faults(server_error_rate=0.0)
    assert sim.get("/v3/users/sleep").status_code == 200
    assert sim.client.get("/sim/stats").json()["by_route"]["server_error"] == len(errors) + 12


def test_request_faults_follow_the_same_sequence_for_the_same_seed() -> None:
    runs = []
    for _ in range(2):
        for sim in start(FaultConfig(server_error_rate=0.3, malformed_json_rate=0.2, spurious_429_rate=0.1)):
            runs.append([(r.status_code, r.content) for r in (sim.get("/v3/users/sleep") for _ in range(30))])
    assert runs[0] == runs[1]
    assert {status for status, _ in runs[0]} >= {200, 429}


def test_slow_responses(sim: Sim) -> None:
    sim.faults(slow_rate=1.0, slow_seconds=0.4)
    started = time.perf_counter()
    assert sim.get("/v3/users/sleep/available").status_code == 200
    assert time.perf_counter() - started >= 0.4
    sim.faults(slow_rate=0.0)
    started = time.perf_counter()
    sim.get("/v3/users/sleep/available")
    assert time.perf_counter() - started < 0.4


def test_malformed_json_is_a_truncated_200(sim: Sim) -> None:
    sim.faults(malformed_json_rate=1.0)
    response = sim.get("/v3/users/nightly-recharge")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert sim.get("/v3/users/sleep/1999-01-01").status_code == 404  # errors stay intact
    sim.faults(malformed_json_rate=0.0)
    assert response.content in sim.get("/v3/users/nightly-recharge").content


def test_missing_fields_are_fixed_per_record_and_logged(sim: Sim) -> None:
    clean = sim.get("/v3/users/sleep").json()["nights"]
    sim.faults(missing_field_rate=0.3)
    first = sim.get("/v3/users/sleep").json()["nights"]
    second = sim.get("/v3/users/sleep").json()["nights"]
    assert first == second
    broken = [night for night in first if {"date", "sleep_start_time"} - set(night)]
    assert 2 <= len(broken) <= len(first) - 2
    log = sim.client.get("/sim/faults/log").json()
    sleep_log = [entry for entry in log if entry["stream"] == "sleep"]
    assert len(sleep_log) == len(broken)
    assert all(entry["kind"] == "missing_field" and entry["user"] == ATHLETE for entry in sleep_log)
    served_by_end = {night["sleep_end_time"]: night for night in first}
    for entry in sleep_log:
        original = next(night for night in clean if night["date"] == entry["key"])
        served = served_by_end[original["sleep_end_time"]]
        assert entry["field"] in original and entry["field"] not in served
        assert {k: v for k, v in served.items()} == {k: v for k, v in original.items() if k != entry["field"]}
    sim.faults(missing_field_rate=1.0)
    assert all("start_time" not in item for item in sim.get("/v3/users/activities").json())
    assert all("date" not in item for item in sim.get("/v3/users/nightly-recharge").json()["recharges"])
    exercises = sim.get("/v3/exercises").json()
    assert exercises and all({"id", "start_time"} - set(item) for item in exercises)
    streams = {entry["stream"] for entry in sim.client.get("/sim/faults/log").json()}
    assert streams == {"sleep", "activity", "nightly_recharge", "exercise"}
    sim.client.post("/sim/stats/reset")
    assert sim.client.get("/sim/faults/log").json() == []


def test_out_of_range_values(sim: Sim) -> None:
    sim.faults(out_of_range_rate=1.0)
    for night in sim.get("/v3/users/sleep").json()["nights"]:
        swapped = night["sleep_end_time"] < night["sleep_start_time"]
        assert night["sleep_score"] == 250 or swapped
    assert {
        r["heart_rate_variability_avg"] for r in sim.get("/v3/users/nightly-recharge").json()["recharges"]
    } == {-5}
    assert {item["steps"] for item in sim.get("/v3/users/activities").json()} == {-100}
    assert {item["heart_rate"]["average"] for item in sim.get("/v3/exercises").json()} == {400}
    kinds = {(entry["stream"], entry["kind"]) for entry in sim.client.get("/sim/faults/log").json()}
    assert ("activity", "out_of_range") in kinds and ("exercise", "out_of_range") in kinds


def test_duplicate_exercises_in_lists_only(sim: Sim) -> None:
    normal = sim.get("/v3/exercises").json()
    sim.faults(duplicate_exercises=True)
    duplicated = sim.get("/v3/exercises").json()
    ids = [item["id"] for item in duplicated]
    assert len(ids) > len(set(ids)) == len(normal)
    by_id = sim.get(f"/v3/exercises/{ids[0]}")
    assert by_id.status_code == 200 and by_id.json() == normal[0]


def test_spurious_429_with_and_without_retry_after(sim: Sim) -> None:
    sim.faults(spurious_429_rate=1.0)
    throttled = sim.get("/v3/users/sleep")
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
    sim.faults(retry_after=False)
    assert "retry-after" not in sim.get("/v3/users/sleep").headers
    stats = sim.client.get("/sim/stats").json()
    assert stats["rate_limited"] == 2 and stats["requests"] == 0


def test_rate_limit_with_a_tiny_limit(sim: Sim) -> None:
    sim.faults(short_limit=3, long_limit=50)
    served = [sim.get("/v3/users/sleep/available") for _ in range(3)]
    assert [r.status_code for r in served] == [200, 200, 200]
    assert [r.headers["ratelimit-usage"] for r in served] == ["1, 1", "2, 2", "3, 3"]
    assert served[-1].headers["ratelimit-limit"] == "3, 50"
    rejected = sim.get("/v3/users/sleep/available")
    assert rejected.status_code == 429
    short_reset = int(rejected.headers["ratelimit-reset"].split(", ")[0])
    assert int(rejected.headers["retry-after"]) == short_reset and 0 < short_reset <= 900
    assert rejected.headers["ratelimit-usage"] == "3, 3"  # rejected requests are not counted
    assert sim.client.get("/sim/clock").status_code == 200  # admin routes are never limited
    stats = sim.client.get("/sim/stats").json()
    assert stats["requests"] == 3 and stats["rate_limited"] == 1
    assert stats["max_in_short_window"] == 3 and stats["max_in_long_window"] == 3
    assert stats["by_route"] == {"GET /v3/users/sleep/available": 3}
    # A short window of one second resets quickly.
    sim.faults(short_window_seconds=1.0)
    time.sleep(1.1)
    assert sim.get("/v3/users/sleep/available").status_code == 200
