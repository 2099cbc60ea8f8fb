"""compute_illness_watch against a numpy recomputation, its contract, and a simulated population's illnesses.

The population test runs the pure function over >= 20 simulated user-years built straight from the
simulator's state (its own payload renderers through ``simulated_daily``; no HTTP, no Dagster) with
marts.baselines computed by the real SQL model, and checks the watch's bar: >= 80 % of planted illnesses
flagged on or before their first symptom day, <= 1 false-alarm day per user per 90 days outside illness
windows. Its seeds were not used to choose the thresholds (those were fixed on seeds 1-8).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest

from polar_pipeline.analytics.illness import LOOKBACK_DAYS, compute_illness_watch
from polar_pipeline.simulator.config import OPT_IN_PERSONAS, PERSONAS
from polar_pipeline.simulator.physiology import UserModel
from polar_pipeline.sqlmodels import ModelGraph, run_models
from polar_pipeline.warehouse.schema import ensure_raw_schema
from tests.analytics.conftest import assert_slices_recompute, simulated_daily

START = date(2025, 1, 1)
FIRST = START + timedelta(days=3)
LAST = START + timedelta(days=115)
EXPECTED_SCHEMA = pl.Schema(
    {"user_id": pl.String, "day": pl.Date, "flagged": pl.Boolean, "level": pl.String, "signals": pl.String}
)
# (metric, threshold), restated rather than imported so a changed constant fails the comparison.
SIGNALS = (("overnight_hr_bpm", 1.0), ("breathing_rate", 2.0), ("ln_rmssd", -0.5))
ALERT_FACTOR = 2.0
SIGNAL_KEYS = ["metric", "value", "baseline_median", "robust_sd", "z", "threshold", "fired"]

# ------------------------------------------------------------------------------ synthetic marts frames

CENTRES = {"overnight_hr_bpm": (55.0, 1.5), "breathing_rate": (14.0, 0.35), "ln_rmssd": (4.0, 0.1)}
"""metric -> (baseline median, robust SD) around which the synthetic users live."""
EPISODES = {"watch": (2.2, 0.9, -0.09), "alert": (6.0, 1.6, -0.45)}
"""Planted nights: (heart rate, breathing, ln rMSSD) added to the night, a mild and a strong pattern."""


def synthetic_frames(seed: int, users: int = 3, days: int = 120) -> dict[str, pl.DataFrame]:
    """daily_metrics and baselines shaped frames: AR(1) nights, gaps, missing rows, unready baselines.

    User k's span starts 4·k days late. Every 9th night carries a mild illness pattern and every 13th a
    strong one, so all four levels occur; 6 % of the values are NULL and 3 % of the daily and baseline rows
    are missing. Baselines are ``insufficient`` for 10 days, ``partial`` for 10, then mostly ``ready``,
    and a few robust SDs are 0 (never written by the SQL, but then no z can be formed).
    """
    rng = np.random.default_rng(seed)
    daily, baselines = [], []
    for k in range(users):
        n = days - 4 * k
        dates = [START + timedelta(days=4 * k + i) for i in range(n)]
        index = np.arange(n)
        pattern = np.zeros((n, 3))
        pattern[index % 9 == 5] = EPISODES["watch"]
        pattern[index % 13 == 7] = EPISODES["alert"]
        columns: dict[str, Any] = {"user_id": [f"user-{k}"] * n, "day": dates}
        for j, (metric, (centre, spread)) in enumerate(CENTRES.items()):
            noise = np.zeros(n)
            for t in range(1, n):
                noise[t] = 0.4 * noise[t - 1] + rng.standard_normal() * 0.9
            values = centre + spread * noise + pattern[:, j]
            values[rng.random(n) < 0.06] = np.nan
            columns[metric] = pl.Series(values).fill_nan(None)
        daily.append(pl.DataFrame(columns).filter(pl.Series(rng.random(n) >= 0.03)))
        status = np.where(index < 10, "insufficient", np.where(index < 20, "partial", "ready"))
        status = np.where((index >= 20) & (rng.random(n) < 0.05), "partial", status)
        for metric, (centre, spread) in CENTRES.items():
            robust_sd = spread * rng.uniform(0.8, 1.25, n)
            robust_sd[rng.random(n) < 0.01] = 0.0
            baselines.append(
                pl.DataFrame(
                    {
                        "user_id": [f"user-{k}"] * n,
                        "day": dates,
                        "metric": [metric] * n,
                        "median": centre + 0.2 * spread * rng.standard_normal(n),
                        "robust_sd": robust_sd,
                        "status": status,
                    }
                ).filter(pl.Series(rng.random(n) >= 0.03))
            )
    return {"daily_metrics": pl.concat(daily), "baselines": pl.concat(baselines)}


def reference_watch(marts: dict[str, pl.DataFrame], first: date, last: date) -> dict[tuple[str, date], Any]:
    """The expected row of every (user, day): numpy arrays over each user's calendar, no polars logic."""
    daily = marts["daily_metrics"]
    base = {(r["user_id"], r["day"], r["metric"]): r for r in marts["baselines"].iter_rows(named=True)}
    out: dict[tuple[str, date], Any] = {}
    for user in sorted(set(daily["user_id"])):
        rows = {r["day"]: r for r in daily.filter(pl.col("user_id") == user).iter_rows(named=True)}
        calendar = [min(rows) + timedelta(days=i) for i in range((max(rows) - min(rows)).days + 1)]
        values, medians, sds, ready = {}, {}, {}, {}
        for metric, _ in SIGNALS:
            refs = [base.get((user, day, metric)) for day in calendar]
            values[metric] = np.array([_nan(rows.get(day, {}).get(metric)) for day in calendar])
            medians[metric] = np.array([_nan(ref and ref["median"]) for ref in refs])
            sds[metric] = np.array([_nan(ref and ref["robust_sd"]) for ref in refs])
            ready[metric] = np.array([ref is not None and ref["status"] == "ready" for ref in refs])
        z = {}
        for metric, _ in SIGNALS:
            usable = ready[metric] & ~np.isnan(values[metric]) & (np.nan_to_num(sds[metric]) > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = (values[metric] - medians[metric]) / sds[metric]
            z[metric] = np.where(usable, ratio, np.nan)
        fired = {m: (z[m] >= t) if t > 0 else (z[m] <= t) for m, t in SIGNALS}
        strong = {m: (z[m] >= 2 * t) if t > 0 else (z[m] <= 2 * t) for m, t in SIGNALS}
        available = np.logical_and.reduce([~np.isnan(z[m]) for m, _ in SIGNALS])
        every_fired = np.logical_and.reduce([fired[m] for m, _ in SIGNALS])
        every_strong = np.logical_and.reduce([strong[m] for m, _ in SIGNALS])
        level = np.select(
            [~available, every_strong, every_fired], ["insufficient", "alert", "watch"], default="none"
        )
        for i, day in enumerate(calendar):
            if first <= day <= last and day in rows:  # rows only for the daily rows
                signals = [
                    {
                        "metric": m,
                        "value": _none(values[m][i]),
                        "baseline_median": _none(medians[m][i]),
                        "robust_sd": _none(sds[m][i]),
                        "z": _none(z[m][i]),
                        "threshold": t,
                        "fired": bool(fired[m][i]),
                    }
                    for m, t in SIGNALS
                ]
                out[(user, day)] = {
                    "level": str(level[i]),
                    "flagged": str(level[i]) in ("watch", "alert"),
                    "signals": signals,
                }
    return out


def _nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def _none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool | str):
        return bool(a == b)
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


