"""Insights: every rule fires somewhere, every number in a sentence is read back from the row it names."""

from __future__ import annotations

import json
import math
import re
from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest

from polar_pipeline.analytics import insights
from polar_pipeline.analytics.insights import compute_insights
from tests.analytics.conftest import SimFrames

DAY = date(2026, 2, 10)
NUMBER = re.compile(r"(?<![/\d.])[+-]?\d+(?:\.\d+)?")
"""A number in a sentence; the scale of a score ("/100") is a unit, not a number read from a row."""


def _frame(rows: list[dict[str, Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _factors(points: dict[str, float | None]) -> str:
    return json.dumps(
        [
            {"name": name, "available": value is not None, "value": value, "points": value}
            for name, value in points.items()
        ]
    )


def _contributors(z: dict[str, float | None]) -> str:
    metrics = {"hrv": "ln_rmssd", "overnight_hr": "overnight_hr_bpm", "sleep": "sleep_score"}
    return json.dumps(
        [
            {"name": name, "metric": metrics[name], "available": value is not None, "z": value}
            for name, value in z.items()
        ]
    )


def _signals(z: dict[str, float], fired: set[str]) -> str:
    return json.dumps([{"metric": m, "z": value, "fired": m in fired} for m, value in z.items()])


SCHEMAS: dict[str, dict[str, Any]] = {
    "daily": {"user_id": pl.String, "day": pl.Date},
    "anomalies": {
        "user_id": pl.String, "day": pl.Date, "metric": pl.String, "value": pl.Float64,
        "severity": pl.String, "direction": pl.String, "baseline_median": pl.Float64,
    },
    "sleep_debt": {"user_id": pl.String, "day": pl.Date, "debt_seconds": pl.Int64, "nights": pl.Int64},
    "correlations": {
        "user_id": pl.String, "day": pl.Date, "x_metric": pl.String, "y_metric": pl.String,
        "lag_days": pl.Int32, "n": pl.Int64, "rho": pl.Float64, "q_value": pl.Float64,
        "significant": pl.Boolean,
    },
    "trends": {
        "user_id": pl.String, "day": pl.Date, "metric": pl.String, "window_days": pl.Int32,
        "theil_sen_per_week": pl.Float64, "meaningful": pl.Boolean, "direction": pl.String,
        "polarity": pl.String,
    },
    "risk": {
        "user_id": pl.String, "day": pl.Date, "overtraining_score": pl.Float64, "level": pl.String,
        "factors": pl.String, "persistence_days": pl.Int64,
    },
    "recovery": {
        "user_id": pl.String, "day": pl.Date, "score": pl.Float64, "level": pl.String,
        "contributors": pl.String,
    },
    "illness_watch": {
        "user_id": pl.String, "day": pl.Date, "flagged": pl.Boolean, "level": pl.String, "signals": pl.String,
    },
    "readiness": {
        "user_id": pl.String, "day": pl.Date, "stream": pl.String, "distinct_days": pl.Int64,
        "feature": pl.String, "unlocked": pl.Boolean, "days_remaining": pl.Int64,
    },
}  # fmt: skip
ORDER = list(SCHEMAS)


def _inputs() -> dict[str, list[dict[str, Any]]]:
    """Four users, each built to reach a different set of rules on DAY."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SCHEMAS}
    for user in ("ill", "strained", "fresh", "new"):
        rows["daily"].append({"user_id": user, "day": DAY})
    # "ill": an early-illness flag, a critical HRV drop and a warning on breathing, low recovery.
    rows["illness_watch"].append(
        {"user_id": "ill", "day": DAY, "flagged": True, "level": "alert",
         "signals": _signals({"overnight_hr_bpm": 2.4, "breathing_rate": 1.9, "ln_rmssd": -2.2},
                             {"overnight_hr_bpm", "breathing_rate", "ln_rmssd"})}
    )  # fmt: skip
    rows["anomalies"] += [
        {"user_id": "ill", "day": DAY, "metric": "ln_rmssd", "value": math.log(31.0), "severity": "critical",
         "direction": "below", "baseline_median": math.log(58.0)},
        {"user_id": "ill", "day": DAY, "metric": "breathing_rate", "value": 16.4, "severity": "warning",
         "direction": "above", "baseline_median": 14.1},
    ]  # fmt: skip
    rows["recovery"].append(
        {"user_id": "ill", "day": DAY, "score": 8.3, "level": "low",
         "contributors": _contributors({"hrv": -2.6, "overnight_hr": -1.8, "sleep": None})}
    )  # fmt: skip
    # "strained": high risk, sleep debt, a rising resting HR (bad) and a neutral trend.
    rows["risk"].append(
        {"user_id": "strained", "day": DAY, "overtraining_score": 63.5, "level": "high",
         "factors": _factors({"hrv_below_normal": 40.0, "overnight_hr_above_normal": 12.5,
                              "sleep_debt": 11.0, "acwr_high": None}),
         "persistence_days": 4}
    )  # fmt: skip
    rows["sleep_debt"].append({"user_id": "strained", "day": DAY, "debt_seconds": 14 * 5400, "nights": 14})
    rows["trends"] += [
        {"user_id": "strained", "day": DAY, "metric": "overnight_hr_bpm", "window_days": 30,
         "theil_sen_per_week": 0.84, "meaningful": True, "direction": "rising", "polarity": "bad"},
        {"user_id": "strained", "day": DAY, "metric": "training_load", "window_days": 90,
         "theil_sen_per_week": 3.1, "meaningful": True, "direction": "rising", "polarity": "neutral"},
        {"user_id": "strained", "day": DAY, "metric": "sleep_score", "window_days": 90,
         "theil_sen_per_week": 0.2, "meaningful": False, "direction": "flat", "polarity": None},
    ]  # fmt: skip
    # "fresh": high recovery, moderate risk elsewhere in time, an HRV rise (good), a significant coupling.
    rows["recovery"].append(
        {"user_id": "fresh", "day": DAY, "score": 88.0, "level": "high",
         "contributors": _contributors({"hrv": 1.3, "overnight_hr": 0.9, "sleep": 0.4})}
    )  # fmt: skip
    rows["risk"].append(
        {"user_id": "fresh", "day": DAY, "overtraining_score": 30.0, "level": "moderate",
         "factors": _factors({"hrv_below_normal": None, "overnight_hr_above_normal": None,
                              "sleep_debt": 10.0, "acwr_high": 20.0}),
         "persistence_days": 2}
    )  # fmt: skip
    rows["trends"].append(
        {"user_id": "fresh", "day": DAY, "metric": "ln_rmssd", "window_days": 90,
         "theil_sen_per_week": 0.012, "meaningful": True, "direction": "rising", "polarity": "good"}
    )  # fmt: skip
    rows["correlations"] += [
        {"user_id": "fresh", "day": DAY, "x_metric": "sleep_score", "y_metric": "ln_rmssd", "lag_days": 1,
         "n": 84, "rho": 0.41, "q_value": 0.004, "significant": True},
        {"user_id": "fresh", "day": DAY, "x_metric": "steps", "y_metric": "sleep_score", "lag_days": 1,
         "n": 84, "rho": -0.12, "q_value": 0.6, "significant": False},
    ]  # fmt: skip
    # "new": two weeks of data; nothing unlocked but the nearest feature; normal recovery, low risk.
    rows["readiness"] += [
        {"user_id": "new", "day": DAY, "stream": "recharge", "distinct_days": 14, "feature": "hrv_status",
         "unlocked": False, "days_remaining": 7},
        {"user_id": "new", "day": DAY, "stream": "sleep", "distinct_days": 14, "feature": "sleep_debt",
         "unlocked": True, "days_remaining": 0},
    ]  # fmt: skip
    rows["recovery"].append(
        {"user_id": "new", "day": DAY, "score": 55.0, "level": "normal",
         "contributors": _contributors({"hrv": 0.1, "overnight_hr": None, "sleep": None})}
    )  # fmt: skip
    rows["risk"].append(
        {"user_id": "new", "day": DAY, "overtraining_score": 5.0, "level": "low",
         "factors": _factors({"hrv_below_normal": 5.0, "overnight_hr_above_normal": 0.0,
                              "sleep_debt": None, "acwr_high": None}),
         "persistence_days": 0}
    )  # fmt: skip
    return rows


def _run(rows: dict[str, list[dict[str, Any]]]) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    frames = {name: _frame(rows[name], SCHEMAS[name]) for name in ORDER}
    return compute_insights(*(frames[name] for name in ORDER), DAY, DAY), frames


def _resolve(frames: dict[str, pl.DataFrame], user: str, evidence: dict[str, Any]) -> Any:
    """Read the value an evidence entry names from the input frames, independently of insights.py."""
    name = evidence["relation"].split(".")[1]
    frame = frames[name].filter((pl.col("user_id") == user) & (pl.col("day") == DAY))
    for column, value in evidence["where"].items():
        frame = frame.filter(pl.col(column) == value)
    assert frame.height == 1, evidence
    column, *path = evidence["column"].split(".")
    value = frame.row(0, named=True)[column]
    if path:
        item_name, field = path
        items = [i for i in json.loads(value) if item_name in (i.get("name"), i.get("metric"))]
        assert len(items) == 1, evidence
        value = items[0][field]
    return value


def _shown(value: float, transform: str | None, digits: int, signed: bool) -> str:
    shown = {"exp": math.exp, "hours": lambda v: v / 3600, "pct_log": lambda v: 100 * math.expm1(v)}.get(
        transform or "", lambda v: v
    )(value)
    return f"{shown:{'+' if signed else ''}.{digits}f}"


def test_every_number_in_a_sentence_is_read_from_the_row_it_names() -> None:
    result, frames = _run(_inputs())
    checked = 0
    for user, observations in result.select("user_id", "observations").iter_rows():
        for observation in json.loads(observations):
            shown = []
            for evidence in observation["evidence"]:
                assert _resolve(frames, user, evidence) == pytest.approx(evidence["value"], rel=1e-12)
                signed = evidence["shown"][:1] in "+-" and evidence["value"] >= 0
                text = _shown(evidence["value"], evidence["transform"], evidence["digits"], signed)
                assert text.lstrip("+") == evidence["shown"].lstrip("+"), evidence
                shown.append(evidence["shown"].lstrip("+"))
                checked += 1
            numbers = [n.lstrip("+") for n in NUMBER.findall(observation["fact"])]
            assert sorted(numbers) == sorted(shown), observation["fact"]
    assert checked >= 20


def test_every_rule_fires_and_wording_follows_direction_and_polarity() -> None:
    result, _ = _run(_inputs())
    by_user = {
        user: (json.loads(observations), json.loads(suggestions))
        for user, observations, suggestions in result.select(
            "user_id", "observations", "suggestions"
        ).iter_rows()
    }
    fired = {o["rule"] for observations, _ in by_user.values() for o in observations}
    assert fired == set(insights.rules())
    actions = {user: [s["action"] for s in suggestions] for user, (_, suggestions) in by_user.items()}
    assert actions == {
        "ill": ["prioritize_recovery", "monitor_closely"],
        "strained": ["rest_day"],
        "fresh": ["reduce_intensity"],
        "new": ["train_normally"],
    }
    ill = by_user["ill"][0]
    assert [o["priority"] for o in ill] == sorted((o["priority"] for o in ill), key=insights.PRIORITIES.index)
    assert ill[0]["rule"] == "illness_watch" and "HRV down" in ill[0]["fact"]
    hrv = next(o for o in ill if o["rule"] == "anomaly" and "HRV" in o["fact"])
    assert hrv["priority"] == "critical" and "well below" in hrv["fact"] and "31 ms" in hrv["fact"]
    strained = {o["rule"]: o for o in by_user["strained"][0]}
    assert "rising" in strained["trend_bad"]["fact"] and strained["trend_bad"]["priority"] == "medium"
    assert "improvement" not in strained["trend_bad"]["context"]
    fresh = {o["rule"]: o for o in by_user["fresh"][0]}
    assert fresh["trend_good"]["priority"] == "positive" and "+1.2 %" in fresh["trend_good"]["fact"]
    assert "higher" in fresh["correlation"]["fact"] and "the next day" in fresh["correlation"]["fact"]
    # confidence is the share of the rule's inputs that were there: 3 of 4 risk factors, 2 of 4.
    strained_suggestion = by_user["strained"][1][0]
    assert strained_suggestion["confidence"] == 0.75
    assert by_user["fresh"][1][0]["confidence"] == 0.5


def test_a_day_without_anything_notable_says_nothing_and_never_reads_other_days() -> None:
    rows = _inputs()
    for name in SCHEMAS:
        if name != "daily":
            rows[name] = [dict(r, day=DAY + timedelta(days=1)) for r in rows[name]]
    result, _ = _run(rows)
    assert result.height == 4
    assert set(result["observations"]) == {"[]"} and set(result["suggestions"]) == {"[]"}


def test_every_planted_illness_week_gets_a_high_priority_observation_naming_hrv(
    sim_frames: SimFrames, sim_analytics: dict[str, pl.DataFrame]
) -> None:
    """The whole chain on the simulator's marts: analytics, then insights, against the planted illnesses."""
    marts, sim = sim_frames.marts, sim_frames.sim
    rows = compute_insights(
        marts["daily_metrics"],
        marts["anomalies"],
        marts["sleep_debt"],
        *(sim_analytics[name] for name in ("correlations", "trends", "risk", "recovery", "illness_watch")),
        sim_analytics["readiness"],
        sim.first_day,
        sim.last_day,
    )
    told = {
        (user, day)
        for user, day, observations in rows.select("user_id", "day", "observations").iter_rows()
        for o in json.loads(observations)
        if o["priority"] in ("critical", "high") and "HRV" in o["fact"]
    }
    weeks = [(user, start, end) for user in sim.users for start, end in sim.events(user, "illness")]
    assert len(weeks) >= 3
    for user, start, end in weeks:
        days = {start + timedelta(days=k) for k in range((end - start).days + 1)}
        assert any((user, day) in told for day in days), (user, start, end)
