"""Lagged Spearman correlations between a user's own daily metrics, corrected for autocorrelation.

``analytics.correlations`` has one row per user, day, pair (x_metric, y_metric) and lag. A row relates
x on day t to y on day t + lag_days, over the pairs whose days both lie in the trailing 90 calendar days
``[day - 89, day]``: t runs over ``[day - 89, day - lag_days]``, so the pair's last y day is the row's day
and nothing after it is read. Sleep and Nightly Recharge sit on the wake-up day (docs/methods.md §1.2), so
lag 0 is the same night and lag 1 is the next night; training on day t shows up in the night ending t + 1.

Statistics (the methods text gives the reasons and references):

* ``rho`` is Spearman's rank correlation, average ranks for ties, over the complete pairs (both values
  present); ``n`` counts them. Fewer than ``MIN_PAIRS`` complete pairs, or a side with no spread, leaves
  rho, n_effective, p and q NULL and significant false; the row is still written, so every user, day and
  pair has a row and ``n`` says why a value is missing.
* ``n_effective`` = n (1 − r1x r1y) / (1 + r1x r1y), clipped to [3, n] (Bartlett 1935; Bretherton et al.
  1999), with r1 the lag-1 autocorrelation of each side's ranks over the complete pairs: the mean product
  of centred ranks on calendar-adjacent pairs over their mean square.
* ``p_value`` is two-sided from t = rho √((n_eff − 2) / (1 − rho²)) with n_eff − 2 degrees of freedom.
* ``q_value`` is Benjamini–Hochberg over the family of that user's day: every pair × lag with a p.
* ``strength`` is Hopkins' scale for |rho|; ``significant`` is q < 0.05.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from polar_pipeline.analytics._stats import (
    Calendar,
    Floats,
    average_ranks,
    benjamini_hochberg,
    lag1_autocorrelation,
    row_blocks,
    t_test_p,
)

WINDOW_DAYS = 90
"""The trailing window in calendar days; every pair's x and y days lie in ``[day - 89, day]``."""
LOOKBACK_DAYS = WINDOW_DAYS - 1
"""Days before ``first_day`` a run must read: the oldest x day of the first row's window."""
MIN_PAIRS = 21
"""Complete pairs needed before a correlation is reported (``ready`` in docs/methods.md §4.5)."""
ALPHA = 0.05
"""The false-discovery rate at which a pair is called significant (q < ALPHA)."""

PAIRS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("sleep_score", "ln_rmssd", (0, 1, 2, 3)),
    ("sleep_seconds", "ln_rmssd", (0, 1, 2, 3)),
    ("deep_sleep_share", "ln_rmssd", (0, 1, 2, 3)),
    ("training_load", "ln_rmssd", (1, 2, 3)),
    ("training_load", "overnight_hr_bpm", (1, 2, 3)),
    ("steps", "sleep_score", (1,)),
)
"""(x, y, lags) tested: sleep vs HRV from the same night on; a day's load or steps vs the nights after it.

Load and steps start at lag 1: the night ending on day t comes before that day's training
(docs/methods.md §1.2).
"""

COMBOS: tuple[tuple[str, str, int], ...] = tuple((x, y, lag) for x, y, lags in PAIRS for lag in lags)

STRENGTH_BANDS: tuple[tuple[float, str], ...] = (
    (0.1, "trivial"),
    (0.3, "small"),
    (0.5, "moderate"),
    (0.7, "large"),
    (0.9, "very large"),
)
"""Upper bounds (exclusive) of Hopkins et al. (2009)'s bands for |rho|; 0.9 and above is nearly perfect."""

METRICS: dict[str, pl.Expr] = {
    "sleep_score": pl.col("sleep_score"),
    "sleep_seconds": pl.col("sleep_seconds"),
    "deep_sleep_share": pl.when(pl.col("sleep_seconds") > 0).then(
        pl.col("deep_sleep_seconds").cast(pl.Float64) / pl.col("sleep_seconds").cast(pl.Float64)
    ),
    "ln_rmssd": pl.col("ln_rmssd"),
    "overnight_hr_bpm": pl.col("overnight_hr_bpm"),
    "training_load": pl.col("training_load"),
    "steps": pl.col("steps"),
}
"""The daily_metrics columns read; deep_sleep_share is deep / total sleep, NULL without sleep."""

SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "day": pl.Date(),
    "x_metric": pl.String(),
    "y_metric": pl.String(),
    "lag_days": pl.Int32(),
    "n": pl.Int64(),
    "n_effective": pl.Float64(),
    "rho": pl.Float64(),
    "p_value": pl.Float64(),
    "q_value": pl.Float64(),
    "strength": pl.String(),
    "direction": pl.String(),
    "significant": pl.Boolean(),
}


