"""Record models against the real AccessLink fixtures, sentinels and key spellings, and the reasons given
for bad records."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from polar_pipeline.accesslink.errors import PayloadError
from polar_pipeline.accesslink.records import (
    CardioLoadDay,
    ContinuousHeartRateDay,
    DailyActivity,
    Exercise,
    NightlyRecharge,
    PhysicalInfo,
    PolarUser,
    SleepNight,
    TokenGrant,
)
from polar_pipeline.accesslink.streams import ACTIVITY, EXERCISE, parse_batch
from tests.accesslink.payloads import (
    ACTIVITY_PAYLOAD,
    EXERCISE_PAYLOAD,
    RECHARGE,
    REMOVE,
    load,
    mutated,
    real_night,
)

# -- fixtures ---------------------------------------------------------------------------------------------


def test_sleep_fixture() -> None:
    night = SleepNight.from_json(load("sleep_sample.json"))
    assert night.key == "2020-01-01" and night.day == date(2020, 1, 1)
    assert night.light_sleep_seconds == 1000 and night.deep_sleep_seconds == 1000
    assert night.continuity == 2.1 and night.continuity_class == 2
    assert night.sleep_score == 80 and night.sleep_charge == 3 and night.sleep_rating == 3
    assert night.sleep_start.utcoffset() == timedelta(hours=3)
    assert night.duration_seconds == 8 * 3600 + 40 * 60 + 30
    assert night.hypnogram[0] == (datetime(2020, 1, 1, 0, 39, tzinfo=night.sleep_start.tzinfo), 2)
    assert [stage for _, stage in night.hypnogram] == [2, 3, 6]  # 6: Polar's own spec example
    assert [bpm for _, bpm in night.heart_rate_samples] == [76, 77, 76]
    assert night.payload == load("sleep_sample.json")


def test_recharge_fixture() -> None:
    recharge = NightlyRecharge.from_json(load("recharge_sample.json"))
    assert recharge.key == "2020-01-01"
    assert recharge.beat_to_beat_avg_ms == 816
    assert recharge.heart_rate_avg_bpm == 70 and recharge.hrv_avg_ms == 28
    assert recharge.breathing_rate_avg == 14.1 and recharge.ans_charge == 0.0
    assert recharge.nightly_recharge_status == 3 and recharge.ans_charge_status == 3
    assert recharge.hrv_samples[0] == (datetime(2020, 1, 1, 0, 41), 14)
    assert recharge.breathing_samples[-1] == (datetime(2020, 1, 1, 0, 49), 13.5)


def test_activity_fixture_with_samples() -> None:
    batch = parse_batch(ACTIVITY, load("full_sample.json"))
    assert batch.rejected == []
    (day,) = batch.records
    assert day.steps == 9842 and day.day == date(2025, 9, 26) and day.key == "2025-09-26"
    assert day.start_time == datetime(2025, 9, 26, 0, 0)
    assert day.end_time == datetime(2025, 9, 26, 23, 59, 59)
    assert day.active_duration_seconds == 8 * 3600 + 33 * 60 + 30
    assert day.calories == 2823 and day.active_calories == 1129 and day.distance_from_steps_meters == 5403.16
    assert day.samples is not None and len(day.samples.zones) == 208
    assert day.samples.zones[0] == (datetime(2025, 9, 26, 0, 0), "SLEEP")
    assert day.samples.zones[4] == (datetime(2025, 9, 26, 2, 15, 30), "SLEEP")
    assert day.samples.steps == []


def test_real_exercises_fixture() -> None:
    batch = parse_batch(EXERCISE, load("exercises_real_sample.json"))
    assert batch.rejected == []
    by_id = {exercise.key: exercise for exercise in batch.records}
    mobility = by_id["0R9oo1mE"]
    assert mobility.duration_seconds == 1230.03
    assert mobility.training_load_pro is not None
    assert mobility.training_load_pro.muscle_load is None  # −1.0 sentinel
    assert mobility.training_load_pro.perceived_load is None  # 0.0 = no RPE
    assert mobility.training_load_pro.cardio_load == 5.69921
    assert mobility.distance_meters is None and mobility.running_index is None
    assert [zone.index for zone in mobility.heart_rate_zones] == [0, 1, 2, 3, 4]
    assert (
        mobility.heart_rate_zones[0].lower_limit_bpm == 96
        and mobility.heart_rate_zones[0].in_zone_seconds == 254
    )
    assert [sample.sample_type for sample in mobility.samples] == [0, 1, 9, 10]
    assert mobility.samples[0].recording_rate_seconds == 1 and len(mobility.samples[0].values) == 1230
    assert mobility.start_time_utc == datetime(2026, 2, 4, 21, 7, 52, tzinfo=UTC)  # offset 0
    run = by_id["y3waeYE6"]
    assert run.running_index == 49 and run.distance_meters == 4423.0
    assert run.training_load_pro is not None and run.training_load_pro.muscle_load == 442.485
    assert run.heart_rate_average_bpm == 147 and run.heart_rate_maximum_bpm == 176
    assert run.upload_time == datetime(2026, 2, 12, 21, 7, 38, tzinfo=UTC)
    assert run.day == date(2026, 2, 12)


@pytest.mark.parametrize("name", ["sample_exercise.json", "keys_missing_exercise.json"])
def test_spec_style_exercises(name: str) -> None:
    exercise = Exercise.from_json(load(name))
    assert exercise.key == "2AC312F"
    assert exercise.start_time == datetime(2008, 10, 13, 10, 40, 2)
    assert exercise.start_time_utc_offset_minutes == 180
    assert exercise.start_time_utc == datetime(2008, 10, 13, 7, 40, 2, tzinfo=UTC)  # local − 3 h
    assert exercise.running_index == 51  # kebab "running-index"
    (zone,) = exercise.heart_rate_zones
    assert (zone.index, zone.lower_limit_bpm, zone.upper_limit_bpm, zone.in_zone_seconds) == (
        1,
        110,
        130,
        4.0,
    )
    (sample,) = exercise.samples
    assert sample.recording_rate_seconds == 5 and sample.values[:3] == [0.0, 100.0, 102.0]
    assert exercise.route[0].offset_seconds == 210.026 and exercise.route[0].satellites == 4
    assert exercise.training_load == 143.22 and exercise.club_id == 999
    if name == "keys_missing_exercise.json":  # "durations" instead of "duration"
        assert exercise.duration_seconds is None and sample.sample_type == 100
    else:
        assert exercise.duration_seconds == 2 * 3600 + 44 * 60 and sample.sample_type == 1


def test_continuous_heart_rate_fixture() -> None:
    day = ContinuousHeartRateDay.from_json(load("heart_rate_sample.json"))
    assert day.key == "2022-09-12"
    assert day.samples == [
        (datetime(2022, 9, 12, 0, 2, 8), 63),
        (datetime(2022, 9, 12, 0, 7, 8), 62),
        (datetime(2022, 9, 12, 0, 9, 8), None),  # 0 bpm = no signal
    ]


def test_physical_info_fixture() -> None:
    info = PhysicalInfo.from_json(load("physical_sample.json"))
    assert info.key == "123" and info.day == date(2016, 4, 27)
    assert info.weight_kg == 80 and info.height_cm == 180
    assert info.maximum_heart_rate == 160 and info.resting_heart_rate == 60
    assert info.vo2_max == 12 and info.weight_source == "SOURCE_MEASURED"


def test_physical_info_snake_case_form() -> None:
    info = PhysicalInfo.from_json(
        {
            "weight": 70.5,
            "height": 175,
            "created": "2024-06-01T12:00:00Z",
            "modified": "2024-06-10T12:00:00Z",
            "birthday": "1990-01-01",
            "gender": "MALE",
            "maximum_heart_rate": 190,
            "resting_heart_rate": 60,
            "aerobic_threshold": 140,
            "anaerobic_threshold": 170,
            "vo2_max": 50,
            "weight_source": "SOURCE_USER",
            "training_background": "REGULAR",
            "typical_day": "MOSTLY_MOVING",
            "sleep_goal": "PT8H",
        }
    )
    assert info.key == "2024-06-01T12:00:00+00:00" and info.sleep_goal_seconds == 28800
    assert info.birthday == date(1990, 1, 1) and info.maximum_heart_rate == 190


def test_user_and_token() -> None:
    user = PolarUser.from_json(
        {
            "polar-user-id": 2278512,
            "member-id": "i09u9ujj",
            "registration-date": "2011-10-14T12:50:37.000Z",
            "first-name": "Eka",
            "last-name": "Toka",
            "birthdate": "1985-09-06",
            "gender": "MALE",
            "weight": 66,
            "height": 170,
            "extra-info": [{"value": "2", "index": 0, "name": "number-of-children"}],
        }
    )
    assert user.polar_user_id == 2278512 and user.member_id == "i09u9ujj"
    assert user.extra_info == {"number-of-children": "2"} and user.weight_kg == 66.0
    grant = TokenGrant.from_json(
        {
            "access_token": "secret-token",
            "token_type": "bearer",
            "expires_in": 31535999,
            "x_user_id": 10000001,
        }
    )
    assert grant.x_user_id == 10000001 and grant.expires_in_seconds == 31535999
    assert "secret-token" not in repr(grant)


# -- sentinels and spellings -----------------------------------------------------------------------------


def test_real_night_rolls_over_and_normalises_hr_zero() -> None:
    night = SleepNight.from_json(real_night())
    moments = [moment for moment, _ in night.hypnogram]
    assert moments == sorted(moments)
    assert moments[-1] == night.sleep_end.replace(second=0, microsecond=0)
    assert night.hypnogram[2][0].date() == date(2025, 10, 1)
    assert [bpm for _, bpm in night.heart_rate_samples] == [61, None, 55, 58]
    assert night.heart_rate_samples[2][0] == datetime(2025, 10, 1, 0, 5, tzinfo=night.sleep_start.tzinfo)


def test_sleep_sentinels_become_none() -> None:
    payload = real_night() | {"continuity": 0, "continuity_class": 0, "sleep_charge": -1, "sleep_rating": 0}
    night = SleepNight.from_json(payload)
    assert (night.continuity, night.continuity_class, night.sleep_charge, night.sleep_rating) == (None,) * 4
    assert night.payload["sleep_charge"] == -1  # the verbatim payload keeps the wire value


def test_recharge_series_reanchored_on_the_night_start() -> None:
    recharge = NightlyRecharge.from_json(
        mutated(RECHARGE, hrv_samples={"23:35": 40, "23:55": 0, "00:05": 45})
    )
    night = SleepNight.from_json(real_night())
    anchored = recharge.anchored_to(night.sleep_start)
    zone = night.sleep_start.tzinfo
    assert anchored.hrv_samples == [
        (datetime(2025, 9, 30, 23, 35, tzinfo=zone), 40),
        (datetime(2025, 9, 30, 23, 55, tzinfo=zone), None),
        (datetime(2025, 10, 1, 0, 5, tzinfo=zone), 45),
    ]
    assert anchored.breathing_samples == [(datetime(2025, 9, 30, 23, 35, tzinfo=zone), 11.0)]
    assert [value for _, value in anchored.hrv_samples] == [value for _, value in recharge.hrv_samples]


def test_recharge_sentinels_become_none() -> None:
    recharge = NightlyRecharge.from_json(
        {
            "date": "2025-10-01",
            "heart_rate_avg": 0,
            "beat_to_beat_avg": 0,
            "hrv_samples": {"23:50": 0, "00:10": 40},
        }
    )
    assert recharge.heart_rate_avg_bpm is None and recharge.beat_to_beat_avg_ms is None
    assert recharge.hrv_samples == [(datetime(2025, 9, 30, 23, 50), None), (datetime(2025, 10, 1, 0, 10), 40)]


def test_cardio_load_not_available_day() -> None:
    day = CardioLoadDay.from_json(
        {
            "date": "2023-01-01",
            "cardio_load_status": "LOAD_STATUS_NOT_AVAILABLE",
            "cardio_load": -1.0,
            "strain": 0.0,
            "tolerance": -1.0,
            "cardio_load_ratio": -1.0,
            "cardio_load_level": {"very_low": 0.0, "low": 0.0, "medium": 0.0, "high": 0.0, "very_high": 0.0},
        }
    )
    assert (day.cardio_load, day.strain, day.tolerance, day.cardio_load_ratio, day.levels) == (None,) * 5
    productive = CardioLoadDay.from_json(
        {
            "date": "2023-01-02",
            "cardio_load_status": "PRODUCTIVE",
            "cardio_load": 85.3,
            "strain": 54.9,
            "tolerance": 28.8,
            "cardio_load_ratio": 1.9,
            "cardio_load_level": {
                "very_low": 10.0,
                "low": 20.0,
                "medium": 30.0,
                "high": 40.0,
                "very-high": 50.0,
            },
        }
    )
    assert (
        productive.cardio_load == 85.3
        and productive.levels is not None
        and productive.levels.very_high == 50.0
    )


def test_both_sample_and_zone_spellings() -> None:
    base = {"id": "abc", "start_time": "2026-02-22T07:50:17", "start_time_utc_offset": 120}
    snake = Exercise.from_json(
        base
        | {
            "running_index": 44,
            "heart_rate_zones": [{"index": 0, "lower_limit": 96, "upper_limit": 115, "in_zone": "PT7M24S"}],
            "samples": [{"recording_rate": 1, "sample_type": 0, "data": "88,null,87"}],
        }
    )
    kebab = Exercise.from_json(
        base
        | {
            "running-index": 44,
            "heart_rate_zones": [{"index": 0, "lower-limit": 96, "upper-limit": 115, "in-zone": "PT7M24S"}],
            "samples": [{"recording-rate": 1, "sample-type": "0", "data": "88,null,87"}],
        }
    )
    for exercise in (snake, kebab):
        assert exercise.running_index == 44
        assert exercise.heart_rate_zones[0].in_zone_seconds == 444
        assert exercise.samples[0].sample_type == 0 and exercise.samples[0].values == [88.0, None, 87.0]
        assert exercise.start_time_utc == datetime(2026, 2, 22, 5, 50, 17, tzinfo=UTC)


def test_activity_inactivity_stamps_both_shapes() -> None:
    base = {"start_time": "2022-02-10T00:00", "steps": 100}
    for stamps in ([{"stamp": "2022-02-10T16:04"}], {"samples": [{"stamp": "2022-02-10T16:04"}]}):
        day = DailyActivity.from_json(
            base
            | {
                "samples": {
                    "steps": {
                        "interval_ms": 60000,
                        "total_steps": 12,
                        "samples": [{"steps": 12, "timestamp": "2022-02-10T07:18"}],
                    },
                    "inactivity_stamps": stamps,
                }
            }
        )
        assert day.samples is not None
        assert day.samples.inactivity_stamps == [datetime(2022, 2, 10, 16, 4)]
        assert (
            day.samples.steps == [(datetime(2022, 2, 10, 7, 18), 12)]
            and day.samples.step_interval_ms == 60000
        )


# -- bad records -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (mutated(real_night(), sleep_start_time=REMOVE), "required field sleep_start_time is missing"),
        (mutated(real_night(), date=None), "required field date is null"),
        (mutated(real_night(), date="2025-10-32"), "date: date '2025-10-32' is not a calendar date"),
        (mutated(real_night(), sleep_score=150), "sleep_score=150: outside 0..100"),
        (mutated(real_night(), sleep_score="80"), 'sleep_score="80": expected an integer'),
        (mutated(real_night(), continuity=7.5), "continuity=7.5: outside 1..5"),
        (mutated(real_night(), continuity_class=9), "continuity_class=9: outside 1..5"),
        (mutated(real_night(), light_sleep=-30), "light_sleep=-30: outside 0..inf"),
        (mutated(real_night(), group_solidity_score=101.5), "group_solidity_score=101.5: outside 0..100"),
        (
            mutated(real_night(), sleep_end_time="2025-09-30T23:00:00+01:00"),
            "sleep_end_time='2025-09-30T23:00:00+01:00' is not after sleep_start_time",
        ),
        (
            mutated(real_night(), sleep_start_time="2025-09-30T23:33:22"),
            "sleep_start_time: timestamp '2025-09-30T23:33:22' has no UTC offset",
        ),
        (
            mutated(real_night(), heart_rate_samples={"23:35": 300}),
            "heart_rate_samples['23:35']=300: outside 20..250",
        ),
        (
            mutated(real_night(), hypnogram={"23:33": 3, "25:99": 0}),
            "hypnogram: clock time '25:99' is out of range",
        ),
        (mutated(real_night(), hypnogram=[3, 4]), "hypnogram=[3, 4]: expected an object"),
    ],
)
def test_bad_sleep_reasons(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        SleepNight.from_json(payload)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (mutated(RECHARGE, date=REMOVE), "required field date is missing"),
        (mutated(RECHARGE, heart_rate_variability_avg=-4), "heart_rate_variability_avg=-4: outside 1..500"),
        (mutated(RECHARGE, heart_rate_variability_avg=900), "heart_rate_variability_avg=900: outside 1..500"),
        (mutated(RECHARGE, heart_rate_avg=12), "heart_rate_avg=12: outside 20..250"),
        (mutated(RECHARGE, ans_charge=11.5), "ans_charge=11.5: outside -10..10"),
        (mutated(RECHARGE, nightly_recharge_status=7), "nightly_recharge_status=7: outside 1..6"),
        (mutated(RECHARGE, ans_charge_status=0), "ans_charge_status=0: outside 1..5"),
        (mutated(RECHARGE, hrv_samples={"23:35": 800}), "hrv_samples['23:35']=800: outside 1..500"),
        (
            mutated(RECHARGE, breathing_rate_avg=float("nan")),
            "breathing_rate_avg=NaN: expected a finite number",
        ),
    ],
)
def test_bad_recharge_reasons(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        NightlyRecharge.from_json(payload)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (mutated(EXERCISE_PAYLOAD, id=REMOVE), "required field id is missing"),
        (mutated(EXERCISE_PAYLOAD, start_time=REMOVE), "required field start_time is missing"),
        (mutated(EXERCISE_PAYLOAD, duration="2 hours"), "duration: duration '2 hours' is not an ISO-8601"),
        (mutated(EXERCISE_PAYLOAD, calories=-5), "calories=-5: outside 0..inf"),
        (mutated(EXERCISE_PAYLOAD, distance=-1.0), "distance=-1.0: outside 0..inf"),
        (mutated(EXERCISE_PAYLOAD, fat_percentage=140), "fat_percentage=140: outside 0..100"),
        (mutated(EXERCISE_PAYLOAD, heart_rate={"average": 320, "maximum": 170}), "heart_rate.average=320"),
        (
            mutated(EXERCISE_PAYLOAD, start_time_utc_offset=5000),
            "start_time_utc_offset=5000: outside -720..840",
        ),
        (mutated(EXERCISE_PAYLOAD, has_route="yes"), 'has_route="yes": expected true or false'),
        (
            mutated(EXERCISE_PAYLOAD, heart_rate_zones=[{"index": 0, "lower_limit": 96, "in_zone": "PT1S"}]),
            "required field heart_rate_zones[0].upper_limit is missing",
        ),
        (
            mutated(EXERCISE_PAYLOAD, samples=[{"recording_rate": 1, "sample_type": 0, "data": "88,x,87"}]),
            'samples[0].data[1]="x": not a number',
        ),
        (
            mutated(EXERCISE_PAYLOAD, training_load_pro={"cardio-load": -7.0}),
            "training_load_pro.cardio-load=-7.0: outside 0..inf",
        ),
    ],
)
def test_bad_exercise_reasons(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        Exercise.from_json(payload)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (mutated(ACTIVITY_PAYLOAD, start_time=REMOVE), "required field start_time is missing"),
        (mutated(ACTIVITY_PAYLOAD, steps=-10), "steps=-10: outside 0..inf"),
        (mutated(ACTIVITY_PAYLOAD, calories=-1), "calories=-1: outside 0..inf"),
        (mutated(ACTIVITY_PAYLOAD, active_duration="-PT1H"), "active_duration: duration '-PT1H'"),
        (mutated(ACTIVITY_PAYLOAD, steps=12.5), "steps=12.5: expected an integer"),
        (mutated(ACTIVITY_PAYLOAD, steps=True), "steps=true: expected an integer"),
    ],
)
def test_bad_activity_reasons(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        DailyActivity.from_json(payload)
    assert reason in caught.value.reason
