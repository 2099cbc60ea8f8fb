"""compute_trends against a plain O(n²) Mann–Kendall, scipy's kendalltau and theilslopes, and its contract."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from polar_pipeline.analytics import trends
from polar_pipeline.analytics.trends import LOOKBACK_DAYS, METRICS, WINDOWS, compute_trends, min_values
from tests.analytics import START, ar1, day, synthetic_daily

TOL = 1e-9


def mann_kendall(values: list[float]) -> tuple[float, float, float]:
    """S, tie-corrected Var(S) and tau-b of a series in time order, pair by pair."""
    n = len(values)
    s = sum((values[j] > values[i]) - (values[j] < values[i]) for i, j in itertools.combinations(range(n), 2))
    groups = Counter(values).values()
    var = (n * (n - 1) * (2 * n + 5) - sum(g * (g - 1) * (2 * g + 5) for g in groups)) / 18
    pairs = n * (n - 1) / 2
    tied = sum(g * (g - 1) / 2 for g in groups)
    tau = s / math.sqrt(pairs * (pairs - tied)) if pairs > tied else math.nan
    return float(s), var, tau


def serial_factor(t: list[float], v: list[float], slope: float) -> float:
    """Yue–Wang's n / n* from the lag-1 autocorrelation of the detrended ranks, bias-adjusted, in [0, 1]."""
    n = len(v)
    ranks = stats.rankdata([value - slope * time for time, value in zip(t, v, strict=True)])
    centred = ranks - ranks.mean()
    products = [centred[i] * centred[i + 1] for i in range(n - 1) if t[i + 1] - t[i] == 1]
    squares = float(np.sum(centred**2))
    r1 = (sum(products) / len(products)) / (squares / n) if products and squares > 0 else 0.0
    r1 = min(1.0, max(0.0, (n * max(-1.0, min(1.0, r1)) + 1) / (n - 4)))
    return 1 + 2 * sum((1 - k / n) * r1**k for k in range(1, n))


def reference(
    daily: pl.DataFrame, first_day: date, last_day: date
) -> dict[tuple[object, ...], dict[str, object]]:
    """(user, day, metric, window) -> expected values, row by row."""
    series: dict[str, dict[str, dict[date, float]]] = {}
    for row in daily.iter_rows(named=True):
        for metric in METRICS:
            if row[metric] is not None:
                series.setdefault(row["user_id"], {}).setdefault(metric, {})[row["day"]] = float(row[metric])
    present = {(r["user_id"], r["day"]) for r in daily.iter_rows(named=True)}
    out: dict[tuple[object, ...], dict[str, object]] = {}
    for user, metrics in series.items():
        current = first_day
        while current <= last_day:
            if (user, current) not in present:
                current += timedelta(days=1)
                continue
            for metric in METRICS:
                values = metrics.get(metric, {})

                def window(
                    days: int, values: dict[date, float] = values, end: date = current
                ) -> list[tuple[int, float]]:
                    return [
                        (offset, values[end - timedelta(days=days - 1 - offset)])
                        for offset in range(days)
                        if end - timedelta(days=days - 1 - offset) in values
                    ]

                week, month = [v for _, v in window(7)], [v for _, v in window(30)]
                pct = None
                if len(week) >= 3 and len(month) >= 14:
                    m7, m30 = float(np.mean(week)), float(np.mean(month))
                    if metric == "ln_rmssd":
                        pct = 100 * (math.exp(m7 - m30) - 1)
                    elif m30 != 0:
                        pct = 100 * (m7 - m30) / abs(m30)
                for days in WINDOWS:
                    points = window(days)
                    expected: dict[str, object] = {"n": len(points), "pct": pct}
                    if len(points) >= min_values(days):
                        t = [float(p[0]) for p in points]
                        v = [p[1] for p in points]
                        s, var, tau = mann_kendall(v)
                        slope = float(stats.theilslopes(v, t).slope)
                        var *= serial_factor(t, v, slope)
                        p = (
                            math.erfc(abs((s - np.sign(s)) / math.sqrt(var)) / math.sqrt(2))
                            if var > 0
                            else None
                        )
                        change = abs(slope) * (t[-1] - t[0])
                        meaningful = p is not None and p < 0.05 and change > 0.5 * float(np.std(v, ddof=1))
                        direction = ("rising" if slope > 0 else "falling") if meaningful else "flat"
                        expected |= {
                            "tau": None if var == 0 else tau,
                            "tau_scipy": None if var == 0 else float(stats.kendalltau(t, v).statistic),
                            "p": p,
                            "slope": 7 * slope,
                            "meaningful": meaningful,
                            "direction": direction,
                        }
                    else:
                        expected |= {
                            "tau": None,
                            "p": None,
                            "slope": None,
                            "meaningful": False,
                            "direction": None,
                        }
                    out[(user, current, metric, days)] = expected
            current += timedelta(days=1)
    return out


