"""Day-by-day series for charts: chosen columns of ``marts.daily_metrics``, one metric's baseline per day,
and which streams each day has data from.

The list routes return only the days that have a record; a chart needs every calendar day, with null where
a day has no value, so a missing night breaks the line instead of being drawn as zero or bridged. These
functions return the mart's rows as they are (the mart has a row for every day between a user's first and
last record, NULL where a stream is missing, docs/methods.md §1.1); the caller lays them on its calendar.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
from pydantic import BaseModel

from polar_api.read.activity import HAS_ACTIVITY
from polar_api.read.analytics_common import Finite, fetch_computed
from polar_api.read.recharge import HAS_RECHARGE

DAILY_COLUMNS = (
    "ln_rmssd", "hrv_rmssd_ms", "overnight_hr_bpm", "breathing_rate", "sleep_score", "sleep_seconds",
    "steps", "training_load", "hr_avg_bpm", "hr_min_bpm", "active_calories",
)  # fmt: skip
"""The ``marts.daily_metrics`` columns a series may name (the names go into the SQL, so only these)."""


class UnknownColumn(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"not a daily series column: {name!r}; one of {', '.join(DAILY_COLUMNS)}")


class DayValues(BaseModel):
    """One day of ``marts.daily_metrics``: the asked columns, null where the day has no value."""

    day: date
    values: dict[str, Finite]


class BaselineDay(BaseModel):
    """One day's ``marts.baselines`` row of a metric: the 60 days before it, and its fences (§4)."""

    day: date
    median: Finite
    lower_warning: Finite
    upper_warning: Finite
    lower_critical: Finite
    upper_critical: Finite
    n: int
    status: str


class StreamDay(BaseModel):
    """Which streams have data on one day (the tests the list routes use to call a day "with data")."""

    day: date
    sleep: bool
    recharge: bool
    activity: bool
    heart_rate: bool
    workouts: int


SPAN_QUERY = """
SELECT min(day) AS first_day, max(day) AS last_day FROM marts.daily_metrics WHERE user_id = $user_id
"""

BASELINE_DAYS_QUERY = """
SELECT day, median, lower_warning, upper_warning, lower_critical, upper_critical, n, status
FROM marts.baselines
WHERE user_id = $user_id AND metric = $metric AND day BETWEEN $since AND $until
ORDER BY day
"""

STREAM_DAYS_QUERY = f"""
SELECT day, sleep_start IS NOT NULL AS sleep, {HAS_RECHARGE} AS recharge, {HAS_ACTIVITY} AS activity,
    hr_sample_count IS NOT NULL AS heart_rate, coalesce(exercise_count, 0) AS workouts
FROM marts.daily_metrics
WHERE user_id = $user_id AND day BETWEEN $since AND $until
ORDER BY day
"""


def day_span(cursor: duckdb.DuckDBPyConnection, user_id: str) -> tuple[date, date] | None:
    """The user's first and last day in the mart, or None when the snapshot has none."""
    rows = fetch_computed(cursor, SPAN_QUERY, {"user_id": user_id})
    if not rows or rows[0]["first_day"] is None:
        return None
    return rows[0]["first_day"], rows[0]["last_day"]


def daily_values(
    cursor: duckdb.DuckDBPyConnection, user_id: str, columns: Sequence[str], since: date, until: date
) -> list[DayValues]:
    """The mart's rows dated ``since`` to ``until`` (both included), oldest first, with ``columns`` only."""
    for name in columns:
        if name not in DAILY_COLUMNS:
            raise UnknownColumn(name)
    selected = ", ".join(f"CAST({name} AS DOUBLE) AS {name}" for name in columns)
    query = f"""
        SELECT day, {selected} FROM marts.daily_metrics
        WHERE user_id = $user_id AND day BETWEEN $since AND $until
        ORDER BY day
    """
    rows = fetch_computed(cursor, query, {"user_id": user_id, "since": since, "until": until})
    return [DayValues(day=row["day"], values={name: row[name] for name in columns}) for row in rows]


def baseline_days(
    cursor: duckdb.DuckDBPyConnection, user_id: str, metric: str, since: date, until: date
) -> list[BaselineDay]:
    """Each day's baseline of ``metric`` from ``since`` to ``until``, oldest first."""
    params = {"user_id": user_id, "metric": metric, "since": since, "until": until}
    return [BaselineDay(**row) for row in fetch_computed(cursor, BASELINE_DAYS_QUERY, params)]


def stream_days(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date) -> list[StreamDay]:
    """For each of the user's days from ``since`` to ``until``, oldest first, the streams it has data from."""
    rows = fetch_computed(cursor, STREAM_DAYS_QUERY, {"user_id": user_id, "since": since, "until": until})
    return [StreamDay(**row) for row in rows]
