"""Evaluating the rules for every user and recording what is new: what the Dagster sensors and schedule call.

* ``evaluate_snapshot``: after each publish, the history rules over the serving snapshot (read-only, never
  the warehouse) at each user's local "today", plus the live rules.
* ``evaluate_live``: the live rules alone (``live``), for the every-minute sensor.
* ``record_due_digests``: the weekly digests whose local time has come and that are not recorded yet.

Each records new episodes with a pending delivery per channel (``store.record_episode``); sending is
``delivery.deliver_due``'s. A rule a user turned off is not evaluated for them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from polar_pipeline import clock
from polar_pipeline.alerts.digest import (
    DIGEST_LATE_AFTER,
    compose_digest,
    digest_episode,
    digest_moment,
    digest_schedule,
    local_now,
)
from polar_pipeline.alerts.live import live_episodes, live_findings
from polar_pipeline.alerts.rules import (
    ACCESS_LOST,
    DATA_STALE,
    HISTORY_RULES,
    LOOKBACK_DAYS,
    WEEKLY_DIGEST,
    Episode,
    RuleInputs,
    history_episodes,
    read_rule_inputs,
)
from polar_pipeline.alerts.store import AlertStore, RecordedEpisode
from polar_pipeline.alerts.texts import history_message, live_message
from polar_pipeline.connections import open_control_store
from polar_pipeline.settings import Settings
from polar_pipeline.status import collect_status
from polar_pipeline.warehouse.snapshot import SnapshotReader, SnapshotUnavailable

logger = logging.getLogger(__name__)


@dataclass
class EvaluationReport:
    """What one evaluation found: the episodes it recorded (new), and how many current ones it saw."""

    recorded: list[RecordedEpisode] = field(default_factory=list)
    current: int = 0
    note: str | None = None
    noun: str = "alert"

    def summary(self) -> str:
        text = f"{len(self.recorded)} new {self.noun}(s) of {self.current} current one(s)"
        return f"{text}; {self.note}" if self.note else text


def user_zones(settings: Settings) -> dict[str, str | None]:
    """Every control-store user's IANA zone (None when not known yet: their "today" is the machine's)."""
    return {user.user_id: user.time_zone for user in open_control_store(settings).list_users()}


def enabled_rules(store: AlertStore, users: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per user, the rules they have on, with their options."""
    return {
        user: {
            name: setting.options for name, setting in store.rule_settings(user).items() if setting.enabled
        }
        for user in users
    }


