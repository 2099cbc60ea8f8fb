"""Fixtures for the analytics tests: the simulator-backed marts of tests/transform, read into polars frames.

The warehouse fixtures are the suite's (``tests/support/simulated.py``): ``sim_marts`` is ~14 months of
loopback simulator data for one user of each persona, with every mart built, and the simulator's ground
truth (planted illness weeks and overreaching blocks). ``sim_frames`` reads the marts the analytics take.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest

from polar_pipeline.simulator.payloads import render_recharge, render_sleep
from polar_pipeline.simulator.physiology import UserModel
from tests.transform.conftest import SimWarehouse

MARTS = ("daily_metrics", "baselines", "training_load", "sleep_debt", "anomalies")
START = date(2025, 1, 1)
BASELINE_CENTRES: dict[str, tuple[float, float, float]] = {
    "ln_rmssd": (4.0, 0.1, 0.2),
    "overnight_hr_bpm": (55.0, 1.5, 3.0),
    "sleep_score": (78.0, 3.0, 8.0),
    "sleep_seconds": (26000.0, 1500.0, 3000.0),
    "steps": (8000.0, 800.0, 2000.0),
}
"""metric -> (median, smallest and largest robust SD) of the synthetic baselines."""


@dataclass(frozen=True)
class SimFrames:
    """The simulator warehouse and its marts as polars frames, every user and day."""

    sim: SimWarehouse
    marts: dict[str, pl.DataFrame]


@pytest.fixture(scope="session")
def sim_frames(sim_marts: SimWarehouse) -> SimFrames:
    con = duckdb.connect(str(sim_marts.path), read_only=True)
    try:
        marts = {name: con.sql(f"SELECT * FROM marts.{name} ORDER BY ALL").pl() for name in MARTS}
    finally:
        con.close()
    return SimFrames(sim_marts, marts)


SIMULATED_DAILY_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "day": pl.Date(),
    "sleep_seconds": pl.Int64(),
    "deep_sleep_seconds": pl.Int64(),
    "sleep_score": pl.Int32(),
    "ln_rmssd": pl.Float64(),
    "hrv_rmssd_ms": pl.Float64(),
    "overnight_hr_bpm": pl.Float64(),
    "breathing_rate": pl.Float64(),
    "steps": pl.Int64(),
    "training_load": pl.Float64(),
    "device_id": pl.String(),
}

NOT_MEASURED = 0
"""Nightly Recharge's "no signal" sentinel, NULL in staging (docs/methods.md §1.3)."""


def simulated_daily(models: Sequence[tuple[str, UserModel]], first: date, last: date) -> pl.DataFrame:
    """marts.daily_metrics columns of every day in ``[first, last]``, straight from the simulator's state.

    Read from the payloads AccessLink would serve (sleep only on a worn night, Nightly Recharge only on a
    night that has one), the way staging types them: sleep = light + deep + REM + unrecognized, ln rMSSD =
    ln of the rounded rMSSD, the recharge's 0 sentinel NULL. Steps are the whole day's and training load the
    sum of the day's sessions. No HTTP and no SQL, so a population of users costs seconds;
    ``test_simulated_daily_matches_the_marts`` holds it to the real pipeline's marts.daily_metrics.
    """
    rows: list[tuple[Any, ...]] = []
    for user, model in models:
        for state in model.days(first, last):
            sleep = render_sleep(model, state) if state.worn else None
            recharge = render_recharge(model, state) if state.has_recharge else None
            seconds = deep = score = None
            if sleep is not None:
                deep, score = sleep["deep_sleep"], sleep["sleep_score"]
                seconds = sleep["light_sleep"] + deep + sleep["rem_sleep"] + sleep["unrecognized_sleep_stage"]
            hrv = hr = breathing = None
            if recharge is not None:
                hrv, hr, breathing = (
                    recharge[key] if recharge[key] != NOT_MEASURED else None
                    for key in ("heart_rate_variability_avg", "heart_rate_avg", "breathing_rate_avg")
                )
            device = state.device_id if state.worn else next((s.device_id for s in state.sessions), None)
            ln_rmssd = math.log(hrv) if hrv is not None else None
            load = sum(session.cardio_load for session in state.sessions)
            rows.append(
                (
                    user,
                    state.date,
                    seconds,
                    deep,
                    score,
                    ln_rmssd,
                    hrv,
                    hr,
                    breathing,
                    state.steps,
                    load,
                    device,
                )
            )
    return pl.DataFrame(rows, schema=SIMULATED_DAILY_SCHEMA, orient="row")


