"""Daily activity, shaped like polar-flow-server's ``GET /api/v1/users/{user_id}/activity`` and ``…/{date}``.

The day's activity summary sits on its row of ``marts.daily_metrics``. A day has one when any of its
fields is present (every calendar day between a user's first and last record has a row, most with a summary).
"""

from __future__ import annotations

import datetime as dt
from datetime import date

import duckdb
from pydantic import BaseModel, Field

from polar_api.read.rows import fetch_dict, fetch_dicts

ACTIVITY_SCORE = "Polar's daily activity: percent of the day's activity goal reached (can exceed 100)"


class ActivityDay(BaseModel):
    """One day's activity summary in the list's units (km to 2 decimals, minutes to 1)."""

    date: dt.date = Field(description="the local calendar day")
    steps: int | None
    calories_active: int | None = Field(description="energy spent on activity, kcal, basal rate excluded")
    calories_total: int | None = Field(description="energy spent in total, kcal, basal rate included")
    distance_km: float | None = Field(description="distance estimated from the steps, km (2 decimals)")
    active_minutes: float | None = Field(description="time active, minutes (1 decimal)")
    activity_score: float | None = Field(description=ACTIVITY_SCORE)


class ActivityDayDetail(BaseModel):
    """One day's activity summary in Polar's own units."""

    date: dt.date = Field(description="the local calendar day")
    steps: int | None
    calories_active: int | None = Field(description="energy spent on activity, kcal, basal rate excluded")
    calories_total: int | None = Field(description="energy spent in total, kcal, basal rate included")
    distance_meters: float | None = Field(description="distance estimated from the steps, m")
    active_time_seconds: float | None = Field(description="time active, seconds")
    inactive_time_seconds: float | None = Field(description="time inactive, seconds")
    activity_score: float | None = Field(description=ACTIVITY_SCORE)
    inactivity_alerts: int | None = Field(description="inactivity alerts the device gave that day")


HAS_ACTIVITY = """(steps IS NOT NULL OR active_calories IS NOT NULL OR total_calories IS NOT NULL
    OR distance_m IS NOT NULL OR active_seconds IS NOT NULL OR inactive_seconds IS NOT NULL
    OR daily_activity_percent IS NOT NULL OR inactivity_alerts IS NOT NULL)"""

ACTIVITY_DAYS_QUERY = f"""
SELECT
    day AS date,
    steps,
    active_calories AS calories_active,
    total_calories AS calories_total,
    round(distance_m / 1000.0, 2) AS distance_km,
    round(active_seconds / 60.0, 1) AS active_minutes,
    daily_activity_percent AS activity_score
FROM marts.daily_metrics
WHERE user_id = $user_id AND day BETWEEN $since AND $until AND {HAS_ACTIVITY}
ORDER BY day DESC
"""

ACTIVITY_DAY_QUERY = f"""
SELECT
    day AS date,
    steps,
    active_calories AS calories_active,
    total_calories AS calories_total,
    distance_m AS distance_meters,
    active_seconds AS active_time_seconds,
    inactive_seconds AS inactive_time_seconds,
    daily_activity_percent AS activity_score,
    inactivity_alerts
FROM marts.daily_metrics
WHERE user_id = $user_id AND day = $day AND {HAS_ACTIVITY}
"""


def activity_days(
    cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date
) -> list[ActivityDay]:
    """The user's activity summaries dated ``since`` to ``until`` (both included), newest first."""
    rows = fetch_dicts(cursor, ACTIVITY_DAYS_QUERY, {"user_id": user_id, "since": since, "until": until})
    return [ActivityDay(**row) for row in rows]


def activity_day(cursor: duckdb.DuckDBPyConnection, user_id: str, day: date) -> ActivityDayDetail | None:
    """The activity summary of ``day``; None when the user has none that day."""
    row = fetch_dict(cursor, ACTIVITY_DAY_QUERY, {"user_id": user_id, "day": day})
    return None if row is None else ActivityDayDetail(**row)
