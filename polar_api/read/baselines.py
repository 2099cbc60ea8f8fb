"""Personal baselines, shaped like polar-flow-server's ``/baselines`` routes, read from ``marts.baselines``.

"The latest baseline" of a metric is its ``marts.baselines`` row of the user's latest day: the 60 calendar
days ``[day - 60, day - 1]`` before that day, the day itself excluded (docs/methods.md §4). How
polar-flow-server's fields are filled from ours:

* ``baseline_value``: the window's **median**, the centre our fences, robust z and deviations use (upstream:
  the mean; ours is in ``mean``);
* ``baseline_7d``/``30d``/``90d``: the ``marts.rolling_metrics`` mean over the calendar days
  ``[day - W + 1, day]`` (upstream: the last W values);
* ``median``, ``q1``, ``q3``, ``iqr``: the same columns (linear-interpolation quantiles, §4.2);
* ``std_dev``: ``sd``, the sample SD;
* ``lower_bound``, ``upper_bound``: the warning fences ``lower_warning``/``upper_warning``, q1/q3 ∓ 1.5 ×
  max(IQR, the metric's minimum IQR);
* ``sample_count``: ``n``, days with a value in the window (device segment applied, §1.5);
* ``status``: ready (n ≥ 21), partial (7–20), insufficient (< 7), as upstream;
* ``data_start_date``, ``data_end_date``: the window's first and last calendar day.

Not carried: ``min`` and ``max`` (the mart keeps quartiles, not extremes) and ``calculated_at`` (a baseline
belongs to a day: ``day``). Added: ``mean``, ``mad``, ``robust_sd``, the critical fences, ``day``,
``window_days``, ``upstream_name`` and ``fenced`` (whether ``marts.anomalies`` flags the metric, §5.1).

polar-flow-server's metric names are accepted as aliases: ``hrv_rmssd`` (RMSSD in ms) is our
``hrv_rmssd_ms``, ``resting_hr`` (upstream's mean overnight heart rate) our ``overnight_hr_bpm``,
``sleep_score`` and ``training_load`` are ours too (our training load counts rest days as 0, upstream's only
sessions with a load). ``training_load_ratio`` is known but has no baseline here: load ratios are reported as
they are (``/training-load``), not fenced (§7.5).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, Literal

import duckdb
from pydantic import BaseModel

from polar_api.read.analytics_common import Finite, fetch_computed

BASELINE_METRICS = (
    "ln_rmssd", "hrv_rmssd_ms", "sleep_score", "sleep_seconds", "overnight_hr_bpm", "breathing_rate",
    "steps", "training_load",
)  # fmt: skip
"""Every metric of ``marts.baselines``, in the order the routes list them."""
FENCED_METRICS = frozenset({"ln_rmssd", "overnight_hr_bpm", "breathing_rate", "sleep_seconds", "steps"})
"""The metrics ``marts.anomalies`` flags (docs/methods.md §5.1); the others keep baselines only."""
UPSTREAM_ALIASES: dict[str, str | None] = {
    "hrv_rmssd": "hrv_rmssd_ms",
    "sleep_score": "sleep_score",
    "resting_hr": "overnight_hr_bpm",
    "training_load": "training_load",
    "training_load_ratio": None,
}
"""polar-flow-server's baseline names -> ours (None: a name we know that has no baseline here)."""
UPSTREAM_NAMES = {ours: theirs for theirs, ours in UPSTREAM_ALIASES.items() if ours is not None}
NO_BASELINE_REASONS = {
    "training_load_ratio": (
        "training_load_ratio has no personal baseline here: load ratios are reported as they are "
        "(GET .../training-load), not fenced, because their cut-offs are heuristics (docs/methods.md §7.5)"
    ),
}
UNFENCED_NOTE = (
    "marts.anomalies does not flag {metric} (docs/methods.md §5.1); this judges the value with the same "
    "fences on request"
)
FENCEABLE_STATUSES = frozenset({"ready", "partial"})
"""Baseline statuses whose fences judge a value, as in marts.anomalies (§4.5)."""

Status = Literal["ready", "partial", "insufficient"]


