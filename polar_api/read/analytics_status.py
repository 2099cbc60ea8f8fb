"""Which analytics a user's data supports yet: docs/methods.md §13's response, from ``analytics.readiness``.

The rows of the user's latest day (or of ``day``): per feature, the distinct days with data of its stream in
the trailing 90 days and the days it needs. Features unlock per stream, not on the scarcest stream as in
polar-flow-server, so upstream's ``min_data_days`` is deliberately not carried. Kept for its clients:
``unlock_progress`` (feature -> {unlocked, days_required, days_remaining, progress_percent}),
``features_available`` and one ``recommendation`` sentence.

Features are listed soonest-unlocking first (days required, then name), and ``next_unlock`` is the locked
feature with the fewest days remaining (ties the same way). A known user without rows yet gets every
feature of the catalogue locked, with zero days of data; the catalogue is read from the table's own rows
(``polar_pipeline.analytics.readiness.FEATURES`` writes them), so the API carries no copy of it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
from pydantic import BaseModel

from polar_api.read.analytics_common import fetch_computed

WINDOW_DAYS = 90
"""analytics.readiness counts days with data over [day - 89, day] (docs/methods.md §13)."""


class FeatureProgress(BaseModel):
    """One feature: how many days with data its stream has, and how many it needs."""

    feature: str
    stream: str
    unlocked: bool
    days_with_data: int
    days_required: int
    days_remaining: int
    progress_percent: float


class UnlockProgress(BaseModel):
    """polar-flow-server's per-feature progress entry."""

    unlocked: bool
    days_required: int
    days_remaining: int
    progress_percent: float


class NextUnlock(BaseModel):
    feature: str
    days_remaining: int


class AnalyticsStatus(BaseModel):
    """docs/methods.md §13's proposal plus upstream's ``unlock_progress`` and ``recommendation``."""

    user_id: str
    as_of: date | None
    window_days: int
    data_days: dict[str, int]
    features: list[FeatureProgress]
    features_available: dict[str, bool]
    unlock_progress: dict[str, UnlockProgress]
    next_unlock: NextUnlock | None
    recommendation: str | None


READINESS_QUERY = """
SELECT day, feature, stream, distinct_days, required_days, days_remaining, unlocked
FROM analytics.readiness
WHERE user_id = $user_id
    AND day = coalesce($day, (SELECT max(day) FROM analytics.readiness WHERE user_id = $user_id))
ORDER BY required_days, feature
"""

CATALOGUE_QUERY = """
SELECT DISTINCT feature, stream, required_days FROM analytics.readiness ORDER BY required_days, feature
"""


def progress_percent(days_with_data: int, days_required: int) -> float:
    """min(100, 100 × days with data / days required), to 0.1 (docs/methods.md §13)."""
    if days_required <= 0:
        return 100.0
    return round(min(100.0, 100.0 * days_with_data / days_required), 1)


def feature_progress(row: dict[str, Any]) -> FeatureProgress:
    """One analytics.readiness row as the route shows it."""
    return FeatureProgress(
        feature=row["feature"],
        stream=row["stream"],
        unlocked=row["unlocked"],
        days_with_data=row["distinct_days"],
        days_required=row["required_days"],
        days_remaining=row["days_remaining"],
        progress_percent=progress_percent(row["distinct_days"], row["required_days"]),
    )


def next_unlock(features: list[FeatureProgress]) -> FeatureProgress | None:
    """The locked feature with the fewest days remaining (ties: days required, then name); None if none."""
    locked = [f for f in features if not f.unlocked]
    return min(locked, key=lambda f: (f.days_remaining, f.days_required, f.feature)) if locked else None


def analytics_status(
    cursor: duckdb.DuckDBPyConnection, user_id: str, day: date | None = None
) -> AnalyticsStatus:
    """The readiness of the user's latest day (or of ``day``); every feature locked when there are no rows."""
    rows = fetch_computed(cursor, READINESS_QUERY, {"user_id": user_id, "day": day})
    if rows:
        features = [feature_progress(row) for row in rows]
        as_of = rows[0]["day"]
    else:
        catalogue = fetch_computed(cursor, CATALOGUE_QUERY, {})
        features = [
            feature_progress(
                {**row, "distinct_days": 0, "days_remaining": row["required_days"], "unlocked": False}
            )
            for row in catalogue
        ]
        as_of = day
    nearest = next_unlock(features)
    return AnalyticsStatus(
        user_id=user_id,
        as_of=as_of,
        window_days=WINDOW_DAYS,
        data_days={f.stream: f.days_with_data for f in features},
        features=features,
        features_available={f.feature: f.unlocked for f in features},
        unlock_progress={
            f.feature: UnlockProgress(
                unlocked=f.unlocked,
                days_required=f.days_required,
                days_remaining=f.days_remaining,
                progress_percent=f.progress_percent,
            )
            for f in features
        },
        next_unlock=NextUnlock(feature=nearest.feature, days_remaining=nearest.days_remaining)
        if nearest
        else None,
        recommendation=(
            f"{nearest.days_remaining} more day(s) with {nearest.stream} data until "
            f"{nearest.feature.replace('_', ' ')} unlocks"
        )
        if nearest
        else None,
    )
