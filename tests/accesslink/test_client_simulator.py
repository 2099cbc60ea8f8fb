"""The client against the real loopback simulator: OAuth, request plans, fault survival, rate limits."""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from polar_pipeline.accesslink import (
    AccessLinkClient,
    FetchResult,
    InvalidGrant,
    NotRegistered,
    ReauthorizationRequired,
    Record,
)
from polar_pipeline.simulator import FaultConfig, SimulatorConfig, create_app
from tests.accesslink.payloads import FIXTURES, load
from tests.support.servers import serve_asgi

TODAY = date(2026, 3, 1)
YEAR_FIRST = TODAY - timedelta(days=364)
STREAMS = ("sleep", "nightly_recharge", "activity", "exercise")


@dataclass
class Sim:
    url: str
    admin: httpx.Client
    tokens: dict[int, str]

    def set_faults(self, **changes: Any) -> None:
        self.admin.post("/sim/faults", json=changes).raise_for_status()

    def reset(self) -> None:
        self.admin.post("/sim/faults", json=FaultConfig().to_json()).raise_for_status()
        self.admin.post("/sim/stats/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.admin.get("/sim/stats").json()
        return stats

    def fault_log(self, user: int) -> list[dict[str, Any]]:
        return [entry for entry in self.admin.get("/sim/faults/log").json() if entry["user"] == user]

    def client(self, **options: Any) -> AccessLinkClient:
        settings: dict[str, Any] = {
            "timeout": 10.0,
            "backoff_base": 0.01,
            "backoff_max": 0.1,
            "rng": random.Random(1),
        }
        return AccessLinkClient(
            self.url,
            token_url=f"{self.url}/v2/oauth2/token",
            client_id="sim-client",
            client_secret="sim-secret",
            **(settings | options),
        )


@contextmanager
def running_sim() -> Iterator[Sim]:
    """A simulator whose three users registered 45 days ago, so exercises are visible."""
    app = create_app(SimulatorConfig(seed=42, users=3, today=TODAY))
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=30.0) as admin:
        users = admin.get("/sim/users").json()
        tokens = {user["x_user_id"]: user["access_token"] for user in users}
        admin.post("/sim/clock", json={"today": (TODAY - timedelta(days=45)).isoformat()}).raise_for_status()
        simulator = Sim(url, admin, tokens)
        with simulator.client() as client:
            for user_id, token in tokens.items():
                assert client.register_user(token, f"member-{user_id}").user is not None
        admin.post("/sim/clock", json={"today": TODAY.isoformat()}).raise_for_status()
        simulator.reset()
        yield simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    """One simulator for the module."""
    with running_sim() as simulator:
        yield simulator


@pytest.fixture
def own_sim() -> Iterator[Sim]:
    """A simulator of the test's own: nothing another test started (a slow fault still being answered)
    can land in its request counts."""
    with running_sim() as simulator:
        yield simulator


@pytest.fixture
def clean_sim(sim: Sim) -> Iterator[Sim]:
    sim.reset()
    yield sim
    sim.reset()


USER = 10000001


def fetch_all(client: AccessLinkClient, token: str, *, exercise_samples: bool) -> dict[str, FetchResult[Any]]:
    return {
        "sleep": client.fetch_sleep(token, YEAR_FIRST, TODAY),
        "nightly_recharge": client.fetch_nightly_recharge(token, YEAR_FIRST, TODAY),
        "activity": client.fetch_activity(token, YEAR_FIRST, TODAY),
        "exercise": client.fetch_exercises(token, YEAR_FIRST, TODAY, samples=exercise_samples),
    }


def payloads(result: FetchResult[Any]) -> dict[str, dict[str, Any]]:
    records: list[Record] = result.records
    return {record.key: record.payload for record in records}


@pytest.fixture(scope="module")
def baseline(sim: Sim) -> dict[str, dict[str, dict[str, Any]]]:
    """Fault-free fetch of every stream (exercises without samples, as in the fault tests)."""
    sim.reset()
    with sim.client() as client:
        results = fetch_all(client, sim.tokens[USER], exercise_samples=False)
    assert all(result.rejected == [] for result in results.values())
    return {stream: payloads(result) for stream, result in results.items()}


# -- OAuth, registration, auth errors --------------------------------------------------------------------


