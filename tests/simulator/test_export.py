"""The simulated Polar account data export: name patterns, JSON shapes, and values equal to what the same
simulator serves over AccessLink (fetched over HTTP, an independent path from the exporter's converter)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from polar_pipeline.simulator import SimulatorConfig, create_app
from polar_pipeline.simulator import export as export_module
from polar_pipeline.simulator.exercises import exercise_track
from polar_pipeline.simulator.export import SPORT_IDS, write_export
from polar_pipeline.simulator.physiology import UserModel
from tests.support.servers import serve_asgi

TODAY = dt.date(2026, 3, 1)
CONFIG = SimulatorConfig(seed=11, users=2, today=TODAY, history_days=90)
FIRST, LAST = TODAY - dt.timedelta(days=20), TODAY
ATHLETE = 0

NAME_PATTERNS = {
    "training-session-new": re.compile(
        r"^training-session(-\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}-|_\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}_)"
        r"\d{10}-[0-9a-f-]{36}\.json$"
    ),
    "training-session-old": re.compile(r"^training-session-\d{4}-\d{2}-\d{2}-\d{10}-[0-9a-f-]{36}\.json$"),
    "training-target": re.compile(r"^training-target-\d{4}-\d{2}-\d{2}-\d+-[0-9a-f-]{36}\.json$"),
    "activity": re.compile(r"^activity-\d{4}-\d{2}-\d{2}-[0-9a-f-]{36}\.json$"),
    "247ohr": re.compile(r"^247ohr_\d{4}_\d{2}-[0-9a-f-]{36}\.json$"),
    "sleep_result": re.compile(r"^sleep_result_\d+-[0-9a-f-]{36}\.json$"),
    "sleep_score": re.compile(r"^sleep_score_\d+-[0-9a-f-]{36}\.json$"),
    "nightly_recovery": re.compile(r"^nightly_recovery_\d+-[0-9a-f-]{36}\.json$"),
    "account": re.compile(r"^account-(data|profile)-\d+-[0-9a-f-]{36}\.json$"),
    "products-devices": re.compile(r"^products-devices-\d+-[0-9a-f-]{36}\.json$"),
    "profile-picture": re.compile(r"^profile-picture-\d+-MEDIUM-[0-9a-f-]{36}\.data$"),
}


def iso_seconds(text: str) -> float:
    """``PT1H2M3.5S`` → 3723.5 (the test's own parser)."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", text)
    assert match is not None, text
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def family_of(name: str) -> str:
    matches = [family for family, pattern in NAME_PATTERNS.items() if pattern.match(name)]
    assert len(matches) == 1, name
    return matches[0]


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    target = tmp_path_factory.mktemp("export") / "polar-user-data-export.zip"
    stats = write_export(CONFIG, ATHLETE, target, first_day=FIRST, last_day=LAST)
    return target, stats


@pytest.fixture(scope="module")
def members(export: tuple[Path, Any]) -> dict[str, bytes]:
    with zipfile.ZipFile(export[0]) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def loaded(members: dict[str, bytes], family: str) -> list[Any]:
    return [json.loads(data) for name, data in members.items() if family_of(name) == family]


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[httpx.Client, int]]:
    """The same simulator over HTTP, with the athlete registered (AccessLink serves only then)."""
    with serve_asgi(create_app(CONFIG)) as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        user = client.get("/sim/users").json()[ATHLETE]
        client.headers["Authorization"] = f"Bearer {user['access_token']}"
        # registered before the span, so every exercise of the span counts as uploaded after registration
        client.post("/sim/clock", json={"today": (FIRST - dt.timedelta(days=1)).isoformat()})
        assert client.post("/v3/users", json={"member-id": "export-test"}).status_code in (200, 201)
        client.post("/sim/clock", json={"today": TODAY.isoformat()})
        yield client, user["x_user_id"]


def test_member_names_follow_the_real_patterns(export: tuple[Path, Any], members: dict[str, bytes]) -> None:
    _, stats = export
    families = [family_of(name) for name in members]
    assert {family: families.count(family) for family in set(families)} == dict(stats.files)
    for family in ("training-session-new", "training-session-old", "training-target", "activity", "247ohr"):
        assert stats.files[family] >= 1, family
    assert stats.files["activity"] == (LAST - FIRST).days + 1
    assert any(":" in name for name in members)  # mid-2026 exports have colons in session names
    assert any(name.startswith("training-session_") for name in members)
    assert stats.first_day == FIRST and stats.last_day == LAST
    assert stats.uncompressed_bytes == sum(len(data) for data in members.values())


