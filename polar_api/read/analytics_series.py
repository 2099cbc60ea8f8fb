"""Our analytics tables as the routes return them: trends, recovery, correlations and the illness watch.

Every column of the table (docs/methods.md §9, §10, §12, §14 define them), newest day first; the JSON columns
(``contributors``, ``signals``) come back as typed objects. ``recovery`` and ``illness_watch`` are one row per
day, so their routes return the days of a window. ``trends`` (10 rows a day) and ``correlations`` (19 rows a
day) are windowed statistics already (30/90-day windows), so their routes return the user's latest day unless
a window is asked for.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import duckdb
from pydantic import BaseModel

from polar_api.read.analytics_common import (
    Finite,
    IllnessSignal,
    RecoveryContributor,
    fetch_computed,
    json_array,
)


class TrendRow(BaseModel):
    """analytics.trends (§10): Mann–Kendall, Theil–Sen and the 7-day vs 30-day change of one metric."""

    day: date
    metric: str
    window_days: int
    n: int
    mk_tau: Finite
    p_value: Finite
    theil_sen_per_week: Finite
    pct_change_7d_vs_30d: Finite
    meaningful: bool
    direction: Literal["rising", "falling", "flat"] | None
    polarity: Literal["good", "bad", "neutral"] | None


class RecoveryDay(BaseModel):
    """analytics.recovery (§12): 100 × Φ(weighted mean robust z) of the night, and its components."""

    day: date
    score: Finite
    level: Literal["low", "normal", "high", "insufficient"]
    contributors: list[RecoveryContributor]


class CorrelationRow(BaseModel):
    """analytics.correlations (§9): Spearman's rho of x on day t against y on day t + lag, 90-day window."""

    day: date
    x_metric: str
    y_metric: str
    lag_days: int
    n: int
    n_effective: Finite
    rho: Finite
    p_value: Finite
    q_value: Finite
    strength: str | None
    direction: Literal["positive", "negative", "none"] | None
    significant: bool


class IllnessWatchDay(BaseModel):
    """analytics.illness_watch (§14): the night's three signals against its ready baseline."""

    day: date
    flagged: bool
    level: Literal["none", "watch", "alert", "insufficient"]
    signals: list[IllnessSignal]


# $since NULL: the user's latest day of the table.
TRENDS_QUERY = """
SELECT day, metric, window_days, n, mk_tau, p_value, theil_sen_per_week, pct_change_7d_vs_30d, meaningful,
    direction, polarity
FROM analytics.trends
WHERE user_id = $user_id
    AND day >= coalesce($since, (SELECT max(day) FROM analytics.trends WHERE user_id = $user_id))
ORDER BY day DESC, metric, window_days
"""

CORRELATIONS_QUERY = """
SELECT day, x_metric, y_metric, lag_days, n, n_effective, rho, p_value, q_value, strength, direction,
    significant
FROM analytics.correlations
WHERE user_id = $user_id
    AND day >= coalesce($since, (SELECT max(day) FROM analytics.correlations WHERE user_id = $user_id))
ORDER BY day DESC, x_metric, y_metric, lag_days
"""

RECOVERY_QUERY = """
SELECT day, score, level, contributors
FROM analytics.recovery
WHERE user_id = $user_id AND day >= $since
ORDER BY day DESC
"""

ILLNESS_WATCH_QUERY = """
SELECT day, flagged, level, signals
FROM analytics.illness_watch
WHERE user_id = $user_id AND day >= $since
ORDER BY day DESC
"""


def trends(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date | None = None) -> list[TrendRow]:
    """Trend rows from ``since`` on, or of the user's latest day when ``since`` is None."""
    return [
        TrendRow(**row) for row in fetch_computed(cursor, TRENDS_QUERY, {"user_id": user_id, "since": since})
    ]


def correlations(
    cursor: duckdb.DuckDBPyConnection, user_id: str, since: date | None = None
) -> list[CorrelationRow]:
    """Correlation rows from ``since`` on, or of the user's latest day when ``since`` is None."""
    rows = fetch_computed(cursor, CORRELATIONS_QUERY, {"user_id": user_id, "since": since})
    return [CorrelationRow(**row) for row in rows]


def _with_json(row: dict[str, Any], column: str) -> dict[str, Any]:
    return {**row, column: json_array(row[column])}


def recovery(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date) -> list[RecoveryDay]:
    """Recovery scores from ``since`` on, newest first."""
    rows = fetch_computed(cursor, RECOVERY_QUERY, {"user_id": user_id, "since": since})
    return [RecoveryDay(**_with_json(row, "contributors")) for row in rows]


def illness_watch(cursor: duckdb.DuckDBPyConnection, user_id: str, since: date) -> list[IllnessWatchDay]:
    """Illness-watch days from ``since`` on, newest first."""
    rows = fetch_computed(cursor, ILLNESS_WATCH_QUERY, {"user_id": user_id, "since": since})
    return [IllnessWatchDay(**_with_json(row, "signals")) for row in rows]
