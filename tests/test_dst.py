"""Local-day attribution across both DST changes of 2025 in Helsinki, on the real path.

Two users of the opt-in Helsinki persona are synced the way a deployment does it (the simulator over loopback
HTTP, the sync client walking 28-day windows, raw tables), then the staging views and marts are built. What
the marts say is compared with an independent computation: the simulator's ground truth gives UTC instants,
and ``zoneinfo`` alone decides which local day each belongs to. A night belongs to the local day its owner
woke up on, an exercise to the local day it started on. Seed 261 gives sessions that start within three hours
of either edge of both DST days, where the UTC date is not the local one.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pytest

from polar_pipeline.simulator import SimulatorConfig, create_app
from polar_pipeline.simulator.personas import NIGHT_OWL
from polar_pipeline.sqlmodels import load_models, run_models
from polar_pipeline.warehouse.writer import connect_writer
from tests.support.servers import serve_asgi
from tests.transform import conftest as transform_conftest

HELSINKI = ZoneInfo("Europe/Helsinki")
SPRING, AUTUMN = dt.date(2025, 3, 30), dt.date(2025, 10, 26)  # 03:00 -> 04:00 and 04:00 -> 03:00
SEED, USERS, TODAY, HISTORY_DAYS = 261, 2, dt.date(2025, 10, 31), 221
HOUR = dt.timedelta(hours=1)


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _local_day(instant: dt.datetime) -> dt.date:
    return instant.astimezone(HELSINKI).date()


def _local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[first instant, first instant of the next day) of the local ``day``, in UTC (datetimes sharing a
    tzinfo subtract as wall clocks, which would make every day 24 hours long)."""
    return (
        dt.datetime.combine(day, dt.time(), tzinfo=HELSINKI).astimezone(dt.UTC),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=HELSINKI).astimezone(dt.UTC),
    )


@dataclass(frozen=True)
class Helsinki:
    """The warehouse with marts built, and the simulator's ground truth of the days around both changes."""

    path: Path
    users: tuple[str, ...]
    truth: dict[str, list[dict[str, Any]]]  # user -> truth days of both windows

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.path), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def exercises(self) -> list[tuple[str, str, dt.datetime, float]]:
        """(user, id, UTC start, seconds) of every true session in the windows."""
        return [
            (user, item["id"], _utc(item["start_utc"]), float(item["seconds"]))
            for user, days in self.truth.items()
            for day in days
            for item in day["exercise_times"]
        ]


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> Helsinki:
    """Sync with the transform tests' collector; its SimulatorConfig is given the persona cycle."""
    config = functools.partial(SimulatorConfig, personas=(NIGHT_OWL,))
    path = tmp_path_factory.mktemp("helsinki") / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transform_conftest, "SimulatorConfig", config)
        raw = transform_conftest.collect_simulator_history(
            path, seed=SEED, users=USERS, today=TODAY, history_days=HISTORY_DAYS
        )
    con = connect_writer(path)
    try:
        run_models(con, load_models(), raw.users, raw.first_day, raw.last_day)
    finally:
        con.close()
    app = create_app(config(seed=SEED, users=USERS, today=TODAY, history_days=HISTORY_DAYS))
    truth: dict[str, list[dict[str, Any]]] = {}
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=30) as admin:
        for user in raw.users:
            truth[user] = [
                day
                for change in (SPRING, AUTUMN)
                for day in admin.get(
                    f"/sim/ground-truth/{user}/daily",
                    params={"from": change - dt.timedelta(days=3), "to": change + dt.timedelta(days=3)},
                ).json()
            ]
    for days in truth.values():  # the windows are ordinary days at home: no trip, every night worn
        assert all(day["event"] is None and day["worn"] and day["time_zone"] for day in days)
    return Helsinki(path, raw.users, truth)


