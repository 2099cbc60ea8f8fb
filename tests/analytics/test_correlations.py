"""compute_correlations against scipy, on autocorrelated data with gaps and ties, and its contract.

The reference below walks every row with plain loops: scipy's spearmanr for rho, the lag-1
autocorrelation of the ranks by hand, scipy.stats.t for p and false_discovery_control for q.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from polar_pipeline.analytics import correlations
from polar_pipeline.analytics.correlations import COMBOS, LOOKBACK_DAYS, MIN_PAIRS, compute_correlations
from tests.analytics import day, synthetic_daily

TOL = 1e-9


def _series(daily: pl.DataFrame) -> dict[str, dict[str, dict[date, float]]]:
    """user -> metric -> day -> value, NULLs left out; deep_sleep_share derived as in the module."""
    out: dict[str, dict[str, dict[date, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in daily.iter_rows(named=True):
        values = out[row["user_id"]]
        for name in (
            "sleep_score",
            "sleep_seconds",
            "ln_rmssd",
            "overnight_hr_bpm",
            "training_load",
            "steps",
        ):
            if row[name] is not None:
                values[name][row["day"]] = float(row[name])
        if row["sleep_seconds"] and row["deep_sleep_seconds"] is not None:
            values["deep_sleep_share"][row["day"]] = row["deep_sleep_seconds"] / row["sleep_seconds"]
    return out


def _lag1(ranks: np.ndarray, adjacent: list[bool]) -> float:
    """Lag-1 autocorrelation of ranks over calendar-adjacent pairs, written out plainly."""
    centred = ranks - ranks.mean()
    products = [centred[i] * centred[i + 1] for i in range(len(ranks) - 1) if adjacent[i]]
    if not products:
        return 0.0
    return min(1.0, max(-1.0, (sum(products) / len(products)) / (np.sum(centred**2) / len(ranks))))


def reference(
    daily: pl.DataFrame, first_day: date, last_day: date
) -> dict[tuple[object, ...], dict[str, float]]:
    """(user, day, x, y, lag) -> n, n_effective, rho, p, q, recomputed row by row with scipy."""
    series = _series(daily)
    present = {(r["user_id"], r["day"]) for r in daily.iter_rows(named=True)}
    out: dict[tuple[object, ...], dict[str, float]] = {}
    for user, metrics in series.items():
        current = first_day
        while current <= last_day:
            if (user, current) in present:
                family: list[tuple[object, ...]] = []
                for x_name, y_name, lag in COMBOS:
                    days = [current - timedelta(days=89 - i) for i in range(90 - lag)]
                    pairs = [
                        (t, metrics[x_name][t], metrics[y_name][t + timedelta(days=lag)])
                        for t in days
                        if t in metrics[x_name] and t + timedelta(days=lag) in metrics[y_name]
                    ]
                    key = (user, current, x_name, y_name, lag)
                    row: dict[str, float] = {"n": len(pairs)}
                    xs = np.array([p[1] for p in pairs])
                    ys = np.array([p[2] for p in pairs])
                    if len(pairs) >= MIN_PAIRS and np.ptp(xs) > 0 and np.ptp(ys) > 0:
                        rho = float(stats.spearmanr(xs, ys).statistic)
                        adjacent = [(pairs[i + 1][0] - pairs[i][0]).days == 1 for i in range(len(pairs) - 1)]
                        r1 = _lag1(stats.rankdata(xs), adjacent) * _lag1(stats.rankdata(ys), adjacent)
                        n = len(pairs)
                        n_eff = min(float(n), max(3.0, n * (1 - r1) / (1 + r1)))
                        t_stat = abs(rho) * math.sqrt((n_eff - 2) / (1 - rho * rho))
                        row |= {"rho": rho, "n_effective": n_eff, "p": 2 * stats.t.sf(t_stat, n_eff - 2)}
                        family.append(key)
                    out[key] = row
                if family:
                    qs = stats.false_discovery_control([out[k]["p"] for k in family], method="bh")
                    for k, q in zip(family, qs, strict=True):
                        out[k]["q"] = float(q)
            current += timedelta(days=1)
    return out


def hopkins(rho: float) -> str:
    """Hopkins et al. (2009)'s bands for the size of a correlation."""
    size = abs(rho)
    if size < 0.1:
        return "trivial"
    if size < 0.3:
        return "small"
    if size < 0.5:
        return "moderate"
    if size < 0.7:
        return "large"
    return "very large" if size < 0.9 else "nearly perfect"


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    """Three users, 160 days: autocorrelated, with gaps, NULLs, ties and (user-01) a real coupling."""
    plain = synthetic_daily(seed=7, users=3, days=160, phi=0.6, gap_share=0.06, null_share=0.08)
    coupled = synthetic_daily(seed=8, users=2, days=160, phi=0.5, coupling=0.12).filter(
        pl.col("user_id") == "user-01"
    )
    return pl.concat([plain.filter(pl.col("user_id") != "user-01"), coupled])


