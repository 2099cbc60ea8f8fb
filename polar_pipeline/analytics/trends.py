"""Monotonic trends in a user's daily metrics: Mann–Kendall test, Theil–Sen slope, smallest worthwhile change.

``analytics.trends`` has one row per user, day, metric and window. The window is the trailing
``window_days`` calendar days ``[day - window_days + 1, day]`` (docs/methods.md §1.1: calendar days, NULLs
skipped), so a row never reads a day after its own.

* ``mk_tau`` is Kendall's tau-b between time and the values; ``p_value`` is the two-sided Mann–Kendall p
  from S with the tie-corrected variance and a continuity correction, normal approximation (Mann 1945;
  Kendall 1975), the variance widened for serial correlation by Yue & Wang (2004)'s effective sample size.
  Both need ``n >= window_days / 2`` values (``min_values``), else they are NULL and direction is NULL.
* ``theil_sen_per_week`` is the median of the pairwise slopes (Theil 1950; Sen 1968) × 7.
* ``meaningful``: p < 0.05 and the fitted change over the data's span, |slope| × (last day − first day),
  exceeds the smallest worthwhile change, 0.5 × the window's within-person SD (Plews et al. 2013;
  Buchheit 2014). ``direction`` is rising or falling only when meaningful, else flat.
* ``polarity`` judges the direction for the metric: rising HRV, sleep and steps are good, rising overnight
  heart rate is bad; flat is neutral.
* Metrics: ln_rmssd, overnight_hr_bpm, sleep_score, sleep_seconds, steps. Not hrv_rmssd_ms: the same
  signal on a skewed scale, with the same tau as ln_rmssd (the log keeps the order; docs/methods.md §2).
  Not training_load: rest days tie at 0, which pulls the Theil–Sen median towards 0 (a doubling of
  session loads over 90 days with 40 % rest days is missed about one time in three); its trend is the
  acute:chronic ratio of marts.training_load.
* ``pct_change_7d_vs_30d`` compares the mean of ``[day - 6, day]`` with the mean of ``[day - 29, day]``
  (polar-flow-server's 7-day vs 30-day trend), the same for both windows' rows of a metric; for ln_rmssd
  it is the change of the geometric mean in ms, 100 (exp(mean7 − mean30) − 1).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
from scipy import special

from polar_pipeline.analytics._stats import (
    Calendar,
    Floats,
    average_ranks,
    lag1_autocorrelation,
    row_blocks,
    tie_sizes,
)

WINDOWS: tuple[int, ...] = (30, 90)
"""Trailing windows in calendar days: a month for recent change, a quarter for slow drift."""
LOOKBACK_DAYS = max(WINDOWS) - 1
"""Days before ``first_day`` a run must read: the first day of the longest window."""
ALPHA = 0.05
"""Mann–Kendall significance level."""
SWC_FACTOR = 0.5
"""Smallest worthwhile change as a fraction of the window's within-person SD (Plews/Buchheit)."""
PCT_MIN_7D = 3
"""Values needed in the 7 days for pct_change_7d_vs_30d (3 of 7, Plews et al. 2014; docs/methods.md §6)."""
PCT_MIN_30D = 14
"""Values needed in the 30 days for pct_change_7d_vs_30d (two weeks, the HRV reference's minimum)."""

POLARITY_RISING: dict[str, str] = {
    "ln_rmssd": "good",
    "overnight_hr_bpm": "bad",
    "sleep_score": "good",
    "sleep_seconds": "good",
    "steps": "good",
}
"""What a rising trend means for each metric (falling is the opposite); the keys are the metrics trended."""
METRICS: tuple[str, ...] = tuple(POLARITY_RISING)
LOG_METRICS: frozenset[str] = frozenset({"ln_rmssd"})
"""Metrics on the log scale, whose pct_change is that of the geometric mean (exp of the difference)."""

SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "day": pl.Date(),
    "metric": pl.String(),
    "window_days": pl.Int32(),
    "n": pl.Int64(),
    "mk_tau": pl.Float64(),
    "p_value": pl.Float64(),
    "theil_sen_per_week": pl.Float64(),
    "pct_change_7d_vs_30d": pl.Float64(),
    "meaningful": pl.Boolean(),
    "direction": pl.String(),
    "polarity": pl.String(),
}