@pytest.fixture(scope="module")
def marts() -> dict[str, pl.DataFrame]:
    return synthetic_frames(seed=16)


def _run(marts: dict[str, pl.DataFrame], first: date = FIRST, last: date = LAST) -> pl.DataFrame:
    return compute_illness_watch(marts["daily_metrics"], marts["baselines"], first, last)


def test_every_row_matches_an_independent_recomputation(marts: dict[str, pl.DataFrame]) -> None:
    result = _run(marts)
    expected = reference_watch(marts, FIRST, LAST)
    assert [(r["user_id"], r["day"]) for r in result.iter_rows(named=True)] == sorted(expected)
    for row in result.iter_rows(named=True):
        key = (row["user_id"], row["day"])
        want = expected[key]
        assert row["level"] == want["level"], key
        assert row["flagged"] == want["flagged"], key
        signals = json.loads(row["signals"])
        assert [list(s) for s in signals] == [SIGNAL_KEYS] * 3
        for got, wanted in zip(signals, want["signals"], strict=True):
            assert all(_close(got[k], wanted[k]) for k in SIGNAL_KEYS), (key, got, wanted)
    levels = result["level"].value_counts().sort("level")
    assert set(levels["level"]) == {"none", "watch", "alert", "insufficient"}, levels
    # The sign convention: a fired ln_rmssd signal has a negative z, fired heart rate and breathing positive.
    fired = [s for text in result["signals"] for s in json.loads(text) if s["fired"]]
    assert {s["metric"] for s in fired} == {m for m, _ in SIGNALS}
    assert all((s["z"] < 0) == (s["metric"] == "ln_rmssd") for s in fired)


