"""What an alert says: what changed, by how much against the person's baseline, since when, what to look at.

The wording is the insights' (``analytics/insights.py``): the same metric names, units and display transforms
(ln rMSSD shown in ms, sleep seconds in hours), numbers formatted by its ``Sentence``, and direction-aware
words: a change is called favourable or unfavourable from the metric's polarity, never from its sign, so a
rising resting heart rate is never "improving". "What to look at" is the day's insights suggestion for the
same rule when the insights table has one, else the rule's own advice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from polar_pipeline.alerts.rules import (
    CRITICAL_ANOMALY,
    DATA_STALE,
    HRV_BELOW_NORMAL,
    ILLNESS_WATCH,
    OVERTRAINING_RISK,
    PERSISTING,
    Episode,
)
from polar_pipeline.analytics.insights import METRICS, Metric, Sentence

TITLE_PREFIX = "polar-flow"
ILLNESS_CONTEXT = (
    "Resting heart rate and breathing rate rising while HRV falls often precede symptoms by 1-3 days."
)
"""The insights' context sentence of the illness watch."""
SUGGESTION_RULES: dict[str, tuple[str, ...]] = {
    CRITICAL_ANOMALY: ("anomaly",),
    ILLNESS_WATCH: ("illness_watch",),
    OVERTRAINING_RISK: ("risk_high",),
    HRV_BELOW_NORMAL: ("recovery_low", "risk_moderate", "risk_high"),
}
"""Which insights suggestions answer "what to look at" for each rule."""
FALLBACK_ADVICE: dict[str, str] = {
    CRITICAL_ANOMALY: "Watch {label} over the next days.",
    ILLNESS_WATCH: "Prioritise sleep and recovery; skip hard training today.",
    OVERTRAINING_RISK: "Take a rest day or an easy recovery session.",
    HRV_BELOW_NORMAL: "Keep the next sessions easy and sleep well until HRV is back in its band.",
}
FACTOR_LABELS: dict[str, str] = {
    "hrv_below_normal": "HRV, 7-day mean",
    "overnight_hr_above_normal": "overnight heart rate, 7-day mean",
    "sleep_debt": "sleep debt",
    "acwr_high": "acute:chronic training load ratio",
}


@dataclass(frozen=True)
class Message:
    """An alert as sent: a short title and a plain-text body."""

    title: str
    body: str


def metric_of(name: str) -> Metric:
    """The insights' naming of a metric (label, unit, digits, display transform, polarity)."""
    return METRICS.get(name, Metric(name.replace("_", " "), "", 2))


def shown(value: float, metric: Metric, *, signed: bool = False) -> str:
    """``value`` (in the table's unit) as the insights show it, with its unit."""
    text = Sentence("", date.min).number(
        "", "", value, digits=metric.digits, transform=metric.transform, signed=signed
    )
    return f"{text} {metric.unit}".rstrip() if metric.unit else text


def side(metric: Metric, up: bool) -> str | None:
    """Whether moving ``up`` (or down) is good for this metric, in words; None for a neutral metric."""
    if metric.higher_is not in ("good", "bad"):
        return None
    favourable = (metric.higher_is == "good") == up
    return f"the {'favourable' if favourable else 'unfavourable'} direction for {metric.label}"


def percent_change(value: float, reference: float, metric: Metric) -> float | None:
    """The change from ``reference`` to ``value`` in percent of the shown quantity (ms for ln rMSSD)."""
    if metric.transform == "exp":
        return 100.0 * math.expm1(value - reference)
    if reference == 0:
        return None
    return 100.0 * (value - reference) / abs(reference)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _days(count: int) -> str:
    return f"{count} day{'s' if count != 1 else ''}"


def _look_at(episode: Episode, suggestions: Sequence[Mapping[str, Any]], label: str = "") -> list[str]:
    """The day's insights suggestions for this rule (for an anomaly: only one naming its metric), else the
    rule's own advice."""
    wanted = SUGGESTION_RULES.get(episode.rule, ())
    found = [
        str(item["description"])
        for item in suggestions
        if item.get("rule") in wanted
        and (episode.rule != CRITICAL_ANOMALY or label in str(item["description"]))
    ]
    return found or [FALLBACK_ADVICE[episode.rule].format(label=label)]


def _since(episode: Episode, what: str) -> str:
    days = len(episode.findings)
    if episode.first_day == episode.last_day:
        return f"Since: {episode.first_day} (first seen that day)."
    return f"Since: {episode.first_day}; {what} on {_days(days)} up to {episode.last_day}."


