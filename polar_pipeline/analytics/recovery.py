"""Recovery: last night's HRV, overnight heart rate and sleep against the person's own baselines, 0-100.

``analytics.recovery`` has one row per user and day (the wake-up day, docs/methods.md §1.2).

* **Components.** For each metric, the robust z of the night against marts.baselines' row of the same day
  (the 60 nights ``[day - 60, day - 1]``, the night itself excluded): z = sign × (value − median) /
  robust_sd, where robust_sd is 1.4826 × MAD (Iglewicz & Hoaglin 1993), so one bad week in the window barely
  moves it. The sign makes higher better: ``hrv`` is ln rMSSD (+), ``overnight_hr`` the Nightly Recharge
  heart rate (−), ``sleep`` Polar's sleep score (+), or the sleep duration (+) on a night without a score.
  A component counts when the night has a value and its baseline is ``ready`` (>= 21 nights).
* **Combination.** z̄ = Σ w·clip(z, −3, 3) / Σ w over the components that count, with weights hrv 0.5,
  overnight_hr 0.25, sleep 0.25: nightly HRV is the most sensitive single marker of recovery (Plews et al.
  2013; Buchheit 2014), heart rate and sleep add what it misses. Clipping at 3 keeps one extreme value
  (a sensor glitch) from deciding the day alone.
* **Score** = 100 · Φ(z̄), Φ the standard normal CDF: 50 is a usual night, and the score reads as "better
  than this share of the person's normal nights" if z̄ were standard normal. It is a display scale, not a
  calibrated probability: an average of correlated z-scores is not standard normal.
* **Level**: ``low`` when z̄ < −0.5 (score < 30.9), ``high`` when z̄ > 0.5 (score > 69.1), else ``normal``:
  the band is the smallest worthwhile change of 0.5 SD that marts.hrv_status uses (docs/methods.md §6).
* **NULL score** (level ``insufficient``) until the HRV baseline is ``ready`` and the night has an HRV
  value: without HRV there is no recovery reading, only its side metrics.

``contributors`` (JSON) lists every component with its metric, value, baseline median, robust SD, z,
weight and whether it counted.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from scipy import special

from polar_pipeline.analytics._common import (
    READY,
    dense_calendar,
    join_on_day,
    json_array,
    output_rows,
    read_range,
    wide_baselines,
)

LOOKBACK_DAYS = 0
"""A day reads only its own night and its own baseline row (which already looks 60 days back)."""
Z_CLIP = 3.0
"""Component z-scores are clipped to [−Z_CLIP, Z_CLIP] before they are averaged."""
LEVEL_Z = 0.5
"""z̄ beyond ±LEVEL_Z (the smallest worthwhile change) is ``high`` or ``low``."""

COMPONENTS: tuple[tuple[str, float, float], ...] = (
    ("hrv", 1.0, 0.5),
    ("overnight_hr", -1.0, 0.25),
    ("sleep", 1.0, 0.25),
)
"""(name, sign, weight): the sign makes a higher z better."""
BASELINE_METRICS: dict[str, str] = {
    "ln_rmssd": "hrv",
    "overnight_hr_bpm": "overnight_hr",
    "sleep_score": "sleep_score",
    "sleep_seconds": "sleep_seconds",
}
"""The baselines each component reads, as the prefix of their columns."""

SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "day": pl.Date(),
    "score": pl.Float64(),
    "level": pl.String(),
    "contributors": pl.String(),
}


def _component(name: str, metric: pl.Expr, value: pl.Expr, prefix: str) -> list[pl.Expr]:
    """metric name, value, baseline median and robust SD of one component, as ``<name>_*`` columns."""
    return [
        metric.alias(f"{name}_metric"),
        value.alias(f"{name}_value"),
        pl.col(f"{prefix}_median").alias(f"{name}_median"),
        pl.col(f"{prefix}_robust_sd").alias(f"{name}_robust_sd"),
        (value.is_not_null() & (pl.col(f"{prefix}_status") == READY)).fill_null(False).alias(f"{name}_ready"),
    ]


def compute_recovery(
    daily: pl.DataFrame, baselines: pl.DataFrame, first_day: date, last_day: date
) -> pl.DataFrame:
    """``analytics.recovery`` rows for every (user, day) of ``daily`` in ``[first_day, last_day]``.

    Inputs are marts rows from ``first_day - LOOKBACK_DAYS`` to ``last_day``: ``daily`` (marts.daily_metrics:
    user_id, day, ln_rmssd, overnight_hr_bpm, sleep_score, sleep_seconds) and ``baselines`` (marts.baselines:
    user_id, day, metric, median, robust_sd, status). Rows are ordered by user_id, day.
    """
    columns = {name: pl.Float64() for name in BASELINE_METRICS}
    calendar = dense_calendar(daily, columns, first_day, last_day, LOOKBACK_DAYS)
    statistics = ("status", "median", "robust_sd")
    reference = read_range(
        wide_baselines(baselines, BASELINE_METRICS, statistics),
        {
            f"{prefix}_{column}": pl.String() if column == "status" else pl.Float64()
            for prefix in BASELINE_METRICS.values()
            for column in statistics
        },
        first_day,
        last_day,
        LOOKBACK_DAYS,
    )
    frame = join_on_day(calendar, reference)
    # Sleep: the score when the night has one and its baseline is ready, else the duration.
    score_counts = (pl.col("sleep_score").is_not_null() & (pl.col("sleep_score_status") == READY)).fill_null(
        False
    )
    frame = frame.with_columns(
        *_component("hrv", pl.lit("ln_rmssd"), pl.col("ln_rmssd"), "hrv"),
        *_component("overnight_hr", pl.lit("overnight_hr_bpm"), pl.col("overnight_hr_bpm"), "overnight_hr"),
        pl.when(score_counts)
        .then(pl.lit("sleep_score"))
        .otherwise(pl.lit("sleep_seconds"))
        .alias("sleep_metric"),
        pl.when(score_counts)
        .then(pl.col("sleep_score"))
        .otherwise(pl.col("sleep_seconds"))
        .alias("sleep_value"),
        *[
            pl.when(score_counts)
            .then(pl.col(f"sleep_score_{column}"))
            .otherwise(pl.col(f"sleep_seconds_{column}"))
            .alias(f"sleep_{column}")
            for column in ("median", "robust_sd", "status")
        ],
    ).with_columns(
        (pl.col("sleep_value").is_not_null() & (pl.col("sleep_status") == READY))
        .fill_null(False)
        .alias("sleep_ready")
    )
    frame = frame.with_columns(
        [
            pl.when(pl.col(f"{name}_ready"))
            .then(sign * (pl.col(f"{name}_value") - pl.col(f"{name}_median")) / pl.col(f"{name}_robust_sd"))
            .alias(f"{name}_z")
            for name, sign, _ in COMPONENTS
        ]
    )
    weights = pl.sum_horizontal(
        [pl.when(pl.col(f"{n}_ready")).then(w).otherwise(0.0) for n, _, w in COMPONENTS]
    )
    weighted = pl.sum_horizontal(
        [(pl.col(f"{n}_z").clip(-Z_CLIP, Z_CLIP) * w).fill_null(0.0) for n, _, w in COMPONENTS]
    )
    frame = frame.with_columns(pl.when(pl.col("hrv_ready")).then(weighted / weights).alias("z_mean"))
    z_mean = frame.get_column("z_mean").to_numpy()
    score = pl.Series("score", 100.0 * special.ndtr(z_mean), dtype=pl.Float64).fill_nan(None)
    frame = frame.with_columns(score).with_columns(
        pl.when(pl.col("z_mean").is_null())
        .then(pl.lit("insufficient"))
        .when(pl.col("z_mean") < -LEVEL_Z)
        .then(pl.lit("low"))
        .when(pl.col("z_mean") > LEVEL_Z)
        .then(pl.lit("high"))
        .otherwise(pl.lit("normal"))
        .alias("level"),
        json_array(
            [
                pl.struct(
                    pl.lit(name).alias("name"),
                    pl.col(f"{name}_metric").alias("metric"),
                    pl.col(f"{name}_ready").alias("available"),
                    pl.col(f"{name}_value").alias("value"),
                    pl.col(f"{name}_median").alias("baseline_median"),
                    pl.col(f"{name}_robust_sd").alias("robust_sd"),
                    pl.col(f"{name}_z").alias("z"),
                    pl.lit(weight).alias("weight"),
                )
                for name, _, weight in COMPONENTS
            ]
        ).alias("contributors"),
    )
    return output_rows(frame, SCHEMA, first_day, last_day)