def test_json_shapes_and_nan_tokens(members: dict[str, bytes]) -> None:
    for name, data in members.items():
        if name.endswith(".json"):
            assert data.startswith(b'{\n  "') or data.startswith(b"[\n  {"), name
    new = loaded(members, "training-session-new")
    for session in new:
        assert {
            "identifier",
            "startTime",
            "stopTime",
            "durationMillis",
            "timezoneOffsetMinutes",
            "sport",
        } <= set(session)
        assert "exportVersion" not in session and isinstance(session["recoveryTimeMillis"], str)
        samples = session["exercises"][0]["samples"]["samples"]
        assert samples[0]["type"] == "HEART_RATE" and samples[0]["intervalMillis"] == 1000
    for session in loaded(members, "training-session-old"):
        assert {"exportVersion", "duration", "kiloCalories", "timeZoneOffset"} <= set(session)
        assert session["startTime"].endswith(".000")
        assert isinstance(session["exercises"][0]["sport"], str)
    indoor = [
        text
        for name, data in members.items()
        if family_of(name) == "training-session-new" and '"distanceMeters"' not in (text := data.decode())
    ]
    assert indoor, "the athlete's 3 weeks hold an indoor session in the new format"
    for text in indoor:
        assert re.search(r"^\s+NaN,?$", text, re.MULTILINE)  # a bare token, not "NaN"
        with pytest.raises(ValueError):
            json.loads(text, parse_constant=lambda token: (_ for _ in ()).throw(ValueError(token)))
    (sleep,) = loaded(members, "sleep_result")
    assert {"night", "evaluation", "sleepResult"} <= set(sleep[0])
    assert re.fullmatch(r".*T.*\.\d{3}[+-]\d{2}:\d{2}", sleep[0]["sleepResult"]["hypnogram"]["sleepStart"])
    (recovery,) = loaded(members, "nightly_recovery")
    assert {"night", "meanNightlyRecoveryRmssd", "meanNightlyRecoveryRri", "ansStatus", "ansRate"} <= set(
        recovery[0]
    )
    for activity in loaded(members, "activity"):
        assert {"date", "summary", "samples", "physicalInformation"} <= set(activity)
        assert "weight, kg" in activity["physicalInformation"]


def test_sleep_and_recharge_equal_accesslink(
    members: dict[str, bytes], served: tuple[httpx.Client, int]
) -> None:
    client, _ = served
    api_sleep = {night["date"]: night for night in client.get("/v3/users/sleep").json()["nights"]}
    api_recharge = {r["date"]: r for r in client.get("/v3/users/nightly-recharge").json()["recharges"]}
    in_span = {day for day in api_sleep if FIRST.isoformat() <= day <= LAST.isoformat()}
    (results,) = loaded(members, "sleep_result")
    (scores,) = loaded(members, "sleep_score")
    (recoveries,) = loaded(members, "nightly_recovery")
    assert {night["night"] for night in results} == in_span
    assert {night["night"] for night in scores} == in_span
    assert {r["night"] for r in recoveries} == {d for d in api_recharge if d in in_span}
    for night in results:
        api = api_sleep[night["night"]]
        hypnogram, evaluation = night["sleepResult"]["hypnogram"], night["evaluation"]
        assert (hypnogram["sleepStart"], hypnogram["sleepEnd"]) == (
            api["sleep_start_time"],
            api["sleep_end_time"],
        )
        assert hypnogram["deviceId"] == api["device_id"]
        phases = evaluation["phaseDurations"]
        assert iso_seconds(phases["light"]) == api["light_sleep"]
        assert iso_seconds(phases["deep"]) == api["deep_sleep"]
        assert iso_seconds(phases["rem"]) == api["rem_sleep"]
        assert iso_seconds(phases["unknown"]) == api["unrecognized_sleep_stage"]
        breaks = evaluation["interruptions"]
        assert iso_seconds(breaks["totalDuration"]) == api["total_interruption_duration"]
        assert iso_seconds(breaks["shortDuration"]) == api["short_interruption_duration"]
        assert iso_seconds(breaks["longDuration"]) == api["long_interruption_duration"]
        assert evaluation["analysis"]["continuityIndex"] == api["continuity"]
        assert evaluation["analysis"]["continuityClass"] == api["continuity_class"]
        assert iso_seconds(hypnogram["sleepGoal"]) == api["sleep_goal"]
        ratings = [
            "UNKNOWN",
            "SLEPT_BAD",
            "SLEPT_QUITE_BAD",
            "SLEPT_NEITHER_BAD_NOR_WELL",
            "SLEPT_QUITE_WELL",
        ]
        assert [*ratings, "SLEPT_WELL"].index(hypnogram["rating"]) == api["sleep_rating"]
        cycles = night["sleepResult"]["sleepCycles"]["cycles"]["sleepCycleModels"]
        assert len(cycles) == api["sleep_cycles"]
        # rebuild the AccessLink hypnogram from the start clock + offsets
        start = dt.datetime.fromisoformat(hypnogram["sleepStart"][:16])
        codes = {"WAKE": 0, "REM": 1, "NONREM1": 2, "NONREM2": 3, "NONREM3": 4, "WS_UNKNOWN": 5}
        rebuilt = {
            (start + dt.timedelta(seconds=iso_seconds(change["offsetFromStart"]))).strftime("%H:%M"): codes[
                change["state"]
            ]
            for change in hypnogram["sleepStateChanges"]
        }
        assert rebuilt == api["hypnogram"]
    for score in scores:
        api = api_sleep[score["night"]]
        result = score["sleepScoreResult"]
        assert result["sleepScore"] == api["sleep_score"]
        assert result["groupDurationScore"] == api["group_duration_score"]
        assert result["groupSolidityScore"] == api["group_solidity_score"]
        assert result["groupRefreshScore"] == api["group_regeneration_score"]
        assert result.get("scoreRate", -1) == api["sleep_charge"]
    off_by_one = 0
    for recovery in recoveries:
        api = api_recharge[recovery["night"]]
        assert recovery["meanNightlyRecoveryRmssd"] == api["heart_rate_variability_avg"]
        assert recovery["meanNightlyRecoveryRri"] == api["beat_to_beat_avg"]
        assert (
            round(60000 / recovery["meanNightlyRecoveryRespirationInterval"], 1) == api["breathing_rate_avg"]
        )
        assert recovery["ansStatus"] == api["ans_charge"]
        assert recovery["ansRate"] == api["ans_charge_status"]
        assert recovery["recoveryIndicator"] == api["nightly_recharge_status"]
        derived_hr = round(60000 / recovery["meanNightlyRecoveryRri"])
        assert abs(derived_hr - api["heart_rate_avg"]) <= 1  # the export has no overnight HR (documented)
        off_by_one += derived_hr != api["heart_rate_avg"]
    assert off_by_one <= 2


