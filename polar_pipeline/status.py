"""``polar-flow status``: each user's sync and data health, the snapshot served, and what to do about trouble.

The data side (last data day, when new data last arrived, failing checks, quarantined records) comes from
``analytics.data_health`` in the current serving snapshot, opened read-only, so a run in progress is never
disturbed. The sync side (last success, failures since, the account's status) is read live from the control
store, and the state and freshness are judged again at ``now`` by the same rules as the table
(``health.judge``), so the report is current between publishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from polar_pipeline.connections import open_control_store
from polar_pipeline.health import (
    DATA_HEALTH_TABLE,
    NEVER_SYNCED,
    NOT_WORN,
    REAUTHORIZE,
    SYNC_FAILED,
    SYNC_FAILING,
    SYNC_OVERDUE,
    judge,
)
from polar_pipeline.settings import Settings
from polar_pipeline.sync_outcomes import SyncOutcomes
from polar_pipeline.warehouse.snapshot import (
    SnapshotInfo,
    SnapshotNotPublished,
    SnapshotReader,
    SnapshotUnavailable,
)

if TYPE_CHECKING:
    from polar_pipeline.alerts.store import FailedDelivery

NOT_PUBLISHED = "not_published"
"""Status only: syncs succeed but the snapshot has no health row for the user yet (publish)."""
CONNECT_COMMAND = "polar-flow connect --user {user}"
ERROR_CHARS_SHOWN = 300
ALERT_FAILURES_SHOWN_DAYS = 7
"""Alert deliveries that gave up within this many days are listed."""


@dataclass(frozen=True)
class SnapshotHealth:
    """A user's data columns as the snapshot's ``analytics.data_health`` has them (their newest row)."""

    last_data_day: date | None
    last_new_data_at: datetime | None
    failed_checks: tuple[str, ...]
    blocking_checks_failed: bool
    quarantined_records: int
    quarantined_last_7_days: int
    evaluated_at: datetime


@dataclass(frozen=True)
class UserStatus:
    user_id: str
    account_status: str | None
    state: str
    freshness: str | None
    hours_without_new_data: float | None
    last_sync_at: datetime | None
    last_attempt_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    data: SnapshotHealth | None

    @property
    def action(self) -> str | None:
        """What the person should do, or None when nothing is wrong."""
        user = self.user_id
        error = _shorten(self.last_error or "no error recorded")
        hours = f"{self.hours_without_new_data:.0f} h" if self.hours_without_new_data is not None else "ever"
        if self.state == REAUTHORIZE:
            command = CONNECT_COMMAND.format(user=user)
            return f"Polar no longer accepts the account ({self.account_status}): run `{command}`"
        if self.state == SYNC_FAILED:
            return (
                f"sync failed {self.consecutive_failures} times in a row and the automatic retries stopped: "
                f"{error}; once fixed, `polar-flow sync --user {user}`"
            )
        if self.state == SYNC_FAILING:
            return f"sync failing ({self.consecutive_failures} in a row, retries continue): {error}"
        if self.state == NEVER_SYNCED:
            return f"never synced: run `polar-flow sync --user {user}`"
        if self.state == SYNC_OVERDUE:
            return (
                f"no new data for {hours} and no successful sync since: is the daily refresh running "
                f"(`polar-flow dev`)? `polar-flow sync --user {user}` syncs now"
            )
        if self.state == NOT_WORN:
            return (
                f"nothing new for {hours} although syncs succeed: the watch is not worn, or not synced "
                "with the Polar Flow app"
            )
        if self.state == NOT_PUBLISHED:
            return "synced, but not in the serving snapshot yet: run `polar-flow publish`"
        if self.data is not None and self.data.blocking_checks_failed:
            return f"blocking data checks fail: {', '.join(self.data.failed_checks)}"
        return None


@dataclass(frozen=True)
class Status:
    """Everything ``polar-flow status`` shows, judged at ``now``."""

    now: datetime
    users: list[UserStatus]
    snapshot: SnapshotInfo | None
    snapshot_note: str | None
    alert_failures: list[FailedDelivery] = field(default_factory=list)


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS_SHOWN else text[: ERROR_CHARS_SHOWN - 1] + "…"


def _read_snapshot(settings: Settings) -> tuple[SnapshotInfo | None, dict[str, SnapshotHealth], str | None]:
    """The current generation, its health rows by user, and a note when they cannot be read."""
    reader = SnapshotReader(settings.snapshots_dir)
    try:
        with reader.cursor() as (cursor, info):
            present = cursor.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'analytics' "
                "AND table_name = 'data_health'"
            ).fetchone()
            if not present or not present[0]:
                return info, {}, f"this snapshot has no {DATA_HEALTH_TABLE}: run `polar-flow publish`"
            rows = cursor.execute(
                "SELECT user_id, last_data_day, last_new_data_at, failed_checks, blocking_checks_failed, "
                f"quarantined_records, quarantined_last_7_days, evaluated_at FROM {DATA_HEALTH_TABLE} "
                "QUALIFY row_number() OVER (PARTITION BY user_id ORDER BY evaluated_at DESC, day DESC) = 1"
            ).fetchall()
    except SnapshotNotPublished:
        return None, {}, "nothing is published yet: run `polar-flow sync` (or `polar-flow publish`)"
    except SnapshotUnavailable as error:
        return None, {}, str(error)
    finally:
        reader.close()
    health = {
        str(row[0]): SnapshotHealth(
            last_data_day=row[1],
            last_new_data_at=row[2],
            failed_checks=tuple(row[3]),
            blocking_checks_failed=bool(row[4]),
            quarantined_records=int(row[5]),
            quarantined_last_7_days=int(row[6]),
            evaluated_at=row[7],
        )
        for row in rows
    }
    return info, health, None


def collect_status(settings: Settings, *, now: datetime | None = None) -> Status:
    """The live control store and the current snapshot's health rows, judged at ``now`` (default: now)."""
    now = now or datetime.now(UTC)
    snapshot, health, note = _read_snapshot(settings)
    accounts = {user.user_id: user.status for user in open_control_store(settings).list_users()}
    syncs = SyncOutcomes(settings.control_store_path).states()
    users = []
    for user_id in sorted(set(accounts) | set(syncs) | set(health)):
        sync, data = syncs.get(user_id), health.get(user_id)
        verdict = judge(
            account_status=accounts.get(user_id),
            sync=sync,
            last_new_data_at=data.last_new_data_at if data else None,
            now=now,
            warn_hours=settings.freshness_warn_hours,
            retry_limit=settings.sync_retry_limit,
        )
        state, freshness = verdict.state, verdict.freshness
        if data is None and state in (NOT_WORN, SYNC_OVERDUE):
            state = NOT_PUBLISHED  # the data side is unknown, not missing
        users.append(
            UserStatus(
                user_id=user_id,
                account_status=accounts.get(user_id),
                state=state,
                freshness=None if data is None else freshness,
                hours_without_new_data=verdict.hours_without_new_data,
                last_sync_at=sync.last_success_at if sync else None,
                last_attempt_at=sync.last_attempt_at if sync else None,
                consecutive_failures=sync.consecutive_failures if sync else 0,
                last_error=sync.last_error if sync and sync.failing else None,
                data=data,
            )
        )
    from polar_pipeline.alerts.store import open_alert_store

    failures = open_alert_store(settings).failed_deliveries(now - timedelta(days=ALERT_FAILURES_SHOWN_DAYS))
    return Status(now=now, users=users, snapshot=snapshot, snapshot_note=note, alert_failures=failures)


