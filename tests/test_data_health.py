"""``analytics.data_health``: freshness turns to warn after 36 h without new data, and the state tells a watch
not worn (syncs succeed, nothing new) from a sync failing, over a warehouse the real pipeline built."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from polar_pipeline.control_store import StoredUser
from polar_pipeline.defs.serving.health import DATA_HEALTH_KEY
from polar_pipeline.health import HealthRow, evaluate_health, refresh_data_health
from polar_pipeline.operations import open_control_store, publish, sync
from polar_pipeline.sync_outcomes import SyncAttempt, SyncOutcomes
from polar_pipeline.warehouse.schema import RAW_TABLES
from polar_pipeline.warehouse.snapshot import read_pointer
from polar_pipeline.warehouse.writer import connect_writer
from tests.conftest import TEST_TODAY, Pipeline, open_pipeline

DAYS = 3


@dataclass
class Synced:
    """Two users synced twice over the same days (the second sync brought nothing new)."""

    pipeline: Pipeline
    users: list[str]
    arrived: dict[str, datetime]
    """Each user's newest ``fetched_at`` over every raw table: when their new data last arrived."""

    def stored_users(self) -> list[StoredUser]:
        return open_control_store(self.pipeline.settings).list_users()

    def evaluate(
        self,
        outcomes: SyncOutcomes,
        now: datetime,
        *,
        users: list[StoredUser] | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
        **setting_overrides: object,
    ) -> dict[str, HealthRow]:
        settings = self.pipeline.settings.model_copy(update=setting_overrides)
        reader = con or duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            rows = evaluate_health(
                reader,
                settings,
                users=users if users is not None else self.stored_users(),
                sync_states=outcomes.states(),
                now=now,
            )
        finally:
            if con is None:
                reader.close()
        return {row.user_id: row for row in rows}


def _arrivals(pipeline: Pipeline) -> dict[str, datetime]:
    newest: dict[str, datetime] = {}
    for table in RAW_TABLES.values():
        for user_id, fetched_at in pipeline.query(f"SELECT user_id, fetched_at FROM {table.qualified}"):
            newest[user_id] = max(newest.get(user_id, fetched_at), fetched_at)
    return newest


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        open_pipeline(tmp_path_factory.mktemp("health"), monkeypatch) as pipeline,
    ):
        users = pipeline.add_users(2)
        assert sync(pipeline.settings, days=DAYS, instance=pipeline.instance).success
        arrived = _arrivals(pipeline)
        assert set(arrived) == set(users)
        # The same days again from a frozen simulator: a successful sync that brings nothing new.
        assert sync(pipeline.settings, days=DAYS, instance=pipeline.instance).success
        assert _arrivals(pipeline) == arrived
        yield Synced(pipeline, users, arrived)


def test_freshness_turns_to_warn_after_36_hours_without_new_data(synced: Synced, tmp_path: Path) -> None:
    user = synced.users[0]
    arrived = synced.arrived[user]
    outcomes = SyncOutcomes(tmp_path / "control.sqlite3")
    outcomes.record([SyncAttempt(user, "first-sync", True)], arrived)

    at_35 = synced.evaluate(outcomes, arrived + timedelta(hours=35))[user]
    assert (at_35.freshness, at_35.state) == ("fresh", "ok")
    assert at_35.hours_without_new_data == pytest.approx(35.0)
    assert at_35.last_new_data_at == arrived and at_35.last_sync_at == arrived

    # 36 h on, nobody has asked the source since the data came: not "not worn", the sync is overdue.
    at_36 = synced.evaluate(outcomes, arrived + timedelta(hours=36))[user]
    assert (at_36.freshness, at_36.state) == ("warn", "sync_overdue")

    # The second sync (nothing new, fetched_at unchanged) succeeded at 36.5 h: the source has nothing.
    outcomes.record([SyncAttempt(user, "second-sync", True)], arrived + timedelta(hours=36.5))
    at_37 = synced.evaluate(outcomes, arrived + timedelta(hours=37))[user]
    assert (at_37.freshness, at_37.state) == ("warn", "not_worn")
    assert at_37.hours_without_new_data == pytest.approx(37.0)
    assert at_37.last_sync_at == arrived + timedelta(hours=36.5)
    assert at_37.last_new_data_at == arrived  # the second sync changed no fetched_at
    assert at_37.last_error is None and at_37.consecutive_failures == 0

    # The threshold is a setting.
    at_13 = synced.evaluate(outcomes, arrived + timedelta(hours=13), freshness_warn_hours=12)[user]
    assert at_13.freshness == "warn"