class UnknownMetric(LookupError):
    """A metric name that is neither ours nor one of polar-flow-server's."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown metric {name!r}; ours: {', '.join(BASELINE_METRICS)}; "
            f"polar-flow-server's names (aliases): {', '.join(UPSTREAM_ALIASES)}"
        )


class NoBaseline(LookupError):
    """A known metric without a baseline row for this user."""


class Baseline(BaseModel):
    """One metric's latest baseline; the table in this module's docstring says which column fills what."""

    metric_name: str
    upstream_name: str | None
    day: date
    window_days: int
    baseline_value: Finite
    baseline_7d: Finite
    baseline_30d: Finite
    baseline_90d: Finite
    median: Finite
    q1: Finite
    q3: Finite
    iqr: Finite
    mean: Finite
    std_dev: Finite
    mad: Finite
    robust_sd: Finite
    lower_bound: Finite
    upper_bound: Finite
    lower_critical: Finite
    upper_critical: Finite
    sample_count: int
    status: Status
    data_start_date: date
    data_end_date: date
    fenced: bool


class BaselineCheck(BaseModel):
    """A value judged against the latest baseline with marts.anomalies' rule (docs/methods.md §5.2).

    Judged only when the baseline is ready or partial; then it is an anomaly outside the warning fences,
    critical outside the critical ones, and ``direction`` is the side of the fence crossed (null when not
    an anomaly). Otherwise ``is_anomaly`` is false, ``status`` says why and ``reason`` explains it.
    """

    value: float
    metric_name: str
    upstream_name: str | None
    is_anomaly: bool
    severity: Literal["warning", "critical"] | None
    direction: Literal["above", "below"] | None
    baseline: Finite
    baseline_7d: Finite
    lower_bound: Finite
    upper_bound: Finite
    lower_critical: Finite
    upper_critical: Finite
    robust_z: Finite
    deviation_percent: Finite
    status: Status
    sample_count: int
    day: date | None
    fenced_in_anomalies: bool
    reason: str | None
    note: str | None


# The latest day's row of every metric (or of one: $metric), with the rolling means of the same day.
LATEST_BASELINES_QUERY = """
WITH latest AS (SELECT max(day) AS day FROM marts.baselines WHERE user_id = $user_id),
rolling AS (
    SELECT metric,
        max(mean) FILTER (WHERE window_days = 7) AS mean_7d,
        max(mean) FILTER (WHERE window_days = 30) AS mean_30d,
        max(mean) FILTER (WHERE window_days = 90) AS mean_90d
    FROM marts.rolling_metrics
    WHERE user_id = $user_id AND day = (SELECT day FROM latest)
    GROUP BY metric
)
SELECT b.metric, b.day, b.window_days, b.n, b.median, b.q1, b.q3, b.iqr, b.mean, b.sd, b.mad, b.robust_sd,
    b.lower_warning, b.upper_warning, b.lower_critical, b.upper_critical, b.status,
    rolling.mean_7d, rolling.mean_30d, rolling.mean_90d
FROM marts.baselines AS b
LEFT JOIN rolling ON rolling.metric = b.metric
WHERE b.user_id = $user_id AND b.day = (SELECT day FROM latest)
    AND ($metric IS NULL OR b.metric = $metric)
