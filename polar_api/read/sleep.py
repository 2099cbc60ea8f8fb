"""Sleep nights, shaped like polar-flow-server's ``GET /api/v1/users/{user_id}/sleep`` and ``sleep/{date}``.

One row of ``marts.daily_metrics`` per user and day already carries the typed sleep record (dated by the
wake-up day), that night's Nightly Recharge and the night's heart-rate summary (``sleep_hr_*_bpm``: over the
``heart_rate_samples`` above 0, computed once when the mart is built). So a night is one indexed row, not a
join of staging views plus a JSON parse per request. A day is a night iff it has a typed sleep record, which
is exactly when ``sleep_start`` is not NULL. The night's hypnogram and heart-rate series come from the sample
store (``samples.sleep_series``), already split into clock times and values when the snapshot was published.
"""

from __future__ import annotations

import datetime as dt
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
from pydantic import BaseModel, Field

from polar_api.read.rows import fetch_dict, fetch_dicts
from polar_api.read.time_zones import user_time_zone

HYPNOGRAM_CODES = "0 awake, 1 REM, 2 light sleep (N1), 3 light sleep (N2), 4 deep sleep (N3), 5 unknown"
"""Polar's hypnogram stage codes (docs/accesslink.md §6.4)."""


class SleepNight(BaseModel):
    """One night; hours are seconds / 3600 (unrounded) as in polar-flow-server."""

    date: date
    sleep_score: int | None
    total_sleep_hours: float | None
    light_sleep_hours: float | None
    deep_sleep_hours: float | None
    rem_sleep_hours: float | None
    hrv_avg: float | None
    heart_rate_avg: float | None
    breathing_rate_avg: float | None
    skin_temperature_avg: float | None


class SleepNightDetail(BaseModel):
    """One night in full: polar-flow-server's ``sleep/{date}`` fields, with Polar's sentinels as null."""

    date: dt.date = Field(description="the wake-up date the night belongs to")
    sleep_start_time: dt.datetime | None = Field(
        description="falling asleep, in the user's time zone (UTC when the zone is unknown)"
    )
    sleep_end_time: dt.datetime | None = Field(description="waking up, in the same zone as sleep_start_time")
    sleep_score: int | None = Field(description="Polar's sleep score, 1-100")
    sleep_rating: int | None = Field(
        description="the user's own rating of the night, 1-5; null when not given"
    )
    total_sleep_hours: float | None = Field(description="light + deep + REM sleep, hours")
    light_sleep_hours: float | None
    deep_sleep_hours: float | None
    rem_sleep_hours: float | None
    interruptions_hours: float | None = Field(
        description="time awake between falling asleep and waking, hours"
    )
    hrv_avg: float | None = Field(description="that night's Nightly Recharge HRV (RMSSD), ms")
    heart_rate_avg: float | None = Field(
        description="mean of the night's heart-rate samples, bpm (0s excluded)"
    )
    heart_rate_min: float | None = Field(description="lowest of the night's heart-rate samples, bpm")
    heart_rate_max: float | None = Field(description="highest of the night's heart-rate samples, bpm")
    breathing_rate_avg: float | None = Field(description="that night's Nightly Recharge breathing rate, /min")
    device_id: str | None
    continuity: float | None = Field(description="sleep continuity, 1.0-5.0 (higher is less fragmented)")
    continuity_class: int | None = Field(description="continuity as a class, 1-5")
    sleep_cycles: int | None
    unrecognized_sleep_seconds: int | None = Field(description="sleep the device could not assign to a stage")
    short_interruption_seconds: int | None = Field(description="interruptions shorter than 90 s, in total")
    long_interruption_seconds: int | None = Field(description="interruptions of 90 s or more, in total")
    sleep_charge: int | None = Field(description="Polar's sleep charge, 1-5")
    sleep_goal_hours: float | None
    group_duration_score: float | None = Field(description="sleep score component, 0-100")
    group_solidity_score: float | None = Field(description="sleep score component, 0-100")
    group_regeneration_score: float | None = Field(description="sleep score component, 0-100")
    hypnogram: dict[str, int | None] | None = Field(
        description=f"local clock time (HH:MM, in the night's order) -> stage code: {HYPNOGRAM_CODES}; each "
        "entry lasts until the next one; null when the night has none"
    )
    heart_rate_samples: dict[str, float | None] | None = Field(
        description="local clock time (HH:MM, in the night's order) -> bpm, null where the sensor had no "
        "signal (Polar's 0); null when the night has none"
    )


