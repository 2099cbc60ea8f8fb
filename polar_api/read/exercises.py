"""Workouts, shaped like polar-flow-server's ``GET /api/v1/users/{user_id}/exercises`` and its detail routes.

``marts.exercises`` holds one typed row per workout (dated by its local start date); the per-second series
come from the sample store (``samples.exercise_samples``). A workout's id is Polar's own (a short hashed
string such as ``y7lOpwnJ``), so ``id`` and ``polar_exercise_id`` are the same value here: we keep no second,
internal id that a client would have to map.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from datetime import date
from typing import Any

import duckdb
from pydantic import BaseModel, Field

from polar_api.read.rows import fetch_dict, fetch_dicts

EXERCISE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What a workout id may look like: Polar's hashed ids (or an integer id) are letters, digits, '_' or '-'."""

SAMPLE_TYPES = (
    "0 heart rate (bpm), 1 speed (km/h), 2 cadence (rpm), 3 altitude (m), 4 power (W), "
    "5 pedalling index (%), 6 left/right balance (%), 7 air pressure (hPa), 8 running cadence (spm), "
    "9 temperature (°C), 10 distance (m, cumulative), 11 RR interval (ms)"
)
"""Polar's sample type codes (docs/accesslink.md §5.4)."""

START_TIME = "start on the watch's local clock, with its UTC offset (no offset when Polar sent none)"


class ExerciseSummary(BaseModel):
    """One workout in the list."""

    id: str = Field(description="the workout's id (Polar's), the key of the detail routes")
    polar_exercise_id: str = Field(description="Polar's id of the workout (the same value as id)")
    start_time: dt.datetime | None = Field(description=START_TIME)
    sport: str | None
    duration_minutes: float | None = Field(description="duration, minutes (1 decimal)")
    distance_km: float | None = Field(description="distance, km (2 decimals); null for sports without one")
    calories: int | None = Field(description="energy spent, kcal")
    average_heart_rate: float | None = Field(description="bpm; null when there was no heart-rate signal")
    max_heart_rate: float | None = Field(description="bpm; null when there was no heart-rate signal")
    training_load: float | None = Field(
        description="the session's load: cardio load, else Polar's legacy load"
    )


class HeartRateZone(BaseModel):
    """Time spent in one of the workout's heart-rate zones."""

    index: int = Field(description="zone index as Polar numbers it (0 = lowest)")
    lower_limit_bpm: float | None
    upper_limit_bpm: float | None
    in_zone_seconds: float | None


class ExerciseDetail(BaseModel):
    """One workout in full."""

    id: str = Field(description="the workout's id (Polar's)")
    polar_exercise_id: str = Field(description="Polar's id of the workout (the same value as id)")
    start_time: dt.datetime | None = Field(description=START_TIME)
    start_time_utc: dt.datetime | None = Field(description="start in UTC; null when Polar sent no offset")
    sport: str | None
    detailed_sport_info: str | None
    device_id: str | None
    duration_seconds: float | None
    distance_meters: float | None = Field(description="null for sports without distance")
    calories: int | None = Field(description="energy spent, kcal")
    average_heart_rate: float | None = Field(description="bpm; null when there was no heart-rate signal")
    max_heart_rate: float | None = Field(description="bpm; null when there was no heart-rate signal")
    training_load: float | None = Field(
        description="the session's load: cardio load, else Polar's legacy load"
    )
    cardio_load: float | None = Field(description="Training Load Pro cardio load; null when unavailable")
    muscle_load: float | None = Field(description="Training Load Pro muscle load; null when unavailable")
    perceived_load: float | None = Field(description="Training Load Pro perceived load; null without an RPE")
    ascent_meters: float | None
    descent_meters: float | None
    running_index: float | None = Field(description="Polar's running index (running only, not always)")
    heart_rate_zones: list[HeartRateZone] | None = Field(description="null when Polar sent no zones")
    has_samples: bool = Field(description="whether exercises/{id}/samples has series for it")
    has_route: bool | None = Field(description="Polar's flag: the workout recorded a GPS route")
    has_route_data: bool = Field(
        description="whether that route was fetched and stored (the sync asks for none)"
    )


class SampleSeries(BaseModel):
    """One recorded series of a workout."""

    sample_type: str = Field(description=f"Polar's sample type code: {SAMPLE_TYPES}")
    recording_rate: int | None = Field(description="seconds between values")
    values: list[float | None] = Field(description="one value per recording_rate seconds; null = sensor gap")