def test_nights_land_on_the_wake_up_day_with_their_elapsed_length(helsinki: Helsinki) -> None:
    """Start and end instants, day and length of every night; the two DST nights are ±1 h on the clock."""
    marts = {
        (user, day): (start, end, slept, awake)
        for user, day, start, end, slept, awake in helsinki.query(
            "SELECT user_id, day, sleep_start, sleep_end, sleep_seconds, interruption_seconds "
            "FROM marts.daily_metrics WHERE sleep_start IS NOT NULL"
        )
    }
    payloads = {
        (user, day): (start, end)
        for user, day, start, end in helsinki.query(
            "SELECT user_id, day, payload->>'sleep_start_time', payload->>'sleep_end_time' FROM raw.sleep"
        )
    }
    clock_minus_elapsed = {}
    for user, days in helsinki.truth.items():
        for truth in days:
            start, end = _utc(truth["sleep_start_utc"]), _utc(truth["sleep_end_utc"])
            woke_on = _local_day(end)
            assert woke_on.isoformat() == truth["date"]
            mart_start, mart_end, slept, awake = marts[(user, woke_on)]
            assert (mart_start, mart_end) == (start, end), (user, woke_on)
            assert slept == truth["sleep_seconds"] and slept + awake == (end - start).total_seconds()
            wire_start, wire_end = (dt.datetime.fromisoformat(t) for t in payloads[(user, woke_on)])
            assert (wire_start.utcoffset(), wire_end.utcoffset()) == (
                start.astimezone(HELSINKI).utcoffset(),
                end.astimezone(HELSINKI).utcoffset(),
            )
            wall = wire_end.replace(tzinfo=None) - wire_start.replace(tzinfo=None)
            clock_minus_elapsed[(user, woke_on)] = wall - (end - start)
    changed = {key: delta for key, delta in clock_minus_elapsed.items() if delta}
    assert changed == {
        **{(user, SPRING): HOUR for user in helsinki.users},  # the clock skipped an hour of that night
        **{(user, AUTUMN): -HOUR for user in helsinki.users},  # the clock ran one hour twice
    }


def test_exercises_land_on_the_local_day_they_started(helsinki: Helsinki) -> None:
    staged = {
        (user, exercise_id): (day, start_utc)
        for user, exercise_id, day, start_utc in helsinki.query(
            "SELECT user_id, exercise_id, day, start_time_utc FROM staging.exercises"
        )
    }
    expected_days: dict[tuple[str, dt.date], list[float]] = defaultdict(list)
    utc_date_differs = 0
    for user, exercise_id, start, seconds in helsinki.exercises():
        day, start_utc = staged[(user, exercise_id)]
        assert (day, start_utc.replace(tzinfo=dt.UTC)) == (_local_day(start), start), exercise_id
        expected_days[(user, _local_day(start))].append(seconds)
        utc_date_differs += _local_day(start) != start.date()
    assert utc_date_differs >= 4  # the windows hold sessions between local midnight and UTC midnight
    marts = {
        (user, day): (count, seconds)
        for user, day, count, seconds in helsinki.query(
            "SELECT user_id, day, exercise_count, exercise_seconds FROM marts.daily_metrics"
        )
    }
    assert {day for _, day in expected_days} >= {SPRING, AUTUMN}
    for user in helsinki.users:  # a window's first and last day may get sessions of days outside it
        for day in (change + dt.timedelta(days=d) for change in (SPRING, AUTUMN) for d in range(-2, 3)):
            durations = expected_days.get((user, day), [])
            assert marts[(user, day)] == (len(durations), pytest.approx(sum(durations))), (user, day)


@pytest.mark.parametrize(("day", "hours"), [(SPRING, 23), (AUTUMN, 25)], ids=["23-hour", "25-hour"])
def test_the_short_and_the_long_day_hold_exactly_what_happened_within_them(
    helsinki: Helsinki, day: dt.date, hours: int
) -> None:
    """What starts in [local midnight, next local midnight) is the day's; edges within 3 h of UTC midnight."""
    first, end = _local_day_bounds(day)
    assert end - first == hours * HOUR
    inside = {(u, e) for u, e, start, _ in helsinki.exercises() if first <= start < end}
    by_utc_date = {(u, e) for u, e, start, _ in helsinki.exercises() if start.date() == day}
    assert inside != by_utc_date
    near_edges = [start for _, _, start, _ in helsinki.exercises() if start.date() != _local_day(start)]
    assert any(first <= start < first + 3 * HOUR for start in near_edges), "a session just after midnight"
    assert any(end <= start < end + 3 * HOUR for start in near_edges), "a session just after the day ends"
    staged = set(helsinki.query("SELECT user_id, exercise_id FROM staging.exercises WHERE day = ?", [day]))
    assert staged == inside
    nights = helsinki.query(
        "SELECT user_id FROM marts.daily_metrics WHERE day = ? AND sleep_end IS NOT NULL", [day]
    )
    woke = {u for u, days in helsinki.truth.items() for d in days if first <= _utc(d["sleep_end_utc"]) < end}
    assert {u for (u,) in nights} == woke == set(helsinki.users)
    steps = helsinki.query("SELECT count(*) FROM marts.daily_metrics WHERE day = ? AND steps > 0", [day])
    assert steps == [(len(helsinki.users),)]  # the activity summary of the short/long day is there too
