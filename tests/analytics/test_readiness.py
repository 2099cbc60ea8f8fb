"""compute_readiness against a day-by-day count, its contract, and users who lack a stream."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest

from polar_pipeline.analytics.readiness import FEATURES, LOOKBACK_DAYS, WINDOW_DAYS, compute_readiness
from tests.analytics.conftest import START, SimFrames, assert_slices_recompute, synthetic_marts

FIRST = START + timedelta(days=3)
LAST = START + timedelta(days=165)
EXPECTED_SCHEMA = pl.Schema(
    {
        "user_id": pl.String,
        "day": pl.Date,
        "stream": pl.String,
        "distinct_days": pl.Int64,
        "feature": pl.String,
        "unlocked": pl.Boolean,
        "days_remaining": pl.Int64,
        "required_days": pl.Int64,
    }
)
SLEEP_AND_HRV = {"sleep_debt", "hrv_status", "recovery_score", "sleep_baseline", "sleep_hrv_correlation"}
SLEEP_AND_HRV |= {"overtraining_risk", "hrv_trend", "sleep_trend"}


def _has(row: dict[str, Any] | None, stream: str) -> bool:
    if row is None:
        return False
    if stream == "sleep":
        return row["sleep_seconds"] is not None
    if stream == "recharge":
        return row["ln_rmssd"] is not None
    return row["steps"] is not None or (row["exercise_count"] or 0) > 0


def reference_counts(daily: pl.DataFrame, first: date, last: date) -> dict[tuple[str, date, str], int]:
    """(user, day, stream) -> days with data in [day - 89, day], counted one calendar day at a time, for
    the days with a daily row (the only days with output rows)."""
    rows = {(r["user_id"], r["day"]): r for r in daily.iter_rows(named=True)}
    out: dict[tuple[str, date, str], int] = {}
    for user, day in sorted(rows):
        if first <= day <= last:
            window = [day - timedelta(days=k) for k in range(WINDOW_DAYS)]
            for stream in ("sleep", "recharge", "activity"):
                out[(user, day, stream)] = sum(_has(rows.get((user, d)), stream) for d in window)
            out[(user, day, "sleep+recharge")] = sum(
                _has(rows.get((user, d)), "sleep") and _has(rows.get((user, d)), "recharge") for d in window
            )
            out[(user, day, "activity+recharge")] = sum(
                _has(rows.get((user, d - timedelta(days=1))), "activity")
                and _has(rows.get((user, d)), "recharge")
                for d in window
            )
    return out


@pytest.fixture(scope="module")
def daily() -> pl.DataFrame:
    return synthetic_marts(seed=33)["daily_metrics"]


def test_every_row_matches_an_independent_count(daily: pl.DataFrame) -> None:
    result = compute_readiness(daily, FIRST, LAST)
    counts = reference_counts(daily, FIRST, LAST)
    days = sorted({(user, day) for user, day, _ in counts})
    assert result.height == len(days) * len(FEATURES)
    expected = [
        (user, day, f.stream, counts[(user, day, f.stream)], f.name, f.required_days)
        for user, day in days
        for f in FEATURES
    ]
    got = result.select("user_id", "day", "stream", "distinct_days", "feature", "required_days").rows()
    assert got == expected
    for row in result.iter_rows(named=True):
        assert row["unlocked"] == (row["distinct_days"] >= row["required_days"])
        assert row["days_remaining"] == max(0, row["required_days"] - row["distinct_days"])
    assert result["unlocked"].any() and not result["unlocked"].all()
    assert max(result["distinct_days"].to_list()) < WINDOW_DAYS  # gaps and NULLs: distinct days, not the span


def test_the_feature_catalogue_is_consistent() -> None:
    names = [f.name for f in FEATURES]
    assert len(set(names)) == len(names)
    assert {f.stream for f in FEATURES} == {
        "sleep",
        "recharge",
        "activity",
        "sleep+recharge",
        "activity+recharge",
    }
    assert all(0 < f.required_days <= WINDOW_DAYS for f in FEATURES)
    required = {f.name: f.required_days for f in FEATURES}
    assert required["training_load_ratios"] == 28 and required["sleep_hrv_correlation"] == 21


def test_schema_order_and_range(daily: pl.DataFrame) -> None:
    result = compute_readiness(daily, FIRST, LAST)
    assert result.schema == EXPECTED_SCHEMA
    assert result.columns[:2] == ["user_id", "day"]
    order = {f.name: i for i, f in enumerate(FEATURES)}
    keyed = result.with_columns(pl.col("feature").replace_strict(order).alias("_order"))
    assert keyed.equals(keyed.sort("user_id", "day", "_order"))
    assert result["day"].to_list()[0] == FIRST and max(result["day"].to_list()) <= LAST
    empty = compute_readiness(daily.clear(), FIRST, LAST)
    assert empty.is_empty() and empty.schema == EXPECTED_SCHEMA


def test_a_day_never_reads_the_future(daily: pl.DataFrame) -> None:
    before = compute_readiness(daily, FIRST, LAST)
    cutoff = FIRST + timedelta(days=50)
    later = pl.col("day") > cutoff
    # Fill every gap and NULL after the cutoff: every later count grows, no earlier one may.
    users = daily.group_by("user_id").agg(pl.col("day").min().alias("a"), pl.col("day").max().alias("b"))
    calendar = users.select("user_id", pl.date_ranges("a", "b").alias("day")).explode("day")
    later_gaps = calendar.join(daily, on=["user_id", "day"], how="anti").filter(later)
    filled = (
        pl.concat([daily, later_gaps], how="diagonal")
        .sort("user_id", "day")
        .with_columns(
            pl.when(later).then(pl.col(c).fill_null(1)).otherwise(pl.col(c)).alias(c)
            for c in ("sleep_seconds", "ln_rmssd", "steps")
        )
        .select(daily.columns)
    )
    after = compute_readiness(filled, FIRST, LAST)
    assert before.filter(~later).equals(after.filter(~later))
    assert not before.equals(after)


def test_any_slice_recomputes_the_same_rows(daily: pl.DataFrame) -> None:
    assert_slices_recompute(
        lambda frames, first, last: compute_readiness(frames["daily_metrics"], first, last),
        {"daily_metrics": daily}, FIRST, LAST, LOOKBACK_DAYS, slices=((0, 1), (91, 30)),
    )  # fmt: skip


def _person(days: int, **columns: Any) -> pl.DataFrame:
    base: dict[str, Any] = {"sleep_seconds": None, "ln_rmssd": None, "steps": None, "exercise_count": 0}
    base.update(columns)
    return pl.DataFrame(
        {
            "user_id": ["p"] * days,
            "day": [START + timedelta(days=i) for i in range(days)],
            **{name: [value] * days for name, value in base.items()},
        },
        schema_overrides={"sleep_seconds": pl.Int64, "ln_rmssd": pl.Float64, "steps": pl.Int64},
    )


def _unlocked(result: pl.DataFrame, day: date) -> set[str]:
    return set(result.filter(pl.col("day") == day, pl.col("unlocked"))["feature"])


def test_someone_who_never_trains_unlocks_sleep_and_hrv() -> None:
    """Sleep and HRV every night, no workouts and no activity summary: every sleep/HRV feature unlocks,
    no activity feature does, and the activity stream counts 0 days."""
    person = _person(60, sleep_seconds=27000, ln_rmssd=4.0)
    result = compute_readiness(person, START, START + timedelta(days=59))
    last = START + timedelta(days=59)
    assert _unlocked(result, last) == SLEEP_AND_HRV
    activity = result.filter(pl.col("day") == last, pl.col("stream").str.starts_with("activity"))
    assert activity["distinct_days"].to_list() == [0] * activity.height
    locked = activity.filter(pl.col("feature") == "training_load_ratios")
    assert locked["days_remaining"].to_list() == [28]
    # Steps without workouts are days of (zero) training load: the load features unlock on them.
    walker = compute_readiness(_person(60, sleep_seconds=27000, ln_rmssd=4.0, steps=6000), START, last)
    assert _unlocked(walker, last) == {f.name for f in FEATURES}


def test_features_unlock_on_distinct_days_not_calendar_span() -> None:
    """HRV every other night: after 40 calendar days there are 20 nights, so hrv_status (21) is locked."""
    person = _person(40, ln_rmssd=4.0).with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.col("ln_rmssd")).alias("ln_rmssd")
    )
    day40 = START + timedelta(days=39)
    result = compute_readiness(person, day40, day40)
    hrv = result.filter(pl.col("feature") == "hrv_status").row(0, named=True)
    assert (hrv["distinct_days"], hrv["unlocked"], hrv["days_remaining"]) == (20, False, 1)
    unlock_day = {f.name: None for f in FEATURES}
    daily_nights = compute_readiness(_person(30, ln_rmssd=4.0), START, START + timedelta(days=29))
    for row in daily_nights.filter(pl.col("unlocked")).iter_rows(named=True):
        unlock_day[row["feature"]] = unlock_day[row["feature"]] or (row["day"] - START).days + 1
    assert unlock_day["hrv_status"] == 21 and unlock_day["recovery_score"] == 22
    assert unlock_day["overtraining_risk"] == 28 and unlock_day["hrv_trend"] == 30


def test_the_simulated_no_workouts_user(sim_frames: SimFrames) -> None:
    """The simulator's no_workouts persona never trains in 14 months, yet unlocks every sleep/HRV feature."""
    sim, marts = sim_frames.sim, sim_frames.marts
    user = next(u for u in sim.users if sim.truth[u]["persona"] == "no_workouts")
    daily = marts["daily_metrics"].filter(pl.col("user_id") == user)
    assert daily["exercise_count"].sum() == 0
    result = compute_readiness(daily, sim.last_day, sim.last_day)
    assert _unlocked(result, sim.last_day) >= SLEEP_AND_HRV
