"""compute_risk against a day-by-day recomputation, its contract, and the simulator's overreaching blocks."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest

from polar_pipeline.analytics import risk
from polar_pipeline.analytics.risk import LOOKBACK_DAYS, PERSISTENCE_CAP_DAYS, compute_risk
from tests.analytics.conftest import (
    START,
    SimFrames,
    assert_slices_recompute,
    close_or_both_null,
    synthetic_marts,
)

FIRST = START + timedelta(days=40)
LAST = START + timedelta(days=165)
EXPECTED_SCHEMA = pl.Schema(
    {
        "user_id": pl.String,
        "day": pl.Date,
        "overtraining_score": pl.Float64,
        "level": pl.String,
        "factors": pl.String,
        "persistence_days": pl.Int64,
    }
)
# (name, threshold, full_at, weight), restated here rather than imported, so a changed constant
# in the module fails the comparison.
FACTORS = (
    ("hrv_below_normal", -0.5, -1.0, 40.0),
    ("overnight_hr_above_normal", 0.5, 1.0, 25.0),
    ("sleep_debt", 1.0, 2.0, 20.0),
    ("acwr_high", 1.5, 2.0, 15.0),
)


def _ramp(value: float | None, start: float, full: float) -> float | None:
    if value is None:
        return None
    return min(1.0, max(0.0, (value - start) / (full - start)))


def _rows(frame: pl.DataFrame, *key: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in key): row for row in frame.iter_rows(named=True)}


def reference_risk(
    marts: dict[str, pl.DataFrame], first: date, last: date
) -> dict[tuple[str, date], dict[str, Any]]:
    """Every (user, day) row of analytics.risk, recomputed night by night over the whole history."""
    daily = _rows(marts["daily_metrics"], "user_id", "day")
    base = _rows(marts["baselines"], "user_id", "day", "metric")
    load = _rows(marts["training_load"], "user_id", "day")
    debt = _rows(marts["sleep_debt"], "user_id", "day")
    out: dict[tuple[str, date], dict[str, Any]] = {}
    for user in sorted({u for u, _ in daily}):
        days = [d for u, d in daily if u == user]
        day, run = min(days), 0
        while day <= max(days):
            values: dict[str, float | None] = {}
            nights: dict[str, int] = {}
            for name, column, metric in (
                ("hrv_below_normal", "ln_rmssd", "ln_rmssd"),
                ("overnight_hr_above_normal", "overnight_hr_bpm", "overnight_hr_bpm"),
            ):
                raw = [daily.get((user, day - timedelta(days=k)), {}).get(column) for k in range(7)]
                week: list[float] = [v for v in raw if v is not None]
                nights[name] = len(week)
                ref = base.get((user, day - timedelta(days=6), metric))
                values[name] = None
                if len(week) >= 3 and ref is not None and ref["status"] == "ready":
                    values[name] = (sum(week) / len(week) - ref["median"]) / ref["robust_sd"]
            sleep = debt.get((user, day), {})
            values["sleep_debt"] = None
            if (sleep.get("nights") or 0) >= 7 and sleep.get("debt_seconds") is not None:
                values["sleep_debt"] = sleep["debt_seconds"] / sleep["nights"] / 3600
            values["acwr_high"] = load.get((user, day), {}).get("acwr_coupled")
            points = {
                name: None if values[name] is None else weight * (_ramp(values[name], start, full) or 0.0)
                for name, start, full, weight in FACTORS
            }
            available = sum(v is not None for v in values.values())
            score = sum(p for p in points.values() if p is not None) if available >= 2 else None
            run = run + 1 if score is not None and score >= 25 else 0
            level = (
                "insufficient"
                if score is None
                else "high"
                if score >= 50
                else "moderate"
                if score >= 25
                else "low"
            )
            if first <= day <= last and (user, day) in daily:  # rows only for the daily rows
                out[(user, day)] = {
                    "score": score,
                    "level": level,
                    "persistence": min(run, 28),
                    "values": values,
                    "points": points,
                    "nights": nights,
                }
            day += timedelta(days=1)
    return out


@pytest.fixture(scope="module")
def marts() -> dict[str, pl.DataFrame]:
    return synthetic_marts(seed=16)


def _run(marts: dict[str, pl.DataFrame], first: date = FIRST, last: date = LAST) -> pl.DataFrame:
    return compute_risk(
        marts["daily_metrics"], marts["baselines"], marts["training_load"], marts["sleep_debt"], first, last
    )


def test_every_row_matches_an_independent_recomputation(marts: dict[str, pl.DataFrame]) -> None:
    result = _run(marts)
    expected = reference_risk(marts, FIRST, LAST)
    assert [(r["user_id"], r["day"]) for r in result.iter_rows(named=True)] == sorted(expected)
    for row in result.iter_rows(named=True):
        want = expected[(row["user_id"], row["day"])]
        key = (row["user_id"], row["day"])
        assert close_or_both_null(row["overtraining_score"], want["score"]), key
        assert row["level"] == want["level"], key
        assert row["persistence_days"] == want["persistence"], key
        factors = json.loads(row["factors"])
        assert [f["name"] for f in factors] == [name for name, *_ in FACTORS]
        for factor in factors:
            name = factor["name"]
            assert factor["available"] == (want["values"][name] is not None), key
            assert close_or_both_null(factor["value"], want["values"][name]), (key, name)
            assert close_or_both_null(factor["points"], want["points"][name]), (key, name)
        assert factors[0]["n"] == want["nights"]["hrv_below_normal"]
    # The data reach every level and the persistence cap, so every branch above was compared.
    assert set(result["level"]) == {"low", "moderate", "high", "insufficient"}
    assert result["persistence_days"].max() == PERSISTENCE_CAP_DAYS


def test_schema_order_and_range(marts: dict[str, pl.DataFrame]) -> None:
    result = _run(marts)
    assert result.schema == EXPECTED_SCHEMA
    assert result.columns[:2] == ["user_id", "day"]
    assert result.equals(result.sort("user_id", "day"))
    assert result["day"].to_list()[0] == FIRST and max(result["day"].to_list()) <= LAST
    assert result["overtraining_score"].drop_nulls().is_between(0, 100).all()
    empty = {name: frame.clear() for name, frame in marts.items()}
    assert _run(empty).schema == EXPECTED_SCHEMA and _run(empty).is_empty()


def _scramble_after(frame: pl.DataFrame, cutoff: date) -> pl.DataFrame:
    """Every value after ``cutoff`` changed (numbers negated and shifted, statuses flipped)."""
    later = pl.col("day") > cutoff
    changes = []
    for name, dtype in frame.schema.items():
        if name in ("user_id", "day", "metric"):
            continue
        if dtype == pl.String:
            changes.append(pl.when(later).then(pl.lit("ready")).otherwise(pl.col(name)).alias(name))
        else:
            changes.append(pl.when(later).then(pl.col(name) * -3 + 7).otherwise(pl.col(name)).alias(name))
    return frame.with_columns(changes)


def test_a_day_never_reads_the_future(marts: dict[str, pl.DataFrame]) -> None:
    before = _run(marts)
    for cutoff in (FIRST + timedelta(days=20), FIRST + timedelta(days=70)):
        scrambled = {name: _scramble_after(frame, cutoff) for name, frame in marts.items()}
        after = _run(scrambled)
        assert before.filter(pl.col("day") <= cutoff).equals(after.filter(pl.col("day") <= cutoff))
        assert not before.equals(after)


def test_any_slice_recomputes_the_same_rows(marts: dict[str, pl.DataFrame]) -> None:
    """A run reading only [first_day - LOOKBACK_DAYS, last_day] reproduces the full run, bit for bit."""
    assert_slices_recompute(_run, marts, FIRST, LAST, LOOKBACK_DAYS)


def _only(frame: pl.DataFrame, **columns: Any) -> pl.DataFrame:
    return frame.with_columns(
        [pl.lit(value, dtype=frame.schema[name]).alias(name) for name, value in columns.items()]
    )


def test_fewer_than_two_factors_is_insufficient(marts: dict[str, pl.DataFrame]) -> None:
    """HRV alone (no heart rate, no workouts, no sleep data) is one factor: no score, no persistence."""
    hrv_only = {
        "daily_metrics": _only(marts["daily_metrics"], overnight_hr_bpm=None),
        "baselines": marts["baselines"],
        "training_load": marts["training_load"].clear(),
        "sleep_debt": marts["sleep_debt"].clear(),
    }
    result = _run(hrv_only)
    assert set(result["level"]) == {"insufficient"}
    assert result["overtraining_score"].null_count() == result.height
    assert result["persistence_days"].max() == 0
    hrv_available = [json.loads(f)[0]["available"] for f in result["factors"]]
    assert any(hrv_available)  # the HRV factor itself was there: one factor is not enough


def test_missing_streams_leave_their_factors_out(marts: dict[str, pl.DataFrame]) -> None:
    """No workouts and no sleep mart: the two physiological factors still score, the others add nothing."""
    result = _run(
        {**marts, "training_load": marts["training_load"].clear(), "sleep_debt": marts["sleep_debt"].clear()}
    )
    scored = result.filter(pl.col("overtraining_score").is_not_null())
    assert scored.height > 0
    for row in scored.iter_rows(named=True):
        factors = {f["name"]: f for f in json.loads(row["factors"])}
        assert not factors["acwr_high"]["available"] and factors["acwr_high"]["points"] is None
        assert not factors["sleep_debt"]["available"] and factors["sleep_debt"]["points"] is None
        physiological = factors["hrv_below_normal"]["points"] + factors["overnight_hr_above_normal"]["points"]
        assert math.isclose(row["overtraining_score"], physiological)
    assert max(scored["overtraining_score"].to_list()) <= 65.0


def test_acwr_factor_is_flagged_as_a_heuristic(marts: dict[str, pl.DataFrame]) -> None:
    factors = {f["name"]: f for f in json.loads(_run(marts)["factors"][-1])}
    assert factors["acwr_high"]["heuristic"] is True
    assert "Impellizzeri" in factors["acwr_high"]["note"]
    assert not any(f["heuristic"] for name, f in factors.items() if name != "acwr_high")
    assert max(weight for *_, weight in FACTORS) < risk.HIGH  # no single factor reaches high alone


def test_overreaching_blocks_raise_risk_to_high_and_it_settles(sim_frames: SimFrames) -> None:
    """Against the simulator's planted overreaching blocks (seed 7: one per overreaching persona).

    * ``high`` within 7 days of the start: on some day of [start, start + 7].
    * after the block: ``low`` or ``moderate`` again on end + 14.

    Observed (seed 7): the endurance athlete's block is ``high`` from start + 3, the casual exerciser's
    only from start + 7, the last day the rule allows; its planted HRV drop (0.03 ln units a night) is
    under one robust SD of its 7-day mean until then. The method's expected first ``high`` for that
    persona is start + 6, 4 points above the line (docs/methods.md §11), so a day either way is noise. On
    seeds 8-12 the casual exerciser's blocks turned ``high`` between start + 4 and start + 10, one never;
    every athlete block by start + 6. The rule and the module's documented thresholds were not adjusted to
    this seed, so a simulator change can break this.
    """
    sim, marts = sim_frames.sim, sim_frames.marts
    result = _run(marts, sim.first_day, sim.last_day)
    levels = {(r["user_id"], r["day"]): r["level"] for r in result.iter_rows(named=True)}
    blocks = [
        (user, start, end)
        for user in sim.users
        for start, end in sim.events(user, "overreaching")
        if end + timedelta(days=14) <= sim.last_day
    ]
    assert len(blocks) >= 2
    for user, start, end in blocks:
        first_week = [levels[(user, start + timedelta(days=k))] for k in range(8)]
        assert "high" in first_week, (user, start, first_week)
        after = [levels[(user, end + timedelta(days=k))] for k in range(1, 15)]
        assert after[-1] in ("low", "moderate"), (user, end, after)
