"""The weekly digest: the last 7 days against the 4 weeks before, the week's insights, and a chart.

Each user gets it once a week at their digest weekday and time (the ``weekly_digest`` rule's options, else
``POLAR_DIGEST_WEEKDAY`` / ``POLAR_DIGEST_TIME``) in their own time zone. A digest sent on day ``T`` covers
the week ``[T - 7, T - 1]`` and compares it with ``[T - 35, T - 8]``:

* sleep: mean sleep a night (marts.daily_metrics.sleep_seconds), in hours;
* HRV: the mean of ln rMSSD shown in ms (exp of the mean: HRV is averaged on the log scale, as everywhere
  in the pipeline), so a change reads as a percentage of the typical night;
* resting heart rate: mean overnight heart rate (Nightly Recharge), bpm;
* training load: 7 × the mean daily training load of the days with a row (rest days are 0), so a week and
  the 4-week reference are on one scale even when the history is shorter;
* recovery: mean analytics.recovery score, 0-100.

Means are over the days with a value; a missing night is never counted as zero. The words follow each
metric's polarity (``texts.side``). The digest is recorded as an episode of the ``weekly_digest`` rule keyed
by its day, so an hourly tick that comes again, a restart or a second scheduler sends nothing twice; only the
latest digest moment, and only within ``DIGEST_LATE_AFTER`` of it, is considered: a week missed while nothing
ran is not sent days late.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from polar_pipeline.alerts.rules import WEEKDAYS, WEEKLY_DIGEST, Episode, Finding
from polar_pipeline.alerts.texts import TITLE_PREFIX, Message, side
from polar_pipeline.analytics.insights import PRIORITIES, Metric
from polar_pipeline.settings import Settings

WEEK_DAYS = 7
REFERENCE_WEEKS = 4
MAX_INSIGHTS = 5
DIGEST_LATE_AFTER = timedelta(hours=24)
"""A digest whose time passed longer ago than this (nothing ran meanwhile) is skipped, not sent late."""


@dataclass(frozen=True)
class DigestMetric:
    """One line of the digest: where the value comes from and how it is shown."""

    name: str
    label: str
    column: str
    unit: str
    digits: int
    higher_is: str
    per_week: bool = False
    log_scale: bool = False
    scale: float = 1.0


DIGEST_METRICS: tuple[DigestMetric, ...] = (
    DigestMetric("sleep", "Sleep", "sleep_seconds", "h a night", 1, "good", scale=1 / 3600),
    DigestMetric("hrv", "HRV", "ln_rmssd", "ms", 0, "good", log_scale=True),
    DigestMetric("resting_hr", "Resting heart rate", "overnight_hr_bpm", "bpm", 1, "bad"),
    DigestMetric("load", "Training load", "training_load", "a week", 0, "neutral", per_week=True),
    DigestMetric("recovery", "Recovery", "recovery_score", "/100", 0, "good"),
)


def local_now(settings: Settings, zone: str | None, now: datetime) -> datetime:
    """``now`` in ``zone`` (UTC when unknown), on ``POLAR_TODAY``'s date when the calendar is frozen."""
    tz = ZoneInfo(zone) if zone else ZoneInfo("UTC")
    local = now.astimezone(tz)
    if settings.today is not None:
        local = datetime.combine(settings.today, local.time(), tz)
    return local


def digest_moment(settings: Settings, zone: str | None, now: datetime, weekday: str, at: str) -> datetime:
    """The latest digest time (local, aware) at or before ``local_now``."""
    local = local_now(settings, zone, now)
    hour, minute = (int(part) for part in at.split(":"))
    back = (local.weekday() - WEEKDAYS.index(weekday)) % 7
    moment = datetime.combine(local.date() - timedelta(days=back), time(hour, minute), local.tzinfo)
    if moment > local:
        moment -= timedelta(days=7)
    return moment


def digest_schedule(settings: Settings, options: Mapping[str, Any]) -> tuple[str, str]:
    """The user's (weekday, HH:MM): their options, else the install's defaults."""
    return str(options.get("weekday") or settings.digest_weekday), str(
        options.get("time") or settings.digest_time
    )


def digest_episode(user_id: str, day: date) -> Episode:
    """The digest of ``day`` as an episode: one subject per week, so its key is its own."""
    finding = Finding(user_id, WEEKLY_DIGEST, f"week-to-{(day - timedelta(days=1)).isoformat()}", day)
    return Episode(user_id, WEEKLY_DIGEST, finding.subject, day, day, (finding,))


# -- numbers ----------------------------------------------------------------------------------------------


def read_digest_rows(con: duckdb.DuckDBPyConnection, user_id: str, day: date) -> list[dict[str, Any]]:
    """The user's daily rows of ``[day - 35, day - 1]``: daily metrics and the recovery score."""
    has_recovery = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'analytics' AND table_name = 'recovery'"
    ).fetchone()
    recovery = (
        "(SELECT score FROM analytics.recovery r WHERE r.user_id = d.user_id AND r.day = d.day)"
        if has_recovery and has_recovery[0]
        else "NULL::DOUBLE"
    )
    relation = con.execute(
        f"SELECT d.day, d.sleep_seconds, d.ln_rmssd, d.overnight_hr_bpm, d.training_load, {recovery} "
        "AS recovery_score FROM marts.daily_metrics d WHERE d.user_id = $user AND d.day BETWEEN $first AND "
        "$last ORDER BY d.day",
        {
            "user": user_id,
            "first": day - timedelta(days=WEEK_DAYS * (1 + REFERENCE_WEEKS)),
            "last": day - timedelta(days=1),
        },
    )
    columns = [column[0] for column in relation.description or []]
    return [dict(zip(columns, row, strict=True)) for row in relation.fetchall()]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Comparison:
    """One metric: the week's value, the 4 weeks' value (display units) and the days behind each."""

    metric: DigestMetric
    week: float | None
    reference: float | None
    week_days: int
    reference_days: int


