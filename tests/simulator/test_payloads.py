"""Simulator payloads: key sets equal the real fixtures', and every persona keeps the invariants of
docs/accesslink.md §12.2."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from polar_pipeline.simulator import SimulatorConfig, create_app
from polar_pipeline.simulator.exercises import ExerciseRenderer
from polar_pipeline.simulator.payloads import (
    ans_charge_status,
    nightly_recharge_status,
    render_activity,
    render_recharge,
    render_sleep,
)
from polar_pipeline.simulator.physiology import UserModel
from tests.support.fixtures import ACCESSLINK_FIXTURES
from tests.support.servers import serve_asgi

TODAY = dt.date(2025, 6, 30)
FIXTURES = ACCESSLINK_FIXTURES

# Key sets of the real payloads (checked against the fixture files when they are present).
SLEEP_KEYS = {
    "polar_user",
    "date",
    "sleep_start_time",
    "sleep_end_time",
    "device_id",
    "continuity",
    "continuity_class",
    "light_sleep",
    "deep_sleep",
    "rem_sleep",
    "unrecognized_sleep_stage",
    "sleep_score",
    "total_interruption_duration",
    "sleep_charge",
    "sleep_goal",
    "sleep_rating",
    "short_interruption_duration",
    "long_interruption_duration",
    "sleep_cycles",
    "group_duration_score",
    "group_solidity_score",
    "group_regeneration_score",
    "hypnogram",
    "heart_rate_samples",
}
RECHARGE_KEYS = {
    "polar_user",
    "date",
    "heart_rate_avg",
    "beat_to_beat_avg",
    "heart_rate_variability_avg",
    "breathing_rate_avg",
    "nightly_recharge_status",
    "ans_charge",
    "ans_charge_status",
    "hrv_samples",
    "breathing_samples",
}
ACTIVITY_KEYS = {
    "start_time",
    "end_time",
    "active_duration",
    "inactive_duration",
    "daily_activity",
    "calories",
    "active_calories",
    "steps",
    "inactivity_alert_count",
    "distance_from_steps",
    "samples",
}
EXERCISE_KEYS = {
    "id",
    "upload_time",
    "polar_user",
    "device",
    "device_id",
    "start_time",
    "start_time_utc_offset",
    "duration",
    "heart_rate",
    "sport",
    "has_route",
    "detailed_sport_info",
    "calories",
    "fat_percentage",
    "carbohydrate_percentage",
    "protein_percentage",
    "heart_rate_zones",
    "samples",
    "training_load_pro",
}
EXERCISE_OPTIONAL_KEYS = {"distance", "running_index"}
TRAINING_LOAD_PRO_KEYS = {
    "cardio-load",
    "cardio-load-interpretation",
    "muscle-load",
    "muscle-load-interpretation",
    "perceived-load",
    "perceived-load-interpretation",
    "user-rpe",
}
ZONE_KEYS = {"index", "lower_limit", "upper_limit", "in_zone"}
SAMPLE_KEYS = {"recording_rate", "sample_type", "data"}
CHR_KEYS = {"polar_user", "date", "heart_rate_samples"}


def test_embedded_key_sets_match_the_real_fixture_files() -> None:
    def load(name: str) -> Any:
        return json.loads((FIXTURES / name).read_text())

    assert set(load("sleep_sample.json")) == SLEEP_KEYS
    assert set(load("recharge_sample.json")) == RECHARGE_KEYS
    assert set(load("full_sample.json")[0]) == ACTIVITY_KEYS
    assert set(load("heart_rate_sample.json")) == CHR_KEYS
    for exercise in load("exercises_real_sample.json"):
        assert set(exercise) - EXERCISE_OPTIONAL_KEYS == EXERCISE_KEYS
        assert set(exercise["training_load_pro"]) == TRAINING_LOAD_PRO_KEYS
        assert {frozenset(zone) for zone in exercise["heart_rate_zones"]} == {frozenset(ZONE_KEYS)}
        assert {frozenset(sample) for sample in exercise["samples"]} == {frozenset(SAMPLE_KEYS)}
    running = load("exercises_real_sample.json")[1]
    assert set(running) >= EXERCISE_OPTIONAL_KEYS


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[httpx.Client, dict[int, str]]]:
    app = create_app(SimulatorConfig(seed=3, users=4, today=TODAY - dt.timedelta(days=20), history_days=300))
    with serve_asgi(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        users = {user["x_user_id"]: user["access_token"] for user in client.get("/sim/users").json()}
        for user, token in users.items():
            client.post(
                "/v3/users", headers={"Authorization": f"Bearer {token}"}, json={"member-id": str(user)}
            )
        client.post("/sim/clock", json={"today": TODAY.isoformat()})
        yield client, users


def get(client: httpx.Client, token: str, path: str, **params: str) -> Any:
    response = client.get(path, headers={"Authorization": f"Bearer {token}"}, params=params)
    assert response.status_code == 200, (path, response.status_code)
    return response.json()


def test_served_sleep_recharge_and_chr_key_sets(served: tuple[httpx.Client, dict[int, str]]) -> None:
    client, users = served
    for token in users.values():
        nights = get(client, token, "/v3/users/sleep")["nights"]
        recharges = get(client, token, "/v3/users/nightly-recharge")["recharges"]
        assert nights and recharges
        assert all(set(night) == SLEEP_KEYS for night in nights)
        assert all(set(recharge) == RECHARGE_KEYS for recharge in recharges)
        assert set(get(client, token, "/v3/users/continuous-heart-rate/2025-06-29")) == CHR_KEYS


def test_served_activity_key_sets_with_and_without_sample_flags(
    served: tuple[httpx.Client, dict[int, str]],
) -> None:
    client, users = served
    token = users[10000002]
    plain = get(client, token, "/v3/users/activities")
    assert all(set(item) == ACTIVITY_KEYS - {"samples"} for item in plain)
    zones = get(client, token, "/v3/users/activities", activity_zones="true")
    assert all(set(item) == ACTIVITY_KEYS for item in zones)
    assert all(set(item["samples"]) == {"date", "activity_zones"} for item in zones)
    zone_samples = zones[0]["samples"]["activity_zones"]["samples"]
    assert {frozenset(sample) for sample in zone_samples} == {frozenset({"timestamp", "zone"})}
    assert {sample["zone"] for sample in zone_samples} <= {
        "SEDENTARY",
        "LIGHT",
        "SLEEP",
        "MODERATE",
        "VIGOROUS",
    }
    everything = get(
        client,
        token,
        "/v3/users/activities/2025-06-20",
        steps="true",
        activity_zones="true",
        inactivity_stamps="true",
    )
    assert set(everything["samples"]) == {"date", "steps", "activity_zones", "inactivity_stamps"}
    assert set(everything["samples"]["steps"]) == {"interval_ms", "total_steps", "samples"}
    assert {frozenset(s) for s in everything["samples"]["steps"]["samples"]} == {
        frozenset({"steps", "timestamp"})
    }
    # Naive timestamps drop ":SS" when the seconds are zero, like the real ones.
    stamps = [sample["timestamp"] for sample in everything["samples"]["activity_zones"]["samples"]]
    assert all(len(stamp) in (16, 19) for stamp in stamps) and any(len(stamp) == 19 for stamp in stamps)


def test_served_exercise_key_sets(served: tuple[httpx.Client, dict[int, str]]) -> None:
    client, users = served
    exercises = get(client, users[10000001], "/v3/exercises", samples="true", zones="true")
    exercises += get(client, users[10000003], "/v3/exercises", samples="true", zones="true")
    assert len(exercises) >= 10
    sports = set()
    for exercise in exercises:
        keys = set(exercise)
        assert keys - EXERCISE_OPTIONAL_KEYS == EXERCISE_KEYS
        assert ("distance" in keys) == (exercise["sport"] in ("RUNNING", "CYCLING") or exercise["has_route"])
        if "running_index" in keys:
            assert exercise["sport"] == "RUNNING"
        assert set(exercise["heart_rate"]) == {"average", "maximum"}
        assert set(exercise["training_load_pro"]) == TRAINING_LOAD_PRO_KEYS
        assert [zone["index"] for zone in exercise["heart_rate_zones"]] == [0, 1, 2, 3, 4]
        assert all(set(zone) == ZONE_KEYS for zone in exercise["heart_rate_zones"])
        assert all(set(sample) == SAMPLE_KEYS for sample in exercise["samples"])
        assert all(isinstance(sample["sample_type"], int) for sample in exercise["samples"])
        assert exercise["duration"].startswith("PT") and exercise["duration"].endswith("S")
        assert "." in exercise["duration"] and "H" not in exercise["duration"]
        sports.add(exercise["sport"])
    assert {"RUNNING", "OTHER"} <= sports
    plain = get(client, users[10000001], "/v3/exercises")
    assert all(not {"samples", "heart_rate_zones", "route"} & set(item) for item in plain)
    with_route = get(client, users[10000001], "/v3/exercises", route="true")
    routed = [item for item in with_route if item["has_route"]]
    assert routed and all(item["route"] for item in routed)
    assert set(routed[0]["route"][0]) == {"latitude", "longitude", "time", "satellites", "fix"}
    assert all("route" not in item for item in with_route if not item["has_route"])


# --------------------------------------------------------------------------------------- invariants


def parse_offset_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def unwrap_minutes(keys: list[str]) -> list[int]:
    """HH:MM keys anchored to the first one, adding a day whenever the clock goes backwards."""
    minutes = []
    day = 0
    previous = -1
    for key in keys:
        value = int(key[:2]) * 60 + int(key[3:])
        if value < previous:
            day += 1
        previous = value
        minutes.append(day * 1440 + value)
    return minutes


@pytest.fixture(scope="module", params=[0, 1, 2, 3], ids=["athlete", "casual", "irregular", "no_workouts"])
def persona_model(request: pytest.FixtureRequest) -> UserModel:
    return UserModel(seed=5, index=request.param, history_start=dt.date(2024, 6, 1), history_days=395)


def test_sleep_invariants_over_a_year(persona_model: UserModel) -> None:
    nights = [s for s in persona_model.days(dt.date(2024, 6, 1), dt.date(2025, 6, 30)) if s.worn]
    assert len(nights) > 330
    for state in nights:
        night = render_sleep(persona_model, state)
        start, end = parse_offset_time(night["sleep_start_time"]), parse_offset_time(night["sleep_end_time"])
        stages = (
            night["light_sleep"]
            + night["deep_sleep"]
            + night["rem_sleep"]
            + night["unrecognized_sleep_stage"]
        )
        assert (end - start).total_seconds() == stages + night["total_interruption_duration"]
        assert night["total_interruption_duration"] == (
            night["short_interruption_duration"] + night["long_interruption_duration"]
        )
        assert night["date"] == end.date().isoformat() and end.utcoffset() == start.utcoffset()
        assert night["continuity_class"] == int(night["continuity"]) and 1.0 <= night["continuity"] <= 5.0
        assert 1 <= night["sleep_score"] <= 100 and night["sleep_charge"] in (-1, 1, 2, 3, 4, 5)
        assert 0 <= night["sleep_rating"] <= 5 and 3 <= night["sleep_cycles"] <= 7
        keys = list(night["hypnogram"])
        values = list(night["hypnogram"].values())
        minutes = unwrap_minutes(keys)
        assert minutes == sorted(set(minutes)), "hypnogram keys are chronological (with midnight roll-over)"
        assert keys[0] == start.strftime("%H:%M") and keys[-1] == end.strftime("%H:%M") and values[-1] == 0
        assert set(values) <= {0, 1, 2, 3, 4, 5}
        totals = dict.fromkeys(range(6), 0)
        for (value, first), last in zip(zip(values, minutes, strict=True), minutes[1:], strict=False):
            totals[value] += (last - first) * 60
        assert totals[2] + totals[3] == night["light_sleep"] and totals[4] == night["deep_sleep"]
        assert totals[1] == night["rem_sleep"] and totals[5] == night["unrecognized_sleep_stage"]
        assert totals[0] == night["total_interruption_duration"]
        measured = [bpm for bpm in night["heart_rate_samples"].values() if bpm]  # 0 = no signal
        assert 35 <= sum(measured) / len(measured) <= 100
        hr_minutes = unwrap_minutes(list(night["heart_rate_samples"]))
        assert all(b - a == 5 for a, b in itertools.pairwise(hr_minutes))


def test_recharge_invariants_over_a_year(persona_model: UserModel) -> None:
    nights = [s for s in persona_model.days(dt.date(2024, 6, 1), dt.date(2025, 6, 30)) if s.has_recharge]
    assert len(nights) > 300
    statuses = set()
    for state in nights:
        recharge = render_recharge(persona_model, state)
        night = render_sleep(persona_model, state)
        assert recharge["date"] == night["date"]
        assert abs(recharge["beat_to_beat_avg"] - 60000 / recharge["heart_rate_avg"]) <= 0.012 * 60000 / 40
        assert recharge["heart_rate_variability_avg"] == round(math.exp(state.ln_rmssd))
        assert (
            -10 <= recharge["ans_charge"] <= 10 and round(recharge["ans_charge"], 1) == recharge["ans_charge"]
        )
        assert recharge["ans_charge_status"] == ans_charge_status(recharge["ans_charge"])
        assert recharge["nightly_recharge_status"] == nightly_recharge_status(
            recharge["ans_charge"], night["sleep_charge"]
        )
        hrv_minutes = unwrap_minutes(list(recharge["hrv_samples"]))
        start_minute = unwrap_minutes([night["sleep_start_time"][11:16]])[0]
        assert hrv_minutes[0] == (start_minute + 2) % 1440
        assert all(b - a == 5 for a, b in itertools.pairwise(hrv_minutes))
        assert 8 <= recharge["breathing_rate_avg"] <= 22
        statuses.add(recharge["nightly_recharge_status"])
    ans = [render_recharge(persona_model, s)["ans_charge_status"] for s in nights[::7]]
    assert len(set(ans)) >= 3 and len(statuses) >= 3


def test_activity_invariants_over_a_year(persona_model: UserModel) -> None:
    now = dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC)
    days = persona_model.days(dt.date(2024, 6, 1), dt.date(2025, 6, 30))
    for index, state in enumerate(days):
        with_steps = index % 30 == 0
        activity = render_activity(persona_model, state, now, steps=with_steps, activity_zones=with_steps)
        steps = activity["steps"]
        assert steps > 0
        assert 0.55 * steps <= activity["distance_from_steps"] <= 0.75 * steps
        bmr = persona_model.profile.bmr_kcal(state.date)
        assert abs(activity["calories"] - activity["active_calories"] - bmr) <= 25
        assert 1100 <= activity["calories"] - activity["active_calories"] <= 2200
        assert (
            activity["start_time"] == f"{state.date}T00:00"
            and activity["end_time"] == f"{state.date}T23:59:59"
        )
        if with_steps:
            samples = activity["samples"]["steps"]["samples"]
            stamps = [dt.datetime.fromisoformat(s["timestamp"]) for s in samples]
            end = dt.datetime.combine(state.date + dt.timedelta(days=1), dt.time())
            expanded = sum(
                s["steps"] * int((b - a).total_seconds() // 60)
                for s, a, b in zip(samples, stamps, [*stamps[1:], end], strict=True)
            )
            assert expanded == steps == activity["samples"]["steps"]["total_steps"]
            zones = activity["samples"]["activity_zones"]["samples"]
            assert zones[0]["timestamp"] == f"{state.date}T00:00" and zones[0]["zone"] == "SLEEP"


def test_exercise_invariants(persona_model: UserModel) -> None:
    renderer = ExerciseRenderer()
    sessions = [
        (state, session)
        for state in persona_model.days(dt.date(2025, 3, 1), dt.date(2025, 5, 31))
        for session in state.sessions
    ]
    if persona_model.persona.name == "no_workouts":
        assert sessions == []
        return
    assert len(sessions) >= 12
    hr_max = persona_model.profile.hr_max
    for state, session in sessions[:: 3 if persona_model.persona.name == "endurance_athlete" else 1]:
        exercise = renderer.render(persona_model, session, samples=True, zones=True)
        duration = float(exercise["duration"][2:-1])
        assert (
            exercise["fat_percentage"] + exercise["carbohydrate_percentage"] + exercise["protein_percentage"]
            == 100
        )
        limits = [zone["lower_limit"] for zone in exercise["heart_rate_zones"]]
        limits.append(exercise["heart_rate_zones"][-1]["upper_limit"])
        assert limits == [round(hr_max * p) for p in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)]
        in_zone = sum(parse_zone_duration(zone["in_zone"]) for zone in exercise["heart_rate_zones"])
        assert in_zone <= duration
        series = {sample["sample_type"]: sample["data"].split(",") for sample in exercise["samples"]}
        assert all(len(values) == int(duration / 1) for values in series.values())
        heart_rate = [int(v) for v in series[0] if v != "null"]
        assert exercise["heart_rate"]["maximum"] == max(heart_rate)
        assert exercise["heart_rate"]["average"] == round(sum(heart_rate) / len(heart_rate))
        if "distance" in exercise:
            assert abs(float(series[10][-1]) - exercise["distance"]) <= 15
            assert exercise["distance"] > 500
        start = dt.datetime.fromisoformat(exercise["start_time"])
        assert start.tzinfo is None and start.date() == state.date
        assert exercise["start_time_utc_offset"] == state.offset_minutes
        upload = dt.datetime.fromisoformat(exercise["upload_time"])
        utc_end = (
            start - dt.timedelta(minutes=exercise["start_time_utc_offset"]) + dt.timedelta(seconds=duration)
        )
        assert upload >= utc_end.replace(tzinfo=dt.UTC) - dt.timedelta(seconds=1)
        assert 5 <= exercise["training_load_pro"]["cardio-load"] <= 400 or session.kind in (
            "mobility",
            "core",
        )


def parse_zone_duration(text: str) -> int:
    total = 0
    number = ""
    for char in text[2:]:
        if char.isdigit():
            number += char
        else:
            total += int(number) * {"H": 3600, "M": 60, "S": 1}[char]
            number = ""
    return total
