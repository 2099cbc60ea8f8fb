"""The default zone read from records: a zone with the newest record's offset, from whichever stream."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from polar_pipeline.control_store import UserTimeZone
from polar_pipeline.ingest.time_zones import (
    ZONES_FOR_PART_HOUR_OFFSETS,
    SeenOffset,
    newest_offsets,
    zone_for_offset,
)
from polar_pipeline.operations import open_control_store
from polar_pipeline.settings import Settings
from polar_pipeline.user_zones import record_time_zones
from polar_pipeline.warehouse.raw_store import RawRecord, upsert_raw_records
from polar_pipeline.warehouse.schema import RAW_TABLES, ensure_raw_schema, newest_offset_rows
from polar_pipeline.warehouse.writer import connect_writer

FETCHED = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _offsets_of(zone: str) -> set[timedelta | None]:
    """Every offset the zone has had over 2026, sampled daily (catches DST)."""
    tz = ZoneInfo(zone)
    return {
        (datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=d)).astimezone(tz).utcoffset()
        for d in range(365)
    }


@pytest.mark.parametrize("minutes", [*range(-12 * 60, 14 * 60 + 1, 60), *ZONES_FOR_PART_HOUR_OFFSETS])
def test_each_offset_maps_to_a_zone_that_has_it(minutes: int) -> None:
    """Whole hours: a fixed-offset zone (watch the POSIX sign of Etc/GMT); other offsets: a zone using it."""
    zone = zone_for_offset(minutes)
    assert zone is not None
    offsets = _offsets_of(zone)
    assert timedelta(minutes=minutes) in offsets
    if minutes % 60 == 0:
        assert offsets == {timedelta(minutes=minutes)}, zone


def test_an_offset_no_zone_uses_gives_none() -> None:
    assert zone_for_offset(17) is None and zone_for_offset(15 * 60) is None


def _raw(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    user: str,
    day: date,
    payload: dict[str, object],
    key: str = "",
) -> None:
    record = RawRecord(key or day.isoformat(), day, json.dumps(payload))
    upsert_raw_records(con, RAW_TABLES[stream], user, [record], source="test", fetched_at=FETCHED)


def test_the_newest_night_end_or_exercise_start_decides(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    con = connect_writer(settings.warehouse_path)
    try:
        ensure_raw_schema(con)
        # u1: nights abroad (+09:00), then an exercise at home (+02:00) that evening, newer than any night.
        _raw(con, "sleep", "u1", date(2026, 2, 27), {"sleep_end_time": "2026-02-27T07:00:00.000+09:00"})
        _raw(con, "sleep", "u1", date(2026, 2, 28), {"sleep_end_time": "2026-02-28T07:00:00.000+09:00"})
        exercise = {"start_time": "2026-02-28T18:00:00", "start_time_utc_offset": 120}
        _raw(con, "exercises", "u1", date(2026, 2, 28), exercise, "x1")
        # u2: a night that ends after the exercise; u3: an exercise whose start_time carries its own zone.
        _raw(con, "sleep", "u2", date(2026, 3, 1), {"sleep_end_time": "2026-03-01T08:15:00.000-05:00"})
        exercise = {"start_time": "2026-02-28T18:00:00", "start_time_utc_offset": 60}
        _raw(con, "exercises", "u2", date(2026, 2, 28), exercise, "x2")
        _raw(con, "exercises", "u3", date(2026, 2, 28), {"start_time": "2026-02-28T18:00:00+05:30"}, "x3")
        _raw(con, "sleep", "u4", date(2026, 2, 28), {"sleep_end_time": "not a time"})
        seen = newest_offsets(newest_offset_rows(con, ["u1", "u2", "u3", "u4", "nobody"]))
    finally:
        con.close()
    assert seen == {
        "u1": SeenOffset(120, datetime(2026, 2, 28, 16, tzinfo=UTC)),
        "u2": SeenOffset(-300, datetime(2026, 3, 1, 13, 15, tzinfo=UTC)),
        "u3": SeenOffset(330, datetime(2026, 2, 28, 12, 30, tzinfo=UTC)),
    }

    store = open_control_store(settings)
    for user in ("u1", "u2", "u3", "u4"):
        store.upsert_user(user, "token")
    store.set_time_zone("u2", "America/Toronto")  # the person's zone: records (-05:00 here) never replace it
    con = connect_writer(settings.warehouse_path)
    try:
        zones = record_time_zones(store, con)
    finally:
        con.close()
    assert zones == [
        UserTimeZone("u1", "Etc/GMT-2", "records"),
        UserTimeZone("u2", "America/Toronto", "user"),
        UserTimeZone("u3", "Asia/Kolkata", "records"),
    ]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT user_id, time_zone, source FROM control.user_time_zones ORDER BY 1"
        ).fetchall()
    assert rows == [(z.user_id, z.time_zone, z.source) for z in zones]
