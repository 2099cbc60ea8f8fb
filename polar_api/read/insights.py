"""Unified insights, polar-flow-server's ``/insights`` shape, assembled from precomputed rows of one day.

Everything describes the user's latest day D (their last day with any synced record): the observations and
suggestions ``analytics.insights`` wrote for D, and the D rows of the tables they were written from. Two
queries on the usual path: D's insights row, then one UNION ALL of point lookups at (user, D) into eleven
tables (``INSIGHTS_PARTS_QUERY``); no window is recomputed, no payload is parsed, and the only JSON parsed is
the precomputed JSON columns. A third query runs only when D has no sleep and no Nightly Recharge, to find
the latest day that has (``data_freshness``).

How upstream's fields are filled:

* ``data_freshness``: the latest day with sleep or Nightly Recharge data, as midnight UTC (upstream's rule).
* ``data_age_days``: days with sleep or Nightly Recharge data in the 90 days up to D, the larger of the two
  streams' counts in ``analytics.readiness`` (upstream: the calendar span since the first record, which makes
  one old record look like months of data).
* ``status``: unavailable below 7 such days, partial below 21, else ready (upstream's cut-points).
* ``feature_availability``, ``unlock_progress``: the readiness features of D (docs/methods.md §13).
* ``current_metrics``: D's own values (``hrv`` = RMSSD ms, ``sleep_score``, ``resting_hr`` = mean overnight
  heart rate, ``training_load_ratio`` = ``marts.training_load.polar_ratio``, Polar's strain/tolerance ratio
  recomputed); null when D has none. Older values are not carried forward (§1.1).
* ``baselines``: every metric's baseline of D: ``current`` (D's value), ``baseline`` (the median),
  ``baseline_7d``/``baseline_30d`` (rolling means, day included), ``percent_of_baseline`` (100 × current /
  median; for ``ln_rmssd`` the ratio of the ms values, 100 × exp(current − median)), ``trend`` and
  ``polarity`` (the 30-day row of ``analytics.trends``: rising/falling/flat and what that means for the
  metric; null for metrics without trends) and ``status``. Upstream's ``trend_days`` was never computed
  and is not carried.
* ``patterns``: the patterns of D as ``analytics.patterns`` defines them (same scores, significance and
  confidence), with ``factors`` (what drove a composite or which signals fired) and a short
  ``interpretation``.
* ``anomalies``: the ``marts.anomalies`` rows of D (what the observations of D describe).
* ``observations``, ``suggestions``: ``analytics.insights`` of D, parsed (§15).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, Literal

import duckdb
from pydantic import BaseModel

from polar_api.read.analytics_common import Finite, fetch_computed, json_array
from polar_api.read.analytics_status import FeatureProgress, feature_progress, next_unlock
from polar_api.read.baselines import BASELINE_METRICS, UPSTREAM_NAMES
from polar_api.read.patterns import CORRELATION_PATTERNS, PATTERN_NAMES, TREND_PATTERNS, PatternType

STATUS_PARTIAL_DAYS = 7
STATUS_READY_DAYS = 21
"""polar-flow-server's cut-points for ``status``, applied to days with data rather than a calendar span."""
CORRELATION_WINDOW_DAYS = 90
TREND_WINDOW_DAYS = 30


class FeatureAvailability(BaseModel):
    """Upstream's {available, message, unlock_at_days} per feature, plus the stream and its days."""

    available: bool
    message: str
    unlock_at_days: int
    stream: str
    days_with_data: int
    days_remaining: int


class InsightUnlockProgress(BaseModel):
    """The locked feature nearest to unlocking; ``percent_to_next`` is capped at 99.9 as upstream."""

    next_unlock: str
    days_until_next: int
    percent_to_next: float


class CurrentMetrics(BaseModel):
    hrv: Finite
    sleep_score: Finite
    resting_hr: Finite
    training_load_ratio: Finite


class InsightBaseline(BaseModel):
    current: Finite
    baseline: Finite
    baseline_7d: Finite
    baseline_30d: Finite
    percent_of_baseline: Finite
    trend: Literal["rising", "falling", "flat"] | None
    polarity: Literal["good", "bad", "neutral"] | None
    status: Literal["ready", "partial", "insufficient"]
    sample_count: int