def test_schema_order_and_range(marts: dict[str, pl.DataFrame]) -> None:
    result = _run(marts)
    assert result.schema == EXPECTED_SCHEMA
    assert result.equals(result.sort("user_id", "day"))
    assert result["day"].min() == FIRST and result["day"].max() == LAST
    assert LOOKBACK_DAYS == 0
    empty = _run({name: frame.clear() for name, frame in marts.items()})
    assert empty.is_empty() and empty.schema == EXPECTED_SCHEMA


@pytest.mark.parametrize("cutoff_days", [20, 61])
def test_a_day_never_reads_the_future(marts: dict[str, pl.DataFrame], cutoff_days: int) -> None:
    """Rewriting every value, median, spread and status after day D leaves D's row and all before it."""
    before = _run(marts)
    later = pl.col("day") > FIRST + timedelta(days=cutoff_days)
    scrambled = {
        "daily_metrics": marts["daily_metrics"].with_columns(
            pl.when(later).then(pl.col(m) * 1.3 + 2).otherwise(pl.col(m)).alias(m) for m, _ in SIGNALS
        ),
        "baselines": marts["baselines"].with_columns(
            pl.when(later).then(pl.col("median") - 1).otherwise(pl.col("median")).alias("median"),
            pl.when(later).then(pl.col("robust_sd") / 4).otherwise(pl.col("robust_sd")).alias("robust_sd"),
            pl.when(later).then(pl.lit("ready")).otherwise(pl.col("status")).alias("status"),
        ),
    }
    after = _run(scrambled)
    assert before.filter(~later).equals(after.filter(~later))
    assert not before.filter(later).equals(after.filter(later))


def test_any_slice_recomputes_the_same_rows(marts: dict[str, pl.DataFrame]) -> None:
    """A run reading only [first_day - LOOKBACK_DAYS, last_day] reproduces the full run, bit for bit."""
    assert_slices_recompute(_run, marts, FIRST, LAST, LOOKBACK_DAYS, slices=((0, 1), (50, 31)))


def test_unready_baselines_or_a_missing_signal_are_insufficient(marts: dict[str, pl.DataFrame]) -> None:
    """A partial baseline of one metric (or no breathing rate at all) leaves every day insufficient."""
    partial = marts["baselines"].with_columns(
        pl.when(pl.col("metric") == "breathing_rate")
        .then(pl.lit("partial"))
        .otherwise(pl.col("status"))
        .alias("status")
    )
    without_breathing = marts["daily_metrics"].with_columns(pl.lit(None, pl.Float64).alias("breathing_rate"))
    for changed in ({**marts, "baselines": partial}, {**marts, "daily_metrics": without_breathing}):
        result = _run(changed)
        assert set(result["level"]) == {"insufficient"}
        assert not result["flagged"].any()
        breathing = [json.loads(text)[1] for text in result["signals"]]
        assert all(s["z"] is None and s["fired"] is False for s in breathing)
    # Output rows are the daily rows: a day inside a user's span without one gets no row.
    result = _run(marts)
    daily = marts["daily_metrics"].filter(pl.col("day").is_between(FIRST, LAST)).sort("user_id", "day")
    assert result.select("user_id", "day").rows() == daily.select("user_id", "day").rows()
    spans = daily.group_by("user_id").agg(
        ((pl.col("day").max() - pl.col("day").min()).dt.total_days() + 1 - pl.len()).alias("gaps")
    )
    assert spans["gaps"].sum() > 0


# ------------------------------------------------------------------------------ simulated population

POPULATION_SEEDS = (11, 12, 13)
POPULATION_PERSONAS = (*PERSONAS, *OPT_IN_PERSONAS)
POPULATION_DAYS = 730
POPULATION_START = date(2023, 1, 2)
RECOVERY_DAYS = 5
"""An illness window runs from its first prodrome day to RECOVERY_DAYS after its last sick day (the days the
simulator keeps HRV down after an illness); a flag outside every window is a false alarm."""


@dataclass(frozen=True)
class Illness:
    user: str
    persona: str
    prodrome_start: date
    first_symptom_day: date
    end: date


@dataclass(frozen=True)
class Population:
    daily: pl.DataFrame
    baselines: pl.DataFrame
    first_day: date
    last_day: date
    illnesses: tuple[Illness, ...]
    personas: dict[str, str]