def test_failed_attempts_are_sync_failing_then_sync_failed(synced: Synced, tmp_path: Path) -> None:
    user = synced.users[0]
    arrived = synced.arrived[user]
    limit = synced.pipeline.settings.sync_retry_limit
    outcomes = SyncOutcomes(tmp_path / "control.sqlite3")
    outcomes.record([SyncAttempt(user, "run-0", True)], arrived)
    for failure in range(1, limit + 1):  # the first failure and all but the last retry
        error = f"TransientError: 503 on attempt {failure}"
        outcomes.record(
            [SyncAttempt(user, f"run-{failure}", False, error)], arrived + timedelta(hours=failure)
        )
    failing = synced.evaluate(outcomes, arrived + timedelta(hours=37))[user]
    assert (failing.freshness, failing.state) == ("warn", "sync_failing")
    assert failing.consecutive_failures == limit and failing.last_error == error
    assert failing.last_sync_at == arrived and failing.last_attempt_at == arrived + timedelta(hours=limit)

    # Failing while the data is still fresh is failing too.
    assert synced.evaluate(outcomes, arrived + timedelta(hours=limit + 1))[user].state == "sync_failing"

    outcomes.record([SyncAttempt(user, "last-retry", False, "still 503")], arrived + timedelta(hours=36))
    failed = synced.evaluate(outcomes, arrived + timedelta(hours=37))[user]
    assert failed.state == "sync_failed" and failed.consecutive_failures == limit + 1
    assert failed.last_error == "still 503"

    # A rejected token outranks everything else.
    users = [
        dataclasses.replace(stored, status="reauthorize") if stored.user_id == user else stored
        for stored in synced.stored_users()
    ]
    assert synced.evaluate(outcomes, arrived + timedelta(hours=37), users=users)[user].state == "reauthorize"

    # The next success (nothing new) ends the failures: the watch is simply not worn.
    outcomes.record([SyncAttempt(user, "daily-refresh", True)], arrived + timedelta(hours=40))
    recovered = synced.evaluate(outcomes, arrived + timedelta(hours=41))[user]
    assert recovered.state == "not_worn" and recovered.last_error is None