class InsightPattern(BaseModel):
    name: str
    pattern_type: PatternType
    score: Finite
    significance: str | None
    confidence: Finite
    factors: list[str]
    interpretation: str


class InsightAnomaly(BaseModel):
    metric: str
    upstream_name: str | None
    current_value: Finite
    baseline_value: Finite
    deviation_percent: Finite
    direction: Literal["above", "below"]
    severity: Literal["warning", "critical"]


class Evidence(BaseModel):
    """Where one number of an observation was read (docs/methods.md §15.1)."""

    relation: str
    where: dict[str, str | int | float | bool | None]
    column: str
    value: Finite
    transform: str | None
    digits: int
    shown: str


class Observation(BaseModel):
    rule: str
    category: str
    priority: Literal["critical", "high", "medium", "low", "info", "positive"]
    fact: str
    context: str | None
    evidence: list[Evidence]


class Suggestion(BaseModel):
    action: str
    description: str
    confidence: Finite
    reason: str
    rule: str


class Insights(BaseModel):
    """polar-flow-server's unified insights; ``day`` (ours) is the day every part describes."""

    user_id: str
    generated_at: datetime
    day: date | None
    data_freshness: datetime | None
    data_age_days: int
    status: Literal["unavailable", "partial", "ready"]
    feature_availability: dict[str, FeatureAvailability]
    unlock_progress: InsightUnlockProgress | None
    current_metrics: CurrentMetrics
    baselines: dict[str, InsightBaseline]
    patterns: list[InsightPattern]
    anomalies: list[InsightAnomaly]
    observations: list[Observation]
    suggestions: list[Suggestion]


LATEST_INSIGHTS_QUERY = """
SELECT day, observations, suggestions
FROM analytics.insights
WHERE user_id = $user_id
ORDER BY day DESC
LIMIT 1
"""

_CURRENT_VALUES = ", ".join(f"CAST({metric} AS DOUBLE)" for metric in BASELINE_METRICS)
_PAIRS = ", ".join(f"('{x}', '{y}')" for x, y in CORRELATION_PATTERNS.values())

# Point lookups at (user, day) in one statement: a UNION ALL of plain filtered scans costs about a third of
# as many separate queries (DuckDB spends most of a small query planning it). Every branch fills the same
# columns; which column means what for each part:
#   readiness    key=feature  label=stream  flag=unlocked  n=distinct_days  a=required_days  b=days_remaining
#   baseline     key=metric   label=status  n=n  a=median
#   rolling      key=metric   n=window_days  a=mean (7 and 30 days)
#   trend        key=metric   label=direction  label2=polarity  flag=meaningful  n=n  a=pct_change_7d_vs_30d
#   anomaly      key=metric   label=severity  label2=direction  a=value  b=baseline_median  c=deviation_pct
#   risk         label=level  n=persistence_days  a=overtraining_score  doc=factors
#   recovery     label=level  a=score  doc=contributors
#   illness      label=level  flag=flagged  doc=signals
#   correlation  key=x_metric  label=y_metric  label2=strength  flag=significant  n=lag_days  a=rho
#                b=q_value  c=n (pairs)
#   daily        vals=the day's BASELINE_METRICS values, in that order
#   load         a=polar_ratio
INSIGHTS_PARTS_QUERY = f"""
SELECT 'readiness' AS part, feature AS key, stream AS label, CAST(NULL AS VARCHAR) AS label2,
    unlocked AS flag, distinct_days AS n, CAST(required_days AS DOUBLE) AS a,
    CAST(days_remaining AS DOUBLE) AS b, CAST(NULL AS DOUBLE) AS c, CAST(NULL AS VARCHAR) AS doc,
    CAST(NULL AS DOUBLE[]) AS vals
FROM analytics.readiness WHERE user_id = $user_id AND day = $day
UNION ALL
SELECT 'baseline', metric, status, NULL, NULL, n, median, NULL, NULL, NULL, NULL
FROM marts.baselines WHERE user_id = $user_id AND day = $day
UNION ALL
SELECT 'rolling', metric, NULL, NULL, NULL, window_days, mean, NULL, NULL, NULL, NULL
FROM marts.rolling_metrics WHERE user_id = $user_id AND day = $day AND window_days IN (7, 30)
UNION ALL
SELECT 'trend', metric, direction, polarity, meaningful, n, pct_change_7d_vs_30d, NULL, NULL, NULL, NULL
FROM analytics.trends WHERE user_id = $user_id AND day = $day AND window_days = {TREND_WINDOW_DAYS}
UNION ALL
SELECT 'anomaly', metric, severity, direction, NULL, NULL, value, baseline_median, deviation_pct, NULL, NULL
FROM marts.anomalies WHERE user_id = $user_id AND day = $day
UNION ALL
SELECT 'risk', NULL, level, NULL, NULL, persistence_days, overtraining_score, NULL, NULL, factors, NULL
FROM analytics.risk WHERE user_id = $user_id AND day = $day
UNION ALL
SELECT 'recovery', NULL, level, NULL, NULL, NULL, score, NULL, NULL, contributors, NULL
FROM analytics.recovery WHERE user_id = $user_id AND day = $day
UNION ALL
SELECT 'illness', NULL, level, NULL, flagged, NULL, NULL, NULL, NULL, signals, NULL
FROM analytics.illness_watch WHERE user_id = $user_id AND day = $day
UNION ALL
SELECT 'correlation', x_metric, y_metric, strength, significant, lag_days, rho, q_value, n, NULL, NULL
FROM analytics.correlations
WHERE user_id = $user_id AND day = $day AND (x_metric, y_metric) IN ({_PAIRS})
UNION ALL
SELECT 'daily', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, [{_CURRENT_VALUES}]
FROM marts.daily_metrics WHERE user_id = $user_id AND day = $day
UNION ALL
SELECT 'load', NULL, NULL, NULL, NULL, NULL, polar_ratio, NULL, NULL, NULL, NULL
FROM marts.training_load WHERE user_id = $user_id AND day = $day
"""

