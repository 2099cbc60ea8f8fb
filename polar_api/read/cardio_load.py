"""Polar's daily cardio load, shaped like polar-flow-server's ``GET /api/v1/users/{user_id}/cardio-load``.

Polar's own cardio-load day (``/v3/users/cardio-load``) sits on its row of ``marts.daily_metrics`` as the
``polar_*`` columns, apart from ``cardio_load`` (the sum of the day's workout loads); a day has one when its
status is known. On a ``LOAD_STATUS_NOT_AVAILABLE`` day Polar's -1 sentinels are null (docs/accesslink.md §7).
"""

from __future__ import annotations

import datetime as dt
from datetime import date

import duckdb
from pydantic import BaseModel, Field

from polar_api.read.rows import fetch_dicts


class CardioLoadDay(BaseModel):
    """One day of Polar's cardio load."""

    date: dt.date = Field(description="the local calendar day")
    strain: float | None = Field(description="Polar's strain: the mean daily cardio load of the last 7 days")
    tolerance: float | None = Field(description="Polar's tolerance: the mean daily cardio load of 28 days")
    cardio_load: float | None = Field(description="that day's cardio load (TRIMP based)")
    cardio_load_ratio: float | None = Field(description="strain / tolerance, 2 decimals")
    cardio_load_status: str | None = Field(description="Polar's status, e.g. LOAD_STATUS_NOT_AVAILABLE")


CARDIO_LOAD_DAYS_QUERY = """
SELECT
    day AS date,
    polar_strain AS strain,
    polar_tolerance AS tolerance,
    polar_cardio_load AS cardio_load,
    round(polar_cardio_load_ratio, 2) AS cardio_load_ratio,
    polar_cardio_load_status AS cardio_load_status
FROM marts.daily_metrics
WHERE user_id = $user_id AND day BETWEEN $since AND $until AND polar_cardio_load_status IS NOT NULL
ORDER BY day DESC
"""


def cardio_load_days(
    cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date
) -> list[CardioLoadDay]:
    """The user's cardio-load days dated ``since`` to ``until`` (both included), newest first."""
    rows = fetch_dicts(cursor, CARDIO_LOAD_DAYS_QUERY, {"user_id": user_id, "since": since, "until": until})
    return [CardioLoadDay(**row) for row in rows]
