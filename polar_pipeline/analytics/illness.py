"""Illness watch: overnight heart rate and breathing up while ln rMSSD is down, each against its own baseline.

``analytics.illness_watch`` has one row per user and day (the wake-up day, docs/methods.md §1.2).

* **Signals.** For each metric of the night, z = (value − median) / robust_sd against marts.baselines' row of
  the same day (the 60 nights ``[day − 60, day − 1]``, the night itself excluded; robust_sd = 1.4826 × MAD,
  Iglewicz & Hoaglin 1993). z keeps its natural sign for every metric, so the unhealthy side is positive for
  ``overnight_hr_bpm`` and ``breathing_rate`` and negative for ``ln_rmssd``. A signal is *available* when the
  night has a value and its baseline is ``ready`` (>= 21 nights); otherwise its z is NULL.
* **Firing.** ``overnight_hr_bpm`` fires at z >= +1.0, ``breathing_rate`` at z >= +2.0, ``ln_rmssd`` at
  z <= −0.5 (``threshold`` in ``signals`` carries the sign of the side that fires). Nightly breathing rate
  barely moves from night to night, so 2 of its robust SDs is a specific early sign (Miller et al. 2020;
  Natarajan et al. 2021). Heart rate rises a few bpm before symptoms (Mishra et al. 2020; Alavi et al. 2022);
  it arrives in whole bpm and most MADs are 1 bpm, so 1 robust SD means 2 bpm above the median. HRV falls
  least consistently before symptoms (Natarajan et al. 2020), so it needs only the smallest worthwhile change
  of 0.5 SD that marts.hrv_status and the risk score use (Plews et al. 2013).
* **Levels.** ``watch`` when all three fire on the same night: the pattern of an infection, which training
  strain (HR up, HRV down, breathing unchanged) and a short night do not produce together. ``alert`` when all
  three pass twice their thresholds (z >= 2, >= 4, <= −1). ``none`` otherwise. ``insufficient`` unless all
  three signals are available: the flag is a conjunction, so it cannot be judged without one of them.
  ``flagged`` is true for ``watch`` and ``alert``.
* **No smoothing.** A prodrome lasts 1-3 nights and grows towards the first symptom day; averaging a night
  with the one before dilutes a one-night prodrome more than it steadies the others (measured on simulated
  user-years, see the illness watch in the methods documentation), so each night is judged on its own.

``signals`` (JSON) lists the three signals, always in the order overnight_hr_bpm, breathing_rate, ln_rmssd,
with metric, value, baseline median, robust SD, z, threshold and whether it fired.
"""

from __future__ import annotations

from datetime import date

import polars as pl

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
ALERT_FACTOR = 2.0
"""``alert`` needs every signal beyond this multiple of its threshold."""

SIGNALS: tuple[tuple[str, float], ...] = (
    ("overnight_hr_bpm", 1.0),
    ("breathing_rate", 2.0),
    ("ln_rmssd", -0.5),
)
"""(metric, threshold): a signal fires when z reaches its threshold on the threshold's side of 0."""
LEVELS: tuple[str, ...] = ("none", "watch", "alert", "insufficient")

SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "day": pl.Date(),
    "flagged": pl.Boolean(),
    "level": pl.String(),
    "signals": pl.String(),
}


def _beyond(z: pl.Expr, threshold: float) -> pl.Expr:
    """z at or past ``threshold`` on its side of 0; False when z is NULL."""
    return (z >= threshold if threshold > 0 else z <= threshold).fill_null(False)


def compute_illness_watch(
    daily: pl.DataFrame, baselines: pl.DataFrame, first_day: date, last_day: date
) -> pl.DataFrame:
    """``analytics.illness_watch`` rows for every (user, day) of ``daily`` in ``[first_day, last_day]``.

    Inputs are marts rows from ``first_day - LOOKBACK_DAYS`` to ``last_day``: ``daily`` (marts.daily_metrics:
    user_id, day, overnight_hr_bpm, breathing_rate, ln_rmssd) and ``baselines`` (marts.baselines: user_id,
    day, metric, median, robust_sd, status). Rows are ordered by user_id, day.
    """
    metrics = [metric for metric, _ in SIGNALS]
    calendar = dense_calendar(daily, {m: pl.Float64() for m in metrics}, first_day, last_day, LOOKBACK_DAYS)
    statistics = ("status", "median", "robust_sd")
    reference = read_range(
        wide_baselines(baselines, {m: m for m in metrics}, statistics),
        {
            f"{m}_{column}": pl.String() if column == "status" else pl.Float64()
            for m in metrics
            for column in statistics
        },
        first_day,
        last_day,
        LOOKBACK_DAYS,
    )
    frame = join_on_day(calendar, reference)
    frame = frame.with_columns(
        pl.when(pl.col(m).is_not_null() & (pl.col(f"{m}_status") == READY) & (pl.col(f"{m}_robust_sd") > 0))
        .then((pl.col(m) - pl.col(f"{m}_median")) / pl.col(f"{m}_robust_sd"))
        .alias(f"{m}_z")
        for m in metrics
    )
    available = pl.all_horizontal([pl.col(f"{m}_z").is_not_null() for m in metrics])
    watch = pl.all_horizontal([_beyond(pl.col(f"{m}_z"), t) for m, t in SIGNALS])
    alert = pl.all_horizontal([_beyond(pl.col(f"{m}_z"), ALERT_FACTOR * t) for m, t in SIGNALS])
    level = (
        pl.when(~available)
        .then(pl.lit("insufficient"))
        .when(alert)
        .then(pl.lit("alert"))
        .when(watch)
        .then(pl.lit("watch"))
        .otherwise(pl.lit("none"))
    )
    frame = frame.with_columns(level.alias("level")).with_columns(
        pl.col("level").is_in(["watch", "alert"]).alias("flagged"),
        json_array(
            pl.struct(
                pl.lit(m).alias("metric"),
                pl.col(m).alias("value"),
                pl.col(f"{m}_median").alias("baseline_median"),
                pl.col(f"{m}_robust_sd").alias("robust_sd"),
                pl.col(f"{m}_z").alias("z"),
                pl.lit(t).alias("threshold"),
                _beyond(pl.col(f"{m}_z"), t).alias("fired"),
            )
            for m, t in SIGNALS
        ).alias("signals"),
    )
    return output_rows(frame, SCHEMA, first_day, last_day)