def _compose(title: str, lines: Sequence[str | None], look_at: Sequence[str], user_id: str) -> Message:
    body = [line for line in lines if line]
    body.append("What to look at: " + " ".join(look_at))
    body.append(f"(polar-flow, user {user_id})")
    return Message(f"{TITLE_PREFIX}: {title}", "\n".join(body))


def anomaly_message(episode: Episode, suggestions: Sequence[Mapping[str, Any]]) -> Message:
    facts = episode.latest.facts
    metric = metric_of(str(facts["metric"]))
    up = facts["direction"] == "above"
    value, usual = float(facts["value"]), float(facts["baseline_median"])
    change = percent_change(value, usual, metric)
    by_how_much = f"{change:+.0f} %, " if change is not None else ""
    fact = (
        f"{_capital(metric.label)} was well {facts['direction']} your normal range on {episode.last_day}: "
        f"{shown(value, metric)} against a usual {shown(usual, metric)} ({by_how_much}"
        f"{float(facts['robust_z']):+.1f} robust SD from your 60-day baseline)."
    )
    direction = side(metric, up)
    return _compose(
        f"{metric.label} well {facts['direction']} your normal range",
        [
            fact,
            f"{'Higher' if up else 'Lower'} is {direction}." if direction else None,
            _since(episode, f"critical {metric.label} values"),
        ],
        _look_at(episode, suggestions, metric.label),
        episode.user_id,
    )


def illness_message(episode: Episode, suggestions: Sequence[Mapping[str, Any]]) -> Message:
    facts = episode.latest.facts
    fired, readings = [], []
    for signal in facts["signals"]:
        metric = metric_of(str(signal["metric"]))
        if signal.get("value") is not None and signal.get("baseline_median") is not None:
            readings.append(
                f"{metric.label} {shown(float(signal['value']), metric)} "
                f"(usual {shown(float(signal['baseline_median']), metric)})"
            )
        if signal.get("fired"):
            z = float(signal["z"])
            fired.append(f"{metric.label} {'up' if z > 0 else 'down'} ({z:+.1f} SD)")
    strong = facts.get("level") == "alert"
    return _compose(
        "early-illness pattern" + (" (strong)" if strong else ""),
        [
            "Your body shows an early-illness pattern: "
            + ", ".join(fired)
            + " against your personal baseline"
            f" on {episode.last_day}" + (", every signal beyond twice its threshold." if strong else "."),
            ("Last night: " + ", ".join(readings) + ".") if readings else None,
            ILLNESS_CONTEXT,
            _since(episode, "the watch was on"),
        ],
        _look_at(episode, suggestions),
        episode.user_id,
    )


def _factor_text(factor: Mapping[str, Any]) -> str:
    name, value = str(factor["name"]), float(factor["value"])
    if factor.get("unit") == "robust SD":
        amount = f"{value:+.1f} robust SD against your baseline"
    elif name == "sleep_debt":
        amount = f"{value:.1f} h short a night"
    else:
        amount = f"{value:.2f}" + (" (a heuristic)" if factor.get("heuristic") else "")
    points = f"{float(factor['points']):.0f}/{float(factor['weight']):.0f} points"
    return f"{FACTOR_LABELS.get(name, name.replace('_', ' '))} {amount} ({points})"


def risk_message(episode: Episode, suggestions: Sequence[Mapping[str, Any]]) -> Message:
    facts = episode.latest.facts
    persisting = episode.subject.startswith(PERSISTING)
    high_days = int(facts["high_days"])
    run_start = episode.last_day.toordinal() - high_days + 1
    factors = [
        _factor_text(factor)
        for factor in facts["factors"]
        if factor.get("available") and float(factor.get("points") or 0) > 0
    ]
    title = (
        f"overtraining risk still high after {_days(high_days)}"
        if persisting
        else "overtraining risk is high"
    )
    return _compose(
        title,
        [
            f"Overtraining risk is high on {episode.last_day}: {float(facts['overtraining_score']):.0f}/100 "
            "(high from 50).",
            ("Against your baseline: " + "; ".join(factors) + ".") if factors else None,
            f"Since: {date.fromordinal(run_start)}, high {_days(high_days)} in a row; moderate or high for "
            f"{_days(int(facts['persistence_days'] or 0))}.",
        ],
        _look_at(episode, suggestions),
        episode.user_id,
    )


