"""Each user's data health: is new data arriving, and if not, is the watch not worn or is the sync failing?

``analytics.data_health`` keeps one row per user and local day, replaced by every evaluation of that day (the
publish job evaluates before it copies the snapshot), so the rows of past days are the history. The
dashboard, the alerts and ``polar-flow status`` read it. Raw tables keep ``fetched_at`` unchanged for a
record that comes again unchanged, so a user's newest ``fetched_at`` over all raw tables is when new data last
arrived; the control store's sync outcomes (``sync_outcomes``) say whether we asked the source since, and
whether asking failed. One state per user, the first that holds in this order:

1. ``reauthorize``: Polar rejected the token or the user is not registered (the control store's status).
2. ``sync_failed``: the sync failed and every automatic retry failed too (``sync_retry_limit``).
3. ``sync_failing``: the last attempt failed; retries are still going.
4. ``never_synced``: no successful sync and no data yet.
5. ``ok``: new data arrived less than ``freshness_warn_hours`` ago.
6. ``sync_overdue``: no new data for that long, and no successful sync for that long either: nobody asked.
7. ``not_worn``: no new data for that long although a sync succeeded within it: the source has nothing.

Freshness is about the data alone: ``warn`` from ``freshness_warn_hours`` (36 by default) without new data,
or when there is no data at all; else ``fresh``. No Dagster import: the CLI reads it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, fields
from datetime import date, datetime, timedelta

import duckdb

from polar_pipeline import clock
from polar_pipeline.control_store import StoredUser
from polar_pipeline.settings import Settings
from polar_pipeline.sync_outcomes import UserSyncState
from polar_pipeline.warehouse.schema import CHECK_FAILURES_TABLE, RAW_TABLES, ensure_raw_schema
from polar_pipeline.warehouse.writer import transaction

DATA_HEALTH_TABLE = "analytics.data_health"
FRESH, WARN = "fresh", "warn"
REAUTHORIZE, SYNC_FAILED, SYNC_FAILING = "reauthorize", "sync_failed", "sync_failing"
NEVER_SYNCED, OK, SYNC_OVERDUE, NOT_WORN = "never_synced", "ok", "sync_overdue", "not_worn"
STATES: tuple[str, ...] = (REAUTHORIZE, SYNC_FAILED, SYNC_FAILING, NEVER_SYNCED, OK, SYNC_OVERDUE, NOT_WORN)
"""Every state, in the order of precedence (the first that holds is the user's)."""
ACCOUNT_STATUSES_TO_REAUTHORIZE = frozenset({"reauthorize", "not_registered"})
QUARANTINE_RECENT_DAYS = 7

DATA_HEALTH_DDL = f"""
CREATE TABLE IF NOT EXISTS {DATA_HEALTH_TABLE} (
    user_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    state VARCHAR NOT NULL,
    freshness VARCHAR NOT NULL,
    hours_without_new_data DOUBLE,
    last_data_day DATE,
    last_new_data_at TIMESTAMPTZ,
    last_sync_at TIMESTAMPTZ,
    last_attempt_at TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL,
    last_error VARCHAR,
    failed_checks VARCHAR[] NOT NULL,
    blocking_checks_failed BOOLEAN NOT NULL,
    quarantined_records BIGINT NOT NULL,
    quarantined_last_7_days BIGINT NOT NULL,
    evaluated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, day)
)
"""


@dataclass(frozen=True)
class DataFacts:
    """What the warehouse says about one user's data."""

    last_data_day: date | None = None
    last_new_data_at: datetime | None = None
    failed_checks: tuple[str, ...] = ()
    blocking_checks_failed: bool = False
    quarantined_records: int = 0
    quarantined_last_7_days: int = 0


@dataclass(frozen=True)
class Verdict:
    state: str
    freshness: str
    hours_without_new_data: float | None


@dataclass(frozen=True)
class HealthRow:
    """One row of ``analytics.data_health``, its fields in the table's column order."""

    user_id: str
    day: date
    state: str
    freshness: str
    hours_without_new_data: float | None
    last_data_day: date | None
    last_new_data_at: datetime | None
    last_sync_at: datetime | None
    last_attempt_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    failed_checks: tuple[str, ...]
    blocking_checks_failed: bool
    quarantined_records: int
    quarantined_last_7_days: int
    evaluated_at: datetime


COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(HealthRow))


def judge(
    *,
    account_status: str | None,
    sync: UserSyncState | None,
    last_new_data_at: datetime | None,
    now: datetime,
    warn_hours: float,
    retry_limit: int,
) -> Verdict:
    """The user's state and freshness at ``now`` (the order of precedence is the module's docstring)."""
    hours = None if last_new_data_at is None else (now - last_new_data_at) / timedelta(hours=1)
    fresh = hours is not None and hours < warn_hours
    freshness = FRESH if fresh else WARN
    # New data can only have come from a successful sync, so its arrival is a success too (this also covers
    # data synced before sync outcomes were recorded).
    successes = [at for at in (sync.last_success_at if sync else None, last_new_data_at) if at is not None]
    last_asked = max(successes, default=None)
    if account_status in ACCOUNT_STATUSES_TO_REAUTHORIZE:
        state = REAUTHORIZE
    elif sync is not None and sync.gave_up(retry_limit):
        state = SYNC_FAILED
    elif sync is not None and sync.failing:
        state = SYNC_FAILING
    elif last_asked is None:
        state = NEVER_SYNCED
    elif fresh:
        state = OK
    elif (now - last_asked) / timedelta(hours=1) >= warn_hours:
        state = SYNC_OVERDUE
    else:
        state = NOT_WORN
    return Verdict(state, freshness, hours)