def _age(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 60:
        return "just now" if seconds >= 0 else "in the future"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "never"
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} ({_age(now - at)})"


def _freshness(user: UserStatus) -> str:
    if user.freshness is None:
        return "?"
    if user.hours_without_new_data is None:
        return f"{user.freshness} (no data)"
    return f"{user.freshness} ({user.hours_without_new_data:.1f} h)"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return [line(header), "  ".join("-" * width for width in widths), *(line(row) for row in rows)]


def render_status(status: Status) -> str:
    """The report as text: the users' table, the snapshot line, and a line per user in trouble."""
    now = status.now
    header = [
        "user",
        "state",
        "last successful sync (UTC)",
        "last data day",
        "freshness",
        "failed checks",
        "quarantined (7 d)",
    ]
    rows = []
    for user in status.users:
        data = user.data
        rows.append(
            [
                user.user_id,
                user.state,
                _when(user.last_sync_at, now),
                "?" if data is None else str(data.last_data_day or "none"),
                _freshness(user),
                "?" if data is None else (", ".join(data.failed_checks) or "-"),
                "?" if data is None else f"{data.quarantined_records} ({data.quarantined_last_7_days})",
            ]
        )
    lines = _table(header, rows) if rows else ["no users yet: add one with `polar-flow users add`"]
    lines.append("")
    if status.snapshot is not None:
        info = status.snapshot
        published = f"{info.published_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        lines.append(
            f"snapshot: generation {info.generation}, published {published} "
            f"({_age(now - info.published_at)}), {info.path}"
        )
    if status.snapshot_note:
        lines.append(f"snapshot: {status.snapshot_note}")
    actions = [(user.user_id, user.action) for user in status.users if user.action]
    if actions:
        lines += ["", "to do:"]
        lines += [f"  {user_id}: {action}" for user_id, action in actions]
    if status.alert_failures:
        lines += ["", f"alerts not delivered (last {ALERT_FAILURES_SHOWN_DAYS} d):"]
        lines += [
            f"  {failed.user_id}: {failed.title} to {failed.channel}, failed {_when(failed.failed_at, now)} "
            f"after {failed.attempts} attempts: {_shorten(failed.last_error or 'no error recorded')}"
            for failed in status.alert_failures
        ]
    return "\n".join(lines) + "\n"