def test_rho_p_and_q_match_scipy(daily: pl.DataFrame) -> None:
    first_day, last_day = day(125), day(159)
    result = compute_correlations(daily, first_day, last_day)
    expected = reference(daily, first_day, last_day)
    assert result.height == len(expected)
    checked = 0
    for row in result.iter_rows(named=True):
        want = expected[(row["user_id"], row["day"], row["x_metric"], row["y_metric"], row["lag_days"])]
        assert row["n"] == want["n"]
        if "rho" not in want:
            assert row["rho"] is None and row["p_value"] is None and row["q_value"] is None
            continue
        checked += 1
        assert abs(row["rho"] - want["rho"]) <= TOL
        assert abs(row["n_effective"] - want["n_effective"]) <= TOL
        assert abs(row["p_value"] - want["p"]) <= TOL
        assert abs(row["q_value"] - want["q"]) <= TOL
        assert row["significant"] == (want["q"] < 0.05)
        assert row["strength"] == hopkins(want["rho"])
        assert row["direction"] == ("positive" if want["rho"] > 0 else "negative")
    assert checked > 0.9 * result.height
    # the data exercise what the reference checks: ties, an autocorrelation correction, significance
    assert result.filter(pl.col("n_effective") < pl.col("n") - 5).height > 0.5 * checked
    assert result.get_column("significant").any()


def test_autocorrelation_matters_in_the_data(daily: pl.DataFrame) -> None:
    """Without the correction the p-values would differ, so the comparison above can catch its loss."""
    result = compute_correlations(daily, day(159), day(159)).drop_nulls("rho")
    naive = [
        2 * stats.t.sf(abs(r) * math.sqrt((n - 2) / (1 - r * r)), n - 2)
        for r, n in zip(result["rho"], result["n"], strict=True)
    ]
    assert max(abs(a - b) for a, b in zip(result["p_value"], naive, strict=True)) > 1e-3


def test_planted_coupling_is_found_at_lag_one(daily: pl.DataFrame) -> None:
    row = compute_correlations(daily, day(159), day(159)).filter(
        (pl.col("user_id") == "user-01")
        & (pl.col("x_metric") == "sleep_score")
        & (pl.col("y_metric") == "ln_rmssd")
        & (pl.col("lag_days") == 1)
    )
    assert row.height == 1
    assert row["q_value"][0] < 0.05 and row["significant"][0]
    assert row["direction"][0] == "positive"
    assert row["strength"][0] in {"moderate", "large", "very large", "nearly perfect"}


def test_independent_users_rarely_show_a_significant_pair() -> None:
    """20 users whose series are independent but strongly autocorrelated: at most 2 with any q < 0.05."""
    daily = synthetic_daily(seed=2024, users=20, days=120, phi=0.8, gap_share=0.03, null_share=0.03)
    result = compute_correlations(daily, day(119), day(119))
    flagged = result.filter(pl.col("significant")).get_column("user_id").unique()
    assert result.get_column("rho").is_not_null().sum() > 0.9 * result.height
    assert flagged.len() <= 2, flagged.to_list()


def test_a_day_never_reads_the_future(daily: pl.DataFrame) -> None:
    cutoff = day(120)
    base = compute_correlations(daily, day(110), day(159))
    changed_daily = daily.with_columns(
        [
            pl.when(pl.col("day") > cutoff).then(pl.col(name).reverse()).otherwise(pl.col(name)).alias(name)
            for name in ("sleep_score", "ln_rmssd", "training_load", "steps", "overnight_hr_bpm")
        ]
    ).filter(~((pl.col("day") > cutoff) & (pl.col("day").dt.day() % 5 == 0)))
    changed = compute_correlations(changed_daily, day(110), day(159))
    assert not base.filter(pl.col("day") > cutoff).equals(changed.filter(pl.col("day") > cutoff))
    assert base.filter(pl.col("day") <= cutoff).equals(changed.filter(pl.col("day") <= cutoff))
    # a one-day run from the minimal look-back gives the same row as a long run
    single = compute_correlations(
        daily.filter(pl.col("day") >= cutoff - timedelta(LOOKBACK_DAYS)), cutoff, cutoff
    )
    assert single.equals(base.filter(pl.col("day") == cutoff))


def test_thin_windows_keep_their_rows_with_nulls() -> None:
    daily = synthetic_daily(seed=3, days=30, gap_share=0.0, null_share=0.0)
    result = compute_correlations(daily, day(0), day(29))
    assert result.height == 30 * len(COMBOS)
    thin = result.filter(pl.col("n") < MIN_PAIRS)
    assert thin.height > 0
    assert (
        thin.select(
            pl.col("rho", "n_effective", "p_value", "q_value", "strength", "direction").null_count()
        ).row(0)
        == (thin.height,) * 6
    )
    assert not thin.get_column("significant").any()
    assert result.filter(pl.col("n") >= MIN_PAIRS).get_column("rho").null_count() == 0


def test_contract_schema_order_and_range(daily: pl.DataFrame) -> None:
    result = compute_correlations(daily, day(140), day(142))
    assert result.schema == pl.Schema(correlations.SCHEMA)
    assert result.columns[:2] == ["user_id", "day"]
    assert result.get_column("day").min() == day(140) and result.get_column("day").max() == day(142)
    assert result.equals(result.sort("user_id", "day", "x_metric", "y_metric", "lag_days"))
    assert result.filter(pl.col("p_value").is_not_null()).select(
        (pl.col("n_effective").is_between(3, pl.col("n"))).all(),
        (pl.col("q_value") >= pl.col("p_value")).all(),
        pl.col("rho").is_between(-1, 1).all(),
    ).row(0) == (True, True, True)
    assert compute_correlations(daily.clear(), day(0), day(5)).schema == result.schema
    assert compute_correlations(daily, day(400), day(401)).height == 0
