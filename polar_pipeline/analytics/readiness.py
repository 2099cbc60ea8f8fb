"""Which analytics a user's data supports yet: features unlock by distinct days with data, per stream.

``analytics.readiness`` has one row per user, day and feature. ``distinct_days`` counts the days of the
trailing ``WINDOW_DAYS`` calendar days ``[day - 89, day]`` on which the feature's stream has data; the
feature is ``unlocked`` once that count reaches its ``required_days``, and ``days_remaining`` =
max(0, required_days − distinct_days) is how many more days with data it needs at the least.

* **Distinct days, not calendar span.** A user who wore the watch 10 nights in a month has 10 days of HRV,
  not 30 (polar-flow-server's insights count days since the first record instead).
* **Per stream, not the minimum over streams.** Each feature waits only for the stream it reads, so a user
  who never trains unlocks every sleep and HRV feature (polar-flow-server's status endpoint gated all
  features on the scarcest stream, so such a user never unlocked anything).
* **A trailing window.** Counting inside the last 90 days keeps the look-back finite, matches the window of
  analytics.correlations and polar-flow-server's own 90-day count, and makes a feature lock again after a
  long break, when its baselines have emptied too.

Unlocked means enough data has been collected for the feature; each analytic still applies its own gate on
the window it reads (a baseline needs its 21 nights within its 60 days, for example).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from polar_pipeline.analytics._common import IN_DAILY, KEY, dense_calendar

WINDOW_DAYS = 90
"""Days with data are counted over ``[day - 89, day]``."""
LOOKBACK_DAYS = WINDOW_DAYS
"""The window's first day is ``day - 89``, and a lagged pair there reads its activity one day earlier."""

STREAMS: dict[str, pl.Expr] = {
    "sleep": pl.col("sleep_seconds").is_not_null(),
    "recharge": pl.col("ln_rmssd").is_not_null(),
    "activity": pl.col("steps").is_not_null() | (pl.col("exercise_count") > 0).fill_null(False),
}
"""What a day with data is for each single stream (marts.daily_metrics columns). ``activity`` is a day
whose training load is known: an activity summary or a workout (docs/methods.md §1.1: rest is zero load)."""
PAIRED: dict[str, tuple[str, int, str, int]] = {
    "sleep+recharge": ("sleep", 0, "recharge", 0),
    "activity+recharge": ("activity", 1, "recharge", 0),
}
"""Paired streams: (stream, days back, stream, days back) that must both have data. The night ending on
day d pairs with the activity of d - 1, the day whose training it follows (docs/methods.md §1.2)."""


@dataclass(frozen=True)
class Feature:
    name: str
    stream: str
    required_days: int
    reason: str


FEATURES: tuple[Feature, ...] = (
    Feature("sleep_debt", "sleep", 7, "analytics.risk counts the 14-night debt from 7 nights with data"),
    Feature(
        "hrv_status",
        "recharge",
        21,
        "marts.hrv_status's band needs 14 nights in the 60 days before the current week, plus 3 of the week",
    ),
    Feature(
        "recovery_score",
        "recharge",
        22,
        "analytics.recovery needs a ready HRV baseline (21 nights before the day) and the night itself",
    ),
    Feature(
        "sleep_baseline",
        "sleep",
        22,
        "marts.baselines is ready at 21 nights before the day; the sleep anomalies and recovery use it",
    ),
    Feature(
        "overtraining_risk",
        "recharge",
        28,
        "analytics.risk's HRV and heart-rate factors need a ready reference (21 nights) before their week",
    ),
    Feature("training_load_ratios", "activity", 28, "marts.training_load's ratios need 28 days of load"),
    Feature("sleep_hrv_correlation", "sleep+recharge", 21, "analytics.correlations needs 21 paired days"),
    Feature("load_hrv_correlation", "activity+recharge", 21, "analytics.correlations needs 21 paired days"),
    Feature("hrv_trend", "recharge", 30, "a trend over a month of nights"),
    Feature("sleep_trend", "sleep", 30, "a trend over a month of nights"),
    Feature("activity_trend", "activity", 30, "a trend over a month of days"),
)
"""Every feature, its stream and the days with data it needs, in output order."""

SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "day": pl.Date(),
    "stream": pl.String(),
    "distinct_days": pl.Int64(),
    "feature": pl.String(),
    "unlocked": pl.Boolean(),
    "days_remaining": pl.Int64(),
    "required_days": pl.Int64(),
}


def compute_readiness(daily: pl.DataFrame, first_day: date, last_day: date) -> pl.DataFrame:
    """``analytics.readiness`` rows for every (user, day) of ``daily`` in ``[first_day, last_day]`` and
    every feature of ``FEATURES``.

    ``daily`` holds marts.daily_metrics rows (user_id, day, sleep_seconds, ln_rmssd, steps, exercise_count)
    from ``first_day - LOOKBACK_DAYS`` on. Rows are ordered by user_id, day and the order of ``FEATURES``.
    """
    columns = {
        "sleep_seconds": pl.Float64(),
        "ln_rmssd": pl.Float64(),
        "steps": pl.Float64(),
        "exercise_count": pl.Float64(),
    }
    calendar = dense_calendar(daily, columns, first_day, last_day, LOOKBACK_DAYS)
    has = calendar.select(
        *KEY,
        IN_DAILY,
        *[expr.fill_null(False).cast(pl.Int64).alias(f"has_{name}") for name, expr in STREAMS.items()],
    )
    has = has.with_columns(
        [
            (
                pl.col(f"has_{a}").shift(lag_a).over("user_id").fill_null(0)
                * pl.col(f"has_{b}").shift(lag_b).over("user_id").fill_null(0)
            ).alias(f"has_{name}")
            for name, (a, lag_a, b, lag_b) in PAIRED.items()
        ]
    )
    streams = [*STREAMS, *PAIRED]
    # Integer sums are exact in any order, so a rolling sum reproduces the same counts from any slice.
    counts = has.with_columns(
        [
            pl.col(f"has_{name}").rolling_sum(WINDOW_DAYS, min_samples=1).over("user_id").alias(name)
            for name in streams
        ]
    )
    counts = counts.filter(pl.col(IN_DAILY) & pl.col("day").is_between(first_day, last_day))
    counts = counts.select(*KEY, *streams)
    catalog = pl.DataFrame(
        {
            "feature": [f.name for f in FEATURES],
            "stream": [f.stream for f in FEATURES],
            "required_days": [f.required_days for f in FEATURES],
            "_order": list(range(len(FEATURES))),
        },
        schema={"feature": pl.String, "stream": pl.String, "required_days": pl.Int64, "_order": pl.Int64},
    )
    long = counts.unpivot(index=list(KEY), on=streams, variable_name="stream", value_name="distinct_days")
    rows = long.join(catalog, on="stream", how="inner").with_columns(
        (pl.col("distinct_days") >= pl.col("required_days")).alias("unlocked"),
        (pl.col("required_days") - pl.col("distinct_days")).clip(lower_bound=0).alias("days_remaining"),
    )
    return rows.sort(*KEY, "_order").select([pl.col(name).cast(dtype) for name, dtype in SCHEMA.items()])
