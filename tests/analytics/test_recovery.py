"""compute_recovery against a night-by-night recomputation, its contract and the simulator's illness weeks."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest

from polar_pipeline.analytics.recovery import LOOKBACK_DAYS, compute_recovery
from tests.analytics.conftest import (
    START,
    SimFrames,
    assert_slices_recompute,
    close_or_both_null,
    synthetic_marts,
)

FIRST = START + timedelta(days=5)
LAST = START + timedelta(days=160)
EXPECTED_SCHEMA = pl.Schema(
    {"user_id": pl.String, "day": pl.Date, "score": pl.Float64, "level": pl.String, "contributors": pl.String}
)
# (component, sign, weight), restated rather than imported so a changed constant fails the comparison.
COMPONENTS = (("hrv", 1.0, 0.5), ("overnight_hr", -1.0, 0.25), ("sleep", 1.0, 0.25))


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def reference_recovery(
    marts: dict[str, pl.DataFrame], first: date, last: date
) -> dict[tuple[str, date], dict[str, Any]]:
    daily = {(r["user_id"], r["day"]): r for r in marts["daily_metrics"].iter_rows(named=True)}
    base = {(r["user_id"], r["day"], r["metric"]): r for r in marts["baselines"].iter_rows(named=True)}
    out: dict[tuple[str, date], dict[str, Any]] = {}
    for user in sorted({u for u, _ in daily}):
        days = [d for u, d in daily if u == user]
        day = min(days)
        while day <= max(days):
            night = daily.get((user, day), {})

            def component(
                metric: str, night: dict[str, Any] = night, day: date = day, user: str = user
            ) -> dict[str, Any]:
                ref = base.get((user, day, metric))
                value = night.get(metric)
                ready = value is not None and ref is not None and ref["status"] == "ready"
                return {"metric": metric, "value": value, "ref": ref, "ready": ready}

            sleep = component("sleep_score")
            if not sleep["ready"]:
                sleep = component("sleep_seconds")
            parts = {
                "hrv": component("ln_rmssd"),
                "overnight_hr": component("overnight_hr_bpm"),
                "sleep": sleep,
            }
            for name, sign, _ in COMPONENTS:
                part = parts[name]
                part["z"] = (
                    sign * (part["value"] - part["ref"]["median"]) / part["ref"]["robust_sd"]
                    if part["ready"]
                    else None
                )
            z_mean = None
            if parts["hrv"]["ready"]:
                used = [(parts[n]["z"], w) for n, _, w in COMPONENTS if parts[n]["ready"]]
                z_mean = sum(max(-3.0, min(3.0, z)) * w for z, w in used) / sum(w for _, w in used)
            if first <= day <= last and (user, day) in daily:  # rows only for the daily rows
                out[(user, day)] = {
                    "score": None if z_mean is None else 100 * _phi(z_mean),
                    "level": "insufficient"
                    if z_mean is None
                    else "low"
                    if z_mean < -0.5
                    else "high"
                    if z_mean > 0.5
                    else "normal",
                    "parts": parts,
                }
            day += timedelta(days=1)
    return out


@pytest.fixture(scope="module")
def marts() -> dict[str, pl.DataFrame]:
    frames = synthetic_marts(seed=21)
    # A few nights far outside the baseline, so the ±3 clip is exercised.
    daily = frames["daily_metrics"].with_columns(
        pl.when(pl.col("day").dt.day() == 13)
        .then(pl.col("overnight_hr_bpm") + 40)
        .otherwise(pl.col("overnight_hr_bpm"))
        .alias("overnight_hr_bpm")
    )
    return {**frames, "daily_metrics": daily}


def _run(marts: dict[str, pl.DataFrame], first: date = FIRST, last: date = LAST) -> pl.DataFrame:
    return compute_recovery(marts["daily_metrics"], marts["baselines"], first, last)


def test_every_row_matches_an_independent_recomputation(marts: dict[str, pl.DataFrame]) -> None:
    result = _run(marts)
    expected = reference_recovery(marts, FIRST, LAST)
    assert [(r["user_id"], r["day"]) for r in result.iter_rows(named=True)] == sorted(expected)
    clipped = 0
    for row in result.iter_rows(named=True):
        key = (row["user_id"], row["day"])
        want = expected[key]
        assert close_or_both_null(row["score"], want["score"]), key
        assert row["level"] == want["level"], key
        contributors = json.loads(row["contributors"])
        assert [c["name"] for c in contributors] == [name for name, *_ in COMPONENTS]
        for got in contributors:
            part = want["parts"][got["name"]]
            assert got["available"] == part["ready"], (key, got["name"])
            assert got["metric"] == part["metric"], (key, got["name"])
            assert close_or_both_null(got["z"], part["z"]), (key, got["name"])
            clipped += got["z"] is not None and abs(got["z"]) > 3
    assert set(result["level"]) == {"low", "normal", "high", "insufficient"}
    assert clipped > 0
    sleep_metrics = {
        c["metric"] for f in result["contributors"] for c in json.loads(f) if c["name"] == "sleep"
    }
    assert sleep_metrics == {"sleep_score", "sleep_seconds"}


def test_schema_order_and_range(marts: dict[str, pl.DataFrame]) -> None:
    result = _run(marts)
    assert result.schema == EXPECTED_SCHEMA
    assert result.equals(result.sort("user_id", "day"))
    assert result["day"].to_list()[0] == FIRST and max(result["day"].to_list()) <= LAST
    assert result["score"].drop_nulls().is_between(0, 100).all()
    assert LOOKBACK_DAYS == 0
    empty = _run({name: frame.clear() for name, frame in marts.items()})
    assert empty.is_empty() and empty.schema == EXPECTED_SCHEMA


def test_a_day_never_reads_the_future(marts: dict[str, pl.DataFrame]) -> None:
    before = _run(marts)
    cutoff = FIRST + timedelta(days=60)
    later = pl.col("day") > cutoff
    scrambled = {
        "daily_metrics": marts["daily_metrics"].with_columns(
            pl.when(later).then(-pl.col(c)).otherwise(pl.col(c)).alias(c)
            for c in ("ln_rmssd", "overnight_hr_bpm")
        ),
        "baselines": marts["baselines"].with_columns(
            pl.when(later).then(pl.col("median") + 5).otherwise(pl.col("median")).alias("median")
        ),
    }
    after = _run(scrambled)
    assert before.filter(~later).equals(after.filter(~later))
    assert not before.equals(after)


def test_any_slice_recomputes_the_same_rows(marts: dict[str, pl.DataFrame]) -> None:
    """A run reading only [first_day - LOOKBACK_DAYS, last_day] reproduces the full run, bit for bit."""
    assert_slices_recompute(_run, marts, FIRST, LAST, LOOKBACK_DAYS, slices=((0, 1), (50, 31)))


def test_no_score_until_the_hrv_baseline_is_ready(marts: dict[str, pl.DataFrame]) -> None:
    """Partial HRV baselines (or none) leave the score NULL even when heart rate and sleep are ready."""
    not_ready = marts["baselines"].with_columns(
        pl.when(pl.col("metric") == "ln_rmssd")
        .then(pl.lit("partial"))
        .otherwise(pl.col("status"))
        .alias("status")
    )
    result = _run({**marts, "baselines": not_ready})
    assert result["score"].null_count() == result.height
    assert set(result["level"]) == {"insufficient"}
    without_hrv = _run(
        {**marts, "daily_metrics": marts["daily_metrics"].with_columns(pl.lit(None).alias("ln_rmssd"))}
    )
    assert set(without_hrv["level"]) == {"insufficient"}


def test_missing_components_reweight_the_rest(marts: dict[str, pl.DataFrame]) -> None:
    """Without heart rate and sleep the score is the HRV component alone."""
    daily = marts["daily_metrics"].with_columns(
        pl.lit(None, dtype=pl.Float64).alias("overnight_hr_bpm"),
        pl.lit(None, dtype=pl.Int32).alias("sleep_score"),
        pl.lit(None, dtype=pl.Int64).alias("sleep_seconds"),
    )
    result = _run({**marts, "daily_metrics": daily}).filter(pl.col("score").is_not_null())
    assert result.height > 0
    for row in result.iter_rows(named=True):
        hrv = json.loads(row["contributors"])[0]
        assert math.isclose(row["score"], 100 * _phi(max(-3.0, min(3.0, hrv["z"]))), rel_tol=1e-12)


def test_planted_illness_nights_score_low(sim_frames: SimFrames) -> None:
    """Every night of a planted illness week that has a score (HRV measured, baseline ready) is ``low``."""
    sim, marts = sim_frames.sim, sim_frames.marts
    result = _run(marts, sim.first_day, sim.last_day)
    levels = {(r["user_id"], r["day"]): r["level"] for r in result.iter_rows(named=True)}
    scored = 0
    for user in sim.users:
        for start, end in sim.events(user, "illness"):
            for k in range((end - start).days + 1):
                level = levels[(user, start + timedelta(days=k))]
                assert level in ("low", "insufficient"), (user, start, k, level)
                scored += level == "low"
    assert scored >= 40
