"""Batch parsing per stream: container shapes, rejected records kept for quarantine, and no crash on odd
values."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from polar_pipeline.accesslink.streams import (
    ACTIVITY,
    CARDIO_LOAD,
    CONTINUOUS_HR,
    EXERCISE,
    NIGHTLY_RECHARGE,
    SLEEP,
    parse_batch,
)
from tests.accesslink.payloads import (
    ACTIVITY_PAYLOAD,
    EXERCISE_PAYLOAD,
    RECHARGE,
    REMOVE,
    load,
    mutated,
    real_night,
)


@pytest.mark.parametrize("stream", [SLEEP, NIGHTLY_RECHARGE, ACTIVITY, EXERCISE, CONTINUOUS_HR, CARDIO_LOAD])
def test_no_data_extraction_is_no_records(stream: Any) -> None:
    """``no_data.json`` is another tool's empty extraction: every stream ``{}``. Each is "no records"."""
    for body in load("no_data.json").values():
        batch = parse_batch(stream, body)
        assert batch.records == [] and batch.rejected == []


def test_batch_rejects_bad_records_without_losing_good_ones() -> None:
    good = real_night()
    bad = mutated(real_night(), date="2025-10-02", sleep_score=-3)
    not_an_object = "oops"
    batch = parse_batch(SLEEP, {"nights": [good, bad, not_an_object]})
    assert [night.key for night in batch.records] == ["2025-10-01"]
    first, second = batch.rejected
    assert (first.stream, first.key, first.day) == ("sleep", "2025-10-02", date(2025, 10, 2))
    assert "sleep_score=-3" in first.reason and json.loads(first.payload) == bad
    assert first.payload.startswith('{"polar_user"')  # received key order is kept
    assert (second.key, second.day, second.payload) == (None, None, '"oops"')
    assert "expected a JSON object" in second.reason


def test_batch_container_shapes() -> None:
    assert parse_batch(SLEEP, None).records == []
    assert parse_batch(SLEEP, {"nights": []}).records == []
    assert parse_batch(SLEEP, {}).records == []
    assert [n.key for n in parse_batch(SLEEP, real_night()).records] == ["2025-10-01"]  # by-date body
    assert [r.key for r in parse_batch(NIGHTLY_RECHARGE, {"recharges": [RECHARGE]}).records] == ["2025-10-01"]
    assert [e.key for e in parse_batch(EXERCISE, [EXERCISE_PAYLOAD]).records] == ["y7lOpwnJ"]
    broken = parse_batch(SLEEP, {"nights": "none"})
    assert broken.records == [] and broken.rejected[0].reason == 'nights="none": expected a JSON array'
    assert parse_batch(EXERCISE, 42).rejected[0].reason == "body=42: expected a JSON array or object"


def test_rejected_record_key_comes_only_from_the_key_field() -> None:
    """A night without ``date`` gets a day from ``sleep_end_time`` but no guessed key."""
    batch = parse_batch(SLEEP, [mutated(real_night(), date=REMOVE)])
    (reject,) = batch.rejected
    assert (reject.key, reject.day) == (None, date(2025, 10, 1))
    activity_batch = parse_batch(ACTIVITY, [mutated(ACTIVITY_PAYLOAD, start_time=REMOVE)])
    assert (activity_batch.rejected[0].key, activity_batch.rejected[0].day) == (None, date(2025, 10, 1))
    steps_batch = parse_batch(ACTIVITY, [mutated(ACTIVITY_PAYLOAD, steps=-1)])
    assert steps_batch.rejected[0].key == "2025-10-01"


def test_rejected_exercise_keeps_its_id() -> None:
    batch = parse_batch(EXERCISE, [mutated(EXERCISE_PAYLOAD, calories=-5)])
    (reject,) = batch.rejected
    assert (reject.stream, reject.key, reject.day) == ("exercise", "y7lOpwnJ", date(2026, 2, 22))


def test_calendar_edge_is_a_rejection_not_a_crash() -> None:
    edge = {
        "date": "9999-12-31",
        "sleep_start_time": "9999-12-31T23:00:00+00:00",
        "sleep_end_time": "9999-12-31T23:30:00+00:00",
        "hypnogram": {"23:00": 3, "00:10": 4},
    }
    (reject,) = parse_batch(SLEEP, [edge]).rejected
    assert reject.key == "9999-12-31" and "OverflowError" in reject.reason


ODD_VALUES: list[Any] = [None, "", "garbage", -1, 0, 1e308, -1e308, True, [], {}, [1, "x"], {"a": 1}]


@pytest.mark.parametrize(
    ("stream", "payload"),
    [
        (SLEEP, real_night()),
        (NIGHTLY_RECHARGE, RECHARGE),
        (ACTIVITY, ACTIVITY_PAYLOAD),
        (EXERCISE, EXERCISE_PAYLOAD),
        (
            CONTINUOUS_HR,
            {"date": "2022-09-12", "heart_rate_samples": [{"heart_rate": 63, "sample_time": "00:02:08"}]},
        ),
    ],
)
def test_any_odd_field_value_gives_one_record_or_one_rejection(stream: Any, payload: dict[str, Any]) -> None:
    """Whatever one field holds, the batch neither raises nor loses the record."""
    for field_name in payload:
        for odd in ODD_VALUES:
            batch = parse_batch(stream, [payload | {field_name: odd}])
            assert len(batch.records) + len(batch.rejected) == 1, (field_name, odd)
            if batch.rejected:
                assert field_name in batch.rejected[0].reason
