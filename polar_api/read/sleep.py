"""Sleep nights, shaped like polar-flow-server's ``GET /api/v1/users/{user_id}/sleep``.

One row of ``marts.daily_metrics`` per user and day already carries the typed sleep record (dated by the
wake-up day), that night's Nightly Recharge and the night's mean heart rate (``sleep_hr_avg_bpm``: the mean of
``heart_rate_samples`` above 0, computed once when the mart is built). So a night is one indexed row, not a
join of staging views plus a JSON parse per request. A day is a night iff it has a typed sleep record, which
is exactly when ``sleep_start`` is not NULL.
"""

from __future__ import annotations

from datetime import date

import duckdb
from pydantic import BaseModel


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
WHERE user_id = $user_id AND day >= $since AND sleep_start IS NOT NULL
ORDER BY day DESC
"""


def sleep_nights(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date) -> list[SleepNight]:
    """The user's nights dated ``since`` or later, newest first; [] for an unknown user too."""
    result = cursor.execute(SLEEP_NIGHTS_QUERY, {"user_id": user_id, "since": since})
    columns = [column[0] for column in result.description or []]
    return [SleepNight(**dict(zip(columns, row, strict=True))) for row in result.fetchall()]
