"""The API's "today" is the user's local date: their zone travels from the control store through the warehouse
into the serving snapshot, and the sleep route's window ends on that zone's date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pytest

from polar_api.app import create_app
from polar_api.read.time_zones import user_time_zone
from polar_pipeline import cli
from polar_pipeline.operations import open_control_store, publish, sync
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.schema import USER_TIME_ZONES_DDL, replace_user_time_zones
from polar_pipeline.warehouse.snapshot import publish_snapshot, read_pointer
from tests.api.test_api import _hand_built_marts
from tests.conftest import TEST_TODAY, Pipeline
from tests.support.served import admin_headers
from tests.support.servers import serve_asgi


def _zone_whose_date_is_not_utcs() -> tuple[str, date]:
    """UTC+14 is a day ahead from 10:00 UTC on, UTC-12 a day behind until 12:00 UTC: one always differs."""
    zone = "Pacific/Kiritimati" if datetime.now(UTC).hour >= 12 else "Etc/GMT+12"
    return zone, datetime.now(ZoneInfo(zone)).date()


def _published_with_zone(home: Path, today: date, zone: str | None) -> Settings:
    """The test_api hand-built marts (user 1001: nights today, 3, 7 and 8 days ago) and 1001's zone."""
    settings = Settings(home=home, today=None)
    con = _hand_built_marts(today)
    try:
        if zone is not None:
            con.execute("CREATE SCHEMA control")
            con.execute(USER_TIME_ZONES_DDL)
            replace_user_time_zones(con, [("1001", zone, "user")])
        publish_snapshot(con, settings.snapshots_dir)
    finally:
        con.close()
    return settings


def test_without_polar_today_the_window_ends_on_the_users_local_date(tmp_path: Path) -> None:
    """days=7 reaches back to local today - 7: a UTC "today" would take in one night more or one fewer."""
    for attempt in range(3):  # a retry only if the local date changed while the test ran
        zone, local_today = _zone_whose_date_is_not_utcs()
        assert local_today != datetime.now(UTC).date() and local_today != date.today()
        settings = _published_with_zone(tmp_path / f"home-{attempt}", local_today, zone)
        headers = admin_headers(settings)
        with serve_asgi(create_app(settings)) as api:
            nights = httpx.get(
                f"{api}/api/v1/users/1001/sleep", params={"days": 7}, headers=headers, timeout=10
            ).json()
        if _zone_whose_date_is_not_utcs() == (zone, local_today):
            break
    assert [night["date"] for night in nights] == [str(local_today - timedelta(days=d)) for d in (0, 3, 7)]


def test_a_snapshot_without_zones_answers_with_the_machines_date(tmp_path: Path) -> None:
    """A snapshot published before the zone table existed still serves (no zone: the machine's date)."""
    settings = _published_with_zone(tmp_path / "home", date.today(), None)
    info = read_pointer(settings.snapshots_dir)
    assert info is not None
    with duckdb.connect(str(info.path), read_only=True) as con:
        assert user_time_zone(con.cursor(), "1001") is None
    headers = admin_headers(settings)
    with serve_asgi(create_app(settings)) as api:
        nights = httpx.get(
            f"{api}/api/v1/users/1001/sleep", params={"days": 7}, headers=headers, timeout=10
        ).json()
    assert [night["date"] for night in nights] == [str(date.today() - timedelta(days=d)) for d in (0, 3, 7)]


def _served_zones(pipeline: Pipeline) -> dict[str, tuple[str, str]]:
    info = read_pointer(pipeline.settings.snapshots_dir)
    assert info is not None
    with duckdb.connect(str(info.path), read_only=True) as con:
        rows = con.execute("SELECT user_id, time_zone, source FROM control.user_time_zones").fetchall()
    return {user: (zone, source) for user, zone, source in rows}


def test_zones_from_records_and_from_the_person_reach_the_snapshot(
    pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    """Sync + publish: each user gets a zone with their newest offset; `users set-zone` replaces it for good.

    The expected offset comes from the simulator's ground truth, and zoneinfo says what the zone means."""
    users = pipeline.add_users(2)
    first_sync = TEST_TODAY - timedelta(days=1)  # the synced days end here
    pipeline.sim("POST", "/sim/clock", json={"today": first_sync.isoformat()})
    assert sync(pipeline.settings, days=3, until=first_sync, instance=pipeline.instance).success
    assert publish(pipeline.settings, instance=pipeline.instance)
    served = _served_zones(pipeline)
    assert set(served) == set(users)
    for user in users:
        days = pipeline.sim(
            "GET", f"/sim/ground-truth/{user}/daily", params={"from": first_sync, "to": first_sync}
        )
        offset = timedelta(minutes=days[0]["tz_offset_minutes"])  # no trip spans these days in seed 11
        zone, source = served[user]
        assert source == "records" and ZoneInfo(zone).utcoffset(datetime(2026, 3, 1)) == offset, (user, zone)

    capsys.readouterr()  # the runs' log lines
    with pytest.raises(SystemExit) as bad_zone:  # refused by the argument's validator, before any work
        cli.main(["users", "set-zone", "--user", users[0], "Mars/Base"])
    assert bad_zone.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "polar-flow users set-zone: error: argument zone: unknown time zone 'Mars/Base': "
        "use an IANA name such as Europe/Helsinki"
    )
    assert cli.main(["users", "set-zone", "--user", "nobody", "Europe/Helsinki"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["polar-flow: error: unknown user 'nobody': add it with `polar-flow users add`"]
    assert cli.main(["users", "set-zone", "--user", users[0], "America/Los_Angeles"]) == 0
    assert "America/Los_Angeles" in capsys.readouterr().out

    # The next publish carries the person's zone (newer records never replace it: tests/test_time_zones.py).
    assert publish(pipeline.settings, instance=pipeline.instance)
    assert _served_zones(pipeline) == {users[0]: ("America/Los_Angeles", "user"), users[1]: served[users[1]]}
    stored = {user.user_id: user for user in open_control_store(pipeline.settings).list_users()}
    assert stored[users[1]].time_zone_source == "records"

    assert cli.main(["users", "list"]) == 0
    assert "time_zone=America/Los_Angeles (user)" in capsys.readouterr().out
    # POLAR_TODAY still freezes the day, zone or not: days=1 reaches back to the day before the test day.
    headers = admin_headers(pipeline.settings)
    with serve_asgi(create_app(pipeline.settings)) as api:
        nights = httpx.get(
            f"{api}/api/v1/users/{users[0]}/sleep", params={"days": 1}, headers=headers, timeout=10
        ).json()
    assert [night["date"] for night in nights] == [first_sync.isoformat()]