FRESHNESS_QUERY = """
SELECT max(day) AS day FROM marts.daily_metrics
WHERE user_id = $user_id AND (sleep_seconds IS NOT NULL OR ln_rmssd IS NOT NULL)
"""


Parts = Mapping[str, list[dict[str, Any]]]
"""The rows of INSIGHTS_PARTS_QUERY by part."""


def _status(data_age_days: int) -> Literal["unavailable", "partial", "ready"]:
    if data_age_days < STATUS_PARTIAL_DAYS:
        return "unavailable"
    return "partial" if data_age_days < STATUS_READY_DAYS else "ready"


def _features(rows: list[dict[str, Any]]) -> list[FeatureProgress]:
    return [
        feature_progress(
            {
                "feature": row["key"],
                "stream": row["label"],
                "unlocked": row["flag"],
                "distinct_days": row["n"],
                "required_days": int(row["a"]),
                "days_remaining": int(row["b"]),
            }
        )
        for row in sorted(rows, key=lambda r: (r["a"], r["key"]))
    ]


def _availability(feature: FeatureProgress) -> FeatureAvailability:
    message = (
        "Available"
        if feature.unlocked
        else f"Unlocks after {feature.days_remaining} more day(s) with {feature.stream} data"
    )
    return FeatureAvailability(
        available=feature.unlocked,
        message=message,
        unlock_at_days=feature.days_required,
        stream=feature.stream,
        days_with_data=feature.days_with_data,
        days_remaining=feature.days_remaining,
    )


def _exp(x: float) -> float:
    """exp, inf on overflow (``Finite`` then shows null)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _percent_of_baseline(metric: str, current: float | None, median: float | None) -> float | None:
    if current is None or median is None:
        return None
    if metric == "ln_rmssd":  # a percentage of a logarithm means nothing; this is the ratio of the ms values
        return 100.0 * _exp(current - median)
    return 100.0 * current / median if median != 0 else None


def _baselines(parts: Parts, current: Mapping[str, float | None]) -> dict[str, InsightBaseline]:
    rolling = {(row["key"], row["n"]): row["a"] for row in parts["rolling"]}
    trends = {row["key"]: row for row in parts["trend"]}
    found = {}
    for row in sorted(parts["baseline"], key=lambda r: BASELINE_METRICS.index(r["key"])):
        metric = row["key"]
        trend = trends.get(metric)
        found[metric] = InsightBaseline(
            current=current.get(metric),
            baseline=row["a"],
            baseline_7d=rolling.get((metric, 7)),
            baseline_30d=rolling.get((metric, 30)),
            percent_of_baseline=_percent_of_baseline(metric, current.get(metric), row["a"]),
            trend=trend["label"] if trend else None,
            polarity=trend["label2"] if trend else None,
            status=row["label"],
            sample_count=row["n"],
        )
    return found


def _share(items: list[dict[str, Any]], present: Callable[[dict[str, Any]], bool]) -> float | None:
    """The share of a JSON column's objects that are ``present``: analytics.patterns' confidence."""
    if not items:
        return None
    return sum(1 for item in items if present(item)) / len(items)


def _available(item: dict[str, Any]) -> bool:
    return item.get("available") is True


def _has_z(item: dict[str, Any]) -> bool:
    return item.get("z") is not None


def _q_rank(row: dict[str, Any]) -> tuple[bool, float, int]:
    """analytics.patterns' choice of lag: the smallest q, NULLs last, then the shortest lag."""
    q = row["b"]
    return (q is None, q if q is not None else 0.0, row["n"])