def status_report(settings: Settings, *, now: datetime | None = None) -> str:
    """What ``polar-flow status`` prints."""
    return render_status(collect_status(settings, now=now))


def _iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()


def status_json(settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """What ``polar-flow status --json`` prints: the same facts, times as ISO 8601, hours as numbers."""
    status = collect_status(settings, now=now)
    info = status.snapshot
    return {
        "evaluated_at": _iso(status.now),
        "snapshot": None
        if info is None
        else {
            "generation": info.generation,
            "published_at": _iso(info.published_at),
            "age_seconds": info.age_seconds(status.now),
            "path": str(info.path),
        },
        "snapshot_note": status.snapshot_note,
        "users": [
            {
                "user_id": user.user_id,
                "account_status": user.account_status,
                "state": user.state,
                "freshness": user.freshness,
                "hours_without_new_data": user.hours_without_new_data,
                "last_sync_at": _iso(user.last_sync_at),
                "last_attempt_at": _iso(user.last_attempt_at),
                "consecutive_failures": user.consecutive_failures,
                "last_error": user.last_error,
                "last_data_day": _iso(user.data.last_data_day) if user.data else None,
                "last_new_data_at": _iso(user.data.last_new_data_at) if user.data else None,
                "failed_checks": list(user.data.failed_checks) if user.data else None,
                "blocking_checks_failed": user.data.blocking_checks_failed if user.data else None,
                "quarantined_records": user.data.quarantined_records if user.data else None,
                "quarantined_last_7_days": user.data.quarantined_last_7_days if user.data else None,
                "action": user.action,
            }
            for user in status.users
        ],
        "failed_alert_deliveries": [
            {
                "delivery_id": failed.delivery_id,
                "user_id": failed.user_id,
                "rule": failed.rule,
                "title": failed.title,
                "channel": failed.channel,
                "attempts": failed.attempts,
                "last_error": failed.last_error,
                "failed_at": _iso(failed.failed_at),
            }
            for failed in status.alert_failures
        ],
    }