def _sql_baselines(
    graph: ModelGraph, daily: pl.DataFrame, users: Sequence[str], first: date, last: date
) -> Any:
    """marts.baselines as the real SQL model computes it over a marts.daily_metrics holding ``daily``."""
    con = duckdb.connect()
    try:
        ensure_raw_schema(con)
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.register("simulated_daily", daily)
        con.execute(
            "CREATE TABLE marts.daily_metrics AS SELECT user_id, day, ln_rmssd, hrv_rmssd_ms, "
            "CAST(NULL AS INTEGER) AS sleep_score, CAST(NULL AS BIGINT) AS sleep_seconds, overnight_hr_bpm, "
            "breathing_rate, CAST(NULL AS BIGINT) AS steps, CAST(NULL AS DOUBLE) AS training_load, device_id "
            "FROM simulated_daily"
        )
        run_models(con, graph, users, first, last, names=["baselines"])
        return con.sql(
            "SELECT user_id, day, metric, median, robust_sd, status FROM marts.baselines "
            "WHERE metric IN ('overnight_hr_bpm', 'breathing_rate', 'ln_rmssd')"
        ).pl()
    finally:
        con.close()


@pytest.fixture(scope="session")
def population(graph: ModelGraph) -> Population:
    """Two simulated years of one user per persona (the opt-in ones too) for each seed."""
    last = POPULATION_START + timedelta(days=POPULATION_DAYS - 1)
    models: list[tuple[str, UserModel]] = []
    illnesses: list[Illness] = []
    personas: dict[str, str] = {}
    for seed in POPULATION_SEEDS:
        for index, persona in enumerate(POPULATION_PERSONAS):
            model = UserModel(seed, index, POPULATION_START, POPULATION_DAYS, persona=persona)
            user = f"{seed}:{model.x_user_id}"
            personas[user] = persona
            models.append((user, model))
            for event in (e.to_json() for e in model.events if e.kind == "illness"):  # /sim/ground-truth
                details = event["details"]
                illnesses.append(
                    Illness(
                        user,
                        persona,
                        date.fromisoformat(details["prodrome_start"]),
                        date.fromisoformat(details["first_symptom_day"]),
                        date.fromisoformat(event["end"]),
                    )
                )
    daily = simulated_daily(models, POPULATION_START, last)
    baselines = _sql_baselines(graph, daily, sorted(personas), POPULATION_START, last)
    return Population(daily, baselines, POPULATION_START, last, tuple(illnesses), personas)


def test_population_sensitivity_and_false_alarms(population: Population) -> None:
    """>= 80 % of illnesses flagged by their first symptom day; <= 1 false-alarm day per user per 90 days."""
    result = compute_illness_watch(
        population.daily, population.baselines, population.first_day, population.last_day
    )
    levels = {(user, day): level for user, day, level in result.select("user_id", "day", "level").iter_rows()}
    flagged = {key for key, level in levels.items() if level in ("watch", "alert")}
    in_window = {
        (illness.user, illness.prodrome_start + timedelta(days=k))
        for illness in population.illnesses
        for k in range((illness.end - illness.prodrome_start).days + RECOVERY_DAYS + 1)
    }
    scored = [i for i in population.illnesses if i.first_symptom_day <= population.last_day]
    detected = early = 0
    for illness in scored:
        days = (illness.first_symptom_day - illness.prodrome_start).days
        lead = [(illness.user, illness.prodrome_start + timedelta(days=k)) for k in range(days + 1)]
        detected += any(key in flagged for key in lead)
        early += any(key in flagged for key in lead[:-1])
    watched = {key for key, level in levels.items() if key not in in_window and level != "insufficient"}
    false_alarms = flagged & watched
    per_user = {
        user: 90 * sum(u == user for u, _ in false_alarms) / max(1, sum(u == user for u, _ in watched))
        for user in population.personas
    }
    user_years = len(levels) / 365.25
    sensitivity = detected / len(scored)
    rate = 90 * len(false_alarms) / len(watched)
    print(
        f"\nillness watch over {user_years:.1f} simulated user-years ({len(population.personas)} users, "
        f"seeds {POPULATION_SEEDS}, {len(watched)} watched days outside illness windows): "
        f"{detected}/{len(scored)} illnesses flagged by the first symptom day ({sensitivity:.1%}), "
        f"{early} before it ({early / len(scored):.1%}); {len(false_alarms)} false-alarm days = "
        f"{rate:.2f} per user per 90 days (worst user {max(per_user.values()):.2f})"
    )
    assert user_years >= 20
    assert len(scored) >= 30
    assert sensitivity >= 0.80
    assert rate <= 1.0
    assert set(population.personas.values()) == set(POPULATION_PERSONAS)
