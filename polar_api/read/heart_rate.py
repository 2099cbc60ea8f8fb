"""Daily continuous heart rate, shaped like polar-flow-server's ``GET /api/v1/users/{user_id}/heart-rate``.

The day's summary of its continuous heart-rate samples (Polar's 0 = off-wrist excluded) sits on its row of
``marts.daily_metrics``; a day has one when its sample count is known.
"""

from __future__ import annotations

import datetime as dt
from datetime import date

import duckdb
from pydantic import BaseModel, Field

from polar_api.read.rows import fetch_dicts


class HeartRateDay(BaseModel):
    """One day's continuous heart rate, off-wrist samples excluded."""

    date: dt.date = Field(description="the local calendar day")
    hr_min: float | None = Field(description="lowest heart rate of the day, bpm")
    hr_avg: float | None = Field(description="mean heart rate of the day's samples, bpm")
    hr_max: float | None = Field(description="highest heart rate of the day, bpm")
    sample_count: int | None = Field(description="the day's heart-rate samples with a reading")


HEART_RATE_DAYS_QUERY = """
SELECT
    day AS date,
    hr_min_bpm AS hr_min,
    hr_avg_bpm AS hr_avg,
    hr_max_bpm AS hr_max,
    hr_sample_count AS sample_count
FROM marts.daily_metrics
WHERE user_id = $user_id AND day BETWEEN $since AND $until AND hr_sample_count IS NOT NULL
ORDER BY day DESC
"""


def heart_rate_days(
    cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date
) -> list[HeartRateDay]:
    """The user's daily heart-rate summaries dated ``since`` to ``until`` (both included), newest first."""
    rows = fetch_dicts(cursor, HEART_RATE_DAYS_QUERY, {"user_id": user_id, "since": since, "until": until})
    return [HeartRateDay(**row) for row in rows]