def read_data_facts(con: duckdb.DuckDBPyConnection, now: datetime) -> dict[str, DataFacts]:
    """Every user with rows in the raw tables, the quarantine or the failing checks: three queries in all."""
    raw_union = " UNION ALL ".join(
        f"SELECT user_id, day, fetched_at FROM {table.qualified}" for table in RAW_TABLES.values()
    )
    arrivals = {
        str(user_id): (last_day, last_new)
        for user_id, last_day, last_new in con.execute(
            f"SELECT user_id, max(day), max(fetched_at) FROM ({raw_union}) GROUP BY user_id"
        ).fetchall()
    }
    checks = {
        str(user_id): (tuple(str(name) for name in names), bool(blocking))
        for user_id, names, blocking in con.execute(
            "SELECT user_id, list(DISTINCT check_name ORDER BY check_name), bool_or(blocking) "
            f"FROM {CHECK_FAILURES_TABLE} GROUP BY user_id"
        ).fetchall()
    }
    quarantined = {
        str(user_id): (int(total), int(recent))
        for user_id, total, recent in con.execute(
            "SELECT user_id, count(*), count(*) FILTER (WHERE first_seen_at >= $since) "
            "FROM raw.quarantine GROUP BY user_id",
            {"since": now - timedelta(days=QUARANTINE_RECENT_DAYS)},
        ).fetchall()
    }
    facts = {}
    for user_id in set(arrivals) | set(checks) | set(quarantined):
        last_day, last_new = arrivals.get(user_id, (None, None))
        failed, blocking = checks.get(user_id, ((), False))
        total, recent = quarantined.get(user_id, (0, 0))
        facts[user_id] = DataFacts(last_day, last_new, failed, blocking, total, recent)
    return facts


def evaluate_health(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    users: Sequence[StoredUser],
    sync_states: Mapping[str, UserSyncState],
    now: datetime,
) -> list[HealthRow]:
    """A row per user of the control store, of the sync outcomes or of the warehouse, for their local day.

    Reads only (``con`` may be a read-only connection with the raw schema); ``now`` must be aware.
    """
    facts = read_data_facts(con, now)
    stored = {user.user_id: user for user in users}
    rows = []
    for user_id in sorted(set(stored) | set(sync_states) | set(facts)):
        user, sync, data = stored.get(user_id), sync_states.get(user_id), facts.get(user_id, DataFacts())
        verdict = judge(
            account_status=user.status if user else None,
            sync=sync,
            last_new_data_at=data.last_new_data_at,
            now=now,
            warn_hours=settings.freshness_warn_hours,
            retry_limit=settings.sync_retry_limit,
        )
        rows.append(
            HealthRow(
                user_id=user_id,
                day=clock.today(settings, user.time_zone if user else None, at=now),
                state=verdict.state,
                freshness=verdict.freshness,
                hours_without_new_data=verdict.hours_without_new_data,
                last_data_day=data.last_data_day,
                last_new_data_at=data.last_new_data_at,
                last_sync_at=sync.last_success_at if sync else None,
                last_attempt_at=sync.last_attempt_at if sync else None,
                consecutive_failures=sync.consecutive_failures if sync else 0,
                last_error=sync.last_error if sync and sync.failing else None,
                failed_checks=data.failed_checks,
                blocking_checks_failed=data.blocking_checks_failed,
                quarantined_records=data.quarantined_records,
                quarantined_last_7_days=data.quarantined_last_7_days,
                evaluated_at=now,
            )
        )
    return rows


def write_health_rows(con: duckdb.DuckDBPyConnection, rows: Iterable[HealthRow]) -> int:
    """Upsert rows by (user, day): the day's earlier evaluation is replaced, other days are kept."""
    con.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    con.execute(DATA_HEALTH_DDL)
    values = [[list(value) if isinstance(value, tuple) else value for value in astuple(row)] for row in rows]
    if values:
        marks = ", ".join("?" for _ in COLUMNS)
        con.executemany(
            f"INSERT OR REPLACE INTO {DATA_HEALTH_TABLE} ({', '.join(COLUMNS)}) VALUES ({marks})", values
        )
    return len(values)


def refresh_data_health(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    users: Sequence[StoredUser],
    sync_states: Mapping[str, UserSyncState],
    now: datetime,
) -> list[HealthRow]:
    """Evaluate every user at ``now`` and write the rows, reads and writes in one writer transaction."""
    ensure_raw_schema(con)
    with transaction(con, DATA_HEALTH_TABLE):
        rows = evaluate_health(con, settings, users=users, sync_states=sync_states, now=now)
        write_health_rows(con, rows)
    return rows
