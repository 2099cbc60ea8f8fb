"""Exercises: one training session with its heart-rate zones, sample series, route and training load."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from polar_pipeline.accesslink.errors import PayloadError
from polar_pipeline.accesslink.parsing import (
    HEART_RATE_RANGE,
    UTC_OFFSET_RANGE_MINUTES,
    Fields,
    any_datetime,
    aware_datetime,
    boolean,
    duration_seconds,
    field_error,
    identifier,
    integer,
    number,
    text,
)
from polar_pipeline.accesslink.records.base import Record


@dataclass(frozen=True, kw_only=True)
class HeartRateZone:
    index: int
    lower_limit_bpm: int
    upper_limit_bpm: int
    in_zone_seconds: float | None

    @classmethod
    def from_fields(cls, f: Fields) -> HeartRateZone:
        lower = f.req("lower_limit", integer(0, HEART_RATE_RANGE[1]))
        upper = f.req("upper_limit", integer(0, HEART_RATE_RANGE[1]))
        if upper < lower:
            raise PayloadError(f"{f.path}: upper_limit={upper} is below lower_limit={lower}", field=f.path)
        return cls(
            index=f.req("index", integer(0)),
            lower_limit_bpm=lower,
            upper_limit_bpm=upper,
            in_zone_seconds=f.opt("in_zone", duration_seconds),
        )


@dataclass(frozen=True, kw_only=True)
class ExerciseSample:
    """One sample series; ``values`` has ``None`` where the sensor was offline (docs/accesslink.md §5.4)."""

    sample_type: int
    recording_rate_seconds: int | None
    values: list[float | None]

    @classmethod
    def from_fields(cls, f: Fields) -> ExerciseSample:
        raw_type = f.lookup("sample_type")[1]
        if isinstance(raw_type, str) and raw_type.isascii() and raw_type.isdigit():  # spec-style "1"
            sample_type = int(raw_type)
        else:
            sample_type = f.req("sample_type", integer(0))
        return cls(
            sample_type=sample_type,
            recording_rate_seconds=f.opt("recording_rate", integer(0)),
            values=_sample_values(f),
        )


def _sample_values(f: Fields) -> list[float | None]:
    key, data = f.lookup("data")
    path = f.field_path(key)
    if data is None or data == "":
        return []
    if not isinstance(data, str):
        raise field_error(path, data, "expected a comma-separated string")
    values: list[float | None] = []
    for position, token in enumerate(data.split(",")):
        token = token.strip()
        if token == "null":
            values.append(None)
            continue
        try:
            value = float(token)
        except ValueError:
            raise field_error(f"{path}[{position}]", token, "not a number") from None
        if not math.isfinite(value):
            raise field_error(f"{path}[{position}]", token, "not a finite number")
        values.append(value)
    return values


@dataclass(frozen=True, kw_only=True)
class RoutePoint:
    latitude: float
    longitude: float
    offset_seconds: float | None
    satellites: int | None
    fix: int | None

    @classmethod
    def from_fields(cls, f: Fields) -> RoutePoint:
        return cls(
            latitude=f.req("latitude", number(-90, 90)),
            longitude=f.req("longitude", number(-180, 180)),
            offset_seconds=f.opt("time", duration_seconds),
            satellites=f.opt("satellites", integer(0, 63)),
            fix=f.opt("fix", integer(0, 3)),
        )


@dataclass(frozen=True, kw_only=True)
class TrainingLoadPro:
    """Kebab-keyed ``training_load_pro``; muscle-load −1.0 (no power), perceived-load 0.0 (no RPE) → None."""

    cardio_load: float | None
    muscle_load: float | None
    perceived_load: float | None
    cardio_load_interpretation: str | None
    muscle_load_interpretation: str | None
    perceived_load_interpretation: str | None
    user_rpe: str | None

    @classmethod
    def from_fields(cls, f: Fields) -> TrainingLoadPro:
        return cls(
            cardio_load=f.opt("cardio_load", number(0), sentinel=-1),
            muscle_load=f.opt("muscle_load", number(0), sentinel=-1),
            perceived_load=f.opt("perceived_load", number(0), sentinel=0),
            cardio_load_interpretation=f.opt("cardio_load_interpretation", text),
            muscle_load_interpretation=f.opt("muscle_load_interpretation", text),
            perceived_load_interpretation=f.opt("perceived_load_interpretation", text),
            user_rpe=f.opt("user_rpe", text),
        )


@dataclass(frozen=True, kw_only=True)
class Exercise(Record):
    """``/v3/exercises``: one session; ``key`` is the hashed id, ``day`` the local date of ``start_time``.

    ``start_time`` is the watch's wall clock; ``start_time_utc`` = local − ``start_time_utc_offset``.
    """

    upload_time: datetime | None
    polar_user: str | None
    device: str | None
    device_id: str | None
    start_time: datetime
    start_time_utc_offset_minutes: int | None
    start_time_utc: datetime | None
    duration_seconds: float | None
    calories: int | None
    distance_meters: float | None
    heart_rate_average_bpm: int | None
    heart_rate_maximum_bpm: int | None
    training_load: float | None
    sport: str | None
    detailed_sport_info: str | None
    has_route: bool | None
    club_id: int | None
    club_name: str | None
    fat_percentage: float | None
    carbohydrate_percentage: float | None
    protein_percentage: float | None
    running_index: int | None
    training_load_pro: TrainingLoadPro | None
    heart_rate_zones: list[HeartRateZone]
    samples: list[ExerciseSample]
    route: list[RoutePoint]

    @classmethod
    def from_json(cls, obj: object) -> Exercise:
        f = Fields(obj)
        exercise_id = f.req("id", identifier)
        start = f.req("start_time", any_datetime)
        offset = f.opt("start_time_utc_offset", integer(*UTC_OFFSET_RANGE_MINUTES))
        local_start = start.replace(tzinfo=None)
        if start.tzinfo is not None:  # zoned start_time: its own offset is authoritative
            utc_start: datetime | None = start.astimezone(UTC)
        elif offset is not None:
            utc_start = (local_start - timedelta(minutes=offset)).replace(tzinfo=UTC)
        else:
            utc_start = None
        heart_rate = f.nested("heart_rate")
        bpm = integer(*HEART_RATE_RANGE)
        percent = number(0, 100)
        load_pro = f.nested("training_load_pro")
        return cls(
            key=exercise_id,
            day=local_start.date(),
            payload=f.obj,
            upload_time=f.opt("upload_time", aware_datetime),
            polar_user=f.opt("polar_user", text),
            device=f.opt("device", text),
            device_id=f.opt("device_id", text),
            start_time=local_start,
            start_time_utc_offset_minutes=offset,
            start_time_utc=utc_start,
            duration_seconds=f.opt("duration", duration_seconds),
            calories=f.opt("calories", integer(0)),
            distance_meters=f.opt("distance", number(0)),
            heart_rate_average_bpm=heart_rate.opt("average", bpm, sentinel=0) if heart_rate else None,
            heart_rate_maximum_bpm=heart_rate.opt("maximum", bpm, sentinel=0) if heart_rate else None,
            training_load=f.opt("training_load", number(0)),
            sport=f.opt("sport", text),
            detailed_sport_info=f.opt("detailed_sport_info", text),
            has_route=f.opt("has_route", boolean),
            club_id=f.opt("club_id", integer()),
            club_name=f.opt("club_name", text),
            fat_percentage=f.opt("fat_percentage", percent),
            carbohydrate_percentage=f.opt("carbohydrate_percentage", percent),
            protein_percentage=f.opt("protein_percentage", percent),
            running_index=f.opt("running_index", integer(0, 100)),
            training_load_pro=TrainingLoadPro.from_fields(load_pro) if load_pro is not None else None,
            heart_rate_zones=[HeartRateZone.from_fields(z) for z in f.items("heart_rate_zones")],
            samples=[ExerciseSample.from_fields(s) for s in f.items("samples")],
            route=[RoutePoint.from_fields(p) for p in f.items("route")],
        )