def hrv_message(episode: Episode, suggestions: Sequence[Mapping[str, Any]]) -> Message:
    facts = episode.latest.facts
    metric = metric_of("ln_rmssd")
    week, mean = float(facts["ln_rmssd_7d"]), float(facts["baseline_mean"])
    low, high = float(facts["normal_low"]), float(facts["normal_high"])
    below_days = int(facts["below_days"])
    run_start = date.fromordinal(episode.last_day.toordinal() - below_days + 1)
    change = percent_change(week, mean, metric)
    direction = side(metric, up=False)
    return _compose(
        f"HRV below its normal band for {_days(below_days)}",
        [
            f"Your 7-day HRV is below its normal band on {episode.last_day}: {shown(week, metric)} against a "
            f"normal {shown(low, metric).removesuffix(' ms')}-{shown(high, metric)} "
            f"({change:+.0f} % from your 60-day mean of {shown(mean, metric)}).",
            f"Lower is {direction}." if direction else None,
            f"Since: {run_start}; below the band {_days(below_days)} in a row.",
        ],
        _look_at(episode, suggestions),
        episode.user_id,
    )


def history_message(episode: Episode, suggestions: Sequence[Mapping[str, Any]]) -> Message:
    """The message of an episode of a history rule."""
    writer = {
        CRITICAL_ANOMALY: anomaly_message,
        ILLNESS_WATCH: illness_message,
        OVERTRAINING_RISK: risk_message,
        HRV_BELOW_NORMAL: hrv_message,
    }[episode.rule]
    return writer(episode, suggestions)


def _local(at: datetime | None, zone: str | None) -> str:
    if at is None:
        return "never"
    local = at.astimezone(ZoneInfo(zone)) if zone else at
    return f"{local:%Y-%m-%d %H:%M} {zone or 'UTC'}"


STALE_CAUSES: dict[str, str] = {
    "not_worn": "Syncs with Polar succeed, so nothing new was recorded: the watch is not worn, or not synced "
    "with the Polar Flow app.",
    "sync_overdue": "No sync succeeded in that time either: the refresh is not running (is `polar-flow dev` "
    "or the daemon up?).",
    "sync_failing": "The sync is failing ({failures} attempts in a row; retries continue): {error}",
    "sync_failed": "The sync is failing ({failures} attempts in a row) and the automatic retries stopped: "
    "{error}",
}


def stale_message(episode: Episode) -> Message:
    facts = episode.latest.facts
    state = str(facts["state"])
    hours = float(facts["hours_without_new_data"])
    cause = STALE_CAUSES[state].format(failures=facts.get("consecutive_failures"), error=facts.get("error"))
    title = "sync failing, no new data" if state.startswith("sync_f") else "no new data: watch not worn?"
    if state == "sync_overdue":
        title = "no new data: no sync ran"
    return _compose(
        title,
        [
            f"No new data for {hours:.0f} h (the warning starts at {float(facts['warn_hours']):.0f} h): "
            f"new data last arrived {_local(facts.get('last_new_data_at'), facts.get('zone'))}, "
            f"the newest day with data is {facts.get('last_data_day') or 'none'}.",
            cause,
            f"Last successful sync: {_local(facts.get('last_sync_at'), facts.get('zone'))}.",
        ],
        [str(facts.get("action") or "Open `polar-flow status`.")],
        episode.user_id,
    )


ACCESS_REASONS: dict[str, str] = {
    "reauthorize": "Polar rejected the access token (401): it was revoked or expired.",
    "not_registered": "Polar refused the account (403): it is not registered with this app any more, or "
    "the consent was withdrawn.",
}


def access_message(episode: Episode) -> Message:
    facts = episode.latest.facts
    status = str(facts["account_status"])
    return _compose(
        "Polar access lost: re-authorize",
        [
            ACCESS_REASONS.get(status, f"Polar refused the connection ({status})."),
            "Nothing new can be synced until the person connects again; the data kept so far stays.",
            f"Since: the last successful sync, {_local(facts.get('last_sync_at'), facts.get('zone'))}.",
        ],
        [
            f"Run `polar-flow connect --user {episode.user_id}`, or send the person to the API's "
            f"/oauth/start?user_id={episode.user_id}."
        ],
        episode.user_id,
    )


def live_message(episode: Episode) -> Message:
    return stale_message(episode) if episode.rule == DATA_STALE else access_message(episode)