def _correlation_patterns(rows: list[dict[str, Any]]) -> list[InsightPattern]:
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(rows, key=_q_rank):
        best.setdefault((row["key"], row["label"]), row)
    found = []
    for name, pair in CORRELATION_PATTERNS.items():
        chosen = best.get(pair)
        if chosen is None:
            continue
        rho, q, lag, pairs = chosen["a"], chosen["b"], chosen["n"], int(chosen["c"])
        if rho is None or q is None:
            text = f"not computed: {pairs} paired days (21 needed, and both sides must vary)"
        else:
            direction = "positive" if rho > 0 else "negative" if rho < 0 else "no"
            text = (
                f"{chosen['label2']} {direction} association of {pair[0]} with {pair[1]} {lag} day(s) later "
                f"(rho {rho:.2f}, q {q:.3f}, {pairs} days); an association, not a cause"
            )
        found.append(
            InsightPattern(
                name=name,
                pattern_type="correlation",
                score=rho,
                significance=_q_significance(q),
                confidence=pairs / CORRELATION_WINDOW_DAYS,
                factors=[],
                interpretation=text,
            )
        )
    return found


def _q_significance(q: float | None) -> str:
    if q is not None and q < 0.01:
        return "high"
    return "medium" if q is not None and q < 0.05 else "low"


def _composite_patterns(parts: Parts) -> list[InsightPattern]:
    found = []
    for row in parts["risk"]:
        factors = json_array(row["doc"])
        level = row["label"]
        found.append(
            InsightPattern(
                name="overtraining_risk",
                pattern_type="composite",
                score=row["a"],
                significance=level,
                confidence=_share(factors, _available),
                factors=[
                    str(f["name"]) for f in factors if f.get("available") and (f.get("points") or 0) > 0
                ],
                interpretation=f"overtraining risk {level}"
                + (f", {row['n']} day(s) at moderate or above" if row["n"] else ""),
            )
        )
    for row in parts["recovery"]:
        contributors = json_array(row["doc"])
        found.append(
            InsightPattern(
                name="recovery_readiness",
                pattern_type="composite",
                score=row["a"],
                significance=row["label"],
                confidence=_share(contributors, _available),
                factors=[str(c["name"]) for c in contributors if c.get("available")],
                interpretation=f"recovery {row['label']}",
            )
        )
    return found


def _trend_patterns(rows: list[dict[str, Any]]) -> list[InsightPattern]:
    by_metric = {row["key"]: row for row in rows}
    found = []
    for name, metric in TREND_PATTERNS.items():
        row = by_metric.get(metric)
        if row is None:
            continue
        direction, polarity = row["label"], row["label2"]
        found.append(
            InsightPattern(
                name=name,
                pattern_type="trend",
                score=row["a"],
                significance="high" if row["flag"] else "low",
                confidence=row["n"] / TREND_WINDOW_DAYS,
                factors=[],
                interpretation=f"{metric} {direction} over {TREND_WINDOW_DAYS} days ({polarity})"
                if direction
                else f"too few days for a trend ({row['n']} of {TREND_WINDOW_DAYS})",
            )
        )
    return found


def _illness_patterns(rows: list[dict[str, Any]]) -> list[InsightPattern]:
    found = []
    for row in rows:
        signals = json_array(row["doc"])
        fired = [str(s["metric"]) for s in signals if s.get("fired")]
        found.append(
            InsightPattern(
                name="illness_watch",
                pattern_type="anomaly",
                score=float(len(fired)),
                significance=row["label"],
                confidence=_share(signals, _has_z),
                factors=fired,
                interpretation=f"illness watch {row['label']}",
            )
        )
    return found