def min_values(window_days: int) -> int:
    """Values a window needs for a test: half its days, and never fewer than 10 (normal approximation)."""
    return max(10, -(-window_days // 2))


def _pairs(width: int) -> tuple[np.ndarray[tuple[int], np.dtype[np.int64]], ...]:
    """Index pairs i < j of a window, in row-major order."""
    i, j = np.triu_indices(width, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def _median_slope(slopes: Floats) -> Floats:
    """Row medians of the non-NaN slopes, the mean of the middle two for an even count (as np.median)."""
    ordered = np.sort(slopes, axis=1)
    m = np.sum(~np.isnan(ordered), axis=1)
    rows = np.arange(slopes.shape[0])
    low = ordered[rows, np.maximum((m - 1) // 2, 0)]
    high = ordered[rows, np.maximum(m // 2, 0)]
    return np.where(m > 0, (low + high) / 2.0, np.nan)


def _serial_correction(values: Floats, slope: Floats, n: Floats) -> Floats:
    """Yue & Wang (2004)'s variance factor n / n* = 1 + 2 Σ_k (1 − k/n) r1^k, k = 1 … n − 1.

    r1 is the lag-1 autocorrelation of the ranks of the Theil–Sen-detrended values (ranks as in Hamed &
    Rao 1998), bias-adjusted for a short window, r1 ← (n r1 + 1) / (n − 4) (E r1 ≈ ρ − (1 + 4ρ) / n,
    Marriott & Pope 1954), and clipped to [0, 1]: positive serial correlation widens Var(S), negative
    never narrows it. Without it, trendless AR(1) noise with ρ = 0.5 passes p < 0.05 in about 22 % of
    windows; with it, in 5–8 %.
    """
    width = values.shape[1]
    detrended = values - slope[:, None] * np.arange(width, dtype=np.float64)[None, :]
    present = ~np.isnan(detrended)
    centred = np.where(present, average_ranks(detrended) - ((n + 1.0) / 2.0)[:, None], 0.0)
    r1 = lag1_autocorrelation(centred, present.astype(np.float64), np.sum(centred * centred, axis=1), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.clip((n * r1 + 1.0) / (n - 4.0), 0.0, 1.0)
        r1 = np.where((n > 4) & ~np.isnan(slope), r1, 0.0)
        lag = np.arange(1, width, dtype=np.float64)[None, :]
        terms = np.where(lag <= n[:, None] - 1.0, (1.0 - lag / n[:, None]) * r1[:, None] ** lag, 0.0)
    factor: Floats = 1.0 + 2.0 * np.sum(terms, axis=1)
    return factor


def _trend_block(values: Floats, window_days: int) -> dict[str, Floats]:
    """Mann–Kendall, Theil–Sen and the SWC test for each row's window (NaN = no value that day)."""
    first, second = _pairs(window_days)
    valid = ~np.isnan(values)
    n = valid.sum(axis=1).astype(np.float64)
    enough = n >= min_values(window_days)
    diff = values[:, second] - values[:, first]
    slope = _median_slope(diff / (second - first).astype(np.float64))

    s = np.sum(np.where(np.isnan(diff), 0.0, np.sign(diff)), axis=1)
    ties = tie_sizes(values)
    tie_term = np.sum(np.where(ties > 0, (ties - 1.0) * (2.0 * ties + 5.0), 0.0), axis=1)
    tied_pairs = np.sum(np.where(ties > 0, (ties - 1.0) / 2.0, 0.0), axis=1)
    var_s = (n * (n - 1.0) * (2.0 * n + 5.0) - tie_term) / 18.0 * _serial_correction(values, slope, n)
    pairs_all = n * (n - 1.0) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = s / np.sqrt(pairs_all * (pairs_all - tied_pairs))
        z = np.where(s == 0, 0.0, (s - np.sign(s)) / np.sqrt(var_s))
    testable = enough & (var_s > 0)
    tau = np.where(testable, tau, np.nan)
    p = np.where(testable, special.erfc(np.abs(z) / np.sqrt(2.0)), np.nan)

    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(valid, values, 0.0).sum(axis=1) / n
        sd = np.sqrt(np.sum(np.where(valid, values - mean[:, None], 0.0) ** 2, axis=1) / (n - 1.0))
    position = np.arange(window_days, dtype=np.float64)
    last = np.max(np.where(valid, position, -np.inf), axis=1)
    span = last - np.min(np.where(valid, position, np.inf), axis=1)
    meaningful = enough & (p < ALPHA) & (np.abs(slope) * span > SWC_FACTOR * sd)
    return {
        "n": n,
        "tau": tau,
        "p": p,
        "slope": np.where(enough, slope * 7.0, np.nan),
        "meaningful": meaningful.astype(np.float64),
        "sign": np.where(enough, np.where(meaningful, np.sign(slope), 0.0), np.nan),
    }


def _window_mean(values: Floats, minimum: int) -> Floats:
    """Row means of the non-NaN values, NaN when fewer than ``minimum`` values."""
    valid = ~np.isnan(values)
    count = valid.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(valid, values, 0.0).sum(axis=1) / count
    return np.where(count >= minimum, mean, np.nan)


def _pct_change(mean_7d: Floats, mean_30d: Floats, log_scale: bool) -> Floats:
    """Percent change of the 7-day over the 30-day mean; of the geometric means for a log metric."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if log_scale:
            return 100.0 * np.expm1(mean_7d - mean_30d)
        return np.where(mean_30d != 0, 100.0 * (mean_7d - mean_30d) / np.abs(mean_30d), np.nan)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def compute_trends(daily: pl.DataFrame, first_day: date, last_day: date) -> pl.DataFrame:
    """``analytics.trends`` rows for every (user, day) of ``daily`` in ``[first_day, last_day]``.

    ``daily`` holds marts.daily_metrics rows from ``first_day - LOOKBACK_DAYS`` on; one row per metric in
    ``METRICS`` and window in ``WINDOWS``, ordered by user_id, day, metric, window_days.
    """
    calendar = Calendar.build(daily, {m: pl.col(m) for m in METRICS}, first_day, last_day, LOOKBACK_DAYS)
    rows = len(calendar.out_col)
    if rows == 0:
        return _empty()
    parts: list[pl.DataFrame] = []
    row_index = np.arange(rows)
    for metric in METRICS:
        pct = _pct_change(
            _window_mean(calendar.windows(metric, 0, 7), PCT_MIN_7D),
            _window_mean(calendar.windows(metric, 0, 30), PCT_MIN_30D),
            metric in LOG_METRICS,
        )
        for window_days in WINDOWS:
            values = calendar.windows(metric, 0, window_days)
            results: dict[str, Floats] = {key: np.empty(rows) for key in ("n", "tau", "p", "slope")}
            results |= {"meaningful": np.empty(rows), "sign": np.empty(rows)}
            for block in row_blocks(rows, window_days * window_days * 3):
                for key, array in _trend_block(values[block], window_days).items():
                    results[key][block] = array
            parts.append(
                pl.DataFrame(
                    {
                        "_row": pl.Series(row_index, dtype=pl.Int64),
                        "metric": pl.Series([metric] * rows, dtype=pl.String),
                        "window_days": pl.Series([window_days] * rows, dtype=pl.Int32),
                        "n": pl.Series(results["n"].astype(np.int64), dtype=pl.Int64),
                        "mk_tau": pl.Series(results["tau"]).fill_nan(None),
                        "p_value": pl.Series(results["p"]).fill_nan(None),
                        "theil_sen_per_week": pl.Series(results["slope"]).fill_nan(None),
                        "pct_change_7d_vs_30d": pl.Series(pct).fill_nan(None),
                        "meaningful": pl.Series(results["meaningful"] > 0, dtype=pl.Boolean),
                        "_sign": pl.Series(results["sign"]).fill_nan(None),
                    }
                )
            )
    keys = pl.DataFrame({"_row": row_index, "user_id": calendar.out_user_ids(), "day": calendar.out_days()})
    rising = pl.col("metric").replace_strict(POLARITY_RISING, return_dtype=pl.String)
    falling = rising.replace_strict({"good": "bad", "bad": "good", "neutral": "neutral"})
    return (
        pl.concat(parts)
        .join(keys, on="_row", how="left")
        .with_columns(
            pl.when(pl.col("_sign") > 0)
            .then(pl.lit("rising"))
            .when(pl.col("_sign") < 0)
            .then(pl.lit("falling"))
            .when(pl.col("_sign") == 0)
            .then(pl.lit("flat"))
            .alias("direction"),
            pl.when(pl.col("_sign") > 0)
            .then(rising)
            .when(pl.col("_sign") < 0)
            .then(falling)
            .when(pl.col("_sign") == 0)
            .then(pl.lit("neutral"))
            .alias("polarity"),
        )
        .sort("user_id", "day", "metric", "window_days")
        .select(list(SCHEMA))
    )
