"""Planted events and persona physiology, checked through the ground truth and the served payloads."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from polar_pipeline.simulator import SimulatorConfig, create_app
from tests.support.servers import serve_asgi

TODAY = dt.date(2025, 6, 30)
HISTORY_DAYS = 730
USERS = (10000001, 10000002, 10000003, 10000004)


class Sim:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.tokens = {user["x_user_id"]: user["access_token"] for user in client.get("/sim/users").json()}
        self.truth = {user: client.get(f"/sim/ground-truth/{user}").json() for user in USERS}
        self.daily = {
            user: {day["date"]: day for day in client.get(f"/sim/ground-truth/{user}/daily").json()}
            for user in USERS
        }

    def set_today(self, day: dt.date) -> None:
        self.client.post("/sim/clock", json={"today": day.isoformat()})

    def get(self, user: int, path: str) -> httpx.Response:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[user]}"})

    def events(self, user: int, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.truth[user]["events"] if e["kind"] == kind and e["end"] < TODAY.isoformat()]


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    app = create_app(SimulatorConfig(seed=21, users=4, today=TODAY, history_days=HISTORY_DAYS))
    with serve_asgi(app) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        first = Sim(client)
        first.set_today(TODAY - dt.timedelta(days=HISTORY_DAYS))
        for user, token in first.tokens.items():
            client.post(
                "/v3/users", headers={"Authorization": f"Bearer {token}"}, json={"member-id": str(user)}
            )
        first.set_today(TODAY)
        yield first


def dates(start: str, end: str) -> list[str]:
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def shifted(day: str, days: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


def test_events_are_spread_after_70_days_and_never_overlap(sim: Sim) -> None:
    for user in USERS:
        truth = sim.truth[user]
        history_start = dt.date.fromisoformat(truth["history_start"])
        assert history_start == TODAY - dt.timedelta(days=HISTORY_DAYS)
        events = truth["events"]
        covered: set[str] = set()
        for event in events:
            assert event["start"] >= (history_start + dt.timedelta(days=70)).isoformat()
            days = set(dates(event["start"], event["end"]))
            assert not days & covered, event
            covered |= days
        kinds = [event["kind"] for event in events]
        assert kinds.count("device_switch") == 1
        assert max(event["end"] for event in events) > (TODAY + dt.timedelta(days=500)).isoformat()
        past = [event["kind"] for event in events if event["end"] < TODAY.isoformat()]
        assert {"illness", "travel", "missing_nights", "device_switch"} <= set(past)
        assert past.count("illness") >= 2
        assert ("overreaching" in kinds) == (truth["persona"] in ("endurance_athlete", "casual_exerciser"))


def test_illness_nights_are_far_below_the_60_day_baseline(sim: Sim) -> None:
    """Against the healthy nights of the 60 days before the illness: its prodrome nights are left out."""
    for user in USERS:
        daily = sim.daily[user]
        for event in sim.events(user, "illness"):
            baseline = [
                daily[day]
                for day in dates(shifted(event["start"], -60), shifted(event["start"], -1))
                if daily[day]["has_recharge"] and "prodrome_of" not in daily[day]
            ]
            assert len(baseline) >= 40
            ln_values = [day["ln_rmssd"] for day in baseline]
            q1, _, q3 = statistics.quantiles(ln_values, n=4)
            far_out_fence = q1 - 3 * (q3 - q1)
            sick = [daily[day] for day in dates(event["start"], event["end"])]
            assert len(sick) == 7 and all(day["event"] == "illness" for day in sick)
            assert all(day["ln_rmssd"] < far_out_fence for day in sick), (user, event)
            assert statistics.mean(day["ln_rmssd"] for day in sick) < statistics.mean(ln_values) - 0.5
            assert max(day["rmssd_ms"] for day in sick) < min(day["rmssd_ms"] for day in baseline)
            rise = statistics.mean(d["resting_hr"] for d in sick) - statistics.median(
                d["resting_hr"] for d in baseline
            )
            assert rise >= 4
            assert all(day["exercises"] == [] for day in sick)


def test_each_illness_has_a_prodrome_in_the_ground_truth(sim: Sim) -> None:
    """1-3 nights before the first sick day: named by the event and the daily truth, with early signs."""
    rises: dict[str, list[float]] = {"resting_hr": [], "breathing_rate": [], "ln_rmssd": []}
    for user in USERS:
        daily = sim.daily[user]
        covered = {d for e in sim.truth[user]["events"] for d in dates(e["start"], e["end"])}
        marked = {day for day, truth in daily.items() if "prodrome_of" in truth}
        expected: set[str] = set()
        for event in sim.events(user, "illness"):
            details = event["details"]
            assert details["first_symptom_day"] == event["start"]
            assert 1 <= details["prodrome_days"] <= 3
            assert details["prodrome_start"] == shifted(event["start"], -details["prodrome_days"])
            prodrome = dates(details["prodrome_start"], shifted(event["start"], -1))
            assert not set(prodrome) & covered, event
            assert all(
                daily[day]["prodrome_of"] == event["start"] and daily[day]["event"] is None
                for day in prodrome
            )
            expected |= set(prodrome)
            last = daily[prodrome[-1]]
            healthy = [
                daily[day]
                for day in dates(shifted(event["start"], -60), shifted(event["start"], -1))
                if daily[day]["has_recharge"] and day not in prodrome
            ]
            if last["has_recharge"]:
                for key in rises:
                    rises[key].append(last[key] - statistics.median(day[key] for day in healthy))
        for event in sim.truth[user]["events"]:  # an illness after TODAY may have begun its prodrome
            if event["kind"] == "illness" and event["end"] >= TODAY.isoformat():
                first_night = event["details"]["prodrome_start"]
                expected |= set(dates(first_night, shifted(event["start"], -1))) & set(daily)
        assert marked == expected
    assert len(rises["resting_hr"]) >= 8
    assert statistics.mean(rises["resting_hr"]) > 1.5
    assert statistics.mean(rises["breathing_rate"]) > 0.4
    assert statistics.mean(rises["ln_rmssd"]) < -0.03


def test_illness_is_visible_in_served_recharge_payloads(sim: Sim) -> None:
    user = 10000002
    event = sim.events(user, "illness")[-1]
    sim.set_today(dt.date.fromisoformat(event["end"]) + dt.timedelta(days=1))
    recharges = {
        item["date"]: item for item in sim.get(user, "/v3/users/nightly-recharge").json()["recharges"]
    }
    sick_days = dates(event["start"], event["end"])
    served_sick = [recharges[day] for day in sick_days if day in recharges]
    before = [item for day, item in recharges.items() if day < event["start"]]
    assert len(served_sick) >= 6 and len(before) >= 10
    for item in served_sick:
        truth = sim.daily[user][item["date"]]
        assert item["heart_rate_variability_avg"] == truth["rmssd_ms"]
        assert item["heart_rate_avg"] == round(truth["resting_hr"])
        assert item["ans_charge_status"] <= 2
    assert max(i["heart_rate_variability_avg"] for i in served_sick) < min(
        i["heart_rate_variability_avg"] for i in before
    )
    sim.set_today(TODAY)


def test_overreaching_raises_load_and_suppresses_hrv(sim: Sim) -> None:
    for user in (10000001, 10000002):
        daily = sim.daily[user]
        events = sim.events(user, "overreaching")
        assert events
        for event in events:
            block = [daily[day] for day in dates(event["start"], event["end"])]
            before = [daily[day] for day in dates(shifted(event["start"], -28), shifted(event["start"], -1))]
            load_ratio = statistics.mean(d["training_load"] for d in block) / statistics.mean(
                d["training_load"] for d in before
            )
            assert 1.4 <= load_ratio <= 4.0, (user, event, load_ratio)
            late = [d["ln_rmssd"] for d in block[-5:]]
            assert statistics.mean(late) < statistics.mean(d["ln_rmssd"] for d in before) - 0.15


def test_travel_changes_offsets_in_truth_sleep_and_exercises(sim: Sim) -> None:
    user = 10000001
    home = sim.truth[user]["home_offset_minutes"]
    event = sim.events(user, "travel")[-1]
    destination = event["details"]["utc_offset_minutes"]
    assert abs(destination - home) >= 180
    daily = sim.daily[user]
    assert all(daily[day]["tz_offset_minutes"] == destination for day in dates(event["start"], event["end"]))
    assert daily[shifted(event["start"], -1)]["tz_offset_minutes"] == home
    assert daily[shifted(event["end"], 1)]["tz_offset_minutes"] == home
    sim.set_today(dt.date.fromisoformat(event["end"]) + dt.timedelta(days=2))
    sign = "+" if destination >= 0 else "-"
    suffix = f"{sign}{abs(destination) // 60:02d}:{abs(destination) % 60:02d}"
    nights = {n["date"]: n for n in sim.get(user, "/v3/users/sleep").json()["nights"]}
    travel_nights = [nights[day] for day in dates(event["start"], event["end"]) if day in nights]
    assert len(travel_nights) >= 4
    assert all(
        n["sleep_start_time"].endswith(suffix) and n["sleep_end_time"].endswith(suffix) for n in travel_nights
    )
    exercise_ids = [eid for day in dates(event["start"], event["end"]) for eid in daily[day]["exercises"]]
    assert exercise_ids
    for exercise_id in exercise_ids:
        exercise = sim.get(user, f"/v3/exercises/{exercise_id}").json()
        assert exercise["start_time_utc_offset"] == destination
    home_ids = [
        eid
        for day in dates(shifted(event["start"], -6), shifted(event["start"], -1))
        for eid in daily[day]["exercises"]
    ]
    assert all(
        sim.get(user, f"/v3/exercises/{eid}").json()["start_time_utc_offset"] == home for eid in home_ids
    )
    sim.set_today(TODAY)


def test_missing_nights_are_404_but_activity_is_served(sim: Sim) -> None:
    for user in (10000003, 10000004):
        event = sim.events(user, "missing_nights")[-1]
        block = dates(event["start"], event["end"])
        assert 3 <= len(block) <= 6
        assert all(not sim.daily[user][day]["worn"] for day in block)
        sim.set_today(dt.date.fromisoformat(event["end"]) + dt.timedelta(days=1))
        for day in block:
            assert sim.get(user, f"/v3/users/sleep/{day}").status_code == 404
            assert sim.get(user, f"/v3/users/nightly-recharge/{day}").status_code == 404
            assert sim.get(user, f"/v3/users/activities/{day}").status_code == 200
        neighbours = [shifted(event["start"], -1), shifted(event["end"], 1)]
        worn = [day for day in neighbours if sim.daily[user][day]["worn"]]
        assert worn and all(sim.get(user, f"/v3/users/sleep/{day}").status_code == 200 for day in worn)
    sim.set_today(TODAY)


def test_scattered_gaps_and_nights_without_recharge(sim: Sim) -> None:
    for user in USERS:
        days = list(sim.daily[user].values())
        in_event = {d for e in sim.truth[user]["events"] for d in dates(e["start"], e["end"])}
        quiet = [day for day in days if day["date"] not in in_event]
        not_worn = sum(not day["worn"] for day in quiet) / len(quiet)
        worn = [day for day in quiet if day["worn"]]
        no_recharge = sum(not day["has_recharge"] for day in worn) / len(worn)
        assert 0.01 <= not_worn <= 0.06
        assert 0.03 <= no_recharge <= 0.2


def test_device_switch_changes_device_id(sim: Sim) -> None:
    user = 10000001
    switch = next(event for event in sim.truth[user]["events"] if event["kind"] == "device_switch")
    devices = sim.truth[user]["devices"]
    assert len(devices) == 2 and devices[0]["device_id"] != devices[1]["device_id"]
    assert devices[1]["from"] == switch["start"] and devices[0]["to"] == shifted(switch["start"], -1)
    assert devices[1]["to"] is None
    sim.set_today(dt.date.fromisoformat(switch["start"]) + dt.timedelta(days=6))
    nights = {n["date"]: n for n in sim.get(user, "/v3/users/sleep").json()["nights"]}
    before = [n for day, n in nights.items() if day < switch["start"]]
    after = [n for day, n in nights.items() if day >= switch["start"]]
    assert before and after
    assert {n["device_id"] for n in before} == {devices[0]["device_id"]}
    assert {n["device_id"] for n in after} == {devices[1]["device_id"]}
    exercises = sim.get(user, "/v3/exercises").json()
    for exercise in exercises:
        expected = devices[1] if exercise["start_time"][:10] >= switch["start"] else devices[0]
        assert exercise["device_id"] == expected["device_id"] and exercise["device"] == expected["model"]
    sim.set_today(TODAY)


def test_persona_physiology(sim: Sim) -> None:
    summary = {}
    for user in USERS:
        days = [day for day in sim.daily[user].values() if day["event"] is None]
        worn = [day for day in days if day["has_recharge"]]
        weeks = len(sim.daily[user]) / 7
        bedtimes = [
            (
                dt.datetime.fromisoformat(day["sleep_start"])
                - dt.datetime.fromisoformat(day["date"] + "T00:00")
            )
            / dt.timedelta(minutes=1)
            for day in days
        ]
        ln_values = [day["ln_rmssd"] for day in worn]
        day_to_day = [abs(b - a) for a, b in itertools.pairwise(ln_values)]
        summary[sim.truth[user]["persona"]] = {
            "ln_rmssd": statistics.mean(ln_values),
            "day_to_day": statistics.mean(day_to_day),
            "resting_hr": statistics.mean(day["resting_hr"] for day in worn),
            "bedtime_sd": statistics.pstdev(bedtimes),
            "sleep_hours_sd": statistics.pstdev(day["sleep_seconds"] / 3600 for day in days),
            "short_nights": sum(day["sleep_seconds"] < 5 * 3600 for day in days) / len(days),
            "sessions_per_week": sum(len(day["exercises"]) for day in sim.daily[user].values()) / weeks,
            "steps": statistics.mean(day["steps"] for day in days),
        }
    athlete, casual = summary["endurance_athlete"], summary["casual_exerciser"]
    irregular, none = summary["irregular_sleeper"], summary["no_workouts"]
    assert 4.0 <= athlete["ln_rmssd"] <= 4.5 and 3.4 <= casual["ln_rmssd"] <= 3.95
    assert athlete["resting_hr"] < 52 < casual["resting_hr"] < 66
    for persona in summary.values():
        assert 0.05 <= persona["day_to_day"] <= 0.25
    assert irregular["bedtime_sd"] > 70 and all(
        p["bedtime_sd"] < 55 for name, p in summary.items() if name != "irregular_sleeper"
    )
    assert irregular["sleep_hours_sd"] > 1.0 and irregular["short_nights"] > 0.1
    assert 5 <= athlete["sessions_per_week"] <= 7
    assert 2 <= casual["sessions_per_week"] <= 3
    assert 1 <= irregular["sessions_per_week"] <= 3
    assert none["sessions_per_week"] == 0
    assert athlete["steps"] > none["steps"]


def test_hard_training_suppresses_the_next_nights(sim: Sim) -> None:
    days = [day for day in sim.daily[10000001].values() if day["event"] is None]
    by_date = {day["date"]: day for day in days}
    after_hard, after_rest = [], []
    for day in days:
        following = by_date.get(shifted(day["date"], 1))
        if following is None:
            continue
        if day["training_load"] > 150:
            after_hard.append(following["ln_rmssd"])
        elif day["training_load"] < 20:
            after_rest.append(following["ln_rmssd"])
    assert len(after_hard) > 30 and len(after_rest) > 30
    assert statistics.mean(after_rest) - statistics.mean(after_hard) > 0.08