def test_activity_equals_accesslink(members: dict[str, bytes], served: tuple[httpx.Client, int]) -> None:
    client, _ = served
    response = client.get(
        "/v3/users/activities", params={"from": FIRST.isoformat(), "to": LAST.isoformat(), "steps": "true"}
    )
    api_days = {item["start_time"][:10]: item for item in response.json()}
    activities = loaded(members, "activity")
    assert {a["date"] for a in activities} == set(api_days)
    for activity in activities:
        api, summary = api_days[activity["date"]], activity["summary"]
        assert summary["stepCount"] == api["steps"]
        assert summary["calories"] == api["calories"]
        assert summary["stepsDistance"] == api["distance_from_steps"]
        assert summary["inactivityAlertCount"] == api["inactivity_alert_count"]
        levels = {level["level"]: iso_seconds(level["duration"]) for level in summary["activityLevels"]}
        active = sum(levels.get(name, 0) for name in ("LIGHT", "CONTINUOS_MODERATE", "CONTINUOS_VIGOROUS"))
        assert active == iso_seconds(api["active_duration"])
        assert levels.get("SEDENTARY", 0) == iso_seconds(api["inactive_duration"])
        weight = activity["physicalInformation"]["weight, kg"]
        assert round(summary["dailyMetMinutes"] * weight / 60) == api["active_calories"]
        assert sum(sample["value"] for sample in activity["samples"]["steps"]) == api["steps"]


def _api_sessions(client: httpx.Client) -> dict[tuple[str, int], dict[str, Any]]:
    items = client.get("/v3/exercises", params={"zones": "true"}).json()
    return {
        (item["start_time"], round(iso_seconds(item["duration"]) * 1000)): item
        for item in items
        if FIRST.isoformat() <= item["start_time"][:10] <= LAST.isoformat()
    }