def _close(got: float | None, want: object) -> bool:
    if want is None:
        return got is None
    assert isinstance(want, float)
    return got is not None and abs(got - want) <= TOL


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    """Two flat users and one whose HRV, heart rate and steps drift, with gaps, NULLs and ties."""
    flat = synthetic_daily(seed=11, users=2, days=150, phi=0.5, gap_share=0.08, null_share=0.1)
    drifting = synthetic_daily(
        seed=12,
        days=150,
        phi=0.5,
        gap_share=0.08,
        null_share=0.1,
        slopes={"ln_rmssd": 0.003, "overnight_hr_bpm": -0.04, "steps": 30.0},
    ).with_columns(pl.lit("user-09").alias("user_id"))
    return pl.concat([flat, drifting])


def test_mann_kendall_theil_sen_and_pct_change_match_references(daily: pl.DataFrame) -> None:
    first_day, last_day = day(135), day(149)
    result = compute_trends(daily, first_day, last_day)
    expected = reference(daily, first_day, last_day)
    assert result.height == len(expected)
    tested = 0
    for row in result.iter_rows(named=True):
        want = expected[(row["user_id"], row["day"], row["metric"], row["window_days"])]
        key = (row["user_id"], row["day"], row["metric"], row["window_days"])
        assert row["n"] == want["n"], key
        assert _close(row["mk_tau"], want["tau"]), key
        assert _close(row["p_value"], want["p"]), key
        assert _close(row["theil_sen_per_week"], want["slope"]), key
        assert _close(row["pct_change_7d_vs_30d"], want["pct"]), key
        assert row["meaningful"] == want["meaningful"], key
        assert row["direction"] == want["direction"], key
        if want.get("tau_scipy") is not None:
            tested += 1
            assert _close(row["mk_tau"], want["tau_scipy"]), key
    assert tested > 0.9 * result.height
    # the data exercise ties (integer scores, whole minutes) and every verdict
    assert result.filter(pl.col("metric") == "sleep_score").get_column("mk_tau").is_not_null().all()
    assert set(result.get_column("direction").unique()) >= {"flat", "rising", "falling"}


def planted(seed: int, days: int = 120, trend: float = 1.0, phi: float = 0.3) -> pl.DataFrame:
    """One user whose metrics move by about 3 noise SDs over 90 days (× ``trend``); sleep time stays put."""
    rng = np.random.default_rng(seed)
    t = np.arange(days, dtype=np.float64)
    return pl.DataFrame(
        {
            "user_id": "u",
            "day": [START + timedelta(days=i) for i in range(days)],
            "ln_rmssd": 3.8 + trend * 0.004 * t + 0.12 * ar1(rng, days, phi),
            "overnight_hr_bpm": np.round(52 + trend * 0.05 * t + 1.5 * ar1(rng, days, phi), 1),
            "sleep_score": pl.Series(np.round(70 + trend * 0.15 * t + 4 * ar1(rng, days, phi))).cast(
                pl.Int32
            ),
            "sleep_seconds": pl.Series(np.round((27000 + 1800 * ar1(rng, days, phi)) / 60) * 60).cast(
                pl.Int64
            ),
            "steps": pl.Series(np.round(11000 - trend * 60 * t + 1500 * ar1(rng, days, phi))).cast(pl.Int64),
        }
    )


def test_planted_trends_are_meaningful_with_their_polarity() -> None:
    rows = compute_trends(planted(seed=5), day(119), day(119)).filter(pl.col("window_days") == 90)
    verdict = {
        r["metric"]: (r["direction"], r["polarity"], r["meaningful"]) for r in rows.iter_rows(named=True)
    }
    assert verdict == {
        "ln_rmssd": ("rising", "good", True),
        "overnight_hr_bpm": ("rising", "bad", True),
        "sleep_score": ("rising", "good", True),
        "steps": ("falling", "bad", True),
        "sleep_seconds": ("flat", "neutral", False),
    }
    falling = compute_trends(planted(seed=6, trend=-1.0), day(119), day(119)).filter(
        pl.col("window_days") == 90
    )
    assert {r["metric"]: r["polarity"] for r in falling.iter_rows(named=True)} == {
        "ln_rmssd": "bad",
        "overnight_hr_bpm": "good",
        "sleep_score": "bad",
        "steps": "good",
        "sleep_seconds": "neutral",
    }


