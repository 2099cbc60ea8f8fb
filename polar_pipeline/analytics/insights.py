"""Observations and suggestions: what a person reads, written from the day's marts and analytics rows.

One row per user and day with a ``daily_metrics`` row: ``observations`` and ``suggestions``, each a JSON
array. An observation is ``{rule, category, priority, fact, context, evidence}``; a suggestion is
``{action, description, confidence, reason, rule}``. Observations are sorted by priority (critical, high,
medium, low, info, positive), then by rule order.

Every number in a sentence comes from a row: each observation lists its ``evidence``, one entry per number
shown, naming the relation, the row (the insight's own user and day, plus ``where`` for tables with several
rows per day), the column (``a.b`` reaches into a JSON column's object whose ``name`` is ``a``), the value
read, how it was transformed for display (``exp``: ln(ms) to ms, ``hours``: seconds to hours, ``pct_log``: a
log-scale change to percent) and
the text shown. A test re-reads every entry from the tables and checks the sentence shows exactly those
numbers. Wording follows direction and polarity: a rising resting heart rate is never "improving".

``confidence`` in a suggestion is the share of the rule's inputs that were available (e.g. 3 of the 4 risk
factors): how much of the picture the advice rests on, not a probability (docs/methods.md).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

LOOKBACK_DAYS = 0
"""Each day's insights read that day's rows only: the trailing windows live in the tables they read."""

PRIORITIES = ("critical", "high", "medium", "low", "info", "positive")
SIGNIFICANT_Q = 0.05
SLEEP_DEBT_HOURS_PER_NIGHT = 1.0
"""Average shortfall per night (over the 14-night window) worth telling: an hour a night (docs/methods.md)."""

SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "day": pl.Date(),
    "observations": pl.String(),
    "suggestions": pl.String(),
}


@dataclass(frozen=True)
class Metric:
    """How a metric is named and shown in a sentence."""

    label: str
    unit: str
    digits: int
    transform: str | None = None
    higher_is: str = "neutral"  # "good" or "bad" or "neutral": wording of changes


METRICS: dict[str, Metric] = {
    "ln_rmssd": Metric("HRV", "ms", 0, "exp", "good"),
    "hrv_rmssd_ms": Metric("HRV", "ms", 0, None, "good"),
    "overnight_hr_bpm": Metric("overnight heart rate", "bpm", 0, None, "bad"),
    "breathing_rate": Metric("breathing rate", "breaths/min", 1, None, "neutral"),
    "sleep_seconds": Metric("sleep", "h", 1, "hours", "good"),
    "sleep_score": Metric("sleep score", "", 0, None, "good"),
    "deep_share": Metric("deep-sleep share", "", 2, None, "neutral"),
    "steps": Metric("steps", "", 0, None, "good"),
    "training_load": Metric("training load", "", 0, None, "neutral"),
}


def _metric(name: str) -> Metric:
    return METRICS.get(name, Metric(name.replace("_", " "), "", 2))


def _apply(value: float, transform: str | None) -> float:
    if transform == "exp":
        return math.exp(value)
    if transform == "hours":
        return value / 3600.0
    if transform == "pct_log":  # a change on the log scale as a percent change
        return 100.0 * math.expm1(value)
    return value


@dataclass
class Sentence:
    """A sentence under construction that records every number it shows."""

    user_id: str
    day: date
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def number(
        self,
        relation: str,
        column: str,
        value: float,
        *,
        digits: int = 0,
        transform: str | None = None,
        where: Mapping[str, Any] | None = None,
        signed: bool = False,
    ) -> str:
        shown = f"{_apply(value, transform):{'+' if signed else ''}.{digits}f}"
        self.evidence.append(
            {
                "relation": relation,
                "where": dict(where or {}),
                "column": column,
                "value": value,
                "transform": transform,
                "digits": digits,
                "shown": shown,
            }
        )
        return shown

    def observation(
        self, rule: str, category: str, priority: str, fact: str, context: str | None = None
    ) -> dict[str, Any]:
        return {
            "rule": rule,
            "category": category,
            "priority": priority,
            "fact": fact,
            "context": context,
            "evidence": self.evidence,
        }


Rows = dict[tuple[str, date], list[dict[str, Any]]]


def _by_user_day(frame: pl.DataFrame, first_day: date, last_day: date) -> Rows:
    grouped: Rows = defaultdict(list)
    if frame.height == 0:
        return grouped
    for row in frame.filter(pl.col("day").is_between(first_day, last_day)).iter_rows(named=True):
        grouped[(str(row["user_id"]), row["day"])].append(row)
    return grouped


def _named(json_text: str | None) -> dict[str, dict[str, Any]]:
    """A JSON array of objects with a ``name``, as a dict by name."""
    if not json_text:
        return {}
    return {str(item["name"]): item for item in json.loads(json_text) if isinstance(item, dict)}


# -- rules: each returns observations for one user-day --------------------------------------------------


def _illness_rule(user: str, day: date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in rows:
        if not row.get("flagged"):
            continue
        sentence = Sentence(user, day)
        parts = []
        for signal in json.loads(row["signals"] or "[]"):
            if not signal.get("fired"):
                continue
            metric = _metric(str(signal["metric"]))
            z = sentence.number(
                "analytics.illness_watch",
                f"signals.{signal['metric']}.z",
                float(signal["z"]),
                digits=1,
                signed=True,
            )
            side = "up" if float(signal["z"]) > 0 else "down"
            parts.append(f"{metric.label} {side} ({z} SD)")
        fact = (
            "Your body shows an early-illness pattern: "
            + ", ".join(parts)
            + " against your personal baseline."
        )
        found.append(
            sentence.observation(
                "illness_watch",
                "health",
                "critical" if row.get("level") == "alert" else "high",
                fact,
                "Resting heart rate and breathing rate rising while HRV falls often precede symptoms "
                "by 1-3 days.",
            )
        )
    return found


def _anomaly_rule(user: str, day: date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in sorted(rows, key=lambda r: (r["severity"] != "critical", str(r["metric"]))):
        metric_name = str(row["metric"])
        metric = _metric(metric_name)
        sentence = Sentence(user, day)
        where = {"metric": metric_name}
        critical = row["severity"] == "critical"
        value = sentence.number(
            "marts.anomalies", "value", float(row["value"]), digits=metric.digits,
            transform=metric.transform, where=where,
        )  # fmt: skip
        usual = sentence.number(
            "marts.anomalies", "baseline_median", float(row["baseline_median"]), digits=metric.digits,
            transform=metric.transform, where=where,
        )  # fmt: skip
        unit = f" {metric.unit}" if metric.unit else ""
        fact = (
            f"{metric.label[0].upper()}{metric.label[1:]} was {'well ' if critical else ''}"
            f"{row['direction']} your normal range: {value}{unit} against a usual {usual}{unit}."
        )
        found.append(
            sentence.observation(
                "anomaly",
                "anomaly",
                "critical" if critical else "high",
                fact,
                "Normal range: your own last 60 days (Tukey fences on the median and IQR).",
            )
        )
    return found


def _recovery_rule(user: str, day: date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in rows:
        if row["score"] is None or row["level"] not in ("low", "high"):
            continue
        sentence = Sentence(user, day)
        score = sentence.number("analytics.recovery", "score", float(row["score"]))
        contributors = _named(row["contributors"])
        parts = []
        for name, item in contributors.items():
            if not item.get("available") or item.get("z") is None:
                continue
            metric = _metric(str(item["metric"]))
            z = sentence.number(
                "analytics.recovery", f"contributors.{name}.z", float(item["z"]), digits=1, signed=True
            )
            parts.append(f"{metric.label} {z}")
        detail = f" (robust z, better is positive: {', '.join(parts)})" if parts else ""
        if row["level"] == "low":
            found.append(
                sentence.observation(
                    "recovery_low", "recovery", "high", f"Recovery is low today: {score}/100{detail}."
                )
            )
        else:
            found.append(
                sentence.observation(
                    "recovery_high", "recovery", "positive", f"Recovery is high today: {score}/100{detail}."
                )
            )
    return found


def _risk_rule(user: str, day: date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in rows:
        if row["level"] not in ("high", "moderate"):
            continue
        sentence = Sentence(user, day)
        score = sentence.number("analytics.risk", "overtraining_score", float(row["overtraining_score"]))
        days = sentence.number("analytics.risk", "persistence_days", float(row["persistence_days"] or 0))
        factors = [
            name.replace("_", " ")
            for name, item in _named(row["factors"]).items()
            if item.get("available") and (item.get("points") or 0) > 0
        ]
        level = "high" if row["level"] == "high" else "moderate"
        fact = f"Overtraining risk is {level} ({score}/100), elevated for {days} day(s)."
        found.append(
            sentence.observation(
                f"risk_{level}",
                "training",
                "high" if level == "high" else "medium",
                fact,
                ("Contributing: " + ", ".join(factors) + ".") if factors else None,
            )
        )
    return found


def _sleep_debt_rule(user: str, day: date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in rows:
        debt, nights = row["debt_seconds"], row["nights"]
        if debt is None or not nights or debt / nights < SLEEP_DEBT_HOURS_PER_NIGHT * 3600:
            continue
        sentence = Sentence(user, day)
        hours = sentence.number("marts.sleep_debt", "debt_seconds", float(debt), digits=1, transform="hours")
        count = sentence.number("marts.sleep_debt", "nights", float(nights))
        found.append(
            sentence.observation(
                "sleep_debt",
                "sleep",
                "medium",
                f"You are {hours} h short of your sleep need over your last {count} nights.",
                "Need: your sleep goal, else 8 h; surplus nights do not pay the debt back.",
            )
        )
    return found


def _trend_rule(user: str, day: date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for row in sorted(rows, key=lambda r: (str(r["metric"]), r["window_days"])):
        if not row["meaningful"] or row["direction"] == "flat" or row["theil_sen_per_week"] is None:
            continue
        metric = _metric(str(row["metric"]))
        sentence = Sentence(user, day)
        where = {"metric": row["metric"], "window_days": row["window_days"]}
        window = sentence.number("analytics.trends", "window_days", float(row["window_days"]), where=where)
        transform = "pct_log" if metric.transform == "exp" else metric.transform
        slope = sentence.number(
            "analytics.trends", "theil_sen_per_week", float(row["theil_sen_per_week"]),
            digits=1 if transform else max(metric.digits, 1), transform=transform, where=where, signed=True,
        )  # fmt: skip
        unit = {"pct_log": " %", "hours": " h"}.get(transform or "", f" {metric.unit}" if metric.unit else "")
        polarity = row["polarity"]
        priority = {"good": "positive", "bad": "medium"}.get(polarity, "low")
        word = {"good": "an improvement", "bad": "worth watching"}.get(
            polarity, "neither good nor bad in itself"
        )
        fact = (
            f"Your {metric.label} has been {row['direction']} over the last {window} days "
            f"({slope}{unit} per week)."
        )
        found.append(sentence.observation(f"trend_{polarity}", "trend", priority, fact, f"This is {word}."))
    return found


def _lag_phrase(lag: int) -> str:
    return {0: "the same night", 1: "the next day", 2: "two days later", 3: "three days later"}.get(
        lag, f"{lag} days later"
    )


def _correlation_rule(user: str, day: date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    significant = [r for r in rows if r["significant"] and r["q_value"] is not None]
    if not significant:
        return []
    best = min(
        significant, key=lambda r: (r["q_value"], -abs(r["rho"]), r["x_metric"], r["y_metric"], r["lag_days"])
    )
    x, y = _metric(str(best["x_metric"])), _metric(str(best["y_metric"]))
    sentence = Sentence(user, day)
    where = {"x_metric": best["x_metric"], "y_metric": best["y_metric"], "lag_days": best["lag_days"]}
    rho = sentence.number("analytics.correlations", "rho", float(best["rho"]), digits=2, where=where)
    q = sentence.number("analytics.correlations", "q_value", float(best["q_value"]), digits=3, where=where)
    n = sentence.number("analytics.correlations", "n", float(best["n"]), where=where)
    same_way = float(best["rho"]) > 0
    fact = (
        f"When your {x.label} is higher, your {y.label} {_lag_phrase(int(best['lag_days']))} tends to be "
        f"{'higher' if same_way else 'lower'} (Spearman rho {rho}, q {q}, {n} days)."
    )
    return [
        sentence.observation(
            "correlation",
            "pattern",
            "info",
            fact,
            "A correlation over your last 90 days, corrected for testing many pairs; not proof of cause.",
        )
    ]


def _onboarding_rule(user: str, day: date, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    locked = [r for r in rows if not r["unlocked"] and r["days_remaining"] is not None]
    if not locked:
        return []
    nearest = min(locked, key=lambda r: (r["days_remaining"], str(r["feature"])))
    sentence = Sentence(user, day)
    where = {"stream": nearest["stream"], "feature": nearest["feature"]}
    remaining = sentence.number(
        "analytics.readiness", "days_remaining", float(nearest["days_remaining"]), where=where
    )
    have = sentence.number(
        "analytics.readiness", "distinct_days", float(nearest["distinct_days"]), where=where
    )
    feature = str(nearest["feature"]).replace("_", " ")
    fact = f"{remaining} more day(s) of {nearest['stream']} data until {feature} unlocks ({have} so far)."
    return [sentence.observation("onboarding", "onboarding", "info", fact)]


# -- suggestions -------------------------------------------------------------------------------------------


def _suggestions(
    risk: list[dict[str, Any]],
    recovery: list[dict[str, Any]],
    illness: list[dict[str, Any]],
    anomalies: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    risk_row = risk[0] if risk else None
    recovery_row = recovery[0] if recovery else None
    factors = _named(risk_row["factors"]) if risk_row else {}
    factor_share = sum(1 for f in factors.values() if f.get("available")) / max(len(factors), 1)
    contributors = _named(recovery_row["contributors"]) if recovery_row else {}
    contributor_share = sum(1 for c in contributors.values() if c.get("available")) / max(
        len(contributors), 1
    )
    if risk_row and risk_row["level"] == "high":
        found.append(
            _suggest("rest_day", "Take a rest day or an easy recovery session.", factor_share, "risk_high")
        )
    elif risk_row and risk_row["level"] == "moderate":
        found.append(
            _suggest(
                "reduce_intensity", "Keep the next sessions easy and short.", factor_share, "risk_moderate"
            )
        )
    flagged = [row for row in illness if row.get("flagged")]
    if flagged or (recovery_row and recovery_row["level"] == "low"):
        if flagged:
            signals = json.loads(flagged[0]["signals"] or "[]")
            share = sum(1 for s in signals if s.get("fired")) / max(len(signals), 1)
            rule = "illness_watch"
        else:
            share, rule = contributor_share, "recovery_low"
        found.append(
            _suggest(
                "prioritize_recovery", "Prioritise sleep and recovery; skip hard training today.", share, rule
            )
        )
    critical = sorted(str(a["metric"]) for a in anomalies if a["severity"] == "critical")
    if critical or flagged:
        what = _metric(critical[0]).label if critical else "your resting signals"
        found.append(
            _suggest(
                "monitor_closely",
                f"Watch {what} over the next days.",
                1.0,
                "anomaly" if critical else "illness_watch",
            )
        )
    if (
        not found
        and recovery_row
        and recovery_row["level"] in ("normal", "high")
        and (risk_row is None or risk_row["level"] == "low")
    ):
        found.append(_suggest("train_normally", "Train as planned.", contributor_share, "recovery_normal"))
    return found


def _suggest(action: str, description: str, confidence: float, rule: str) -> dict[str, Any]:
    return {
        "action": action,
        "description": description,
        "confidence": round(confidence, 2),
        "reason": rule,
        "rule": rule,
    }


def compute_insights(
    daily: pl.DataFrame,
    anomalies: pl.DataFrame,
    sleep_debt: pl.DataFrame,
    correlations: pl.DataFrame,
    trends: pl.DataFrame,
    risk: pl.DataFrame,
    recovery: pl.DataFrame,
    illness_watch: pl.DataFrame,
    readiness: pl.DataFrame,
    first_day: date,
    last_day: date,
) -> pl.DataFrame:
    """One row per user and day of ``daily`` in [first_day, last_day]: observations and suggestions."""
    tables = {
        name: _by_user_day(frame, first_day, last_day)
        for name, frame in {
            "anomalies": anomalies,
            "sleep_debt": sleep_debt,
            "correlations": correlations,
            "trends": trends,
            "risk": risk,
            "recovery": recovery,
            "illness_watch": illness_watch,
            "readiness": readiness,
        }.items()
    }
    days = (
        daily.filter(pl.col("day").is_between(first_day, last_day))
        .select("user_id", "day")
        .unique()
        .sort("user_id", "day")
    )
    out: dict[str, list[Any]] = {column: [] for column in SCHEMA}
    for user, day in days.iter_rows():
        key = (str(user), day)
        rows = {name: table.get(key, []) for name, table in tables.items()}
        observations = [
            *_illness_rule(key[0], day, rows["illness_watch"]),
            *_anomaly_rule(key[0], day, rows["anomalies"]),
            *_recovery_rule(key[0], day, rows["recovery"]),
            *_risk_rule(key[0], day, rows["risk"]),
            *_sleep_debt_rule(key[0], day, rows["sleep_debt"]),
            *_trend_rule(key[0], day, rows["trends"]),
            *_correlation_rule(key[0], day, rows["correlations"]),
            *_onboarding_rule(key[0], day, rows["readiness"]),
        ]
        observations.sort(key=lambda o: PRIORITIES.index(o["priority"]))
        suggestions = _suggestions(rows["risk"], rows["recovery"], rows["illness_watch"], rows["anomalies"])
        out["user_id"].append(key[0])
        out["day"].append(day)
        out["observations"].append(json.dumps(observations, default=str))
        out["suggestions"].append(json.dumps(suggestions))
    return pl.DataFrame(out, schema=SCHEMA)


def rules() -> Iterable[str]:
    """Every rule name an observation or suggestion can carry (a test makes each one fire)."""
    return (
        "illness_watch", "anomaly", "recovery_low", "recovery_high", "risk_high", "risk_moderate",
        "sleep_debt", "trend_good", "trend_bad", "trend_neutral", "correlation", "onboarding",
    )  # fmt: skip