def _ar1(rng: np.random.Generator, days: int, phi: float = 0.5) -> np.ndarray:
    noise = rng.standard_normal(days)
    series = np.empty(days)
    series[0] = noise[0]
    for t in range(1, days):
        series[t] = phi * series[t - 1] + np.sqrt(1 - phi * phi) * noise[t]
    return series


def _nulls(values: np.ndarray, rng: np.random.Generator, share: float) -> pl.Series:
    out = values.astype(np.float64).copy()
    out[rng.random(len(out)) < share] = np.nan
    return pl.Series(out).fill_nan(None)


def synthetic_marts(seed: int, users: int = 2, days: int = 170) -> dict[str, pl.DataFrame]:
    """Seeded marts-shaped frames (daily_metrics, baselines, training_load, sleep_debt) from ``START``.

    User k's span starts 9·k days late and ends 12·k days early; 3 % of its days have no daily row (the
    analytics must still count calendar days), 10 % of every value is NULL. User 0 has a 45-day episode
    (days 60-104) of low HRV and high heart rate, long enough to reach every risk level and the
    persistence cap. Baselines are drawn independently of the values (the functions only read them): the
    first 10 days of a span are ``insufficient``, the next 10 ``partial``, then mostly ``ready``.
    """
    rng = np.random.default_rng(seed)
    daily, baselines, load, debt = [], [], [], []
    for k in range(users):
        first = 9 * k
        n = days - 9 * k - 12 * k
        dates = [START + timedelta(days=first + i) for i in range(n)]
        episode = np.zeros(n)
        if k == 0:
            episode[60 - first : 105 - first] = 1.0
        ln = 4.0 + 0.15 * _ar1(rng, n) - 0.35 * episode
        hr = np.round(55 + 2 * _ar1(rng, n) + 4 * episode, 1)
        score = np.round(np.clip(78 + 8 * _ar1(rng, n), 1, 100))
        sleep = np.round(26000 + 3000 * _ar1(rng, n))
        keep = pl.Series(rng.random(n) >= 0.03)
        user = f"user-{k}"
        daily.append(
            pl.DataFrame(
                {
                    "user_id": [user] * n,
                    "day": dates,
                    "ln_rmssd": _nulls(ln, rng, 0.1),
                    "overnight_hr_bpm": _nulls(hr, rng, 0.1),
                    "sleep_score": _nulls(score, rng, 0.1).cast(pl.Int32),
                    "sleep_seconds": _nulls(sleep, rng, 0.1).cast(pl.Int64),
                    "steps": _nulls(np.round(8000 + 2500 * _ar1(rng, n)), rng, 0.2).cast(pl.Int64),
                    "exercise_count": pl.Series(
                        rng.integers(0, 3, n) * (rng.random(n) < 0.5), dtype=pl.Int64
                    ),
                }
            ).filter(keep)
        )
        index = np.arange(n)
        status = np.where(index < 10, "insufficient", np.where(index < 20, "partial", "ready"))
        status = np.where((index >= 20) & (rng.random(n) < 0.05), "partial", status)
        for metric, (centre, low, high) in BASELINE_CENTRES.items():
            baselines.append(
                pl.DataFrame(
                    {
                        "user_id": [user] * n,
                        "day": dates,
                        "metric": [metric] * n,
                        "n": pl.Series(np.minimum(index, 60), dtype=pl.Int64),
                        "median": centre + 0.2 * (high - low) * rng.standard_normal(n),
                        "robust_sd": rng.uniform(low, high, n),
                        "status": status,
                    }
                ).filter(pl.Series(rng.random(n) >= 0.03))
            )
        acwr = np.where(index < 27, np.nan, rng.uniform(0.6, 2.2, n))
        load.append(
            pl.DataFrame({"user_id": [user] * n, "day": dates, "acwr_coupled": _nulls(acwr, rng, 0.1)})
        )
        nights = np.where(rng.random(n) < 0.15, rng.integers(0, 7, n), rng.integers(7, 15, n))
        deficit = np.round(nights * rng.uniform(0, 3 * 3600, n))
        debt.append(
            pl.DataFrame(
                {
                    "user_id": [user] * n,
                    "day": dates,
                    "debt_seconds": pl.Series(np.where(nights > 0, deficit, np.nan))
                    .fill_nan(None)
                    .cast(pl.Int64),
                    "nights": pl.Series(nights, dtype=pl.Int64),
                }
            )
        )
    return {
        "daily_metrics": pl.concat(daily),
        "baselines": pl.concat(baselines),
        "training_load": pl.concat(load),
        "sleep_debt": pl.concat(debt),
    }


