"""The alert rules: which days a condition holds on, grouped into episodes, and which episodes are current.

A rule reads rows the pipeline already computed (the serving snapshot's marts and analytics) and returns a
*finding* for each day its condition holds, with the row's facts. Findings of one user, rule and *subject*
(an anomaly's metric, say) make one episode while they keep coming: a gap of up to ``GAP_DAYS`` days without
the condition does not end it, so a signal that flickers sends one alert, not one per flicker. An episode is
identified by its subject and its first day (``Episode.key``); the store merges a re-evaluation's episode
into the one it recorded before (same subject, overlapping days), so a re-run, a restart or a backfill never
makes a second one.

Only *current* episodes (still on in the user's last ``alert_recent_days`` local days) are recorded and sent:
a backfill that rewrites old days finds old episodes, and they stay silent.

* ``critical_anomaly``: a marts.anomalies row with severity ``critical`` (outside the 3 × spread fences of
  the person's 60-day baseline); subject: the metric.
* ``illness_watch``: analytics.illness_watch ``flagged`` (watch or alert level).
* ``overtraining_risk``: analytics.risk level ``high``; a second alert when it has stayed high for
  ``persist_days`` consecutive days (default 3; 0: none).
* ``hrv_below_normal``: marts.hrv_status ``below`` its normal band on ``min_days`` consecutive days
  (default 3).
* ``data_stale`` and ``access_lost`` are judged live (``live``), not from the tables' history.

Each rule may be turned off per user, and a rule with ``repeat_daily`` sends once per day while its episode
stays on instead of once per episode.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb

GAP_DAYS = 2
"""Days without the condition an episode survives: a third such day ends it."""
LOOKBACK_DAYS = 60
"""How far back from today findings are read, to know when a current episode began."""

CRITICAL_ANOMALY = "critical_anomaly"
ILLNESS_WATCH = "illness_watch"
OVERTRAINING_RISK = "overtraining_risk"
HRV_BELOW_NORMAL = "hrv_below_normal"
DATA_STALE = "data_stale"
ACCESS_LOST = "access_lost"
WEEKLY_DIGEST = "weekly_digest"

PERSISTING = "persisting"
"""The overtraining subject of the second alert, after ``persist_days`` high days in a row."""


@dataclass(frozen=True)
class Option:
    """A per-user setting of a rule: its type, default and allowed values."""

    name: str
    default: bool | int | str | None
    description: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    def check(self, value: Any) -> bool | int | str | None:
        """``value`` if allowed, else ``ValueError`` naming what is."""
        expected = type(self.default) if self.default is not None else str
        if value is None and self.default is None:
            return None
        if expected is bool:
            if not isinstance(value, bool):
                raise ValueError(f"option {self.name} must be true or false")
            return value
        if expected is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"option {self.name} must be a whole number")
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise ValueError(f"option {self.name} must be between {self.minimum} and {self.maximum}")
            return value
        if not isinstance(value, str):
            raise ValueError(f"option {self.name} must be a string")
        if self.choices and value not in self.choices:
            raise ValueError(f"option {self.name} must be one of {', '.join(self.choices)}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise ValueError(f"option {self.name} must look like {self.description}")
        return value


REPEAT_DAILY = Option("repeat_daily", False, "send again every day while the episode stays on")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class RuleSpec:
    """A rule's name, what it watches, and the options a user may set."""

    name: str
    description: str
    options: tuple[Option, ...] = ()

    def option(self, name: str) -> Option:
        for option in self.options:
            if option.name == name:
                return option
        known = ", ".join(option.name for option in self.options) or "none"
        raise ValueError(f"rule {self.name} has no option {name!r} (options: {known})")

    def defaults(self) -> dict[str, Any]:
        return {option.name: option.default for option in self.options}

    def checked_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The rule's full options with ``options`` applied, each checked."""
        merged = self.defaults()
        for name, value in options.items():
            merged[name] = self.option(name).check(value)
        return merged


