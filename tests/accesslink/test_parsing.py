"""Scalar parsing: ISO-8601 durations, every AccessLink timestamp style, and ``HH:MM`` series anchoring."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from polar_pipeline.accesslink.errors import PayloadError
from polar_pipeline.accesslink.parsing import (
    anchor_clock_series,
    anchor_clock_series_to_day,
    parse_aware_datetime,
    parse_date,
    parse_duration,
    parse_naive_datetime,
    parse_timestamp,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT2460.605S", 2460.605),
        ("PT6917.941S", 6917.941),
        ("PT1230.030S", 1230.03),
        ("PT8H33M30S", 8 * 3600 + 33 * 60 + 30),
        ("PT2H44M", 2 * 3600 + 44 * 60),
        ("PT2H44M45S", 9885),
        ("PT0S", 0.0),
        ("PT7M24S", 444),
        ("P1DT2H", 26 * 3600),
        ("P1D", 86400),
        ("PT8H", 28800),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    "garbage", ["", "P", "PT", "P1DT", "2H", "PT-5S", "PT5", "P1Y", "P1M", "PT1.S", "xPT1S", 12]
)
def test_parse_duration_rejects_garbage(garbage: object) -> None:
    with pytest.raises(PayloadError, match="duration"):
        parse_duration(garbage)


def test_timestamp_styles() -> None:
    assert parse_naive_datetime("2025-09-26T00:49") == datetime(2025, 9, 26, 0, 49)
    assert parse_naive_datetime("2025-09-26T02:15:30") == datetime(2025, 9, 26, 2, 15, 30)
    assert parse_naive_datetime("2022-11-20T20:52:20.57") == datetime(2022, 11, 20, 20, 52, 20, 570000)
    assert parse_aware_datetime("2026-02-07T08:51:22Z") == datetime(2026, 2, 7, 8, 51, 22, tzinfo=UTC)
    with_offset = parse_aware_datetime("2025-09-30T23:33:22.675+01:00")
    assert with_offset == datetime(2025, 9, 30, 22, 33, 22, 675000, tzinfo=UTC)
    assert with_offset.utcoffset() == timedelta(hours=1)
    assert parse_timestamp("2016-04-27T20:11:33.000Z").tzinfo is UTC
    assert parse_date("2025-10-01") == date(2025, 10, 1)


@pytest.mark.parametrize(
    ("parser", "value"),
    [
        (parse_naive_datetime, "2025-09-26T00:49Z"),
        (parse_aware_datetime, "2025-09-26T00:49:00"),
        (parse_timestamp, "2025-09-26"),
        (parse_timestamp, "20250926T0049"),
        (parse_timestamp, "2025-02-30T10:00"),
        (parse_timestamp, "2025-09-26 00:49"),
        (parse_date, "20250926"),
        (parse_date, "2025-13-01"),
    ],
)
def test_timestamp_garbage(parser: Any, value: str) -> None:
    with pytest.raises(PayloadError, match=repr(value)[1:-1]):
        parser(value)


def test_hypnogram_rolls_over_midnight_in_json_order() -> None:
    start = datetime(2025, 9, 30, 23, 33, 22, tzinfo=timezone(timedelta(hours=1)))
    series = {"23:33": 3, "23:50": 4, "23:59": 3, "00:01": 1, "03:10": 3, "07:13": 0}
    anchored = anchor_clock_series(series, start)
    moments = [moment for moment, _ in anchored]
    assert moments == sorted(moments) and len(set(moments)) == len(moments)
    assert moments[0] == datetime(2025, 9, 30, 23, 33, tzinfo=start.tzinfo)
    assert moments[3] == datetime(2025, 10, 1, 0, 1, tzinfo=start.tzinfo)
    assert anchored[-1] == (datetime(2025, 10, 1, 7, 13, tzinfo=start.tzinfo), 0)


def test_series_starting_just_after_midnight_stays_on_the_start_day() -> None:
    start = datetime(2025, 10, 1, 0, 2, tzinfo=UTC)
    assert anchor_clock_series({"00:02": 2, "00:05": 3}, start)[0][0] == datetime(
        2025, 10, 1, 0, 2, tzinfo=UTC
    )
    late = datetime(2025, 9, 30, 23, 59, 40, tzinfo=UTC)
    first_after_midnight = anchor_clock_series({"00:01": 60}, late)
    assert first_after_midnight[0][0] == datetime(2025, 10, 1, 0, 1, tzinfo=UTC)


def test_recharge_series_anchor_backwards_from_the_wake_up_day() -> None:
    anchored = anchor_clock_series_to_day(
        {"23:35": 40, "23:55": 42, "00:05": 45, "07:06": 50}, date(2025, 10, 1)
    )
    assert [moment for moment, _ in anchored] == [
        datetime(2025, 9, 30, 23, 35),
        datetime(2025, 9, 30, 23, 55),
        datetime(2025, 10, 1, 0, 5),
        datetime(2025, 10, 1, 7, 6),
    ]