def gap_days(daily: pl.DataFrame, first_day: date, last_day: date) -> list[date]:
    """The days of ``[first_day, last_day]`` on which some user has no daily row inside their own span."""
    spans = daily.group_by("user_id").agg(
        pl.col("day").min().alias("first"), pl.col("day").max().alias("last")
    )
    calendar = spans.select("user_id", pl.date_ranges("first", "last").alias("day")).explode("day")
    missing = calendar.join(daily.select("user_id", "day"), on=["user_id", "day"], how="anti")
    return sorted(set(missing.filter(pl.col("day").is_between(first_day, last_day)).get_column("day")))


def assert_slices_recompute(
    run: Callable[[dict[str, pl.DataFrame], date, date], pl.DataFrame],
    marts: dict[str, pl.DataFrame],
    first_day: date,
    last_day: date,
    lookback_days: int,
    slices: tuple[tuple[int, int], ...] = ((0, 1), (17, 1), (64, 5), (95, 30)),
) -> None:
    """A run reading only [first - lookback_days, last] reproduces the full run's rows, bit for bit.

    ``slices`` are (offset from first_day, length in days); ``run(frames, first, last)`` computes a table.
    Three more slices put an edge inside a gap of ``marts["daily_metrics"]`` (a day some user has no row):
    one starts on the gap day, one ends on it and one is the gap day alone.
    """
    gaps = gap_days(marts["daily_metrics"], first_day + timedelta(days=1), last_day - timedelta(days=1))
    assert gaps, "the marts need a gap day inside the range to put a slice edge in"
    gap = (gaps[len(gaps) // 2] - first_day).days
    in_gap = ((gap, 10), (max(0, gap - 9), min(10, gap + 1)), (gap, 1))
    full = run(marts, first_day, last_day)
    for offset, length in (*slices, *in_gap):
        first = first_day + timedelta(days=offset)
        last = min(last_day, first + timedelta(days=length - 1))
        window = pl.col("day").is_between(first - timedelta(days=lookback_days), last)
        sliced = run({name: frame.filter(window) for name, frame in marts.items()}, first, last)
        assert sliced.equals(full.filter(pl.col("day").is_between(first, last))), (first, last)


def close_or_both_null(a: float | None, b: float | None) -> bool:
    """Equal to 1e-9 (relative or absolute), or both NULL: how recomputed values are compared."""
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="session")
def sim_analytics(sim_frames: SimFrames) -> dict[str, pl.DataFrame]:
    """Every analytics table but insights, computed once over the whole simulator history."""
    from polar_pipeline.analytics import correlations, illness, readiness, recovery, risk, trends

    marts, sim = sim_frames.marts, sim_frames.sim
    first, last, daily, baselines = sim.first_day, sim.last_day, marts["daily_metrics"], marts["baselines"]
    return {
        "correlations": correlations.compute_correlations(daily, first, last),
        "trends": trends.compute_trends(daily, first, last),
        "risk": risk.compute_risk(daily, baselines, marts["training_load"], marts["sleep_debt"], first, last),
        "recovery": recovery.compute_recovery(daily, baselines, first, last),
        "illness_watch": illness.compute_illness_watch(daily, baselines, first, last),
        "readiness": readiness.compute_readiness(daily, first, last),
    }