RULES: dict[str, RuleSpec] = {
    spec.name: spec
    for spec in (
        RuleSpec(
            CRITICAL_ANOMALY,
            "A critical anomaly: a night or day outside the 3 x spread fences of your own 60-day baseline "
            "(HRV, overnight heart rate, breathing rate, sleep, steps).",
            (REPEAT_DAILY,),
        ),
        RuleSpec(
            ILLNESS_WATCH,
            "The illness watch turns on: overnight heart rate and breathing rate up while HRV falls, each "
            "against your baseline.",
            (REPEAT_DAILY,),
        ),
        RuleSpec(
            OVERTRAINING_RISK,
            "Overtraining risk turns high, and once more if it stays high for persist_days days in a row.",
            (
                Option("persist_days", 3, "days in a row at high before the second alert (0: none)", 0, 28),
                REPEAT_DAILY,
            ),
        ),
        RuleSpec(
            HRV_BELOW_NORMAL,
            "Your 7-day HRV stays below its normal band (60-day mean - 0.5 SD) for min_days days in a row.",
            (Option("min_days", 3, "days in a row below the band", 1, 28), REPEAT_DAILY),
        ),
        RuleSpec(
            DATA_STALE,
            "No new data for POLAR_FRESHNESS_WARN_HOURS (36 h): says whether the watch is not worn or the "
            "sync is failing.",
        ),
        RuleSpec(
            ACCESS_LOST,
            "Polar refused the connection (401 or 403): the person must re-authorize.",
        ),
        RuleSpec(
            WEEKLY_DIGEST,
            "The weekly digest: the last 7 days against the 4 weeks before, the insights and a chart.",
            (
                Option(
                    "weekday",
                    None,
                    "the digest's weekday (mon..sun); null: POLAR_DIGEST_WEEKDAY",
                    choices=WEEKDAYS,
                ),
                Option(
                    "time",
                    None,
                    "HH:MM local time; null: POLAR_DIGEST_TIME",
                    pattern=r"([01][0-9]|2[0-3]):[0-5][0-9]",
                ),
            ),
        ),
    )
}
HISTORY_RULES: tuple[str, ...] = (CRITICAL_ANOMALY, ILLNESS_WATCH, OVERTRAINING_RISK, HRV_BELOW_NORMAL)
"""Rules judged from the tables' days (the others: ``live`` and ``digest``)."""


def rule_spec(name: str) -> RuleSpec:
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown alert rule {name!r}: one of {', '.join(RULES)}") from None


@dataclass(frozen=True)
class Finding:
    """One day on which a rule's condition holds for a user, with the facts of that day."""

    user_id: str
    rule: str
    subject: str
    day: date
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Episode:
    """Consecutive findings of one user, rule and subject (gaps of up to ``GAP_DAYS`` days included)."""

    user_id: str
    rule: str
    subject: str
    first_day: date
    last_day: date
    findings: tuple[Finding, ...]

    @property
    def key(self) -> str:
        """Stable across re-evaluations: the store merges a later view of the episode into this one."""
        return f"{self.subject}:{self.first_day.isoformat()}"

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def latest(self) -> Finding:
        return self.findings[-1]


def group_episodes(findings: Iterable[Finding]) -> list[Episode]:
    """Findings grouped into episodes per (user, rule, subject), ordered by user, rule, first day."""
    by_subject: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        by_subject[(finding.user_id, finding.rule, finding.subject)].append(finding)
    episodes = []
    for (user_id, rule, subject), found in by_subject.items():
        found.sort(key=lambda finding: finding.day)
        run: list[Finding] = []
        for finding in found:
            if run and (finding.day - run[-1].day).days > GAP_DAYS + 1:
                episodes.append(Episode(user_id, rule, subject, run[0].day, run[-1].day, tuple(run)))
                run = []
            if not run or finding.day != run[-1].day:
                run.append(finding)
        if run:
            episodes.append(Episode(user_id, rule, subject, run[0].day, run[-1].day, tuple(run)))
    episodes.sort(key=lambda episode: (episode.user_id, episode.rule, episode.first_day, episode.subject))
    return episodes


def is_current(episode: Episode, today: date, recent_days: int) -> bool:
    """Still on in the last ``recent_days`` days up to ``today``: worth telling now."""
    return today - timedelta(days=recent_days - 1) <= episode.last_day <= today


# -- reading the tables -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleInputs:
    """The rows the history rules read, per user and sorted by day: only the days a condition may hold."""

    anomalies: Mapping[str, list[dict[str, Any]]]
    illness: Mapping[str, list[dict[str, Any]]]
    risk: Mapping[str, list[dict[str, Any]]]
    hrv_below: Mapping[str, list[dict[str, Any]]]
    suggestions: Mapping[tuple[str, date], list[dict[str, Any]]]
    """analytics.insights' suggestions of each user and day (what to look at)."""


QUERIES: dict[str, tuple[str, str]] = {
    "anomalies": (
        "marts.anomalies",
        "SELECT user_id, day, metric, value, direction, robust_z, deviation_pct, baseline_median "
        "FROM marts.anomalies WHERE severity = 'critical'",
    ),
    "illness": (
        "analytics.illness_watch",
        "SELECT user_id, day, level, signals FROM analytics.illness_watch WHERE flagged",
    ),
    "risk": (
        "analytics.risk",
        "SELECT user_id, day, overtraining_score, level, factors, persistence_days FROM analytics.risk "
        "WHERE level = 'high'",
    ),
    "hrv_below": (
        "marts.hrv_status",
        "SELECT user_id, day, ln_rmssd_7d, n_7d, normal_low, normal_high, baseline_mean, n_baseline "
        "FROM marts.hrv_status WHERE status = 'below'",
    ),
    "suggestions": ("analytics.insights", "SELECT user_id, day, suggestions FROM analytics.insights"),
}
"""Per input: the table it needs (a snapshot without it reads empty) and the rows a condition may hold on."""
JSON_COLUMNS = ("signals", "factors", "suggestions")


def _present(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        f"{schema}.{name}"
        for schema, name in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('marts', 'analytics')"
        ).fetchall()
    }


