"""Tests of the pure analytics functions, on seeded synthetic marts.daily_metrics frames."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

START = date(2025, 1, 1)


def ar1(rng: np.random.Generator, days: int, phi: float) -> np.ndarray:
    """A stationary AR(1) series with unit variance: nightly metrics drift, so tests must too."""
    noise = rng.standard_normal(days)
    series = np.empty(days)
    series[0] = noise[0]
    scale = np.sqrt(1.0 - phi * phi)
    for t in range(1, days):
        series[t] = phi * series[t - 1] + scale * noise[t]
    return series


def _with_nulls(values: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    out = values.astype(np.float64).copy()
    out[rng.random(len(out)) < share] = np.nan
    return out


def synthetic_daily(
    seed: int,
    users: int = 1,
    days: int = 180,
    *,
    phi: float = 0.6,
    gap_share: float = 0.05,
    null_share: float = 0.05,
    coupling: float = 0.0,
    slopes: dict[str, float] | None = None,
) -> pl.DataFrame:
    """marts.daily_metrics-like rows from ``START`` on, with the structure the analytics must cope with.

    Every metric is its own AR(1) series (lag-1 autocorrelation ``phi``), independent of the others
    except that ``coupling`` adds ``coupling`` × the standardised sleep score of night t − 1 to
    ln_rmssd of night t. Scores, minutes, steps and rest-day loads of 0 tie; ``gap_share`` of the days
    have no row at all and ``null_share`` of every column's values are NULL. ``slopes`` adds a linear
    trend per day to a metric (in its unit).
    """
    rng = np.random.default_rng(seed)
    slopes = slopes or {}
    frames = []
    t = np.arange(days, dtype=np.float64)
    for user in range(users):
        score = np.clip(np.round(75 + 8 * ar1(rng, days, phi) + slopes.get("sleep_score", 0.0) * t), 1, 100)
        sleep = (
            np.round((27000 + 2200 * ar1(rng, days, phi) + slopes.get("sleep_seconds", 0.0) * t) / 60) * 60
        )
        deep_share = np.clip(0.18 + 0.03 * ar1(rng, days, phi), 0.05, 0.4)
        ln_rmssd = 4.0 + 0.15 * ar1(rng, days, phi) + slopes.get("ln_rmssd", 0.0) * t
        standard_score = (score - score.mean()) / score.std()
        ln_rmssd[1:] += coupling * standard_score[:-1]
        hr = np.round(55 + 3 * ar1(rng, days, phi) + slopes.get("overnight_hr_bpm", 0.0) * t, 1)
        load = np.round(np.abs(80 + 40 * ar1(rng, days, phi)) + slopes.get("training_load", 0.0) * t)
        load = np.where(rng.random(days) < 0.4, 0.0, load)
        steps = np.maximum(0, np.round(8000 + 3000 * ar1(rng, days, phi) + slopes.get("steps", 0.0) * t))
        sleep_col = _with_nulls(sleep, rng, null_share)
        deep = np.round(sleep_col * deep_share)
        ln_col = _with_nulls(ln_rmssd, rng, null_share)
        frame = pl.DataFrame(
            {
                "user_id": [f"user-{user:02d}"] * days,
                "day": [START + timedelta(days=i) for i in range(days)],
                "sleep_seconds": pl.Series(sleep_col).fill_nan(None).cast(pl.Int64),
                "deep_sleep_seconds": pl.Series(deep).fill_nan(None).cast(pl.Int64),
                "sleep_score": pl.Series(_with_nulls(score, rng, null_share)).fill_nan(None).cast(pl.Int32),
                "hrv_rmssd_ms": pl.Series(np.exp(ln_col)).fill_nan(None),
                "ln_rmssd": pl.Series(ln_col).fill_nan(None),
                "overnight_hr_bpm": pl.Series(_with_nulls(hr, rng, null_share)).fill_nan(None),
                "steps": pl.Series(_with_nulls(steps, rng, null_share)).fill_nan(None).cast(pl.Int64),
                "training_load": pl.Series(load),
            }
        )
        keep = rng.random(days) >= gap_share
        frames.append(frame.filter(pl.Series(keep)))
    return pl.concat(frames)


def day(offset: int) -> date:
    """The calendar day ``offset`` days after ``START``."""
    return START + timedelta(days=offset)
