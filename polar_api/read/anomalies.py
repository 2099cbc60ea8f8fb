"""Flagged days, shaped like polar-flow-server's ``/anomalies``, read from ``marts.anomalies``.

polar-flow-server judges each metric's latest value live on every request. Here the flags are already in
``marts.anomalies`` (one row per user, day and metric outside its own trailing baseline's fences,
docs/methods.md §5), so the route only picks rows:

* without ``days``: the user's latest day (their last day with any synced record, the day ``/insights``
  describes): what is anomalous now;
* with ``days``: every flagged day of the local dates ``today - days … today``, newest first.

Fields: ``current_value`` is the day's value, in the metric's unit (``ln_rmssd`` in ln ms);
``baseline_value`` and ``median_value`` are the baseline median (our baseline centre; upstream's
``baseline_value`` was the mean, given here as ``mean_value``); ``lower_bound``/``upper_bound`` are the
warning fences of that day's baseline and ``lower_critical``/``upper_critical`` the critical ones;
``direction`` is the side of the fence crossed; ``deviation_percent`` = 100 × (value − median) / |median|
(upstream: against the mean), null when the median is 0; ``robust_z`` = (value − median) / robust SD.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import duckdb
from pydantic import BaseModel

from polar_api.read.analytics_common import Finite, fetch_computed
from polar_api.read.baselines import UPSTREAM_NAMES


class Anomaly(BaseModel):
    """One flagged metric on one day."""

    metric_name: str
    upstream_name: str | None
    day: date
    current_value: Finite
    baseline_value: Finite
    median_value: Finite
    mean_value: Finite
    lower_bound: Finite
    upper_bound: Finite
    lower_critical: Finite
    upper_critical: Finite
    direction: Literal["above", "below"]
    severity: Literal["warning", "critical"]
    deviation_percent: Finite
    robust_z: Finite


class Anomalies(BaseModel):
    """polar-flow-server's envelope, plus the dates the list covers (``from_date`` … ``to_date``)."""

    user_id: str
    from_date: date | None
    to_date: date | None
    anomaly_count: int
    anomalies: list[Anomaly]


# The fences come from the same day's baseline row; critical before warning within a day.
ANOMALIES_QUERY = """
SELECT a.metric, a.day, a.value, a.severity, a.direction, a.robust_z, a.deviation_pct, a.baseline_median,
    b.mean, b.lower_warning, b.upper_warning, b.lower_critical, b.upper_critical
FROM marts.anomalies AS a
JOIN marts.baselines AS b ON b.user_id = a.user_id AND b.day = a.day AND b.metric = a.metric
WHERE a.user_id = $user_id AND a.day BETWEEN $since AND $until
ORDER BY a.day DESC, a.severity = 'warning', a.metric
"""

LATEST_DAY_QUERY = "SELECT max(day) AS day FROM marts.daily_metrics WHERE user_id = $user_id"


def _anomaly(row: dict[str, Any]) -> Anomaly:
    return Anomaly(
        metric_name=row["metric"],
        upstream_name=UPSTREAM_NAMES.get(str(row["metric"])),
        day=row["day"],
        current_value=row["value"],
        baseline_value=row["baseline_median"],
        median_value=row["baseline_median"],
        mean_value=row["mean"],
        lower_bound=row["lower_warning"],
        upper_bound=row["upper_warning"],
        lower_critical=row["lower_critical"],
        upper_critical=row["upper_critical"],
        direction=row["direction"],
        severity=row["severity"],
        deviation_percent=row["deviation_pct"],
        robust_z=row["robust_z"],
    )


def anomalies(
    cursor: duckdb.DuckDBPyConnection, user_id: str, window: tuple[date, date] | None = None
) -> Anomalies:
    """Flagged metrics of the days ``window`` (first, last), or of the user's latest day when it is None."""
    if window is None:
        latest = fetch_computed(cursor, LATEST_DAY_QUERY, {"user_id": user_id})
        day = latest[0]["day"] if latest else None
        window = (day, day) if day is not None else None
    rows = (
        fetch_computed(cursor, ANOMALIES_QUERY, {"user_id": user_id, "since": window[0], "until": window[1]})
        if window is not None
        else []
    )
    found = [_anomaly(row) for row in rows]
    return Anomalies(
        user_id=user_id,
        from_date=window[0] if window else None,
        to_date=window[1] if window else None,
        anomaly_count=len(found),
        anomalies=found,
    )