"""


def resolve_metric(name: str) -> str | None:
    """Our metric for ``name`` (ours or an upstream alias); None for a known name without a baseline."""
    if name in BASELINE_METRICS:
        return name
    if name in UPSTREAM_ALIASES:
        return UPSTREAM_ALIASES[name]
    raise UnknownMetric(name)


def _baseline(row: dict[str, Any]) -> Baseline:
    metric = str(row["metric"])
    return Baseline(
        metric_name=metric,
        upstream_name=UPSTREAM_NAMES.get(metric),
        day=row["day"],
        window_days=row["window_days"],
        baseline_value=row["median"],
        baseline_7d=row["mean_7d"],
        baseline_30d=row["mean_30d"],
        baseline_90d=row["mean_90d"],
        median=row["median"],
        q1=row["q1"],
        q3=row["q3"],
        iqr=row["iqr"],
        mean=row["mean"],
        std_dev=row["sd"],
        mad=row["mad"],
        robust_sd=row["robust_sd"],
        lower_bound=row["lower_warning"],
        upper_bound=row["upper_warning"],
        lower_critical=row["lower_critical"],
        upper_critical=row["upper_critical"],
        sample_count=row["n"],
        status=row["status"],
        data_start_date=row["day"] - timedelta(days=row["window_days"]),
        data_end_date=row["day"] - timedelta(days=1),
        fenced=metric in FENCED_METRICS,
    )


def latest_baselines(cursor: duckdb.DuckDBPyConnection, user_id: str) -> list[Baseline]:
    """Every metric's baseline of the user's latest day, in ``BASELINE_METRICS`` order; [] without any."""
    rows = fetch_computed(cursor, LATEST_BASELINES_QUERY, {"user_id": user_id, "metric": None})
    baselines = [_baseline(row) for row in rows]
    return sorted(baselines, key=lambda b: BASELINE_METRICS.index(b.metric_name))


def latest_baseline(cursor: duckdb.DuckDBPyConnection, user_id: str, name: str) -> Baseline:
    """The latest baseline of ``name`` (ours or an alias); UnknownMetric or NoBaseline when there is none."""
    metric = resolve_metric(name)
    if metric is None:
        raise NoBaseline(NO_BASELINE_REASONS[name])
    rows = fetch_computed(cursor, LATEST_BASELINES_QUERY, {"user_id": user_id, "metric": metric})
    if not rows:
        raise NoBaseline(f"no baseline of {metric} for user {user_id} yet")
    return _baseline(rows[0])


def _judge(value: float, baseline: Baseline) -> dict[str, Any]:
    """marts.anomalies' rule (dbt_like_sql/marts/anomalies.sql) for one value against one baseline."""
    lower, upper = baseline.lower_bound, baseline.upper_bound
    if baseline.status not in FENCEABLE_STATUSES or lower is None or upper is None:
        return {
            "is_anomaly": False,
            "reason": (
                f"{baseline.sample_count} value(s) in the {baseline.window_days}-day window; fences need at "
                "least 7 (status insufficient, docs/methods.md §4.5)"
            ),
        }
    outside = value < lower or value > upper
    critical_low, critical_high = baseline.lower_critical, baseline.upper_critical
    far_out = (critical_low is not None and value < critical_low) or (
        critical_high is not None and value > critical_high
    )
    median, robust_sd = baseline.median, baseline.robust_sd
    return {
        "is_anomaly": outside,
        "severity": ("critical" if far_out else "warning") if outside else None,
        "direction": ("below" if value < lower else "above") if outside else None,
        "robust_z": (value - median) / robust_sd if median is not None and robust_sd else None,
        "deviation_percent": (
            100 * (value - median) / abs(median) if median is not None and median != 0 else None
        ),
        "reason": None,
    }


def check_value(cursor: duckdb.DuckDBPyConnection, user_id: str, name: str, value: float) -> BaselineCheck:
    """Judge a finite ``value`` of ``name`` against the user's latest baseline; UnknownMetric if unknown."""
    if not math.isfinite(value):
        raise ValueError("only finite values can be judged")
    metric = resolve_metric(name)
    verdict: dict[str, Any] = {
        "severity": None,
        "direction": None,
        "robust_z": None,
        "deviation_percent": None,
    }
    try:
        baseline = latest_baseline(cursor, user_id, name)
    except NoBaseline as missing:
        return BaselineCheck(
            value=value, metric_name=metric or name,
            upstream_name=UPSTREAM_NAMES.get(metric) if metric else name, is_anomaly=False, baseline=None,
            baseline_7d=None, lower_bound=None, upper_bound=None, lower_critical=None, upper_critical=None,
            status="insufficient", sample_count=0, day=None, fenced_in_anomalies=metric in FENCED_METRICS,
            reason=str(missing), note=None, **verdict,
        )  # fmt: skip
    verdict.update(_judge(value, baseline))
    fenced = baseline.metric_name in FENCED_METRICS
    return BaselineCheck(
        value=value,
        metric_name=baseline.metric_name,
        upstream_name=baseline.upstream_name,
        baseline=baseline.baseline_value,
        baseline_7d=baseline.baseline_7d,
        lower_bound=baseline.lower_bound,
        upper_bound=baseline.upper_bound,
        lower_critical=baseline.lower_critical,
        upper_critical=baseline.upper_critical,
        status=baseline.status,
        sample_count=baseline.sample_count,
        day=baseline.day,
        fenced_in_anomalies=fenced,
        note=None if fenced else UNFENCED_NOTE.format(metric=baseline.metric_name),
        **verdict,
    )