def _patterns(parts: Parts) -> list[InsightPattern]:
    found = [
        *_correlation_patterns(parts["correlation"]),
        *_composite_patterns(parts),
        *_trend_patterns(parts["trend"]),
        *_illness_patterns(parts["illness"]),
    ]
    return sorted(found, key=lambda p: PATTERN_NAMES.index(p.name))


def _anomalies(rows: list[dict[str, Any]]) -> list[InsightAnomaly]:
    return [
        InsightAnomaly(
            metric=row["key"],
            upstream_name=UPSTREAM_NAMES.get(row["key"]),
            current_value=row["a"],
            baseline_value=row["b"],
            deviation_percent=row["c"],
            direction=row["label2"],
            severity=row["label"],
        )
        for row in sorted(rows, key=lambda r: (r["label"] != "critical", r["key"]))
    ]


def _freshness(
    cursor: duckdb.DuckDBPyConnection, user_id: str, day: date, daily: list[Any] | None
) -> date | None:
    """D when D has sleep or Nightly Recharge (the usual case, no query); else the latest day that has."""
    if daily is not None:
        values = dict(zip(BASELINE_METRICS, daily, strict=True))
        if values["sleep_seconds"] is not None or values["ln_rmssd"] is not None:
            return day
    found = fetch_computed(cursor, FRESHNESS_QUERY, {"user_id": user_id})
    return found[0]["day"] if found else None


def insights(cursor: duckdb.DuckDBPyConnection, user_id: str, now: datetime) -> Insights | None:
    """The user's insights of their latest day; None when analytics.insights has no row for them."""
    head = fetch_computed(cursor, LATEST_INSIGHTS_QUERY, {"user_id": user_id})
    if not head:
        return None
    day: date = head[0]["day"]
    parts: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in fetch_computed(cursor, INSIGHTS_PARTS_QUERY, {"user_id": user_id, "day": day}):
        parts[row["part"]].append(row)
    daily = parts["daily"][0]["vals"] if parts["daily"] else None
    current = dict(zip(BASELINE_METRICS, daily, strict=True)) if daily is not None else {}
    load = parts["load"][0]["a"] if parts["load"] else None
    features = _features(parts["readiness"])
    days_by_stream = {f.stream: f.days_with_data for f in features}
    data_age = max(days_by_stream.get("sleep", 0), days_by_stream.get("recharge", 0))
    nearest = next_unlock(features)
    fresh = _freshness(cursor, user_id, day, daily)
    return Insights(
        user_id=user_id,
        generated_at=now,
        day=day,
        data_freshness=datetime.combine(fresh, time(0), tzinfo=UTC) if fresh else None,
        data_age_days=data_age,
        status=_status(data_age),
        feature_availability={f.feature: _availability(f) for f in features},
        unlock_progress=InsightUnlockProgress(
            next_unlock=nearest.feature,
            days_until_next=nearest.days_remaining,
            percent_to_next=min(99.9, nearest.progress_percent),
        )
        if nearest
        else None,
        current_metrics=CurrentMetrics(
            hrv=current.get("hrv_rmssd_ms"),
            sleep_score=current.get("sleep_score"),
            resting_hr=current.get("overnight_hr_bpm"),
            training_load_ratio=load,
        ),
        baselines=_baselines(parts, current),
        patterns=_patterns(parts),
        anomalies=_anomalies(parts["anomaly"]),
        observations=[Observation.model_validate(o) for o in json.loads(head[0]["observations"] or "[]")],
        suggestions=[Suggestion.model_validate(s) for s in json.loads(head[0]["suggestions"] or "[]")],
    )


def empty_insights(user_id: str, now: datetime) -> Insights:
    """The shape for a known user whose analytics have not run yet: nothing unlocked, nothing to say."""
    return Insights(
        user_id=user_id, generated_at=now, day=None, data_freshness=None, data_age_days=0,
        status="unavailable", feature_availability={}, unlock_progress=None,
        current_metrics=CurrentMetrics(hrv=None, sleep_score=None, resting_hr=None, training_load_ratio=None),
        baselines={}, patterns=[], anomalies=[], observations=[], suggestions=[],
    )  # fmt: skip
