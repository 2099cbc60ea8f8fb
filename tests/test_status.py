"""``polar-flow status``: each user's state from the snapshot and the live control store, the generation
served, and what to do for a user in trouble."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from polar_pipeline.operations import open_control_store, publish, sync
from polar_pipeline.settings import Settings
from polar_pipeline.status import status_json, status_report
from polar_pipeline.sync_outcomes import SyncAttempt, SyncOutcomes
from polar_pipeline.warehouse.schema import RAW_TABLES
from polar_pipeline.warehouse.snapshot import read_pointer
from tests.conftest import Pipeline, open_pipeline


@dataclass
class Published:
    pipeline: Pipeline
    users: list[str]

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    def newest_day(self, user_id: str) -> str:
        """The user's newest day with a record in any raw table, from the warehouse itself."""
        days: list[date] = []
        for table in RAW_TABLES.values():
            rows = self.pipeline.query(f"SELECT day FROM {table.qualified} WHERE user_id = ?", [user_id])
            days += [day for (day,) in rows]
        return max(days).isoformat()


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        open_pipeline(tmp_path_factory.mktemp("status"), monkeypatch) as pipeline,
    ):
        users = pipeline.add_users(2)
        assert sync(pipeline.settings, days=2, instance=pipeline.instance).success
        assert publish(pipeline.settings, instance=pipeline.instance)
        yield Published(pipeline, users)


def _user_line(report: str, user_id: str) -> list[str]:
    """The cells of ``user_id``'s row of the table (columns are two or more spaces apart)."""
    lines = [line for line in report.splitlines() if line.startswith(f"{user_id} ")]
    assert len(lines) == 1, report
    return [cell for cell in lines[0].split("  ") if cell.strip()]


def test_status_names_each_user_their_state_and_the_generation(published: Published) -> None:
    info = read_pointer(published.settings.snapshots_dir)
    assert info is not None
    report = status_report(published.settings)
    for user_id in published.users:
        cells = [cell.strip() for cell in _user_line(report, user_id)]
        assert cells[1] == "ok", report
        assert cells[3] == published.newest_day(user_id), report
        assert cells[4].startswith("fresh ("), report
    assert f"snapshot: generation {info.generation}, published " in report
    assert "to do:" not in report  # nobody is in trouble

    as_json = status_json(published.settings)
    assert as_json["snapshot"]["generation"] == info.generation
    assert {user["user_id"]: user["state"] for user in as_json["users"]} == dict.fromkeys(
        published.users, "ok"
    )
    assert [user["last_data_day"] for user in as_json["users"]] == [
        published.newest_day(user_id) for user_id in sorted(published.users)
    ]


def test_a_user_to_reauthorize_is_told_to_connect_again(published: Published) -> None:
    user = published.users[1]
    store = open_control_store(published.settings)
    store.set_status(user, "reauthorize")
    try:
        report = status_report(published.settings)
    finally:
        store.set_status(user, "active")
    assert _user_line(report, user)[1].strip() == "reauthorize"
    assert (
        f"  {user}: Polar no longer accepts the account (reauthorize): run `polar-flow connect --user {user}`"
        in (report)
    )
    assert _user_line(report, published.users[0])[1].strip() == "ok"  # the other user is unaffected


def test_live_sync_failures_show_before_the_next_publish(published: Published) -> None:
    user = published.users[0]
    outcomes = SyncOutcomes(published.settings.control_store_path)
    now = datetime.now(UTC)
    outcomes.record([SyncAttempt(user, "failing-run", False, "TransientError: 503 Service Unavailable")], now)
    try:
        report = status_report(published.settings, now=now + timedelta(minutes=1))
    finally:
        outcomes.record([SyncAttempt(user, "recovered-run", True)], now + timedelta(seconds=1))
    assert _user_line(report, user)[1].strip() == "sync_failing"
    assert (
        f"  {user}: sync failing (1 in a row, retries continue): TransientError: 503 Service Unavailable"
        in (report)
    )


def test_two_days_later_with_nothing_new_the_freshness_warns(published: Published) -> None:
    later = datetime.now(UTC) + timedelta(hours=48)
    report = status_report(published.settings, now=later)
    for user_id in published.users:
        cells = [cell.strip() for cell in _user_line(report, user_id)]
        assert cells[1] == "sync_overdue" and cells[4].startswith("warn ("), report
        assert f"  {user_id}: no new data for 48 h and no successful sync since" in report


def test_before_anything_is_published_status_says_so(tmp_path: Path) -> None:
    report = status_report(Settings(home=tmp_path))
    assert "no users yet" in report and "nothing is published yet" in report