def test_workouts_equal_accesslink(members: dict[str, bytes], served: tuple[httpx.Client, int]) -> None:
    client, _ = served
    api = _api_sessions(client)
    exported: dict[tuple[str, int], dict[str, Any]] = {}
    for session in loaded(members, "training-session-new"):
        sport = next(
            detail for detail, (sport_id, _) in SPORT_IDS.items() if sport_id == session["sport"]["id"]
        )
        exported[(session["startTime"], session["durationMillis"])] = {
            "offset": session["timezoneOffsetMinutes"],
            "sport": sport,
            "hr": (session["hrAvg"], session["hrMax"]),
            "distance": session.get("distanceMeters"),
            "calories": session["calories"],
            "cardio": session["trainingLoadReport"]["cardioLoad"],
            "hr_series": session["exercises"][0]["samples"]["samples"][0]["values"],
        }
    for session in loaded(members, "training-session-old"):
        millis = round(iso_seconds(session["duration"]) * 1000)
        exported[(session["startTime"].removesuffix(".000"), millis)] = {
            "offset": session["timeZoneOffset"],
            "sport": session["exercises"][0]["sport"],
            "hr": (session["averageHeartRate"], session["maximumHeartRate"]),
            "distance": session.get("distance"),
            "calories": session["kiloCalories"],
            "cardio": session["loadInformation"]["cardioLoad"],
            "hr_series": [s.get("value", math.nan) for s in session["exercises"][0]["samples"]["heartRate"]],
        }
    assert set(exported) == set(api) and len(api) >= 5
    for key, item in api.items():
        mine = exported[key]
        assert mine["offset"] == item["start_time_utc_offset"]
        assert mine["sport"] == item["detailed_sport_info"]
        assert mine["hr"] == (item["heart_rate"]["average"], item["heart_rate"]["maximum"])
        assert mine["distance"] == item.get("distance")
        assert mine["calories"] == item["calories"]
        assert mine["cardio"] == item["training_load_pro"]["cardio-load"]
    # 1 Hz HR samples equal the served series for one session of each format
    for key in list(api)[:3]:
        full = client.get(f"/v3/exercises/{api[key]['id']}", params={"samples": "true"}).json()
        data = next(s["data"] for s in full["samples"] if s["sample_type"] == 0).split(",")
        served_values = [math.nan if v == "null" else int(v) for v in data]
        mine = exported[key]["hr_series"]
        assert len(mine) == len(served_values)
        assert all(
            (math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(mine, served_values, strict=True)
        )


def test_heart_rate_dropouts_become_bare_nan(tmp_path: Path) -> None:
    """A session whose HR sensor drops out: NaN at exactly the simulator's gaps (new format)."""
    model = UserModel(
        CONFIG.seed, ATHLETE, TODAY - dt.timedelta(days=CONFIG.history_days), CONFIG.history_days
    )
    found = None
    for state in model.days(TODAY - dt.timedelta(days=CONFIG.history_days), TODAY - dt.timedelta(days=2)):
        for session in state.sessions:
            heart_rate, _ = exercise_track(model, session).per_second()
            if None in heart_rate:
                found = (state.date, session, heart_rate)
                break
        if found:
            break
    assert found is not None, "some session of 90 days has an HR gap"
    day, session, heart_rate = found
    target = tmp_path / "gap.zip"
    write_export(CONFIG, ATHLETE, target, first_day=day, last_day=day, session_format="new")
    with zipfile.ZipFile(target) as archive:
        records = [
            json.loads(archive.read(n)) for n in archive.namelist() if n.startswith("training-session")
        ]
    start = session.start_local.strftime("%Y-%m-%dT%H:%M:%S")
    (record,) = [r for r in records if r["startTime"] == start]
    values = record["exercises"][0]["samples"]["samples"][0]["values"]
    assert [math.isnan(v) for v in values] == [v is None for v in heart_rate]


def test_export_is_deterministic(export: tuple[Path, Any], tmp_path: Path) -> None:
    again = tmp_path / "again.zip"
    write_export(CONFIG, ATHLETE, again, first_day=FIRST, last_day=LAST)
    assert again.read_bytes() == export[0].read_bytes()
    other = tmp_path / "other.zip"
    write_export(CONFIG, 1, other, first_day=FIRST, last_day=LAST)
    assert other.read_bytes() != again.read_bytes()


def test_memory_does_not_grow_with_the_span(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streaming: every member's transient working set stays small (one day or one record at a time) and
    what stays allocated grows by little per day (zip directory entries, cached exercise summaries).
    Holding an all-night array or a month of 24/7 HR would show up in both. The 5-year case is a manual
    run (see the module docstring of ``polar_pipeline.simulator.export``), too slow under tracemalloc."""
    config = SimulatorConfig(seed=5, users=1, today=TODAY, history_days=45)
    last = TODAY - dt.timedelta(days=1)
    transient: list[int] = []
    original_close = export_module._Member.close

    def measured_close(member: Any) -> None:
        original_close(member)
        current, peak = tracemalloc.get_traced_memory()
        transient.append(peak - current)
        tracemalloc.reset_peak()

    monkeypatch.setattr(export_module._Member, "close", measured_close)
    retained = {}
    # Only what this thread's exporter keeps counts: a server thread another test left running allocates too.
    own = [tracemalloc.Filter(True, "*/polar_pipeline/simulator/*"), tracemalloc.Filter(True, "*/zipfile*")]
    for days in (8, 40):
        tracemalloc.start()
        with zipfile.ZipFile(tmp_path / f"{days}.zip", "w") as archive:
            exporter = export_module._Exporter(config, 0, archive, "mixed", samples=False)
            before = tracemalloc.take_snapshot().filter_traces(own)
            exporter.run(last - dt.timedelta(days=days - 1), last)
            after = tracemalloc.take_snapshot().filter_traces(own)
            retained[days] = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
        tracemalloc.stop()
    assert (retained[40] - retained[8]) / 32 < 4_000, retained
    assert max(transient) < 8_000_000
