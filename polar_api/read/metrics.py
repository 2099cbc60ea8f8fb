"""Our daily marts as time series: ``marts.hrv_status``, ``marts.training_load`` and ``marts.sleep_debt``.

One row per day of the user's window, newest first, every column of the mart (docs/sql.md describes each;
docs/methods.md §6–8 the methods), plus a few values converted for reading: the HRV status in ms
(``exp`` of the ln values: a geometric mean and its band) and the sleep debt in hours.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import duckdb
from pydantic import BaseModel

from polar_api.read.analytics_common import Finite, fetch_computed


class HrvStatusDay(BaseModel):
    """marts.hrv_status (§6): the 7-day mean of ln rMSSD against the normal band of the 60 days before.

    ``hrv_7d_ms``, ``normal_low_ms`` and ``normal_high_ms`` are exp of the ln values: the week's geometric
    mean RMSSD and the band in ms.
    """

    day: date
    status: Literal["below", "within", "above", "insufficient"]
    ln_rmssd_7d: Finite
    n_7d: int
    cv_7d: Finite
    normal_low: Finite
    normal_high: Finite
    n_baseline: int
    baseline_mean: Finite
    baseline_sd: Finite
    hrv_7d_ms: Finite
    normal_low_ms: Finite
    normal_high_ms: Finite


class TrainingLoadDay(BaseModel):
    """marts.training_load (§7): the day's load and the acute:chronic ratios (NULL before 28 days)."""

    day: date
    daily_load: Finite
    acute_7d: Finite
    chronic_28d: Finite
    acwr_coupled: Finite
    acwr_uncoupled: Finite
    ewma_acute: Finite
    ewma_chronic: Finite
    acwr_ewma: Finite
    polar_ratio: Finite


class SleepDebtDay(BaseModel):
    """marts.sleep_debt (§8): the night's need and deficit, and the 14-night debt (also in hours)."""

    day: date
    sleep_need_seconds: int | None
    deficit_seconds: int | None
    debt_seconds: int | None
    nights: int
    debt_hours: Finite


HRV_STATUS_QUERY = """
SELECT day, status, ln_rmssd_7d, n_7d, cv_7d, normal_low, normal_high, n_baseline, baseline_mean, baseline_sd,
    exp(ln_rmssd_7d) AS hrv_7d_ms, exp(normal_low) AS normal_low_ms, exp(normal_high) AS normal_high_ms
FROM marts.hrv_status
WHERE user_id = $user_id AND day >= $since
ORDER BY day DESC
"""

TRAINING_LOAD_QUERY = """
SELECT day, daily_load, acute_7d, chronic_28d, acwr_coupled, acwr_uncoupled, ewma_acute, ewma_chronic,
    acwr_ewma, polar_ratio
FROM marts.training_load
WHERE user_id = $user_id AND day >= $since
ORDER BY day DESC
"""

SLEEP_DEBT_QUERY = """
SELECT day, sleep_need_seconds, deficit_seconds, debt_seconds, nights, debt_seconds / 3600.0 AS debt_hours
FROM marts.sleep_debt
WHERE user_id = $user_id AND day >= $since
ORDER BY day DESC
"""


def hrv_status(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date) -> list[HrvStatusDay]:
    """The user's HRV status from ``since`` on, newest first."""
    rows = fetch_computed(cursor, HRV_STATUS_QUERY, {"user_id": user_id, "since": since})
    return [HrvStatusDay(**row) for row in rows]


def training_load(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date) -> list[TrainingLoadDay]:
    """The user's training load and ratios from ``since`` on, newest first."""
    rows = fetch_computed(cursor, TRAINING_LOAD_QUERY, {"user_id": user_id, "since": since})
    return [TrainingLoadDay(**row) for row in rows]


def sleep_debt(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date) -> list[SleepDebtDay]:
    """The user's sleep debt from ``since`` on, newest first."""
    rows = fetch_computed(cursor, SLEEP_DEBT_QUERY, {"user_id": user_id, "since": since})
    return [SleepDebtDay(**row) for row in rows]
