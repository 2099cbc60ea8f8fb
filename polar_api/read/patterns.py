"""The pattern list, polar-flow-server's ``/patterns`` shape, read from the ``analytics.patterns`` view.

The view (``polar_pipeline/warehouse/serving_views.py``, docs/methods.md §15.3) has one row per user, day and
pattern; these routes return the user's latest day. ``confidence`` is coverage (the share of the window or of
the inputs with data), never 1 − p. ``details`` is the view's JSON object, typed per pattern kind:
correlations (the pair's lag with the smallest q), ``overtraining_risk`` (the factors), ``recovery_readiness``
(the contributors), the 30-day trends and ``illness_watch`` (the signals). Upstream's ``analyzed_at`` is
``day`` here: a pattern belongs to the day whose windows it summarises.

polar-flow-server names ten patterns and computes four; three of its names are not computed here
(``sleep_timing_consistency``, ``training_consistency``, ``fitness_trend``), and ``resting_hr_trend`` and
``illness_watch`` are ours.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal

import duckdb
from pydantic import BaseModel

from polar_api.read.analytics_common import (
    Finite,
    IllnessSignal,
    JsonObject,
    RecoveryContributor,
    RiskFactor,
    fetch_computed,
)

CORRELATION_PATTERNS = {
    "sleep_hrv_correlation": ("sleep_score", "ln_rmssd"),
    "training_recovery_lag": ("training_load", "ln_rmssd"),
    "activity_sleep_correlation": ("steps", "sleep_score"),
}
"""Correlation pattern -> its (x_metric, y_metric) pair of analytics.correlations."""
TREND_PATTERNS = {
    "hrv_trend": "ln_rmssd",
    "sleep_trend": "sleep_score",
    "resting_hr_trend": "overnight_hr_bpm",
}
"""Trend pattern -> its analytics.trends metric (the 30-day rows)."""
PATTERN_NAMES = (
    *CORRELATION_PATTERNS, "overtraining_risk", "recovery_readiness", *TREND_PATTERNS, "illness_watch",
)  # fmt: skip
"""Every pattern the view can hold, in the order the routes list them."""
UPSTREAM_ONLY_PATTERNS = ("sleep_timing_consistency", "training_consistency", "fitness_trend")

PatternType = Literal["correlation", "composite", "trend", "anomaly"]


class UnknownPattern(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown pattern {name!r}; valid names: {', '.join(PATTERN_NAMES)} "
            f"(polar-flow-server's {', '.join(UPSTREAM_ONLY_PATTERNS)} are not computed here)"
        )


class PatternNotComputed(LookupError):
    def __init__(self, name: str, user_id: str) -> None:
        super().__init__(f"pattern {name} not computed for user {user_id} yet")


class CorrelationDetails(JsonObject):
    """The pair's lag with the smallest q (analytics.correlations, docs/methods.md §9)."""

    lag_days: int
    rho: Finite
    p_value: Finite
    q_value: Finite
    n_effective: Finite
    strength: str | None
    direction: str | None
    significant: bool


class RiskDetails(JsonObject):
    """analytics.risk's factors and how many days the score has stayed at moderate or above (§11)."""

    factors: list[RiskFactor]
    persistence_days: int | None


class RecoveryDetails(JsonObject):
    """analytics.recovery's components (§12)."""

    contributors: list[RecoveryContributor]


class TrendDetails(JsonObject):
    """The 30-day row of analytics.trends (§10); ``score`` is its 7-day vs 30-day change in percent."""

    window_days: int
    mk_tau: Finite
    p_value: Finite
    theil_sen_per_week: Finite
    meaningful: bool | None
    direction: str | None
    polarity: str | None


class IllnessDetails(JsonObject):
    """analytics.illness_watch's flag and signals (§14); ``score`` is how many signals fired."""

    flagged: bool | None
    signals: list[IllnessSignal]


Details = CorrelationDetails | RiskDetails | RecoveryDetails | TrendDetails | IllnessDetails


class Pattern(BaseModel):
    """One row of analytics.patterns."""

    pattern_type: PatternType
    pattern_name: str
    day: date
    score: Finite
    confidence: Finite
    significance: str | None
    metrics_involved: list[str]
    sample_count: int | None
    details: Details


DetailsModel = (
    type[CorrelationDetails]
    | type[RiskDetails]
    | type[RecoveryDetails]
    | type[TrendDetails]
    | type[IllnessDetails]
)
DETAILS_MODEL: dict[str, DetailsModel] = {
    **dict.fromkeys(CORRELATION_PATTERNS, CorrelationDetails),
    "overtraining_risk": RiskDetails,
    "recovery_readiness": RecoveryDetails,
    **dict.fromkeys(TREND_PATTERNS, TrendDetails),
    "illness_watch": IllnessDetails,
}

LATEST_PATTERNS_QUERY = """
SELECT pattern_type, pattern_name, day, score, confidence, significance, metrics_involved, sample_count,
    details
FROM analytics.patterns
WHERE user_id = $user_id
    AND day = (SELECT max(day) FROM analytics.risk WHERE user_id = $user_id)
"""
"""The latest day is read from analytics.risk, one of the view's tables (a row per user and day with data),
rather than from the view itself, which would compute every day's patterns to find it."""


def _pattern(row: dict[str, Any]) -> Pattern:
    name = str(row["pattern_name"])
    details = DETAILS_MODEL[name].model_validate(json.loads(row["details"]))
    return Pattern(
        pattern_type=row["pattern_type"],
        pattern_name=name,
        day=row["day"],
        score=row["score"],
        confidence=row["confidence"],
        significance=row["significance"],
        metrics_involved=json.loads(row["metrics_involved"]),
        sample_count=row["sample_count"],
        details=details,
    )


def latest_patterns(cursor: duckdb.DuckDBPyConnection, user_id: str) -> list[Pattern]:
    """The user's patterns of their latest day, in ``PATTERN_NAMES`` order; [] when none are computed."""
    rows = fetch_computed(cursor, LATEST_PATTERNS_QUERY, {"user_id": user_id})
    patterns = [_pattern(row) for row in rows]
    return sorted(patterns, key=lambda p: PATTERN_NAMES.index(p.pattern_name))


def pattern_named(patterns: list[Pattern], name: str, user_id: str) -> Pattern:
    """``name`` among a user's ``patterns``; UnknownPattern or PatternNotComputed when it is not there."""
    if name not in PATTERN_NAMES:
        raise UnknownPattern(name)
    for pattern in patterns:
        if pattern.pattern_name == name:
            return pattern
    raise PatternNotComputed(name, user_id)