def compare(rows: Sequence[Mapping[str, Any]], day: date) -> list[Comparison]:
    """Each digest metric for the week before ``day`` and the 4 weeks before that."""
    week_start = day - timedelta(days=WEEK_DAYS)
    out = []
    for metric in DIGEST_METRICS:
        week = [
            float(r[metric.column]) for r in rows if r[metric.column] is not None and r["day"] >= week_start
        ]
        reference = [
            float(r[metric.column]) for r in rows if r[metric.column] is not None and r["day"] < week_start
        ]

        def shown(values: list[float], metric: DigestMetric = metric) -> float | None:
            mean = _mean(values)
            if mean is None:
                return None
            if metric.log_scale:
                mean = math.exp(mean)
            return mean * metric.scale * (WEEK_DAYS if metric.per_week else 1)

        out.append(Comparison(metric, shown(week), shown(reference), len(week), len(reference)))
    return out


def _number(value: float, digits: int, *, signed: bool = False) -> str:
    return f"{value:{'+' if signed else ''}.{digits}f}"


def _with_unit(text: str, unit: str) -> str:
    return f"{text}{unit}" if unit.startswith("/") else f"{text} {unit}"


def comparison_line(item: Comparison) -> str:
    metric = item.metric
    if item.week is None:
        return f"{metric.label}: no data this week."
    this = _with_unit(_number(item.week, metric.digits), metric.unit)
    if item.reference is None:
        return f"{metric.label}: {this}; nothing to compare with in the 4 weeks before."
    before = _with_unit(_number(item.reference, metric.digits), metric.unit)
    difference = round(item.week, metric.digits) - round(item.reference, metric.digits)
    if difference == 0:
        change = "about the same"
    else:
        unit = "" if metric.unit.startswith("/") or metric.per_week else f" {metric.unit.split()[0]}"
        change = _number(difference, metric.digits, signed=True) + unit
        if item.reference and not metric.unit.startswith("/"):  # no percent of a 0-100 score
            change += f" ({100.0 * (item.week - item.reference) / abs(item.reference):+.0f} %)"
        direction = side(Metric(metric.label, "", 0, None, metric.higher_is), difference > 0)
        if direction:
            change += f", {direction.replace(' for ' + metric.label, '')}"
    return f"{metric.label}: {this} against {before} over the 4 weeks before: {change}."


def insight_lines(con: duckdb.DuckDBPyConnection, user_id: str, day: date) -> tuple[date | None, list[str]]:
    """The facts of the newest insights row of the week, by priority (at most ``MAX_INSIGHTS``)."""
    present = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'analytics' AND table_name = 'insights'"
    ).fetchone()
    if not present or not present[0]:
        return None, []
    row = con.execute(
        "SELECT day, observations FROM analytics.insights WHERE user_id = $user AND day BETWEEN $first AND "
        "$last ORDER BY day DESC LIMIT 1",
        {"user": user_id, "first": day - timedelta(days=WEEK_DAYS), "last": day - timedelta(days=1)},
    ).fetchone()
    if row is None:
        return None, []
    observations = json.loads(row[1] or "[]")
    observations.sort(key=lambda item: PRIORITIES.index(item.get("priority", "info")))
    return row[0], [str(item["fact"]) for item in observations[:MAX_INSIGHTS]]


@dataclass(frozen=True)
class Digest:
    """A composed digest: its message and the numbers the chart is drawn from."""

    message: Message
    details: dict[str, Any]


def compose_digest(con: duckdb.DuckDBPyConnection, user_id: str, day: date) -> Digest:
    """The digest sent on ``day`` (the week before it), read from ``con`` (the serving snapshot)."""
    rows = read_digest_rows(con, user_id, day)
    comparisons = compare(rows, day)
    week_start, week_end = day - timedelta(days=WEEK_DAYS), day - timedelta(days=1)
    reference_start = day - timedelta(days=WEEK_DAYS * (1 + REFERENCE_WEEKS))
    insights_day, insights = insight_lines(con, user_id, day)
    lines = [
        f"Your week {week_start} to {week_end} against the 4 weeks before ({reference_start} to "
        f"{week_start - timedelta(days=1)}):",
        *(f"- {comparison_line(item)}" for item in comparisons),
    ]
    if insights:
        lines += ["", f"Insights of {insights_day}:", *(f"- {fact}" for fact in insights)]
    lines += ["", f"(polar-flow weekly digest, user {user_id}; the chart shows the last 5 weeks)"]
    days = [reference_start + timedelta(days=offset) for offset in range(WEEK_DAYS * (1 + REFERENCE_WEEKS))]
    by_day = {row["day"]: row for row in rows}
    series = {}
    for metric in DIGEST_METRICS:
        values: list[float | None] = []
        for each in days:
            raw = by_day.get(each, {}).get(metric.column)
            if raw is None:
                values.append(None)
                continue
            value = math.exp(float(raw)) if metric.log_scale else float(raw) * metric.scale
            values.append(value)
        series[metric.name] = {"label": metric.label, "unit": metric.unit, "values": values}
    details = {
        "week_start": week_start.isoformat(),
        "week_end": week_end.isoformat(),
        "days": [each.isoformat() for each in days],
        "series": series,
        "comparisons": {
            item.metric.name: {"week": item.week, "reference": item.reference, "week_days": item.week_days}
            for item in comparisons
        },
    }
    title = f"{TITLE_PREFIX}: your week {week_start} to {week_end}"
    return Digest(Message(title, "\n".join(lines)), details)
