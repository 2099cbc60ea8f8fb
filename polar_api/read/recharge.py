"""Nightly Recharge per night, shaped like polar-flow-server's ``GET /api/v1/users/{user_id}/recharge``.

The recharge fields sit on the night's row of ``marts.daily_metrics`` (dated by the wake-up day, as the sleep
record). A day has a recharge when any of them is present: Polar omits fields rather than sending null, and a
night without a recharge has them all NULL.
"""

from __future__ import annotations

import datetime as dt
from datetime import date

import duckdb
from pydantic import BaseModel, Field

from polar_api.read.rows import fetch_dicts


class RechargeNight(BaseModel):
    """One night's Nightly Recharge; Polar's 0 = "no signal" values are null."""

    date: dt.date = Field(description="the wake-up date the night belongs to")
    hrv_avg: float | None = Field(
        description="heart-rate variability, RMSSD over ~the first 4 h of sleep, ms"
    )
    ans_charge: float | None = Field(description="autonomic nervous system charge, -10.0 to +10.0")
    ans_charge_status: int | None = Field(description="the ANS charge as a class, 1 (much below usual) to 5")
    breathing_rate_avg: float | None = Field(description="average breathing rate during sleep, breaths/min")
    heart_rate_avg: float | None = Field(description="average heart rate over ~the first 4 h of sleep, bpm")
    nightly_recharge_status: int | None = Field(description="Polar's Nightly Recharge status, 1 to 6")
    beat_to_beat_avg: float | None = Field(description="average interval between heartbeats, same period, ms")


HAS_RECHARGE = """(nightly_recharge_status IS NOT NULL OR ans_charge IS NOT NULL
    OR ans_charge_status IS NOT NULL OR hrv_rmssd_ms IS NOT NULL OR overnight_hr_bpm IS NOT NULL
    OR breathing_rate IS NOT NULL OR beat_to_beat_ms IS NOT NULL)"""

RECHARGE_NIGHTS_QUERY = f"""
SELECT
    day AS date,
    hrv_rmssd_ms AS hrv_avg,
    ans_charge,
    ans_charge_status,
    breathing_rate AS breathing_rate_avg,
    overnight_hr_bpm AS heart_rate_avg,
    nightly_recharge_status,
    beat_to_beat_ms AS beat_to_beat_avg
FROM marts.daily_metrics
WHERE user_id = $user_id AND day BETWEEN $since AND $until AND {HAS_RECHARGE}
ORDER BY day DESC
"""


def recharge_nights(
    cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date
) -> list[RechargeNight]:
    """The user's recharges dated ``since`` to ``until`` (both included), newest first."""
    rows = fetch_dicts(cursor, RECHARGE_NIGHTS_QUERY, {"user_id": user_id, "since": since, "until": until})
    return [RechargeNight(**row) for row in rows]