def _spearman_block(x: Floats, y: Floats) -> tuple[Floats, Floats, Floats, Floats]:
    """n, rho, n_effective and p for each row's window of (x, y) pairs (NaN where not reported)."""
    complete = ~np.isnan(x) & ~np.isnan(y)
    n = complete.sum(axis=1).astype(np.float64)
    rank_x = average_ranks(np.where(complete, x, np.nan))
    rank_y = average_ranks(np.where(complete, y, np.nan))
    mean_rank = ((n + 1.0) / 2.0)[:, None]
    cx = np.where(complete, rank_x - mean_rank, 0.0)
    cy = np.where(complete, rank_y - mean_rank, 0.0)
    sxx = np.sum(cx * cx, axis=1)
    syy = np.sum(cy * cy, axis=1)
    sxy = np.sum(cx * cy, axis=1)
    reported = (n >= MIN_PAIRS) & (sxx > 0) & (syy > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0)
        weight = complete.astype(np.float64)
        product = lag1_autocorrelation(cx, weight, sxx, n) * lag1_autocorrelation(cy, weight, syy, n)
        n_eff = np.clip(n * (1.0 - product) / (1.0 + product), 3.0, n)
    n_eff = np.where(product <= -1.0, n, n_eff)
    rho = np.where(reported, rho, np.nan)
    n_eff = np.where(reported, n_eff, np.nan)
    return n, rho, n_eff, t_test_p(rho, n_eff - 2.0)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def compute_correlations(daily: pl.DataFrame, first_day: date, last_day: date) -> pl.DataFrame:
    """``analytics.correlations`` rows for every (user, day) of ``daily`` in ``[first_day, last_day]``.

    ``daily`` holds marts.daily_metrics rows from ``first_day - LOOKBACK_DAYS`` on; rows for every pair
    in ``COMBOS`` are written, ordered by user_id, day, x_metric, y_metric, lag_days.
    """
    calendar = Calendar.build(daily, METRICS, first_day, last_day, LOOKBACK_DAYS)
    rows, k = len(calendar.out_col), len(COMBOS)
    if rows == 0:
        return _empty()
    n = np.empty((rows, k))
    rho = np.empty((rows, k))
    n_eff = np.empty((rows, k))
    p = np.empty((rows, k))
    for j, (x_metric, y_metric, lag) in enumerate(COMBOS):
        width = WINDOW_DAYS - lag
        x = calendar.windows(x_metric, -lag, width)
        y = calendar.windows(y_metric, 0, width)
        for block in row_blocks(rows, width * 8):
            n[block, j], rho[block, j], n_eff[block, j], p[block, j] = _spearman_block(x[block], y[block])
    q = benjamini_hochberg(p)

    def column(values: Floats) -> pl.Series:
        return pl.Series(values.reshape(-1), dtype=pl.Float64).fill_nan(None)

    bounds = np.array([bound for bound, _ in STRENGTH_BANDS])
    band = np.searchsorted(bounds, np.abs(np.nan_to_num(rho.reshape(-1))), side="right")
    labels = pl.Series([label for _, label in STRENGTH_BANDS] + ["nearly perfect"], dtype=pl.String)
    frame = pl.DataFrame(
        {
            "user_id": calendar.out_user_ids().gather(np.repeat(np.arange(rows), k)),
            "day": calendar.out_days().gather(np.repeat(np.arange(rows), k)),
            "x_metric": pl.Series([c[0] for c in COMBOS] * rows, dtype=pl.String),
            "y_metric": pl.Series([c[1] for c in COMBOS] * rows, dtype=pl.String),
            "lag_days": pl.Series([c[2] for c in COMBOS] * rows, dtype=pl.Int32),
            "n": pl.Series(n.reshape(-1).astype(np.int64), dtype=pl.Int64),
            "n_effective": column(n_eff),
            "rho": column(rho),
            "p_value": column(p),
            "q_value": column(q),
            "strength": labels.gather(pl.Series(band, dtype=pl.Int64)),
        }
    )
    return (
        frame.with_columns(
            pl.when(pl.col("rho").is_not_null()).then(pl.col("strength")).alias("strength"),
            pl.when(pl.col("rho") > 0)
            .then(pl.lit("positive"))
            .when(pl.col("rho") < 0)
            .then(pl.lit("negative"))
            .when(pl.col("rho") == 0)
            .then(pl.lit("none"))
            .alias("direction"),
            (pl.col("q_value") < ALPHA).fill_null(False).alias("significant"),
        )
        .sort("user_id", "day", "x_metric", "y_metric", "lag_days")
        .select(list(SCHEMA))
    )