def test_quarantine_and_failing_checks_are_counted_per_user(synced: Synced, tmp_path: Path) -> None:
    user, other = synced.users
    now = synced.arrived[user] + timedelta(hours=1)
    ghost = "only-in-the-warehouse"
    con = connect_writer(synced.pipeline.settings.warehouse_path)
    try:
        con.execute("BEGIN TRANSACTION")  # rolled back: the module's warehouse stays as the pipeline left it
        for index, age_days in enumerate([30, 8, 6, 1]):
            for owner in (user, ghost) if index % 2 else (user,):
                seen = now - timedelta(days=age_days)
                con.execute(
                    "INSERT INTO raw.quarantine VALUES (?, 'sleep', ?, NULL, '{}', ?, 'planted', ?, ?)",
                    [owner, seen.date(), f"sha-{index}", seen, seen],
                )
        for check, blocking in [("marts.daily_metrics:ranges", False), ("raw_sleep:arrival", True)]:
            con.execute(
                "INSERT INTO control.check_failures VALUES (?, ?, 'asset', ?, 2, ?, ?, ?)",
                [user, check, blocking, TEST_TODAY, TEST_TODAY, now],
            )
        quarantined = con.execute("SELECT user_id, first_seen_at FROM raw.quarantine").fetchall()
        rows = synced.evaluate(SyncOutcomes(tmp_path / "control.sqlite3"), now, con=con)
    finally:
        con.execute("ROLLBACK")
        con.close()

    total = Counter(owner for owner, _ in quarantined)
    recent = Counter(owner for owner, seen in quarantined if seen >= now - timedelta(days=7))
    assert total[user] >= 4 and recent[user] >= 2  # what was planted, whatever the sync quarantined
    for user_id in (user, other, ghost):
        assert rows[user_id].quarantined_records == total[user_id], user_id
        assert rows[user_id].quarantined_last_7_days == recent[user_id], user_id
    assert rows[user].failed_checks == ("marts.daily_metrics:ranges", "raw_sleep:arrival")
    assert rows[user].blocking_checks_failed
    assert rows[other].failed_checks == () and not rows[other].blocking_checks_failed
    # A user only the warehouse knows (no account, no sync, no data) is still evaluated.
    assert (rows[ghost].state, rows[ghost].freshness, rows[ghost].last_data_day) == (
        "never_synced",
        "warn",
        None,
    )


def test_each_publish_writes_todays_rows_into_the_snapshot(synced: Synced) -> None:
    pipeline = synced.pipeline
    newest_days = {
        user_id: max(
            day
            for table in RAW_TABLES.values()
            for (day,) in pipeline.query(f"SELECT day FROM {table.qualified} WHERE user_id = ?", [user_id])
        )
        for user_id in synced.users
    }

    def served_rows() -> list[tuple[Any, ...]]:
        info = read_pointer(pipeline.settings.snapshots_dir)
        assert info is not None
        con = duckdb.connect(str(info.path), read_only=True)
        try:
            return con.execute(
                "SELECT user_id, day, state, freshness, last_data_day, evaluated_at "
                "FROM analytics.data_health ORDER BY user_id, day"
            ).fetchall()
        finally:
            con.close()

    before = datetime.now(UTC)
    assert publish(pipeline.settings, instance=pipeline.instance)
    first = served_rows()
    assert [(row[0], row[1]) for row in first] == [(user, TEST_TODAY) for user in sorted(synced.users)]
    for user_id, _, state, freshness, last_data_day, evaluated_at in first:
        assert (state, freshness) == ("ok", "fresh"), user_id
        assert last_data_day == newest_days[user_id]
        assert isinstance(evaluated_at, datetime) and evaluated_at >= before
    event = pipeline.instance.get_latest_materialization_event(DATA_HEALTH_KEY)
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/row_count"] == dg.IntMetadataValue(len(synced.users))

    # Another evaluation the same day replaces the rows; the next day adds a row per user, keeps yesterday's.
    def evaluate_and_write(**setting_overrides: object) -> list[tuple[Any, ...]]:
        settings = pipeline.settings.model_copy(update=setting_overrides)
        con = connect_writer(settings.warehouse_path)
        try:
            refresh_data_health(
                con, settings, users=synced.stored_users(), sync_states={}, now=datetime.now(UTC)
            )
            return con.execute(
                "SELECT user_id, day, evaluated_at FROM analytics.data_health ORDER BY user_id, day"
            ).fetchall()
        finally:
            con.close()

    again = evaluate_and_write()
    assert [(row[0], row[1]) for row in again] == [(row[0], row[1]) for row in first]
    assert all(new[2] > old[5] for new, old in zip(again, first, strict=True))
    tomorrow = TEST_TODAY + timedelta(days=1)
    next_day = evaluate_and_write(today=tomorrow)
    assert [(row[0], row[1]) for row in next_day] == [
        (user, day) for user in sorted(synced.users) for day in (TEST_TODAY, tomorrow)
    ]
    assert [row for row in next_day if row[1] == TEST_TODAY] == again