def test_a_flat_noisy_series_is_flat() -> None:
    """One seeded draw; how often noise alone passes for a trend is the next test's business."""
    rows = compute_trends(planted(seed=1, trend=0.0), day(119), day(119))
    assert rows.height == len(METRICS) * len(WINDOWS)
    assert rows.get_column("p_value").is_not_null().all()
    assert rows.get_column("direction").to_list() == ["flat"] * rows.height
    assert rows.get_column("polarity").to_list() == ["neutral"] * rows.height


def test_autocorrelated_noise_rarely_looks_like_a_trend() -> None:
    """120 users of trendless AR(1) noise (ρ = 0.5): about 6 % of rows meaningful, not the one in five an
    uncorrected Mann–Kendall gives."""
    daily = synthetic_daily(seed=99, users=120, days=120, phi=0.5, gap_share=0.05, null_share=0.05)
    rows = compute_trends(daily, day(119), day(119))
    assert rows.get_column("p_value").is_not_null().all()
    assert rows.get_column("meaningful").mean() <= 0.09


def test_a_significant_but_tiny_trend_is_flat() -> None:
    """Mann–Kendall finds the drift, but it moves less than half an SD: less than a worthwhile change."""
    values = 4.0 + 0.001 * np.arange(90)
    values[[10, 30, 50, 70]] += 1.0
    values[[20, 40, 60, 80]] -= 1.0
    daily = pl.DataFrame(
        {"user_id": "u", "day": [START + timedelta(days=i) for i in range(90)], "ln_rmssd": values}
    ).with_columns(*[pl.lit(None, dtype=pl.Float64).alias(m) for m in METRICS if m != "ln_rmssd"])
    row = compute_trends(daily, day(89), day(89)).filter(
        (pl.col("metric") == "ln_rmssd") & (pl.col("window_days") == 90)
    )
    assert row["p_value"][0] < 1e-6
    assert row["theil_sen_per_week"][0] == pytest.approx(0.007)
    assert row.select("meaningful", "direction", "polarity").row(0) == (False, "flat", "neutral")


def test_a_day_never_reads_the_future(daily: pl.DataFrame) -> None:
    cutoff = day(120)
    base = compute_trends(daily, day(110), day(149))
    changed_daily = daily.with_columns(
        [
            pl.when(pl.col("day") > cutoff).then(pl.col(m) * 2).otherwise(pl.col(m)).alias(m)
            for m in ("ln_rmssd", "overnight_hr_bpm", "steps", "training_load")
        ]
    ).filter(~((pl.col("day") > cutoff) & (pl.col("day").dt.day() % 4 == 0)))
    changed = compute_trends(changed_daily, day(110), day(149))
    assert not base.filter(pl.col("day") > cutoff).equals(changed.filter(pl.col("day") > cutoff))
    assert base.filter(pl.col("day") <= cutoff).equals(changed.filter(pl.col("day") <= cutoff))
    single = compute_trends(daily.filter(pl.col("day") >= cutoff - timedelta(LOOKBACK_DAYS)), cutoff, cutoff)
    assert single.equals(base.filter(pl.col("day") == cutoff))


def test_thin_windows_report_no_trend() -> None:
    daily = synthetic_daily(seed=4, days=40, gap_share=0.0, null_share=0.0)
    result = compute_trends(daily, day(0), day(39))
    thin = result.filter(pl.col("n") < pl.col("window_days").map_elements(min_values, return_dtype=pl.Int64))
    assert thin.height > 0
    assert (
        thin.select(
            pl.col("mk_tau", "p_value", "theil_sen_per_week", "direction", "polarity").null_count()
        ).row(0)
        == (thin.height,) * 5
    )
    assert not thin.get_column("meaningful").any()
    assert result.filter(pl.col("day") < day(13)).get_column("pct_change_7d_vs_30d").null_count() > 0
    assert (
        result.filter(pl.col("window_days") == 30, pl.col("day") >= day(14)).get_column("mk_tau").null_count()
        == 0
    )


def test_contract_schema_order_and_range(daily: pl.DataFrame) -> None:
    result = compute_trends(daily, day(140), day(142))
    assert result.schema == pl.Schema(trends.SCHEMA)
    assert result.columns[:2] == ["user_id", "day"]
    present = daily.filter(pl.col("day").is_between(day(140), day(142))).height
    assert result.height == present * len(METRICS) * len(WINDOWS)
    assert result.get_column("day").min() == day(140) and result.get_column("day").max() == day(142)
    assert result.equals(result.sort("user_id", "day", "metric", "window_days"))
    assert compute_trends(daily.clear(), day(0), day(5)).schema == result.schema
    assert max(WINDOWS) - 1 == LOOKBACK_DAYS