def authorize(admin: httpx.Client, user_id: int, redirect_uri: str | None) -> str:
    params = {"response_type": "code", "client_id": "sim-client", "state": "s-1", "sim_user": str(user_id)}
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    response = admin.get("/oauth2/authorization", params=params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["state"] == ["s-1"]
    return query["code"][0]


def test_oauth_registration_and_auth_errors() -> None:
    app = create_app(SimulatorConfig(seed=7, users=2, today=TODAY))
    redirect = "http://localhost:8765/callback"
    with serve_asgi(app) as url, httpx.Client(base_url=url) as admin:
        simulator = Sim(url, admin, {})
        with simulator.client() as client:
            code = authorize(admin, 10000002, redirect)
            grant = client.exchange_code(code, redirect_uri=redirect)
            assert grant.x_user_id == 10000002 and grant.token_type == "bearer"
            with pytest.raises(InvalidGrant):
                client.exchange_code(code, redirect_uri=redirect)  # codes are single-use
            with pytest.raises(InvalidGrant):
                client.exchange_code(authorize(admin, 10000002, redirect))  # redirect_uri must be repeated
            with pytest.raises(NotRegistered, match="not registered or consent missing"):
                client.fetch_sleep(grant.access_token, TODAY, TODAY)
            first = client.register_user(grant.access_token, "member-2")
            assert first.user is not None and first.user.polar_user_id == 10000002
            assert first.user.member_id == "member-2" and not first.already_registered
            second = client.register_user(grant.access_token, "member-2")
            assert second.already_registered and second.user is None
            user = client.get_user(grant.access_token, grant.x_user_id)
            assert user is not None and user.polar_user_id == 10000002
            assert client.fetch_sleep(grant.access_token, TODAY - timedelta(days=6), TODAY).records
            with pytest.raises(ReauthorizationRequired, match="re-authorize"):
                client.fetch_sleep("sim-not-a-token", TODAY, TODAY)
            client.deregister_user(grant.access_token, grant.x_user_id)
            with pytest.raises(ReauthorizationRequired):
                client.fetch_exercises(grant.access_token, TODAY, TODAY)


# -- request plan ----------------------------------------------------------------------------------------


def test_year_fetch_costs_what_the_docstring_says(clean_sim: Sim) -> None:
    with clean_sim.client() as client:
        token = clean_sim.tokens[USER]
        sleep = client.fetch_sleep(token, YEAR_FIRST, TODAY)
        recharge = client.fetch_nightly_recharge(token, YEAR_FIRST, TODAY)
        activity = client.fetch_activity(token, YEAR_FIRST, TODAY)
        exercises = client.fetch_exercises(token, YEAR_FIRST, TODAY)
        heart_rate = client.fetch_continuous_hr(token, YEAR_FIRST, TODAY)
        cardio = client.fetch_cardio_load(token, YEAR_FIRST, TODAY)
    results: list[FetchResult[Any]] = [sleep, recharge, activity, exercises, heart_rate, cardio]
    assert [result.requests for result in results] == [1, 1, 14, 1, 1, 1]
    assert all(result.server_today == TODAY and result.rejected == [] for result in results)
    assert [result.days_outside_window for result in results] == [337, 337, 0, 335, 337, 185]
    assert len(heart_rate.records) == 28 and len(cardio.records) == 180
    assert any(day.cardio_load is not None for day in cardio.records)
    assert len(activity.records) == 365 and activity.records[0].day == YEAR_FIRST
    assert 20 <= len(sleep.records) <= 29 and 20 <= len(recharge.records) <= 29
    assert exercises.records and all(
        exercise.samples and exercise.heart_rate_zones for exercise in exercises.records
    )
    stats = clean_sim.stats()
    assert stats["requests"] == 19 and stats["rate_limited"] == 0
    assert stats["by_route"] == {
        "GET /v3/users/sleep": 1,
        "GET /v3/users/nightly-recharge": 1,
        "GET /v3/users/activities": 14,
        "GET /v3/exercises": 1,
        "GET /v3/users/continuous-heart-rate": 1,
        "GET /v3/users/cardio-load/period/days/{count}": 1,
    }
    for night in sleep.records:  # anchored series: strictly increasing across midnight, from the start
        moments = [moment for moment, _ in night.hypnogram]
        assert all(earlier < later for earlier, later in pairwise(moments))
        assert abs(moments[0] - night.sleep_start) < timedelta(minutes=1)
        assert moments[-1] <= night.sleep_end


def test_simulator_payloads_have_the_fixture_key_sets(clean_sim: Sim) -> None:
    token = clean_sim.tokens[USER]
    with clean_sim.client() as client:
        nights = client.fetch_sleep(token, TODAY - timedelta(days=27), TODAY).records
        recharges = client.fetch_nightly_recharge(token, TODAY - timedelta(days=27), TODAY).records
        days = client.fetch_activity(token, TODAY - timedelta(days=6), TODAY, samples=True).records
        plain_days = client.fetch_activity(token, TODAY - timedelta(days=6), TODAY).records
        exercises = client.fetch_exercises(token, TODAY - timedelta(days=29), TODAY).records
        heart_rate = client.fetch_continuous_hr(token, TODAY - timedelta(days=2), TODAY).records
    assert nights and recharges and days and exercises and heart_rate
    assert {frozenset(n.payload) for n in nights} == {frozenset(load("sleep_sample.json"))}
    assert {frozenset(r.payload) for r in recharges} == {frozenset(load("recharge_sample.json"))}
    (real_day,) = load("full_sample.json")
    assert {frozenset(d.payload) for d in days} == {frozenset(real_day)}
    assert {frozenset(d.payload) for d in plain_days} == {frozenset(real_day) - {"samples"}}
    for day in days:
        assert (
            set(real_day["samples"])
            <= set(day.payload["samples"])
            <= {
                "date",
                "steps",
                "activity_zones",
                "inactivity_stamps",
            }
        )
        zone_keys = {frozenset(z) for z in day.payload["samples"]["activity_zones"]["samples"]}
        assert zone_keys == {frozenset({"timestamp", "zone"})}
    real_exercises = load("exercises_real_sample.json")
    real_union = set().union(*real_exercises)
    real_common = set(real_exercises[0]).intersection(*real_exercises)
    assert set().union(*(e.payload for e in exercises)) == real_union
    for exercise in exercises:
        assert real_common <= set(exercise.payload) <= real_union
        assert set(exercise.payload["heart_rate"]) == set(real_exercises[0]["heart_rate"])
        assert set(exercise.payload["training_load_pro"]) == set(real_exercises[0]["training_load_pro"])
        assert {frozenset(z) for z in exercise.payload["heart_rate_zones"]} == {
            frozenset(real_exercises[0]["heart_rate_zones"][0])
        }
        assert {frozenset(s) for s in exercise.payload["samples"]} == {
            frozenset(real_exercises[0]["samples"][0])
        }
    real_chr = json.loads((FIXTURES / "heart_rate_sample.json").read_text())
    assert {frozenset(day.payload) for day in heart_rate} == {frozenset(real_chr)}
    assert {frozenset(s) for day in heart_rate for s in day.payload["heart_rate_samples"]} == {
        frozenset(real_chr["heart_rate_samples"][0])
    }


# -- faults ----------------------------------------------------------------------------------------------

REQUEST_FAULTS: dict[str, dict[str, Any]] = {
    "server_errors": {"server_error_rate": 0.3, "server_error_burst": 2},
    "slow": {"slow_rate": 0.25, "slow_seconds": 2.0},  # beyond the client's 0.8 s timeout
    "malformed_json": {"malformed_json_rate": 0.3},
    "spurious_429_with_retry_after": {"spurious_429_rate": 0.3, "retry_after": True},
    "spurious_429_without_retry_after": {"spurious_429_rate": 0.3, "retry_after": False},
    "duplicate_exercises": {"duplicate_exercises": True},
}
BASELINE_REQUESTS = 17  # sleep 1, recharge 1, activity 14, exercises 1


@pytest.mark.parametrize("fault", list(REQUEST_FAULTS))
def test_request_faults_are_survived(
    clean_sim: Sim, baseline: dict[str, dict[str, dict[str, Any]]], fault: str
) -> None:
    """Same records and payloads as the fault-free fetch. Waits are recorded, not slept: these faults
    do not depend on time (the slow fault still costs real time through the client's timeout)."""
    clean_sim.set_faults(**REQUEST_FAULTS[fault])
    waits: list[float] = []
    with clean_sim.client(timeout=0.8, sleep=waits.append) as client:
        results = fetch_all(client, clean_sim.tokens[USER], exercise_samples=False)
    for stream, result in results.items():
        assert result.rejected == [], stream
        assert payloads(result) == baseline[stream], stream  # every good record exactly once, unchanged
        assert len(result.records) == len(baseline[stream])
    requests = sum(result.requests for result in results.values())
    retries = requests - BASELINE_REQUESTS
    stats = clean_sim.stats()
    if fault == "duplicate_exercises":
        served = clean_sim.admin.get(
            "/v3/exercises", headers={"Authorization": f"Bearer {clean_sim.tokens[USER]}"}
        ).json()
        assert len(served) > len({item["id"] for item in served}) and retries == 0
    elif fault == "spurious_429_with_retry_after":
        assert (
            retries == stats["rate_limited"] > 0 and waits == [1.0] * retries
        )  # the simulator's Retry-After
    elif fault == "spurious_429_without_retry_after":
        assert retries == stats["rate_limited"] > 0 and len(waits) == retries
        assert all(0 <= wait <= 0.1 for wait in waits)  # exponential back-off, capped by backoff_max
    else:
        assert retries > 0 and len(waits) == retries and all(0 <= wait <= 0.1 for wait in waits)


RECORD_FAULTS: dict[str, dict[str, float]] = {
    "missing_field": {"missing_field_rate": 0.15},
    "out_of_range": {"out_of_range_rate": 0.15},
    "both": {"missing_field_rate": 0.12, "out_of_range_rate": 0.12},
}


@pytest.mark.parametrize("fault", list(RECORD_FAULTS))
def test_bad_records_are_rejected_and_match_the_fault_log(
    clean_sim: Sim, baseline: dict[str, dict[str, dict[str, Any]]], fault: str
) -> None:
    clean_sim.set_faults(**RECORD_FAULTS[fault])
    with clean_sim.client() as client:
        results = fetch_all(client, clean_sim.tokens[USER], exercise_samples=False)
    logged: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    kinds = set()
    for entry in clean_sim.fault_log(USER):
        kinds.add(entry["kind"])
        logged[entry["stream"]][entry["key"]].add(entry["field"])
    assert kinds == {name.removesuffix("_rate") for name in RECORD_FAULTS[fault]}
    assert set(logged) == set(STREAMS)  # the rates are high enough to hit every stream
    for stream, result in results.items():
        bad = logged[stream]
        good = {key: payload for key, payload in baseline[stream].items() if key not in bad}
        assert payloads(result) == good, stream
        matched = Counter(match_logged_key(reject, bad, baseline[stream]) for reject in result.rejected)
        assert matched == Counter(set(bad)), stream  # each logged record rejected exactly once
        for reject in result.rejected:
            key = match_logged_key(reject, bad, baseline[stream])
            assert reject.stream == stream and reject.key in (key, None)
            assert any(field in reject.reason for field in bad[key]), (reject.reason, bad[key])


def match_logged_key(reject: Any, bad: dict[str, set[str]], baseline: dict[str, dict[str, Any]]) -> str:
    """The logged record a rejected payload is: the baseline payload changed only in the logged fields."""
    received = json.loads(reject.payload)
    matches = []
    for key, fields in bad.items():
        original = baseline[key]
        allowed = fields | ({"sleep_start_time"} if "sleep_end_time" in fields else set())
        changed = {
            name for name in received.keys() | original.keys() if received.get(name) != original.get(name)
        }
        if changed and changed <= allowed:
            matches.append(key)
    assert len(matches) == 1, (reject, matches)
    return matches[0]


# -- rate limits -----------------------------------------------------------------------------------------


def test_pacing_keeps_under_a_tiny_limit_with_the_real_clock(own_sim: Sim) -> None:
    own_sim.set_faults(short_limit=5, short_window_seconds=1.0)
    own_sim.admin.post("/sim/stats/reset").raise_for_status()  # fresh windows, starting now
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    token = own_sim.tokens[USER]
    started = time.monotonic()
    with own_sim.client(sleep=sleep) as client:
        for offset in range(20):
            day = TODAY - timedelta(days=offset % 28)
            client.fetch_sleep(token, day, day)
        assert client.requests_made == 20
    stats = own_sim.stats()
    assert stats["requests"] == 20 and stats["rate_limited"] == 0
    assert stats["max_in_short_window"] <= 5
    assert slept and time.monotonic() - started >= 3.0  # 20 requests at ≤ 5 per 1 s window