class ExerciseSamples(BaseModel):
    """A workout's recorded series."""

    exercise_id: str
    sport: str | None
    start_time: dt.datetime | None = Field(description=START_TIME)
    samples: list[SampleSeries]


EXERCISES_QUERY = """
SELECT
    exercise_id AS id,
    exercise_id AS polar_exercise_id,
    start_time_local,
    utc_offset_minutes,
    sport,
    round(duration_seconds / 60.0, 1) AS duration_minutes,
    round(distance_m / 1000.0, 2) AS distance_km,
    calories,
    hr_avg_bpm AS average_heart_rate,
    hr_max_bpm AS max_heart_rate,
    training_load
FROM marts.exercises
WHERE user_id = $user_id AND day BETWEEN $since AND $until
ORDER BY day DESC, start_time_local DESC, exercise_id
"""

EXERCISE_QUERY = """
SELECT
    exercise_id AS id,
    exercise_id AS polar_exercise_id,
    start_time_local,
    utc_offset_minutes,
    start_time_utc,
    sport,
    detailed_sport_info,
    device_id,
    duration_seconds,
    distance_m AS distance_meters,
    calories,
    hr_avg_bpm AS average_heart_rate,
    hr_max_bpm AS max_heart_rate,
    training_load,
    cardio_load,
    muscle_load,
    perceived_load,
    ascent_m AS ascent_meters,
    descent_m AS descent_meters,
    running_index,
    heart_rate_zones,
    coalesce(has_samples, false) AS has_samples,
    has_route,
    EXISTS (
        SELECT 1 FROM samples.exercise_routes AS route
        WHERE route.user_id = $user_id AND route.exercise_id = $exercise_id
    ) AS has_route_data
FROM marts.exercises
WHERE user_id = $user_id AND exercise_id = $exercise_id
"""

# The sample store keeps a type sent as a digit string (the specification's style) with its JSON quotes.
EXERCISE_SAMPLES_QUERY = """
SELECT
    trim(sample_type, '"') AS sample_type,
    recording_rate_seconds AS recording_rate,
    sample_values AS "values"
FROM samples.exercise_samples
WHERE user_id = $user_id AND exercise_id = $exercise_id
ORDER BY TRY_CAST(trim(sample_type, '"') AS INTEGER) NULLS LAST, sample_type
"""


def _local_start(row: dict[str, Any]) -> dt.datetime | None:
    """The watch's clock at the start, carrying its UTC offset when Polar sent one (pops both columns)."""
    local: dt.datetime | None = row.pop("start_time_local")
    offset: int | None = row.pop("utc_offset_minutes")
    if local is None or offset is None:
        return local
    return local.replace(tzinfo=dt.timezone(dt.timedelta(minutes=offset)))


def exercises(
    cursor: duckdb.DuckDBPyConnection, user_id: str, since: date, until: date
) -> list[ExerciseSummary]:
    """The user's workouts that started (local date) ``since`` to ``until``, newest first."""
    rows = fetch_dicts(cursor, EXERCISES_QUERY, {"user_id": user_id, "since": since, "until": until})
    return [ExerciseSummary(start_time=_local_start(row), **row) for row in rows]


def exercise(cursor: duckdb.DuckDBPyConnection, user_id: str, exercise_id: str) -> ExerciseDetail | None:
    """One workout of the user's; None when they have none with that id."""
    row = fetch_dict(cursor, EXERCISE_QUERY, {"user_id": user_id, "exercise_id": exercise_id})
    if row is None:
        return None
    if row["start_time_utc"] is not None:
        row["start_time_utc"] = row["start_time_utc"].replace(tzinfo=dt.UTC)
    zones = row.pop("heart_rate_zones")
    return ExerciseDetail(
        start_time=_local_start(row),
        heart_rate_zones=None if zones is None else json.loads(zones),
        **row,
    )


def exercise_samples(
    cursor: duckdb.DuckDBPyConnection, user_id: str, exercise_id: str
) -> ExerciseSamples | None:
    """The workout's recorded series, lowest type code first; None when the user has no such workout."""
    workout = exercise(cursor, user_id, exercise_id)
    if workout is None:
        return None
    series = fetch_dicts(cursor, EXERCISE_SAMPLES_QUERY, {"user_id": user_id, "exercise_id": exercise_id})
    return ExerciseSamples(
        exercise_id=workout.id,
        sport=workout.sport,
        start_time=workout.start_time,
        samples=[SampleSeries(**one) for one in series],
    )
