"""Overtraining risk: a weighted composite of four warning signs, with how long it has persisted.

``analytics.risk`` has one row per user and day. Each factor scores points on a linear ramp from the edge of
its normal range (``threshold``, 0 points) to a clearly abnormal level (``full_at``, all of its weight):

==========================  ======================================================  =========  =======  ======
factor                      value                                                   threshold  full_at  weight
==========================  ======================================================  =========  =======  ======
hrv_below_normal            robust z of the 7-day mean ln rMSSD                      -0.5       -1.0     40
overnight_hr_above_normal   robust z of the 7-day mean overnight heart rate          +0.5       +1.0     25
sleep_debt                  14-night sleep debt per night with data, hours           1.0        2.0      20
acwr_high                   acute:chronic workload ratio (coupled, 7 / 28 days)      1.5        2.0      15
==========================  ======================================================  =========  =======  ======

* **HRV and overnight HR.** The 7-day mean needs 3 of the 7 nights ``[day - 6, day]`` (Plews et al. 2014).
  Its reference is marts.baselines' row of ``day - 6``: the median and robust SD of the 60 nights
  ``[day - 66, day - 7]`` before the week, the same nights as marts.hrv_status's band, so the week under test
  never pulls its own reference down (docs/methods.md §6). The reference must be ``ready`` (>= 21 nights):
  a MAD-based spread from fewer nights is too rough to put a night in units of it.
  z = (mean7 - median) / robust_sd, in nightly SDs. The threshold, 0.5 SD, is the smallest worthwhile
  change that HRV-guided training acts on (Plews et al. 2013; Vesterinen et al. 2016); full points come at
  twice it, 1 nightly SD, which is about two standard errors of a 7-night mean (nights are autocorrelated,
  so the mean's SD is roughly half the nightly SD). Heart rate uses the same band, mirrored.
* **Sleep debt** is marts.sleep_debt's 14-night debt divided by the nights it rests on (>= 7 of 14 needed),
  so a fortnight with missing nights is not read as good sleep. 1 h a night short of need is Belenky et al.
  (2003)'s 7-h condition, the mildest restriction with a measurable cost; 2 h is Van Dongen et al. (2003)'s
  6-h condition, which after two weeks impaired as much as one or two nights without sleep.
* **ACWR** is the coupled 7/28-day ratio of marts.training_load, on which the 1.5 "danger zone" was defined
  (Hulin et al. 2014, 2016; Gabbett 2016); the highest injury risk in Hulin et al. (2014) was above 2.0. The
  factor is marked ``heuristic``: the ratio and its cut-offs are not validated (Impellizzeri et al. 2020),
  so it has the smallest weight and can never raise the level on its own.
* **Weights** rank the evidence: nightly HRV is the most sensitive of these markers (Plews et al. 2013;
  Buchheit 2014), resting/overnight HR changes less reliably, poor sleep is a recognised feature of
  overreaching (Meeusen et al. 2013) and load ratios are heuristics.
* **Score** = sum of the available factors' points, 0-100; a missing factor adds nothing (its ``available``
  is false in ``factors``). With fewer than two available factors the score is NULL and the level
  ``insufficient``: no single marker diagnoses overreaching (Meeusen et al. 2013). Levels: ``low`` < 25 <=
  ``moderate`` < 50 <= ``high``; no factor weighs 50, so ``high`` always needs two signs at once.
* **persistence_days** counts the consecutive days up to and including the row's day whose score is >= 25
  (moderate or high), capped at ``PERSISTENCE_CAP_DAYS`` (28 means "28 or more"): the cap keeps the look-back
  finite, so every slice recomputes the same rows.

Overreaching can also show as HRV *above* the band (parasympathetic hyperactivity, Le Meur et al. 2013);
that pattern is not scored. Illness produces the same signs as overreaching, so the score measures strain,
not its cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from polar_pipeline.analytics._common import (
    READY,
    dense_calendar,
    join_on_day,
    json_array,
    output_rows,
    ramp,
    read_range,
    trailing_sum,
    wide_baselines,
)

WEEK_DAYS = 7
"""The HRV and heart-rate week ``[day - 6, day]``."""
MIN_WEEK_NIGHTS = 3
"""Nights of the week a 7-day mean needs (Plews et al. 2014; marts.hrv_status)."""
MIN_DEBT_NIGHTS = 7
"""Nights with data among the 14 of the sleep debt before it counts."""
MODERATE = 25.0
"""A score at or above this is ``moderate`` (and counts toward persistence)."""
HIGH = 50.0
"""A score at or above this is ``high``."""
MIN_FACTORS = 2
"""Available factors needed for a score; fewer give ``insufficient``."""
PERSISTENCE_CAP_DAYS = 28
"""persistence_days never exceeds this; 28 reads "28 days or more"."""
LOOKBACK_DAYS = PERSISTENCE_CAP_DAYS - 1 + WEEK_DAYS - 1
"""Days before ``first_day`` a run reads: the persistence of ``first_day`` looks at the scores of the 27
days before it, and the oldest of those scores reads its week from 6 days earlier (and the baseline row of
that day)."""


@dataclass(frozen=True)
class Factor:
    """One warning sign: points ramp from 0 at ``threshold`` to ``weight`` at ``full_at``."""

    name: str
    unit: str
    threshold: float
    full_at: float
    weight: float
    heuristic: bool = False
    note: str | None = None


HRV = Factor("hrv_below_normal", "robust SD", -0.5, -1.0, 40.0)
HEART_RATE = Factor("overnight_hr_above_normal", "robust SD", 0.5, 1.0, 25.0)
SLEEP = Factor("sleep_debt", "hours per night", 1.0, 2.0, 20.0)
ACWR = Factor(
    "acwr_high",
    "ratio",
    1.5,
    2.0,
    15.0,
    heuristic=True,
    note="ACWR cut-offs are heuristics, not validated thresholds (Impellizzeri et al. 2020)",
)
FACTORS: tuple[Factor, ...] = (HRV, HEART_RATE, SLEEP, ACWR)

SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "day": pl.Date(),
    "overtraining_score": pl.Float64(),
    "level": pl.String(),
    "factors": pl.String(),
    "persistence_days": pl.Int64(),
}


def _week_z(prefix: str, column: str) -> list[pl.Expr]:
    """The 7-day mean of ``column``, its night count and its robust z against the reference of day - 6."""
    total, count = trailing_sum(column, WEEK_DAYS)
    mean = pl.when(count >= MIN_WEEK_NIGHTS).then(total / count)
    reference_ok = pl.col(f"{prefix}_ref_status") == READY
    return [
        count.alias(f"{prefix}_nights"),
        mean.alias(f"{prefix}_mean7"),
        pl.when(reference_ok)
        .then((mean - pl.col(f"{prefix}_ref_median")) / pl.col(f"{prefix}_ref_robust_sd"))
        .alias(f"{prefix}_z"),
    ]


def _factor_struct(factor: Factor, value: str, n: str | None) -> pl.Expr:
    available = pl.col(value).is_not_null()
    return pl.struct(
        pl.lit(factor.name).alias("name"),
        available.alias("available"),
        pl.col(value).alias("value"),
        pl.lit(factor.unit).alias("unit"),
        pl.lit(factor.threshold).alias("threshold"),
        pl.lit(factor.full_at).alias("full_at"),
        pl.lit(factor.weight).alias("weight"),
        pl.when(available).then(pl.col(f"{factor.name}_points")).alias("points"),
        (pl.col(n) if n else pl.lit(None, dtype=pl.Int64)).cast(pl.Int64).alias("n"),
        pl.lit(factor.heuristic).alias("heuristic"),
        pl.lit(factor.note, dtype=pl.String).alias("note"),
    )


def compute_risk(
    daily: pl.DataFrame,
    baselines: pl.DataFrame,
    training_load: pl.DataFrame,
    sleep_debt: pl.DataFrame,
    first_day: date,
    last_day: date,
) -> pl.DataFrame:
    """``analytics.risk`` rows for every (user, day) of ``daily`` in ``[first_day, last_day]``.

    Inputs are marts rows from ``first_day - LOOKBACK_DAYS`` to ``last_day``: ``daily`` (marts.daily_metrics:
    user_id, day, ln_rmssd, overnight_hr_bpm), ``baselines`` (marts.baselines: user_id, day, metric, status,
    median, robust_sd), ``training_load`` (user_id, day, acwr_coupled) and ``sleep_debt`` (user_id, day,
    debt_seconds, nights). Rows are ordered by user_id, day.
    """
    floats = {"ln_rmssd": pl.Float64(), "overnight_hr_bpm": pl.Float64()}
    calendar = dense_calendar(daily, floats, first_day, last_day, LOOKBACK_DAYS)
    reference = read_range(
        wide_baselines(
            baselines,
            {"ln_rmssd": "hrv_ref", "overnight_hr_bpm": "hr_ref"},
            ("status", "median", "robust_sd"),
        ),
        {
            f"{prefix}_ref_{column}": pl.String() if column == "status" else pl.Float64()
            for prefix in ("hrv", "hr")
            for column in ("status", "median", "robust_sd")
        },
        first_day,
        last_day,
        LOOKBACK_DAYS,
    )
    # The reference of day d is the baseline row of d - 6: the 60 nights before the week [d - 6, d].
    frame = join_on_day(calendar, reference, shift_days=WEEK_DAYS - 1)
    frame = join_on_day(
        frame,
        read_range(training_load, {"acwr_coupled": pl.Float64()}, first_day, last_day, LOOKBACK_DAYS),
    )
    frame = join_on_day(
        frame,
        read_range(
            sleep_debt,
            {"debt_seconds": pl.Float64(), "nights": pl.Int64()},
            first_day,
            last_day,
            LOOKBACK_DAYS,
        ),
    )
    frame = frame.with_columns(*_week_z("hrv", "ln_rmssd"), *_week_z("hr", "overnight_hr_bpm")).with_columns(
        pl.col("hrv_z").alias(HRV.name),
        pl.col("hr_z").alias(HEART_RATE.name),
        pl.when(pl.col("nights") >= MIN_DEBT_NIGHTS)
        .then(pl.col("debt_seconds") / pl.col("nights") / 3600.0)
        .alias(SLEEP.name),
        pl.col("acwr_coupled").alias(ACWR.name),
    )
    frame = frame.with_columns(
        [(ramp(pl.col(f.name), f.threshold, f.full_at) * f.weight).alias(f"{f.name}_points") for f in FACTORS]
    )
    available = pl.sum_horizontal([pl.col(f.name).is_not_null().cast(pl.Int64) for f in FACTORS])
    points = pl.sum_horizontal([pl.col(f"{f.name}_points").fill_null(0.0) for f in FACTORS])
    score = pl.when(available >= MIN_FACTORS).then(points)
    frame = frame.with_columns(score.alias("overtraining_score")).with_columns(
        pl.when(pl.col("overtraining_score").is_null())
        .then(pl.lit("insufficient"))
        .when(pl.col("overtraining_score") >= HIGH)
        .then(pl.lit("high"))
        .when(pl.col("overtraining_score") >= MODERATE)
        .then(pl.lit("moderate"))
        .otherwise(pl.lit("low"))
        .alias("level"),
        json_array(
            [
                _factor_struct(HRV, HRV.name, "hrv_nights"),
                _factor_struct(HEART_RATE, HEART_RATE.name, "hr_nights"),
                _factor_struct(SLEEP, SLEEP.name, "nights"),
                _factor_struct(ACWR, ACWR.name, None),
            ]
        ).alias("factors"),
    )
    # Runs of days at or above MODERATE: a new run starts after every day below it (or without a score).
    elevated = (pl.col("overtraining_score") >= MODERATE).fill_null(False)
    frame = frame.with_columns(
        (~elevated).cast(pl.Int64).cum_sum().over("user_id").alias("_run")
    ).with_columns(
        elevated.cast(pl.Int64)
        .cum_sum()
        .over("user_id", "_run")
        .clip(upper_bound=PERSISTENCE_CAP_DAYS)
        .alias("persistence_days")
    )
    return output_rows(frame, SCHEMA, first_day, last_day)
