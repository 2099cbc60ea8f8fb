"""The opt-in Helsinki persona: its clock follows EET/EEST, so offsets change with DST inside a night, while
the default personas (and every byte they produce) stay as they were."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import httpx
import pytest

from polar_pipeline.simulator import SimulatorConfig, create_app
from polar_pipeline.simulator.config import PERSONAS
from polar_pipeline.simulator.exercises import ExerciseRenderer
from polar_pipeline.simulator.payloads import render_continuous_hr, render_sleep
from polar_pipeline.simulator.personas import NIGHT_OWL
from polar_pipeline.simulator.physiology import UserModel
from tests.simulator.test_payloads import SLEEP_KEYS, unwrap_minutes
from tests.support.servers import serve_asgi

HELSINKI = ZoneInfo("Europe/Helsinki")
SPRING, AUTUMN = dt.date(2025, 3, 30), dt.date(2025, 10, 26)  # 03:00 -> 04:00 and 04:00 -> 03:00


@pytest.fixture(scope="module")
def owl() -> UserModel:
    return UserModel(seed=5, index=0, history_start=dt.date(2024, 12, 1), history_days=400, persona=NIGHT_OWL)


def _offset(instant: dt.datetime) -> dt.timedelta | None:
    return instant.astimezone(HELSINKI).utcoffset()


def test_the_dst_persona_is_opt_in() -> None:
    """Only a persona cycle that names it brings it in; the default cycle stays the four fixed offsets."""
    assert SimulatorConfig().personas == PERSONAS and NIGHT_OWL not in PERSONAS
    default = create_app(SimulatorConfig(users=8, today=dt.date(2025, 6, 30)))
    assert [m.persona.name for m in default.models] == [*PERSONAS, *PERSONAS]
    assert all(m.zone is None and m.profile.home_offset_minutes in (0, 60, 120) for m in default.models)
    chosen = create_app(
        SimulatorConfig(users=2, today=dt.date(2025, 6, 30), personas=(NIGHT_OWL, "no_workouts"))
    )
    assert [m.profile.home_zone for m in chosen.models] == ["Europe/Helsinki", None]
    with pytest.raises(ValueError, match="personas must name"):
        SimulatorConfig(personas=("moon_dweller",))


def test_nights_carry_helsinki_offsets_and_span_elapsed_time(owl: UserModel) -> None:
    """Each end of a night has the offset Helsinki has at that instant; the stages add up to elapsed time."""
    nights = [s for s in owl.days(dt.date(2025, 1, 1), dt.date(2025, 12, 31)) if s.worn]
    assert len(nights) > 330
    changed: dict[dt.date, float] = {}
    for state in nights:
        night = render_sleep(owl, state)
        start = dt.datetime.fromisoformat(night["sleep_start_time"])
        end = dt.datetime.fromisoformat(night["sleep_end_time"])
        elapsed = (end - start).total_seconds()
        assert elapsed == state.span_minutes * 60
        stages = (
            night["light_sleep"]
            + night["deep_sleep"]
            + night["rem_sleep"]
            + night["unrecognized_sleep_stage"]
        )
        assert elapsed == stages + night["total_interruption_duration"]
        if state.zone is None:  # travelling: the destination's fixed offset, as for every persona
            continue
        assert start.utcoffset() == _offset(start) and end.utcoffset() == _offset(end), night["date"]
        assert night["date"] == end.astimezone(HELSINKI).date().isoformat()
        wall = (end.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds()
        if wall != elapsed:
            changed[state.date] = wall - elapsed
        # The series keep the start's clock through the change: the last key is start + elapsed on it.
        keys = list(night["hypnogram"])
        minutes = unwrap_minutes(keys)
        assert minutes == sorted(set(minutes))
        assert keys[0] == start.strftime("%H:%M")
        assert keys[-1] == (start + dt.timedelta(seconds=elapsed)).strftime("%H:%M")
    # Spring: the clocks say an hour more than was slept; autumn: an hour less. No other night differs.
    assert changed == {SPRING: 3600.0, AUTUMN: -3600.0}


def test_sessions_write_the_offset_in_force_and_some_start_after_local_midnight(owl: UserModel) -> None:
    renderer = ExerciseRenderer()
    sessions = [
        (state, session)
        for state in owl.days(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
        for session in state.sessions
    ]
    assert len(sessions) > 150
    after_midnight = 0
    for state, session in sessions:
        exercise = renderer.render(owl, session)
        local = dt.datetime.fromisoformat(exercise["start_time"])
        utc = (local - dt.timedelta(minutes=exercise["start_time_utc_offset"])).replace(tzinfo=dt.UTC)
        if state.zone is not None:
            assert utc.astimezone(HELSINKI).replace(tzinfo=None) == local, exercise["id"]
        after_midnight += local.date() > state.date
    assert after_midnight >= 10  # late sessions whose local day is the next one (and UTC date the day before)


def test_continuous_heart_rate_skips_the_hour_that_does_not_exist(owl: UserModel) -> None:
    now = dt.datetime(2025, 11, 1, 12, tzinfo=dt.UTC)

    def hours(day: dt.date) -> set[str]:
        state = owl.day(day)
        assert state is not None and state.worn
        return {
            sample["sample_time"][:2]
            for sample in render_continuous_hr(owl, state, now)["heart_rate_samples"]
        }

    assert "03" not in hours(SPRING)
    assert {"03", "04"} <= hours(SPRING - dt.timedelta(days=7)) and {"03", "04"} <= hours(AUTUMN)


def test_served_nights_around_the_change_keep_the_wire_format() -> None:
    """Over HTTP: the real key set, local clock with milliseconds and an offset that differs at both ends."""
    config = SimulatorConfig(seed=5, users=1, today=dt.date(2025, 4, 5), personas=(NIGHT_OWL,))
    with serve_asgi(create_app(config)) as url, httpx.Client(base_url=url, timeout=30) as client:
        user = client.get("/sim/users").json()[0]
        auth = {"Authorization": f"Bearer {user['access_token']}"}
        client.post("/v3/users", headers=auth, json={"member-id": "owl"}).raise_for_status()
        night = client.get(f"/v3/users/sleep/{SPRING}", headers=auth).json()
        truth = client.get(f"/sim/ground-truth/{user['x_user_id']}").json()
        daily = client.get(
            f"/sim/ground-truth/{user['x_user_id']}/daily", params={"from": SPRING, "to": SPRING}
        )
    assert set(night) == SLEEP_KEYS and night["date"] == SPRING.isoformat()
    assert night["sleep_start_time"].endswith("+02:00") and night["sleep_end_time"].endswith("+03:00")
    assert len(night["sleep_start_time"]) == len("2025-03-30T01:12:03.456+02:00")
    assert truth["home_zone"] == "Europe/Helsinki" and truth["home_offset_minutes"] == 120
    (day,) = daily.json()
    start_utc = dt.datetime.fromisoformat(day["sleep_start_utc"].replace("Z", "+00:00"))
    assert dt.datetime.fromisoformat(night["sleep_start_time"]) == start_utc
    assert (day["sleep_start_offset_minutes"], day["sleep_end_offset_minutes"]) == (120, 180)