@contextmanager
def snapshot_cursor(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A cursor on the current serving snapshot, or None when nothing is published."""
    reader = SnapshotReader(settings.snapshots_dir)
    with ExitStack() as stack:
        stack.callback(reader.close)
        try:
            cursor: duckdb.DuckDBPyConnection | None = stack.enter_context(reader.cursor())[0]
        except SnapshotUnavailable:
            cursor = None
        yield cursor


def _snapshot_users(cursor: duckdb.DuckDBPyConnection) -> list[str]:
    try:
        return [
            str(row[0])
            for row in cursor.execute("SELECT DISTINCT user_id FROM marts.daily_metrics").fetchall()
        ]
    except duckdb.CatalogException:
        return []


def _record(
    store: AlertStore, episode: Episode, message: Any, now: datetime, report: EvaluationReport
) -> None:
    details = {
        "first_day": episode.first_day,
        "last_day": episode.last_day,
        "facts": dict(episode.latest.facts),
    }
    recorded = store.record_episode(episode, message, now=now, details=details)
    report.current += 1
    if recorded is not None:
        report.recorded.append(recorded)
        channels = len(recorded.deliveries)
        logger.info(
            f"alert {recorded.rule} {recorded.episode_key} for user {recorded.user_id}: recorded, "
            f"{channels} deliver{'y' if channels == 1 else 'ies'}"
        )


def evaluate_history(
    settings: Settings,
    store: AlertStore,
    cursor: duckdb.DuckDBPyConnection,
    now: datetime,
    zones: Mapping[str, str | None],
    report: EvaluationReport,
) -> None:
    """The history rules of every user at their local today, from the tables ``cursor`` reads."""
    users = sorted(set(zones) | set(_snapshot_users(cursor)))
    if not users:
        return
    todays = [clock.today(settings, zones.get(user), at=now) for user in users]
    inputs = read_rule_inputs(cursor, users, min(todays) - timedelta(days=LOOKBACK_DAYS), max(todays))
    record_history(settings, store, inputs, users, now, zones, report)


def record_history(
    settings: Settings,
    store: AlertStore,
    inputs: RuleInputs,
    users: Sequence[str],
    now: datetime,
    zones: Mapping[str, str | None],
    report: EvaluationReport,
) -> None:
    """Record the current episodes of ``users`` found in ``inputs`` at their local today."""
    rules = enabled_rules(store, users)
    for user in users:
        today = clock.today(settings, zones.get(user), at=now)
        options = {rule: rules[user][rule] for rule in HISTORY_RULES if rule in rules[user]}
        for episode in history_episodes(inputs, user, today, options, settings.alert_recent_days):
            suggestions = inputs.suggestions.get((user, episode.last_day), [])
            _record(store, episode, history_message(episode, suggestions), now, report)


def evaluate_live(
    settings: Settings,
    store: AlertStore,
    now: datetime,
    zones: Mapping[str, str | None],
    report: EvaluationReport,
) -> None:
    """The live rules (data stale, access lost) at ``now``."""
    statuses = collect_status(settings, now=now).users
    rules = enabled_rules(store, [status.user_id for status in statuses])
    enabled = {
        user: [rule for rule in (DATA_STALE, ACCESS_LOST) if rule in by_rule]
        for user, by_rule in rules.items()
    }
    for episode in live_episodes(live_findings(settings, statuses, zones, enabled, now)):
        _record(store, episode, live_message(episode), now, report)


def evaluate_snapshot(settings: Settings, store: AlertStore, now: datetime) -> EvaluationReport:
    """Every rule for every user: what the sensor after a publish runs."""
    report = EvaluationReport()
    zones = user_zones(settings)
    with snapshot_cursor(settings) as cursor:
        if cursor is None:
            report.note = "nothing published yet: only the live rules were evaluated"
        else:
            evaluate_history(settings, store, cursor, now, zones, report)
    evaluate_live(settings, store, now, zones, report)
    return report


def due_digests(
    settings: Settings, store: AlertStore, now: datetime, zones: Mapping[str, str | None]
) -> list[tuple[str, date]]:
    """(user, digest day) of every user with a channel and the digest on whose digest time passed less than
    ``DIGEST_LATE_AFTER`` ago and whose digest of that day is not recorded."""
    due = []
    for user in store.iter_users():
        setting = store.rule_settings(user)[WEEKLY_DIGEST]
        if not setting.enabled:
            continue
        weekday, at = digest_schedule(settings, setting.options)
        moment = digest_moment(settings, zones.get(user), now, weekday, at)
        if (
            local_now(settings, zones.get(user), now) - moment >= DIGEST_LATE_AFTER
        ):  # a week whose digest time went by unseen is not sent late
            continue
        day = moment.date()
        episode = digest_episode(user, day)
        if not store.has_episode(user, WEEKLY_DIGEST, episode.key):
            due.append((user, day))
    return due


def record_due_digests(settings: Settings, store: AlertStore, now: datetime) -> EvaluationReport:
    """Compose and record the digests that are due (their deliveries pending)."""
    report = EvaluationReport(noun="digest")
    zones = user_zones(settings)
    due = due_digests(settings, store, now, zones)
    if not due:
        return report
    with snapshot_cursor(settings) as cursor:
        if cursor is None:
            report.note = "nothing published yet: no digest can be written"
            return report
        for user, day in due:
            digest = compose_digest(cursor, user, day)
            episode = digest_episode(user, day)
            recorded = store.record_episode(episode, digest.message, now=now, details=digest.details)
            report.current += 1
            if recorded is not None:
                report.recorded.append(recorded)
                logger.info(f"weekly digest {episode.key} for user {user}: recorded")
    return report


def is_known_user(settings: Settings, user_id: str) -> bool:
    """Connected (control store) or with data in the serving snapshot: a user alerts can be set up for."""
    if user_id in user_zones(settings):
        return True
    with snapshot_cursor(settings) as cursor:
        return cursor is not None and user_id in _snapshot_users(cursor)