def read_rule_inputs(
    con: duckdb.DuckDBPyConnection, users: Sequence[str] | None, first_day: date, last_day: date
) -> RuleInputs:
    """The rule rows of ``users`` (None: all) for ``[first_day, last_day]``; a missing table reads empty."""
    present = _present(con)
    frames: dict[str, dict[str, list[dict[str, Any]]]] = {}
    suggestions: dict[tuple[str, date], list[dict[str, Any]]] = {}
    for name, (table, query) in QUERIES.items():
        rows: list[dict[str, Any]] = []
        if table in present:
            relation = con.execute(
                f"SELECT * FROM ({query}) WHERE day BETWEEN $first AND $last "
                "AND ($all OR list_contains($users, user_id)) ORDER BY user_id, day",
                {"first": first_day, "last": last_day, "all": users is None, "users": list(users or [])},
            )
            columns = [column[0] for column in relation.description or []]
            for values in relation.fetchall():
                row = dict(zip(columns, values, strict=True))
                for column in JSON_COLUMNS:
                    if column in row:
                        row[column] = json.loads(row[column] or "[]")
                rows.append(row)
        if name == "suggestions":
            suggestions = {(str(row["user_id"]), row["day"]): row["suggestions"] for row in rows}
            continue
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            grouped[str(row["user_id"])].append(row)
        frames[name] = dict(grouped)
    return RuleInputs(suggestions=suggestions, **frames)


# -- findings ---------------------------------------------------------------------------------------------


def _window(rows: Sequence[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    first = today - timedelta(days=LOOKBACK_DAYS)
    return [row for row in rows if first <= row["day"] <= today]


def _subject(subject: str, day: date, options: Mapping[str, Any]) -> str:
    return f"{subject}@{day.isoformat()}" if options.get("repeat_daily") else subject


def _run_lengths(days: Sequence[date]) -> dict[date, int]:
    """For each day, how many consecutive calendar days up to it are in ``days``."""
    lengths: dict[date, int] = {}
    for day in sorted(days):
        lengths[day] = lengths.get(day - timedelta(days=1), 0) + 1
    return lengths


def _anomaly_findings(user: str, rows: list[dict[str, Any]], options: Mapping[str, Any]) -> list[Finding]:
    return [
        Finding(user, CRITICAL_ANOMALY, _subject(str(row["metric"]), row["day"], options), row["day"], row)
        for row in rows
    ]


def _illness_findings(user: str, rows: list[dict[str, Any]], options: Mapping[str, Any]) -> list[Finding]:
    return [
        Finding(user, ILLNESS_WATCH, _subject("illness", row["day"], options), row["day"], row)
        for row in rows
    ]


def _risk_findings(user: str, rows: list[dict[str, Any]], options: Mapping[str, Any]) -> list[Finding]:
    lengths = _run_lengths([row["day"] for row in rows])
    persist = int(options.get("persist_days") or 0)
    found = []
    for row in rows:
        facts = {**row, "high_days": lengths[row["day"]]}
        found.append(
            Finding(user, OVERTRAINING_RISK, _subject("high", row["day"], options), row["day"], facts)
        )
        if persist and lengths[row["day"]] >= persist:
            subject = _subject(f"{PERSISTING}-{persist}d", row["day"], options)
            found.append(Finding(user, OVERTRAINING_RISK, subject, row["day"], facts))
    return found


def _hrv_findings(user: str, rows: list[dict[str, Any]], options: Mapping[str, Any]) -> list[Finding]:
    lengths = _run_lengths([row["day"] for row in rows])
    needed = int(options.get("min_days") or 1)
    return [
        Finding(
            user,
            HRV_BELOW_NORMAL,
            _subject("below", row["day"], options),
            row["day"],
            {**row, "below_days": lengths[row["day"]]},
        )
        for row in rows
        if lengths[row["day"]] >= needed
    ]


_FINDERS = {
    CRITICAL_ANOMALY: ("anomalies", _anomaly_findings),
    ILLNESS_WATCH: ("illness", _illness_findings),
    OVERTRAINING_RISK: ("risk", _risk_findings),
    HRV_BELOW_NORMAL: ("hrv_below", _hrv_findings),
}


def history_episodes(
    inputs: RuleInputs,
    user: str,
    today: date,
    options_by_rule: Mapping[str, Mapping[str, Any]],
    recent_days: int,
) -> list[Episode]:
    """The user's current episodes of the enabled history rules (those in ``options_by_rule``) at ``today``.

    Reads the findings of the ``LOOKBACK_DAYS`` days up to ``today`` only, so replaying a history day by day
    gives what each day's evaluation would have seen.
    """
    findings: list[Finding] = []
    for rule, (source, finder) in _FINDERS.items():
        if rule not in options_by_rule:
            continue
        rows = _window(getattr(inputs, source).get(user, []), today)
        findings += finder(user, rows, options_by_rule[rule])
    return [episode for episode in group_episodes(findings) if is_current(episode, today, recent_days)]