# Column aliases are SleepNight's field names; skin temperature is not in AccessLink's sleep data, hence NULL.
SLEEP_NIGHTS_QUERY = """
SELECT
    day AS date,
    sleep_score,
    (light_sleep_seconds + deep_sleep_seconds + rem_sleep_seconds) / 3600.0 AS total_sleep_hours,
    light_sleep_seconds / 3600.0 AS light_sleep_hours,
    deep_sleep_seconds / 3600.0 AS deep_sleep_hours,
    rem_sleep_seconds / 3600.0 AS rem_sleep_hours,
    hrv_rmssd_ms AS hrv_avg,
    sleep_hr_avg_bpm AS heart_rate_avg,
    breathing_rate AS breathing_rate_avg,
    CAST(NULL AS DOUBLE) AS skin_temperature_avg
FROM marts.daily_metrics
WHERE user_id = $user_id AND day >= $since AND ($until IS NULL OR day <= $until) AND sleep_start IS NOT NULL
ORDER BY day DESC
"""

# Column aliases are SleepNightDetail's field names, but for the two series, read separately.
SLEEP_NIGHT_QUERY = """
SELECT
    day AS date,
    sleep_start AS sleep_start_time,
    sleep_end AS sleep_end_time,
    sleep_score,
    sleep_rating,
    (light_sleep_seconds + deep_sleep_seconds + rem_sleep_seconds) / 3600.0 AS total_sleep_hours,
    light_sleep_seconds / 3600.0 AS light_sleep_hours,
    deep_sleep_seconds / 3600.0 AS deep_sleep_hours,
    rem_sleep_seconds / 3600.0 AS rem_sleep_hours,
    interruption_seconds / 3600.0 AS interruptions_hours,
    hrv_rmssd_ms AS hrv_avg,
    sleep_hr_avg_bpm AS heart_rate_avg,
    sleep_hr_min_bpm AS heart_rate_min,
    sleep_hr_max_bpm AS heart_rate_max,
    breathing_rate AS breathing_rate_avg,
    device_id,
    continuity,
    continuity_class,
    sleep_cycles,
    unrecognized_sleep_seconds,
    short_interruption_seconds,
    long_interruption_seconds,
    sleep_charge,
    sleep_goal_seconds / 3600.0 AS sleep_goal_hours,
    group_duration_score,
    group_solidity_score,
    group_regeneration_score
FROM marts.daily_metrics
WHERE user_id = $user_id AND day = $day AND sleep_start IS NOT NULL
"""

SLEEP_SERIES_QUERY = """
SELECT series, clock_times, sample_values
FROM samples.sleep_series
WHERE user_id = $user_id AND day = $day
"""


def sleep_nights(
    cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date | None = None
) -> list[SleepNight]:
    """The user's nights dated ``since`` to ``until`` (open-ended when None), newest first; [] if unknown."""
    rows = fetch_dicts(cursor, SLEEP_NIGHTS_QUERY, {"user_id": user_id, "since": since, "until": until})
    return [SleepNight(**row) for row in rows]


def sleep_night(cursor: duckdb.DuckDBPyConnection, user_id: str, day: date) -> SleepNightDetail | None:
    """The night that ended on ``day``, with its hypnogram and heart-rate series; None when there is none.

    Start and end are shown in the user's zone, the clock they slept by (the mart keeps the instants).
    """
    row = fetch_dict(cursor, SLEEP_NIGHT_QUERY, {"user_id": user_id, "day": day})
    if row is None:
        return None
    zone_name = user_time_zone(cursor, user_id)
    zone = ZoneInfo(zone_name) if zone_name else dt.UTC
    for field in ("sleep_start_time", "sleep_end_time"):
        if row[field] is not None:
            row[field] = row[field].astimezone(zone)
    series: dict[str, Any] = {"hypnogram": None, "heart_rate_samples": None}
    for name, clock_times, values in cursor.execute(
        SLEEP_SERIES_QUERY, {"user_id": user_id, "day": day}
    ).fetchall():
        if name == "hypnogram":
            codes = (None if code is None else int(code) for code in values)
            series[name] = dict(zip(clock_times, codes, strict=True))
        elif name == "heart_rate_samples":  # 0 is Polar's "no signal" (docs/accesslink.md §7)
            series[name] = dict(zip(clock_times, (bpm or None for bpm in values), strict=True))
    return SleepNightDetail(**row, **series)
